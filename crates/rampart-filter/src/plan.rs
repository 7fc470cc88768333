//! A direct matcher for the patterns log filters are made of: literals, runs of a byte
//! class, optional parts and alternatives that one byte of look-ahead decides.
//!
//! A *plan* is built from a pattern's parsed form only when every choice in it is decided
//! by the next byte (an LL(1) condition checked when the plan is built), and then matches
//! with no backtracking at all: literals are compared, class runs are taken whole, an
//! optional part or an alternative is tried once. Where the condition holds, this gives
//! exactly the match and the groups of the regex crate's leftmost-first search:
//!
//! - a run of class `C` is followed only by things that cannot start with a byte of `C`, so
//!   any shorter run leaves a byte the rest cannot take, and the rest cannot end the match
//!   there either unless it could end it anywhere (then it ends it after the longest run,
//!   which the regex prefers too);
//! - an optional part or a repeated part always consumes a byte, starts only with bytes the
//!   rest cannot start with, so the regex's other choice (skip it, or stop repeating) fails
//!   wherever the part could start, unless the rest can end the match (as above);
//! - the branches of an alternative exclude each other (their first bytes differ, or all
//!   are literals none of which is a prefix of another), so at most one can match.
//!
//! Matching walks every byte a bounded number of times (at most once per nesting level of
//! the pattern), so it is linear in the line. Patterns outside this shape get no plan and
//! run on the regex crate's engines. The tests compare plans with the PikeVM on every
//! corpus line and on generated lines.

use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::extract::Spans;

/// The groups a plan records, by position: host, user, conn.
const NAMES: [&str; 3] = ["host", "user", "conn"];

/// Span slots: start and end of each of [`NAMES`]; `NONE` when unset.
type Slots = [usize; 6];

const NONE: usize = usize::MAX;

/// A set of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn add(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1u64 << (b & 63);
    }

    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.add(b);
        }
    }

    #[inline]
    fn has(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1u64 << (b & 63)) != 0
    }

    fn union(self, o: Self) -> Self {
        Self([
            self.0[0] | o.0[0],
            self.0[1] | o.0[1],
            self.0[2] | o.0[2],
            self.0[3] | o.0[3],
        ])
    }

    fn disjoint(&self, o: &Self) -> bool {
        (0..4).all(|i| self.0[i] & o.0[i] == 0)
    }
}

/// What may come after a node: the bytes the rest of the pattern can start with. (Whether
/// the rest could also end the match without consuming anything never changes the answer:
/// see the module docs.)
#[derive(Clone, Copy, Debug)]
struct Follow {
    first: ByteSet,
}

#[derive(Debug)]
enum Node {
    Empty,
    Literal(Box<[u8]>),
    /// One byte of a class, `min..=max` times (`max` `None`: unbounded), taken greedily.
    Run {
        class: ByteSet,
        min: usize,
        max: Option<usize>,
    },
    Seq(Vec<Node>),
    /// Mutually exclusive branches, each with the bytes it can start with (every branch
    /// consumes, so one whose set lacks the next byte is skipped without a try).
    Alt(Vec<(ByteSet, Node)>),
    /// A part that consumes at least one byte, `min..=max` times, greedily.
    Repeat {
        sub: Box<Node>,
        first: ByteSet,
        min: usize,
        max: Option<usize>,
        /// Whether `sub` records a group (its slots are restored when an attempt fails).
        groups: bool,
    },
    /// A recorded group (index into [`NAMES`]).
    Group(usize, Box<Node>),
    End,
}

/// Facts about a node, for the conditions above.
#[derive(Clone, Copy, Debug)]
struct Info {
    /// Bytes a non-empty match can start with.
    first: ByteSet,
    /// It can match the empty string away from the end of the line.
    nullable: bool,
    /// Every match consumes at least one byte.
    consumes: bool,
    /// It records a group.
    groups: bool,
}

/// A pattern compiled to a plan (see the module docs).
#[derive(Debug)]
pub struct Plan {
    /// The tree of nodes laid out as a program ([`Op`]).
    prog: Box<[Op]>,
    /// The pattern starts with `^`: it matches only at the start of the haystack.
    start_anchored: bool,
    /// The part after the planned head, when the pattern as a whole has no plan: it
    /// records no group, so only whether it matches (anchored where the head ends) matters,
    /// and an automaton answers that.
    rest: Option<Rest>,
    /// Whether it records a group at all (else the slots need no bookkeeping).
    groups: bool,
    /// Whether a part that may be given up records a group (its frame saves the slots).
    saves: bool,
}

/// The unplanned part of a pattern.
#[derive(Debug)]
enum Rest {
    /// `.*LITERAL$`: the haystack ends with the literal, and no newline comes before it
    /// (`.` takes any byte but a newline). Checked directly: this is how lines such as
    /// sshd's `... [preauth]` end, and an automaton search costs many times more.
    Suffix(Box<[u8]>),
    Regex(meta::Regex),
}

