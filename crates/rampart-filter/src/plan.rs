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
    /// Literals and runs one after the other (the bulk of most patterns), matched in one
    /// loop that only has to tell the two apart.
    Chain(Vec<Atom>),
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

/// An item of a [`Node::Chain`].
#[derive(Debug)]
enum Atom {
    Literal(Box<[u8]>),
    Run {
        class: ByteSet,
        min: usize,
        max: Option<usize>,
    },
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
    root: Node,
    /// The pattern starts with `^`: it matches only at the start of the haystack.
    start_anchored: bool,
    /// The part after the planned head, when the pattern as a whole has no plan: it
    /// records no group, so only whether it matches (anchored where the head ends) matters,
    /// and an automaton answers that.
    rest: Option<Rest>,
    /// Whether it records a group at all (else the slots need no bookkeeping).
    groups: bool,
}

/// The unplanned part of a pattern.
#[derive(Debug)]
struct Rest {
    regex: meta::Regex,
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
                root,
                start_anchored,
                rest: None,
                groups: info.groups,
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
            let regex = meta::Regex::builder()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .configure(meta::Config::new().utf8_empty(false))
                .build_from_hir(&Hir::concat(rest.to_vec()))
                .ok()?;
            return Some(Self {
                root,
                start_anchored,
                rest: Some(Rest { regex }),
                groups: info.groups,
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
            root,
            start_anchored,
            rest: None,
            groups: info.groups,
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
        let mut end = step(&self.root, hay, start, &mut slots)?;
        if let Some(rest) = &self.rest {
            let input = Input::new(hay).range(end..).anchored(Anchored::Yes);
            end = rest.regex.search(&input)?.end();
        }
        if !self.groups {
            return Some((end, [None; 3]));
        }
        let spans = [0, 1, 2].map(|k| {
            let (s, e) = (slots[2 * k], slots[2 * k + 1]);
            (s != NONE && e != NONE).then_some((s, e))
        });
        Some((end, spans))
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

/// Matches `node` at `at`: its end. Sequences are tested first (most nodes reached here
/// are one); [`item`] handles every kind, but going to it directly cost more (cachegrind,
/// filter test sshd: 2.13 vs 2.11 G instructions).
fn step(node: &Node, hay: &[u8], at: usize, slots: &mut Slots) -> Option<usize> {
    match node {
        Node::Seq(items) => seq(items, hay, at, slots),
        _ => item(node, hay, at, slots),
    }
}

/// The items of a sequence one after the other. Tests in the order of how common the
/// kinds are (literals and runs first) rather than one jump on the kind: a chain of
/// predictable branches costs less than an indirect jump whose target changes with
/// every item.
fn seq(items: &[Node], hay: &[u8], at: usize, slots: &mut Slots) -> Option<usize> {
    let mut p = at;
    for node in items {
        p = item(node, hay, p, slots)?;
    }
    Some(p)
}

#[inline(always)]
fn item(node: &Node, hay: &[u8], at: usize, slots: &mut Slots) -> Option<usize> {
    if let Node::Chain(atoms) = node {
        return chain(atoms, hay, at);
    }
    if let Node::Literal(lit) = node {
        return literal_at(hay, at, lit).then_some(at + lit.len());
    }
    if let Node::Run { class, min, max } = node {
        return run(class, *min, *max, hay, at);
    }
    if let Node::Repeat {
        sub,
        first,
        min,
        max,
        groups,
    } = node
    {
        // An optional or repeated part that cannot start here is skipped without a call.
        if *min == 0 && hay.get(at).is_none_or(|&b| !first.has(b)) {
            return Some(at);
        }
        return repeat(sub, first, *min, *max, *groups, hay, at, slots);
    }
    if let Node::Alt(branches) = node {
        return alt(branches, hay, at, slots);
    }
    if let Node::Group(k, sub) = node {
        let end = step(sub, hay, at, slots)?;
        slots[2 * k] = at;
        slots[2 * k + 1] = end;
        return Some(end);
    }
    match node {
        Node::Seq(items) => seq(items, hay, at, slots),
        Node::End => (at == hay.len()).then_some(at),
        _ => Some(at),
    }
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
fn run(class: &ByteSet, min: usize, max: Option<usize>, hay: &[u8], at: usize) -> Option<usize> {
    let limit = match max {
        Some(m) => hay.len().min(at.saturating_add(m)),
        None => hay.len(),
    };
    let part = hay.get(at..limit)?;
    let n = part
        .iter()
        .position(|&b| !class.has(b))
        .unwrap_or(part.len());
    (n >= min).then_some(at + n)
}

// Kept out of `step` so that its frame (the saved slots) is paid only where needed.
#[inline(never)]
fn alt(branches: &[(ByteSet, Node)], hay: &[u8], at: usize, slots: &mut Slots) -> Option<usize> {
    let &b = hay.get(at)?;
    let saved = *slots;
    for (first, node) in branches {
        if !first.has(b) {
            continue;
        }
        if let Some(p) = step(node, hay, at, slots) {
            return Some(p);
        }
        *slots = saved;
    }
    None
}

#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn repeat(
    sub: &Node,
    first: &ByteSet,
    min: usize,
    max: Option<usize>,
    groups: bool,
    hay: &[u8],
    at: usize,
    slots: &mut Slots,
) -> Option<usize> {
    let mut p = at;
    let mut n = 0usize;
    while max.is_none_or(|m| n < m) && p < hay.len() && first.has(hay[p]) {
        let saved = *slots;
        match step(sub, hay, p, slots) {
            Some(q) => {
                p = q;
                n += 1;
            }
            None => {
                if groups {
                    *slots = saved;
                }
                break;
            }
        }
    }
    (n >= min).then_some(p)
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
        _ => chained(nodes),
    };
    Some((node, info))
}

/// A sequence with its consecutive literals and runs gathered into chains.
fn chained(nodes: Vec<Node>) -> Node {
    let mut out = Vec::with_capacity(nodes.len());
    let mut atoms = Vec::new();
    for node in nodes {
        match node {
            Node::Literal(l) => atoms.push(Atom::Literal(l)),
            Node::Run { class, min, max } => atoms.push(Atom::Run { class, min, max }),
            other => {
                if !atoms.is_empty() {
                    out.push(Node::Chain(std::mem::take(&mut atoms)));
                }
                out.push(other);
            }
        }
    }
    if !atoms.is_empty() {
        out.push(Node::Chain(atoms));
    }
    match out.len() {
        1 => out.pop().unwrap_or(Node::Empty),
        _ => Node::Seq(out),
    }
}

/// Matches a chain at `at`: its end.
#[inline]
fn chain(atoms: &[Atom], hay: &[u8], at: usize) -> Option<usize> {
    let mut p = at;
    for atom in atoms {
        p = match atom {
            Atom::Literal(lit) => {
                if !literal_at(hay, p, lit) {
                    return None;
                }
                p + lit.len()
            }
            Atom::Run { class, min, max } => run(class, *min, *max, hay, p)?,
        };
    }
    Some(p)
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