impl Rest {
    fn new(items: &[Hir]) -> Option<Self> {
        if let Some(lit) = any_then_literal_at_end(items) {
            return Some(Self::Suffix(lit));
        }
        let regex = meta::Regex::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(meta::Config::new().utf8_empty(false))
            .build_from_hir(&Hir::concat(items.to_vec()))
            .ok()?;
        Some(Self::Regex(regex))
    }

    /// The end of its match from `at` (anchored).
    fn run(&self, hay: &[u8], at: usize) -> Option<usize> {
        match self {
            Self::Suffix(lit) => {
                let start = hay.len().checked_sub(lit.len()).filter(|&s| s >= at)?;
                (bytes_eq(&hay[start..], lit) && memchr::memchr(b'\n', &hay[at..start]).is_none())
                    .then_some(hay.len())
            }
            Self::Regex(regex) => {
                let input = Input::new(hay).range(at..).anchored(Anchored::Yes);
                regex.search(&input).map(|m| m.end())
            }
        }
    }
}

/// The literal of `items` when they are `.*`, a literal and `$` (in the byte-oriented
/// syntax plans are built from: `.` is any byte but a newline).
fn any_then_literal_at_end(items: &[Hir]) -> Option<Box<[u8]>> {
    let [any, lit, end] = items else {
        return None;
    };
    let HirKind::Repetition(rep) = any.kind() else {
        return None;
    };
    let mut all_but_newline = ByteSet([u64::MAX; 4]);
    all_but_newline.0[0] &= !(1u64 << b'\n');
    let any_byte = rep.min == 0
        && rep.max.is_none()
        && rep.greedy
        && single_byte(&rep.sub) == Some(all_but_newline);
    match (lit.kind(), end.kind()) {
        (HirKind::Literal(l), HirKind::Look(Look::End)) if any_byte && !l.0.is_empty() => {
            Some(l.0.clone())
        }
        _ => None,
    }
}

impl Plan {
    /// The plan of a pattern, if it has the shape described in the module docs, or if a
    /// head of it that records every group has that shape (the rest then runs on an
    /// automaton).
    pub fn new(hir: &Hir) -> Option<Self> {
        let (items, start_anchored) = leading_start(hir);
        let end = Follow {
            first: ByteSet::default(),
        };
        if let Some((root, info)) = build_seq(items, end) {
            return Some(Self {
                prog: compile(&root)?,
                start_anchored,
                rest: None,
                groups: info.groups,
                saves: saves(&root),
            });
        }
        // The longest head whose rest records no group and has only `$` for anchors.
        for k in (1..items.len()).rev() {
            let rest = &items[k..];
            if rest.iter().any(|h| !plain(h)) {
                break;
            }
            let follow = Follow {
                first: first_of(rest).0,
            };
            let Some((root, info)) = build_seq(&items[..k], follow) else {
                continue;
            };
            return Some(Self {
                prog: compile(&root)?,
                start_anchored,
                rest: Some(Rest::new(rest)?),
                groups: info.groups,
                saves: saves(&root),
            });
        }
        None
    }

    /// The plan of a prefix that each of `bodies` may follow (`prefix body` is a pattern),
    /// built as if followed by any of them: its one match is then the prefix part of the
    /// match of every `prefix body` (the choices it makes depend on the bytes, not on which
    /// body follows), so the prefix can be matched once and each body from where it ends.
    /// `None` unless the whole prefix has a plan.
    pub fn prefix(prefix: &Hir, bodies: &[Hir]) -> Option<Self> {
        let (items, start_anchored) = leading_start(prefix);
        let first = bodies
            .iter()
            .fold(ByteSet::default(), |f, b| f.union(first_one(b).0));
        let (root, info) = build_seq(items, Follow { first })?;
        Some(Self {
            prog: compile(&root)?,
            start_anchored,
            rest: None,
            groups: info.groups,
            saves: saves(&root),
        })
    }

    /// Whether part of the pattern runs on an automaton ("plan+dfa" in reports).
    pub fn has_rest(&self) -> bool {
        self.rest.is_some()
    }

    /// Matches the pattern at `start` (anchored): the end of the match and the groups.
    pub fn run(&self, hay: &[u8], start: usize) -> Option<(usize, Spans)> {
        if self.start_anchored && start != 0 {
            return None;
        }
        let mut slots: Slots = [NONE; 6];
        let mut end = if self.saves {
            exec::<MAX_FRAMES>(&self.prog, hay, start, &mut slots)?
        } else {
            exec::<0>(&self.prog, hay, start, &mut slots)?
        };
        if let Some(rest) = &self.rest {
            end = rest.run(hay, end)?;
        }
        if !self.groups {
            return Some((end, [None; 3]));
        }
        // Spelled out: `[0, 1, 2].map(..)` is a call per run here.
        let span = |k: usize| {
            let (s, e) = (slots[2 * k], slots[2 * k + 1]);
            (s != NONE && e != NONE).then_some((s, e))
        };
        Some((end, [span(0), span(1), span(2)]))
    }
}

/// The items of a pattern as a concatenation, without a leading `^` (and whether it had
/// one).
fn leading_start(hir: &Hir) -> (&[Hir], bool) {
    match hir.kind() {
        HirKind::Concat(items) => match items.first().map(Hir::kind) {
            Some(HirKind::Look(Look::Start)) => (&items[1..], true),
            _ => (items, false),
        },
        HirKind::Look(Look::Start) => (&[], true),
        _ => (std::slice::from_ref(hir), false),
    }
}

/// Records no group and has no anchor but `$`.
fn plain(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => true,
        HirKind::Look(l) => *l == Look::End,
        HirKind::Capture(c) => {
            c.name.as_deref().is_none_or(|n| !NAMES.contains(&n)) && plain(&c.sub)
        }
        HirKind::Repetition(r) => plain(&r.sub),
        HirKind::Concat(xs) | HirKind::Alternation(xs) => xs.iter().all(plain),
    }
}

/// The bytes a non-empty match of the concatenation `items` can start with, and whether
/// it can match the empty string away from the end (as [`Info`]; `$` consumes nothing
/// and cannot match there).
fn first_of(items: &[Hir]) -> (ByteSet, bool) {
    let mut first = ByteSet::default();
    for h in items {
        let (f, nullable) = first_one(h);
        first = first.union(f);
        if !nullable {
            return (first, false);
        }
    }
    (first, true)
}

fn first_one(hir: &Hir) -> (ByteSet, bool) {
    match hir.kind() {
        HirKind::Empty => (ByteSet::default(), true),
        HirKind::Literal(l) => {
            let mut s = ByteSet::default();
            match l.0.first() {
                Some(&b) => {
                    s.add(b);
                    (s, false)
                }
                None => (s, true),
            }
        }
        HirKind::Class(c) => (class_set(c).unwrap_or(ByteSet([u64::MAX; 4])), false),
        HirKind::Look(Look::End) => (ByteSet::default(), false),
        HirKind::Look(_) => (ByteSet::default(), true),
        HirKind::Capture(c) => first_one(&c.sub),
        HirKind::Repetition(r) => {
            let (f, n) = first_one(&r.sub);
            (f, n || r.min == 0)
        }
        HirKind::Concat(xs) => first_of(xs),
        HirKind::Alternation(xs) => xs.iter().fold((ByteSet::default(), false), |(f, n), x| {
            let (g, m) = first_one(x);
            (f.union(g), n || m)
        }),
    }
}

/// Most optional or repeated parts one inside another that a plan may have (each one
/// being tried keeps a frame).
const MAX_FRAMES: usize = 8;

/// One instruction of a plan's program: the tree of [`Node`]s laid out flat, so that
/// matching is one loop over instructions rather than a call per node. Only optional and
/// repeated parts can be given up once started; each keeps a frame while it is tried.
#[derive(Debug)]
enum Op {
    /// These bytes.
    Lit(Box<[u8]>),
    /// One byte of the class.
    One(ByteSet),
    /// The longest run of class bytes, at most `max` long, if at least `min` long.
    Run {
        class: ByteSet,
        min: usize,
        max: usize,
    },
    /// Records the position in a slot.
    Save(usize),
    /// The end of the haystack.
    End,
    /// An optional part that follows: tried when the next byte can start it (a frame keeps
    /// where to go on without it), else skipped to `skip`.
    Opt {
        first: ByteSet,
        skip: usize,
        /// Whether it records a group (the slots are restored if it fails).
        save: bool,
    },
    /// The optional part matched: its frame is dropped.
    OptDone,
    /// A part that follows, repeated `min..=max` times greedily; [`Op::Again`] ends it,
    /// `exit` comes after.
    Loop {
        first: ByteSet,
        min: usize,
        max: usize,
        exit: usize,
        save: bool,
    },
    /// One more repetition of the loop at this index matched.
    Again(usize),
    /// Alternatives, by the next byte: the branches whose set has it, in order. A literal
    /// branch is compared here (several may share a first byte; at most one matches); any
    /// other branch is the only one its first bytes allow, and is jumped to.
    Switch(Box<[(ByteSet, Branch)]>, usize),
    Jump(usize),
    Match,
}

#[derive(Debug)]
enum Branch {
    Lit(Box<[u8]>),
    At(usize),
}

/// An optional or repeated part being tried: where its current attempt started, how many
/// repetitions matched, and its instruction. (Small, as the stack of them is set up on
/// every run; the slots to restore are kept apart, only by programs that need them.)
#[derive(Clone, Copy)]
struct Frame {
    at: usize,
    n: u32,
    op: u32,
}

/// The program of a plan's tree, ending in [`Op::Match`]; `None` if parts are nested
/// deeper than [`MAX_FRAMES`].
fn compile(root: &Node) -> Option<Box<[Op]>> {
    let mut ops = Vec::new();
    emit(root, &mut ops, 0)?;
    ops.push(Op::Match);
    // A jump to a jump (the end of a branch that ends an enclosing branch) goes straight
    // to where the chain ends.
    let dest = |ops: &[Op], mut t: usize| {
        while let Op::Jump(u) = ops[t] {
            t = u;
        }
        t
    };
    for i in 0..ops.len() {
        match &ops[i] {
            Op::Jump(t) => ops[i] = Op::Jump(dest(&ops, *t)),
            Op::Switch(_, exit) => {
                let e = dest(&ops, *exit);
                if let Op::Switch(_, exit) = &mut ops[i] {
                    *exit = e;
                }
            }
            _ => {}
        }
    }
    Some(ops.into())
}

/// Whether an optional or repeated part in `node` records a group.
fn saves(node: &Node) -> bool {
    match node {
        Node::Repeat { groups, .. } => *groups,
        Node::Seq(items) => items.iter().any(saves),
        Node::Alt(branches) => branches.iter().any(|(_, n)| saves(n)),
        Node::Group(_, sub) => saves(sub),
        Node::Empty | Node::Literal(_) | Node::Run { .. } | Node::End => false,
    }
}

/// Appends the instructions of `node`, `depth` frames deep.
fn emit(node: &Node, ops: &mut Vec<Op>, depth: usize) -> Option<()> {
    match node {
        Node::Empty => {}
        Node::Literal(lit) => ops.push(Op::Lit(lit.clone())),
        &Node::Run { class, min, max } => ops.push(match (min, max) {
            (1, Some(1)) => Op::One(class),
            _ => Op::Run {
                class,
                min,
                max: max.unwrap_or(usize::MAX),
            },
        }),
        Node::Seq(items) => {
            for item in items {
                emit(item, ops, depth)?;
            }
        }
        Node::Alt(branches) => {
            let at = ops.len();
            ops.push(Op::Match);
            let mut targets = Vec::with_capacity(branches.len());
            let mut jumps = Vec::new();
            for (first, branch) in branches {
                if let Node::Literal(lit) = branch {
                    targets.push((*first, Branch::Lit(lit.clone())));
                    continue;
                }
                targets.push((*first, Branch::At(ops.len())));
                emit(branch, ops, depth)?;
                jumps.push(ops.len());
                ops.push(Op::Match);
            }
            let exit = ops.len();
            for j in jumps {
                ops[j] = Op::Jump(exit);
            }
            ops[at] = Op::Switch(targets.into(), exit);
        }
        Node::Repeat {
            sub,
            first,
            min,
            max,
            groups,
        } => {
            if depth >= MAX_FRAMES {
                return None;
            }
            let at = ops.len();
            ops.push(Op::Match);
            emit(sub, ops, depth + 1)?;
            ops[at] = if (*min, *max) == (0, Some(1)) {
                ops.push(Op::OptDone);
                Op::Opt {
                    first: *first,
                    skip: ops.len(),
                    save: *groups,
                }
            } else {
                ops.push(Op::Again(at));
                Op::Loop {
                    first: *first,
                    min: *min,
                    max: max.unwrap_or(usize::MAX),
                    exit: ops.len(),
                    save: *groups,
                }
            };
        }
        // The start is recorded on entry: if the group then fails, the frame that takes
        // the failure restores the slots (its part records this group), or nothing matches.
        Node::Group(k, sub) => {
            ops.push(Op::Save(2 * k));
            emit(sub, ops, depth)?;
            ops.push(Op::Save(2 * k + 1));
        }
        Node::End => ops.push(Op::End),
    }
    Some(())
}

/// Runs a program at `at`: the end of its match. A failing instruction gives the failure
/// to the innermost frame: an optional part is skipped, a loop stops after its last whole
/// repetition (if it has enough), else the failure goes on outward.
/// `SAVED` is [`MAX_FRAMES`] for a program where a part that may be given up records a
/// group (the slots are saved when it starts), else 0.
fn exec<const SAVED: usize>(ops: &[Op], hay: &[u8], at: usize, slots: &mut Slots) -> Option<usize> {
    let mut frames = [Frame { at: 0, n: 0, op: 0 }; MAX_FRAMES];
    let mut saved = [[NONE; 6]; SAVED];
    let mut depth = 0usize;
    let mut p = at;
    let mut pc = 0usize;
    loop {
        let ok = match &ops[pc] {
            Op::Lit(lit) => {
                pc += 1;
                let ok = literal_at(hay, p, lit);
                p += lit.len();
                ok
            }
            Op::One(class) => {
                pc += 1;
                let ok = hay.get(p).is_some_and(|&b| class.has(b));
                p += 1;
                ok
            }
            Op::Run { class, min, max } => {
                pc += 1;
                match run(class, *min, *max, hay, p) {
                    Some(q) => {
                        p = q;
                        true
                    }
                    None => false,
                }
            }
            Op::Save(k) => {
                slots[*k] = p;
                pc += 1;
                true
            }
            Op::Switch(branches, exit) => 'sw: {
                let Some(&b) = hay.get(p) else {
                    break 'sw false;
                };
                for (first, branch) in branches.iter() {
                    if !first.has(b) {
                        continue;
                    }
                    match branch {
                        Branch::At(target) => {
                            pc = *target;
                            break 'sw true;
                        }
                        Branch::Lit(lit) => {
                            if literal_at(hay, p, lit) {
                                p += lit.len();
                                pc = *exit;
                                break 'sw true;
                            }
                        }
                    }
                }
                false
            }
            Op::Jump(target) => {
                pc = *target;
                true
            }
            Op::Opt { first, skip, save } => {
                if hay.get(p).is_some_and(|&b| first.has(b)) {
                    frames[depth] = Frame {
                        at: p,
                        n: 0,
                        op: op_index(pc),
                    };
                    if *save {
                        saved[depth] = *slots;
                    }
                    depth += 1;
                    pc += 1;
                } else {
                    pc = *skip;
                }
                true
            }
            Op::OptDone => {
                depth -= 1;
                pc += 1;
                true
            }
            // Entering a loop, or one more repetition of it: then the next one, or out.
            Op::Loop { .. } | Op::Again(_) => {
                let l = if let &Op::Again(l) = &ops[pc] {
                    frames[depth - 1].n = frames[depth - 1].n.saturating_add(1);
                    l
                } else {
                    frames[depth] = Frame {
                        at: p,
                        n: 0,
                        op: op_index(pc),
                    };
                    depth += 1;
                    pc
                };
                let (f, s) = (&mut frames, &mut saved);
                repeat(ops, l, f, s, &mut depth, hay, p, slots, &mut pc)
            }
            Op::End => {
                pc += 1;
                p == hay.len()
            }
            Op::Match => return Some(p),
        };
        if ok {
            continue;
        }
        loop {
            depth = depth.checked_sub(1)?;
            let f = &frames[depth];
            match ops[f.op as usize] {
                Op::Opt { skip, save, .. } => {
                    p = f.at;
                    if save {
                        *slots = saved[depth];
                    }
                    pc = skip;
                    break;
                }
                Op::Loop {
                    min, exit, save, ..
                } if f.n as usize >= min => {
                    p = f.at;
                    if save {
                        *slots = saved[depth];
                    }
                    pc = exit;
                    break;
                }
                _ => {}
            }
        }
    }
}

/// Starts the next repetition of the loop at `l` (its frame `f` on top), or leaves it:
/// whether that succeeds.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn repeat<const SAVED: usize>(
    ops: &[Op],
    l: usize,
    frames: &mut [Frame; MAX_FRAMES],
    saved: &mut [Slots; SAVED],
    depth: &mut usize,
    hay: &[u8],
    p: usize,
    slots: &Slots,
    pc: &mut usize,
) -> bool {
    let Op::Loop {
        first,
        min,
        max,
        exit,
        save,
    } = &ops[l]
    else {
        return false;
    };
    let top = *depth - 1;
    let f = &mut frames[top];
    let n = f.n as usize;
    if n < *max && hay.get(p).is_some_and(|&b| first.has(b)) {
        f.at = p;
        if *save {
            saved[top] = *slots;
        }
        *pc = l + 1;
        true
    } else {
        *depth = top;
        *pc = *exit;
        n >= *min
    }
}

/// An instruction's index as kept in a frame (programs are far shorter than `u32::MAX`).
fn op_index(pc: usize) -> u32 {
    u32::try_from(pc).unwrap_or(u32::MAX)
}

/// Whether `lit` occurs in `hay` at `at`.
#[inline]
fn literal_at(hay: &[u8], at: usize, lit: &[u8]) -> bool {
    hay.get(at..at + lit.len())
        .is_some_and(|h| bytes_eq(h, lit))
}

/// `a == b` for the short strings of patterns and log lines, compared eight bytes at a time
/// inline (a call to `memcmp` costs more than the comparison at these lengths).
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_ne_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
    if !(&mut x).zip(&mut y).all(|(c, d)| word(c) == word(d)) {
        return false;
    }
    x.remainder().iter().zip(y.remainder()).all(|(c, d)| c == d)
}

/// The longest run of `class` bytes at `at` (at most `max`), if at least `min` long.
#[inline]
fn run(class: &ByteSet, min: usize, max: usize, hay: &[u8], at: usize) -> Option<usize> {
    let limit = hay.len().min(at.saturating_add(max));
    let part = hay.get(at..limit)?;
    let n = part
        .iter()
        .position(|&b| !class.has(b))
        .unwrap_or(part.len());
    (n >= min).then_some(at + n)
}

/// Builds a concatenation right to left, so each item knows what follows it.
fn build_seq(items: &[Hir], follow: Follow) -> Option<(Node, Info)> {
    let mut nodes = Vec::with_capacity(items.len());
    let mut f = follow;
    let mut info = Info {
        first: ByteSet::default(),
        nullable: true,
        consumes: false,
        groups: false,
    };
    for item in items.iter().rev() {
        let (node, i) = build(item, f)?;
        nodes.push(node);
        f = Follow {
            first: if i.nullable {
                i.first.union(f.first)
            } else {
                i.first
            },
        };
        info = Info {
            first: if i.nullable {
                i.first.union(info.first)
            } else {
                i.first
            },
            nullable: i.nullable && info.nullable,
            consumes: i.consumes || info.consumes,
            groups: i.groups || info.groups,
        };
    }
    nodes.reverse();
    let node = match nodes.len() {
        0 => Node::Empty,
        1 => nodes.pop()?,
        _ => Node::Seq(nodes),
    };
    Some((node, info))
}

fn class_set(class: &Class) -> Option<ByteSet> {
    let mut set = ByteSet::default();
    match class {
        Class::Bytes(c) => {
            for r in c.ranges() {
                set.add_range(r.start(), r.end());
            }
        }
        Class::Unicode(c) => {
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                if hi > 0x7f {
                    return None;
                }
                set.add_range(u8::try_from(lo).ok()?, u8::try_from(hi).ok()?);
            }
        }
    }
    Some(set)
}

/// A single-byte node's class, if `hir` is one byte of a class (or a one-byte literal).
fn single_byte(hir: &Hir) -> Option<ByteSet> {
    match hir.kind() {
        HirKind::Class(c) => class_set(c),
        HirKind::Literal(l) if l.0.len() == 1 => {
            let mut s = ByteSet::default();
            s.add(l.0[0]);
            Some(s)
        }
        _ => None,
    }
}

fn build(hir: &Hir, follow: Follow) -> Option<(Node, Info)> {
    match hir.kind() {
        HirKind::Empty => Some((
            Node::Empty,
            Info {
                first: ByteSet::default(),
                nullable: true,
                consumes: false,
                groups: false,
            },
        )),
        HirKind::Literal(lit) => {
            let bytes: &[u8] = &lit.0;
            let mut first = ByteSet::default();
            let b0 = *bytes.first()?;
            first.add(b0);
            Some((
                Node::Literal(bytes.into()),
                Info {
                    first,
                    nullable: false,
                    consumes: true,
                    groups: false,
                },
            ))
        }
        HirKind::Class(c) => {
            let set = class_set(c)?;
            Some((
                Node::Run {
                    class: set,
                    min: 1,
                    max: Some(1),
                },
                Info {
                    first: set,
                    nullable: false,
                    consumes: true,
                    groups: false,
                },
            ))
        }
        HirKind::Look(Look::End) => Some((
            Node::End,
            Info {
                first: ByteSet::default(),
                nullable: false,
                consumes: false,
                groups: false,
            },
        )),
        HirKind::Look(_) => None,
        HirKind::Capture(cap) => {
            let (node, info) = build(&cap.sub, follow)?;
            match cap
                .name
                .as_deref()
                .and_then(|n| NAMES.iter().position(|&x| x == n))
            {
                Some(k) => Some((
                    Node::Group(k, Box::new(node)),
                    Info {
                        groups: true,
                        ..info
                    },
                )),
                None => Some((node, info)),
            }
        }
        HirKind::Concat(items) => build_seq(items, follow),
        HirKind::Alternation(branches) => {
            let mut nodes = Vec::with_capacity(branches.len());
            let mut infos = Vec::with_capacity(branches.len());
            for b in branches {
                let (n, i) = build(b, follow)?;
                if !i.consumes {
                    return None;
                }
                nodes.push(n);
                infos.push(i);
            }
            let literal = |n: &Node| match n {
                Node::Literal(l) => Some(l.clone()),
                _ => None,
            };
            for i in 0..nodes.len() {
                for j in i + 1..nodes.len() {
                    let exclusive = infos[i].first.disjoint(&infos[j].first)
                        || match (literal(&nodes[i]), literal(&nodes[j])) {
                            (Some(a), Some(b)) => !a.starts_with(&b) && !b.starts_with(&a),
                            _ => false,
                        };
                    if !exclusive {
                        return None;
                    }
                }
            }
            let info = infos.iter().fold(
                Info {
                    first: ByteSet::default(),
                    nullable: false,
                    consumes: true,
                    groups: false,
                },
                |acc, i| Info {
                    first: acc.first.union(i.first),
                    nullable: false,
                    consumes: true,
                    groups: acc.groups || i.groups,
                },
            );
            let branches = infos.iter().map(|i| i.first).zip(nodes).collect();
            Some((Node::Alt(branches), info))
        }
        HirKind::Repetition(rep) => {
            if !rep.greedy {
                return None;
            }
            let min = usize::try_from(rep.min).ok()?;
            let max = match rep.max {
                Some(m) => Some(usize::try_from(m).ok()?),
                None => None,
            };
            if max == Some(0) {
                return None;
            }
            if let Some(class) = single_byte(&rep.sub) {
                if !class.disjoint(&follow.first) && max != Some(min) {
                    return None;
                }
                return Some((
                    Node::Run { class, min, max },
                    Info {
                        first: class,
                        nullable: min == 0,
                        consumes: min > 0,
                        groups: false,
                    },
                ));
            }
            // After one iteration comes another (unless it is the only one) or the rest.
            let (_, probe) = build(&rep.sub, follow)?;
            if !probe.consumes || !probe.first.disjoint(&follow.first) {
                return None;
            }
            let inner = if max == Some(1) {
                follow
            } else {
                Follow {
                    first: probe.first.union(follow.first),
                }
            };
            let (sub, info) = build(&rep.sub, inner)?;
            if !info.consumes || !info.first.disjoint(&follow.first) {
                return None;
            }
            Some((
                Node::Repeat {
                    sub: Box::new(sub),
                    first: info.first,
                    min,
                    max,
                    groups: info.groups,
                },
                Info {
                    first: info.first,
                    nullable: min == 0,
                    consumes: min > 0,
                    groups: info.groups,
                },
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hir(p: &str) -> Hir {
        regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(p)
            .unwrap()
    }

    #[test]
    fn deterministic_log_patterns_get_a_plan() {
        for p in [
            r"^\S+ sshd\[\d+\]: Failed password for (?P<user>\S+) from \[?(?P<host>[0-9A-Fa-f:.]+)\]? port \d+(?: ssh2)?$",
            r"^(?:-session|-auth)?x",
            r"^(?:\[(?:[^\]\\]|\\.)*\])+ ",
        ] {
            assert!(Plan::new(&hir(p)).is_some(), "{p}");
        }
    }

    #[test]
    fn ambiguous_patterns_get_none() {
        for p in [
            r"^a(?P<user>.*) from x$",
            r"^\d*5",
            r"^(?:ab|a)c",
            r"^(?:a|)b",
            r"^x(?: y)? z",
            r"^a(?: port \d+)?(?: \[preauth\])?$",
            r"^a*?b",
            r"^\bfoo",
        ] {
            assert!(Plan::new(&hir(p)).is_none_or(|p| p.has_rest()), "{p}");
        }
        // The groups are in the part one byte cannot decide: no plan at all.
        assert!(Plan::new(&hir(r"^a (?P<user>.*) from x$")).is_none());
        // A head with every group, and a rest on an automaton.
        let p = Plan::new(&hir(r"^(?P<host>[0-9.]+) \S+ [^ ]*(?:abc|x)[^ ]* 404")).unwrap();
        assert!(p.has_rest());
        assert_eq!(
            p.run(b"192.0.2.1 - /xabcy 404", 0),
            Some((22, [Some((0, 9)), None, None]))
        );
        assert_eq!(p.run(b"192.0.2.1 - /y 404", 0), None);
    }

    #[test]
    fn a_prefix_plan_needs_one_byte_to_tell_it_from_every_part_after_it() {
        let prefix = hir(r"^(?P<conn>\S+ d\[\d+\]:) (?:kernel: )?");
        let parts = [hir(r"Failed for (?P<host>\S+)$"), hir(r"Invalid user x")];
        let plan = Plan::prefix(&prefix, &parts).unwrap();
        let hay = b"h d[12]: kernel: Failed for 192.0.2.1";
        assert_eq!(plan.run(hay, 0), Some((17, [None, None, Some((0, 8))])));
        assert_eq!(
            plan.run(b"h d[12]: Invalid user x", 0).map(|r| r.0),
            Some(9)
        );
        assert_eq!(plan.run(b"h e[12]: Invalid user x", 0), None);
        // A part that may start with the optional part's first byte: one byte cannot tell
        // where the prefix ends.
        let parts = [hir(r"Failed"), hir(r"kex_exchange")];
        assert!(Plan::prefix(&prefix, &parts).is_none());
    }

    proptest::proptest! {
        /// The inline comparison is `==`, at every length around the 8-byte words.
        #[test]
        fn bytes_eq_is_slice_equality(
            a in proptest::collection::vec(0u8..4, 0..40),
            flip in proptest::option::of(0usize..40),
            extra in 0usize..2,
        ) {
            let mut b = a.clone();
            if let Some(i) = flip.filter(|&i| i < b.len()) {
                b[i] ^= 1;
            }
            b.extend(std::iter::repeat_n(0u8, extra));
            proptest::prop_assert_eq!(bytes_eq(&a, &b), a == b);
            proptest::prop_assert!(bytes_eq(&a, &a));
        }
    }

    /// The end and the host/user/conn spans of the regex crate's anchored leftmost-first
    /// match of `p` at the start of `hay`.
    fn regex_match(p: &str, hay: &[u8]) -> Option<(usize, Spans)> {
        let re = meta::Regex::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(meta::Config::new().utf8_empty(false))
            .build(p)
            .unwrap();
        let mut caps = re.create_captures();
        re.search_captures(&Input::new(hay).anchored(Anchored::Yes), &mut caps);
        let m = caps.get_match()?;
        let span = |n: &str| caps.get_group_by_name(n).map(|s| (s.start, s.end));
        Some((m.end(), [span("host"), span("user"), span("conn")]))
    }

    /// The program's ways of giving a part up (an optional part that fails half way and
    /// restores its groups, a loop that stops after its last whole repetition or has too
    /// few, alternatives by first byte and literal branches sharing one, a `.*literal$`
    /// rest) agree with the regex crate on every line.
    #[test]
    fn programs_match_like_the_regex() {
        let cases: &[(&str, &[&str])] = &[
            (
                r"^(?P<host>\d+)(?:-(?P<user>\w+) x)?",
                &["12-bob x", "12-bob y", "12", "12-", "12-bob"],
            ),
            (
                r"^(?:\[(?P<conn>\d+)\])+",
                &["[1][22]", "[1][2x]", "[1]", "[", "x"],
            ),
            (
                r"^(?:\[(?P<conn>\d+)\])+ (?P<user>\S+)$",
                &[
                    "[1][22] u",
                    "[1][2x] u",
                    "[1] u",
                    "[1] u v",
                    "u",
                    "[1][2] ",
                    "[12]",
                ],
            ),
            (
                r"^(?:ab;){2,3}(?:c|d)",
                &[
                    "ab;ab;c",
                    "ab;c",
                    "ab;ab;ab;d",
                    "ab;ab;ab;ab;c",
                    "ab;ab;x",
                    "ab;a",
                ],
            ),
            (
                r"^(?:-session|-auth|x(?P<user>\d+))?\[(?P<conn>\d+)\]",
                &[
                    "-session[1]",
                    "-auth[2]",
                    "-sess[3]",
                    "x7[4]",
                    "x[5]",
                    "[6]",
                ],
            ),
            (
                r"^(?P<host>[0-9.]+) port \d+: .*\[preauth\]$",
                &[
                    "192.0.2.1 port 22: bye [preauth]",
                    "192.0.2.1 port 22: [preauth]",
                    "192.0.2.1 port 22: bye [preauth] x",
                    "192.0.2.1 port 22: a\nb [preauth]",
                    "192.0.2.1 port 22:[preauth]",
                    "192.0.2.1 port 22: preauth]",
                ],
            ),
        ];
        for (p, hays) in cases {
            let plan = Plan::new(&hir(p)).unwrap_or_else(|| panic!("no plan for {p}"));
            for h in *hays {
                let h = h.replace("\\n", "\n");
                assert_eq!(
                    plan.run(h.as_bytes(), 0),
                    regex_match(p, h.as_bytes()),
                    "{p} on {h:?}"
                );
            }
        }
        let suffix = Plan::new(&hir(r"^(?P<host>[0-9.]+) .*\[preauth\]$")).unwrap();
        assert!(matches!(suffix.rest, Some(Rest::Suffix(_))));
    }

    /// Parts nested up to the frame stack's depth get a plan that matches like the regex;
    /// one level deeper, none (the pattern then runs on the regex crate's engines).
    #[test]
    fn nesting_is_bounded_by_the_frame_stack() {
        let nested = |depth: usize| {
            let letters: Vec<char> = ('a'..='z').take(depth).collect();
            // Two bytes a level, so that no level is a one-byte class run.
            let open: String = letters.iter().map(|c| format!("(?:{c}{c}")).collect();
            format!("^(?P<user>{open}{})$", ")?".repeat(depth))
        };
        let p = nested(MAX_FRAMES);
        let plan = Plan::new(&hir(&p)).expect("a plan at the maximum depth");
        for h in [
            "aabbccddeeffgghh",
            "aabbc",
            "",
            "aabx",
            "aabbccddeeffgghhii",
            "a",
        ] {
            assert_eq!(
                plan.run(h.as_bytes(), 0),
                regex_match(&p, h.as_bytes()),
                "{h}"
            );
        }
        assert!(Plan::new(&hir(&nested(MAX_FRAMES + 1))).is_none());
    }

    #[test]
    fn groups_and_ends_match_the_regex() {
        let plan = Plan::new(&hir(
            r"^(?P<user>\S+) from (?P<host>[0-9.]+)(?: port \d+(?: (?P<conn>x+))?)?$",
        ))
        .unwrap();
        let hay = b"root from 192.0.2.1 port 22 xx";
        let (end, spans) = plan.run(hay, 0).unwrap();
        assert_eq!(end, hay.len());
        assert_eq!(spans, [Some((10, 19)), Some((0, 4)), Some((28, 30))]);
        assert!(plan.run(b"root from 192.0.2.1 port x", 0).is_none());
        assert!(plan.run(b"root from 192.0.2.1 port 2", 0).is_some());
    }
}
