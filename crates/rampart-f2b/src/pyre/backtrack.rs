//! A backtracking matcher with Python `re` semantics, for the few fail2ban patterns that
//! need look-around, back-references or conditional groups. Leftmost search, alternatives
//! and quantifiers in Python's priority order, captures restored on backtracking (so a
//! conditional sees exactly what Python sees), and a step limit per search: a line that
//! would take more steps is reported as not matching and counted by the caller.

use super::parse::{fixed_width, Class, ClassItem, Node};

#[derive(Debug, Clone)]
enum Inst {
    Char(char),
    CharI(char),
    Any,
    AnyNl,
    Class(usize),
    Start,
    End,
    StartLine,
    EndLine,
    WordB,
    NotWordB,
    Split(usize, usize),
    Jmp(usize),
    Save(usize),
    Backref(usize, bool),
    /// Look-around: body starts at `body`, runs until its `Match`.
    Look {
        ahead: bool,
        negate: bool,
        body: usize,
        width: usize,
    },
    /// Continue if the group participated, else jump.
    Cond(usize, usize),
    /// Fail unless each string of `needs[i]` occurs in the rest of the text (a branch
    /// whose continuation requires them cannot match without them).
    Need(usize),
    /// Remember the position in a loop register.
    RepStart(usize),
    /// Fail if the loop iteration consumed nothing.
    RepCheck(usize),
    /// A greedy `x*` whose body matches exactly one character: takes the longest run,
    /// then continues at pc + 1, giving back one character at a time on backtracking
    /// (what `Split`, body, `Jmp` would do, in far fewer steps).
    Star(One),
    /// A lazy `x*?` whose body matches exactly one character: continues at pc + 1 at the
    /// first position where what follows can start, taking one more character at a time
    /// on backtracking (what `Split`, body, `Jmp` would do).
    LazyStar(One),
    /// The run of ASCII `Char`s from here on, `lits[i]`, compared in one go; continues
    /// after the run (the `Char`s stay in place as jump targets). Counts the steps the
    /// `Char`s would have taken.
    Lit(usize),
    /// A look-ahead whose body is only the ASCII string `lits[i]`: a prefix test
    /// instead of a nested run, with the steps that run would have taken.
    LookLit {
        negate: bool,
        lit: usize,
    },
    Match,
}

/// A single-character matcher (the body of [`Inst::Star`]).
#[derive(Debug, Clone, Copy)]
enum One {
    Char(char),
    CharI(char),
    Any,
    AnyNl,
    Class(usize),
    /// `(?:(?!L).)`: any character but a newline where the ASCII string `lits[i]`
    /// (non-empty) does not start.
    NotLit(usize),
}

/// The single-character matcher for `n`, if it is one.
fn one_of(n: &Node, classes: &mut Vec<Class>) -> Option<One> {
    Some(match n {
        Node::Literal { c, icase: false } => One::Char(*c),
        Node::Literal { c, icase: true } => One::CharI(fold(*c)),
        Node::Any { dotall: false } => One::Any,
        Node::Any { dotall: true } => One::AnyNl,
        Node::Class(c) => {
            classes.push(c.clone());
            One::Class(classes.len() - 1)
        }
        Node::Group { index: None, node } => one_of(node, classes)?,
        _ => return None,
    })
}

/// `L` for `(?!L).` (through non-capturing groups), with `L` a non-empty case-sensitive
/// ASCII string and `.` not matching a newline: the body of a loop that walks up to the
/// next `L`.
fn not_lit_of(n: &Node) -> Option<Vec<u8>> {
    match n {
        Node::Group { index: None, node } => not_lit_of(node),
        Node::Concat(v) => match v.as_slice() {
            [Node::Look {
                ahead: true,
                negate: true,
                node,
            }, Node::Any { dotall: false }] => {
                let mut lit = Vec::new();
                ascii_string(node, &mut lit)?;
                (!lit.is_empty()).then_some(lit)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Appends the case-sensitive ASCII string `n` spells (through non-capturing groups), if
/// it is one.
fn ascii_string(n: &Node, out: &mut Vec<u8>) -> Option<()> {
    match n {
        Node::Literal { c, icase: false } if c.is_ascii() => out.push(*c as u8),
        Node::Concat(v) => {
            for x in v {
                ascii_string(x, out)?;
            }
        }
        Node::Group { index: None, node } => ascii_string(node, out)?,
        _ => return None,
    }
    Some(())
}

/// A compiled backtracking program.
#[derive(Debug, Clone)]
pub struct Prog {
    insts: Vec<Inst>,
    classes: Vec<Class>,
    /// Per class, its answer for each ASCII character (bit `c` of the 128), so the
    /// common case needs no walk over the class items.
    ascii: Vec<[u64; 2]>,
    /// For the `Split` at pc `p`, `firsts[split_at[p]]`: what may come next on each of
    /// its two branches.
    split_at: Vec<u32>,
    firsts: Vec<(First, First)>,
    /// The strings each [`Inst::Need`] requires.
    needs: Vec<Vec<String>>,
    /// The ASCII strings of [`Inst::Lit`], [`Inst::LookLit`] and [`One::NotLit`].
    lits: Vec<Box<[u8]>>,
    slots: usize,
    regs: usize,
    anchored: bool,
}

/// The search stopped because it exceeded the step limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLimit;

/// Steps (instructions executed) one search may take before it gives up. A fused
/// instruction counts the instructions it stands for ([`Inst::Lit`], [`Inst::LookLit`]),
/// except the single-character loops ([`Inst::Star`], [`Inst::LazyStar`]): one step per
/// character taken, given back or added (the unfused loop takes 3 or more, 5 plus the
/// literal's compare for `(?:(?!L).)`), each a bounded amount of work (at most one
/// compare with `L`). A loop that can run long thus ends on the limit as before, after up
/// to that many times more characters.
pub const STEP_LIMIT: u64 = 2_000_000;

/// Upper bound on instructions after unrolling counted repetitions.
const MAX_INSTS: usize = 200_000;

struct Compiler {
    insts: Vec<Inst>,
    classes: Vec<Class>,
    regs: usize,
    needs: Vec<Vec<String>>,
    /// For the next alternation compiled: per branch, the strings it needs (set by the
    /// enclosing concatenation, which knows what follows).
    alt_needs: Option<Vec<Vec<String>>>,
    /// The strings of [`One::NotLit`] (the literal fusion adds its own after them).
    lits: Vec<Box<[u8]>>,
    /// Compile lazy single-character loops and `(?:(?!L).)` loops to [`Inst::Star`] and
    /// [`Inst::LazyStar`] (the tests compare against the program without them).
    loops: bool,
}

/// Groups that have participated once `n` has matched, whatever path it took.
fn groups_set(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Group { index, node } => {
            if let Some(i) = index {
                out.push(*i);
            }
            groups_set(node, out);
        }
        Node::Concat(v) => v.iter().for_each(|x| groups_set(x, out)),
        Node::Repeat { node, min, .. } if *min >= 1 => groups_set(node, out),
        _ => {}
    }
}

/// Runs of literal text (two characters or more, case-sensitive) that every match of
/// the sequence `items` contains, with each conditional on a group in `set` resolved to
/// its `yes` branch. Whether a resolved conditional added a run is recorded in `resolved`.
fn needed_runs(items: &[&Node], set: &[usize], out: &mut Vec<String>, resolved: &mut bool) {
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<String>| {
        if run.chars().count() >= 2 && !out.contains(run) {
            out.push(std::mem::take(run));
        }
        run.clear();
    };
    for x in items {
        match x {
            Node::Literal { c, icase: false } => run.push(*c),
            // Zero-width items: a run of literals goes on across them.
            x if x.is_assertion() => {}
            Node::Group { node, .. } => {
                flush(&mut run, out);
                needed_runs(&[node], set, out, resolved);
            }
            Node::Concat(v) => {
                flush(&mut run, out);
                let v: Vec<&Node> = v.iter().collect();
                needed_runs(&v, set, out, resolved);
            }
            Node::Repeat { node, min, .. } if *min >= 1 => {
                flush(&mut run, out);
                needed_runs(&[node], set, out, resolved);
            }
            Node::Cond { group, yes, .. } if set.contains(group) => {
                flush(&mut run, out);
                let before = out.len();
                needed_runs(&[yes], set, out, resolved);
                *resolved |= out.len() > before;
            }
            _ => flush(&mut run, out),
        }
    }
    flush(&mut run, out);
}

/// The alternation `n` is (through groups), if it is one.
fn alt_of(n: &Node) -> Option<&[Node]> {
    match n {
        Node::Alt(v) => Some(v),
        Node::Group { node, .. } => alt_of(node),
        _ => None,
    }
}

/// For an alternation followed by `rest`: per branch, the strings that branch and what
/// follows need once the conditionals on groups the branch sets are resolved (empty when
/// no resolved conditional adds one: then they are no sharper than the pattern's own).
fn branch_needs(branches: &[Node], rest: &[Node]) -> Vec<Vec<String>> {
    branches
        .iter()
        .map(|b| {
            let mut set = Vec::new();
            groups_set(b, &mut set);
            if set.is_empty() {
                return Vec::new();
            }
            let mut items = vec![b];
            items.extend(rest);
            let mut out = Vec::new();
            let mut resolved = false;
            needed_runs(&items, &set, &mut out, &mut resolved);
            if resolved {
                out
            } else {
                Vec::new()
            }
        })
        .collect()
}

fn nullable(n: &Node) -> bool {
    match n {
        Node::Literal { .. } | Node::Class(_) | Node::Any { .. } => false,
        Node::Group { node, .. } => nullable(node),
        Node::Concat(v) => v.iter().all(nullable),
        Node::Alt(v) => v.iter().any(nullable),
        Node::Repeat { node, min, .. } => *min == 0 || nullable(node),
        Node::Cond { yes, no, .. } => nullable(yes) || nullable(no),
        _ => true,
    }
}

impl Compiler {
    fn push(&mut self, i: Inst) -> Result<usize, String> {
        if self.insts.len() >= MAX_INSTS {
            return Err("pattern too large after expanding repetitions".into());
        }
        self.insts.push(i);
        Ok(self.insts.len() - 1)
    }

    fn patch(&mut self, at: usize, to: usize, second: bool) {
        match &mut self.insts[at] {
            Inst::Split(a, b) => {
                if second {
                    *b = to
                } else {
                    *a = to
                }
            }
            Inst::Jmp(a) | Inst::Cond(_, a) => *a = to,
            _ => {}
        }
    }

    fn node(&mut self, n: &Node) -> Result<(), String> {
        match n {
            Node::Empty => {}
            Node::Literal { c, icase } => {
                if *icase {
                    self.push(Inst::CharI(fold(*c)))?;
                } else {
                    self.push(Inst::Char(*c))?;
                }
            }
            Node::Class(c) => {
                self.classes.push(c.clone());
                self.push(Inst::Class(self.classes.len() - 1))?;
            }
            Node::Any { dotall } => {
                self.push(if *dotall { Inst::AnyNl } else { Inst::Any })?;
            }
            Node::Start { multiline } => {
                self.push(if *multiline {
                    Inst::StartLine
                } else {
                    Inst::Start
                })?;
            }
            Node::End { multiline } => {
                self.push(if *multiline { Inst::EndLine } else { Inst::End })?;
            }
            Node::StartText => {
                self.push(Inst::Start)?;
            }
            Node::EndText => {
                self.push(Inst::End)?;
            }
            Node::WordBoundary => {
                self.push(Inst::WordB)?;
            }
            Node::NotWordBoundary => {
                self.push(Inst::NotWordB)?;
            }
            Node::Group { index, node } => {
                if let Some(i) = index {
                    self.push(Inst::Save(2 * i))?;
                    self.node(node)?;
                    self.push(Inst::Save(2 * i + 1))?;
                } else {
                    self.node(node)?;
                }
            }
            Node::Concat(v) => {
                for (i, x) in v.iter().enumerate() {
                    let rest = &v[i + 1..];
                    if let Some(branches) = alt_of(x) {
                        if rest.iter().any(has_cond) {
                            self.alt_needs = Some(branch_needs(branches, rest));
                        }
                    }
                    self.node(x)?;
                    self.alt_needs = None;
                }
            }
            Node::Alt(v) => {
                let needs = self.alt_needs.take();
                let mut jumps = Vec::new();
                for (k, x) in v.iter().enumerate() {
                    if k + 1 < v.len() {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.patch(split, split + 1, false);
                        if let Some(n) = needs.as_ref().and_then(|n| n.get(k)) {
                            if !n.is_empty() {
                                self.needs.push(n.clone());
                                self.push(Inst::Need(self.needs.len() - 1))?;
                            }
                        }
                        self.node(x)?;
                        jumps.push(self.push(Inst::Jmp(0))?);
                        let next = self.insts.len();
                        self.patch(split, next, true);
                    } else {
                        self.node(x)?;
                    }
                }
                let end = self.insts.len();
                for j in jumps {
                    self.patch(j, end, false);
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => {
                for _ in 0..*min {
                    self.node(node)?;
                }
                let lit = if self.loops && max.is_none() {
                    not_lit_of(node)
                } else {
                    None
                };
                match max {
                    None if lit.is_some() => {
                        if let Some(lit) = lit {
                            self.lits.push(lit.into_boxed_slice());
                            let one = One::NotLit(self.lits.len() - 1);
                            self.push(if *greedy {
                                Inst::Star(one)
                            } else {
                                Inst::LazyStar(one)
                            })?;
                        }
                    }
                    None if (*greedy || self.loops) && one_of(node, &mut Vec::new()).is_some() => {
                        if let Some(one) = one_of(node, &mut self.classes) {
                            self.push(if *greedy {
                                Inst::Star(one)
                            } else {
                                Inst::LazyStar(one)
                            })?;
                        }
                    }
                    None => {
                        let check = nullable(node);
                        let reg = self.regs;
                        if check {
                            self.regs += 1;
                        }
                        let split = self.push(Inst::Split(0, 0))?;
                        let body = self.insts.len();
                        if check {
                            self.push(Inst::RepStart(reg))?;
                        }
                        self.node(node)?;
                        if check {
                            self.push(Inst::RepCheck(reg))?;
                        }
                        self.push(Inst::Jmp(split))?;
                        let exit = self.insts.len();
                        if *greedy {
                            self.insts[split] = Inst::Split(body, exit);
                        } else {
                            self.insts[split] = Inst::Split(exit, body);
                        }
                    }
                    Some(mx) => {
                        let mut splits = Vec::new();
                        for _ in *min..*mx {
                            let split = self.push(Inst::Split(0, 0))?;
                            splits.push(split);
                            self.node(node)?;
                        }
                        let exit = self.insts.len();
                        for s in splits {
                            self.insts[s] = if *greedy {
                                Inst::Split(s + 1, exit)
                            } else {
                                Inst::Split(exit, s + 1)
                            };
                        }
                    }
                }
            }
            Node::Backref { group, icase } => {
                self.push(Inst::Backref(*group, *icase))?;
            }
            Node::Look {
                ahead,
                negate,
                node,
            } => {
                let width = if *ahead {
                    0
                } else {
                    fixed_width(node).ok_or("look-behind requires fixed-width pattern")?
                };
                let at = self.push(Inst::Look {
                    ahead: *ahead,
                    negate: *negate,
                    body: 0,
                    width,
                })?;
                let jmp = self.push(Inst::Jmp(0))?;
                let body = self.insts.len();
                self.node(node)?;
                self.push(Inst::Match)?;
                let after = self.insts.len();
                self.patch(jmp, after, false);
                if let Inst::Look { body: b, .. } = &mut self.insts[at] {
                    *b = body;
                }
            }
            Node::Cond { group, yes, no } => {
                let c = self.push(Inst::Cond(*group, 0))?;
                self.node(yes)?;
                let j = self.push(Inst::Jmp(0))?;
                let no_at = self.insts.len();
                self.patch(c, no_at, false);
                self.node(no)?;
                let end = self.insts.len();
                self.patch(j, end, false);
            }
        }
        Ok(())
    }
}

/// Whether `n` contains a conditional group.
fn has_cond(n: &Node) -> bool {
    match n {
        Node::Cond { .. } => true,
        Node::Group { node, .. } | Node::Repeat { node, .. } | Node::Look { node, .. } => {
            has_cond(node)
        }
        Node::Concat(v) | Node::Alt(v) => v.iter().any(has_cond),
        _ => false,
    }
}

fn fold(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// Python's `\w` for `str` patterns: alphanumeric or underscore.
pub fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn class_has(cl: &Class, c: char) -> bool {
    let test = |c: char| {
        cl.items.iter().any(|it| match *it {
            ClassItem::Range(lo, hi) => lo <= c && c <= hi,
            ClassItem::Digit(n) => is_digit(c) != n,
            ClassItem::Word(n) => is_word(c) != n,
            ClassItem::Space(n) => is_space(c) != n,
        })
    };
    let hit = test(c)
        || (cl.icase && {
            let l = fold(c);
            let u = c.to_uppercase().next().unwrap_or(c);
            test(l) || test(u)
        });
    hit != cl.negated
}

impl Prog {
    /// Compiles a parsed pattern with `groups` capture groups.
    pub fn compile(node: &Node, groups: usize) -> Result<Self, String> {
        Self::compile_with(node, groups, true, true)
    }

    /// [`Prog::compile`]; `fuse`: with [`Inst::Lit`] and [`Inst::LookLit`]; `loops`: with
    /// lazy single-character loops and `(?:(?!L).)` loops as [`Inst::Star`] and
    /// [`Inst::LazyStar`] (the tests compare against the programs without them).
    fn compile_with(node: &Node, groups: usize, fuse: bool, loops: bool) -> Result<Self, String> {
        let mut c = Compiler {
            insts: Vec::new(),
            classes: Vec::new(),
            regs: 0,
            needs: Vec::new(),
            alt_needs: None,
            lits: Vec::new(),
            loops,
        };
        c.push(Inst::Save(0))?;
        c.node(node)?;
        c.push(Inst::Save(1))?;
        c.push(Inst::Match)?;
        let anchored = starts_anchored(node);
        let ascii: Vec<[u64; 2]> = c
            .classes
            .iter()
            .map(|cl| {
                let mut bits = [0u64; 2];
                for b in 0u8..128 {
                    if class_has(cl, char::from(b)) {
                        bits[usize::from(b >> 6)] |= 1 << (b & 63);
                    }
                }
                bits
            })
            .collect();
        let mut split_at = vec![u32::MAX; c.insts.len()];
        let mut firsts = Vec::new();
        for (pc, inst) in c.insts.iter().enumerate() {
            if let Inst::Split(a, b) = *inst {
                split_at[pc] = u32::try_from(firsts.len()).map_err(|e| e.to_string())?;
                firsts.push((first_of(&c.insts, &ascii, a), first_of(&c.insts, &ascii, b)));
            } else if let Inst::Star(_) | Inst::LazyStar(_) = inst {
                // (what may follow the loop, unused)
                split_at[pc] = u32::try_from(firsts.len()).map_err(|e| e.to_string())?;
                firsts.push((first_of(&c.insts, &ascii, pc + 1), First::ALL));
            }
        }
        let mut insts = c.insts;
        let mut lits = c.lits;
        if fuse {
            fuse_literals(&mut insts, &mut lits);
        }
        Ok(Prog {
            lits,
            split_at,
            firsts,
            ascii,
            insts,
            classes: c.classes,
            needs: c.needs,
            slots: 2 * (groups + 1),
            regs: c.regs,
            anchored,
        })
    }

    /// Searches `text[..end]` from `start`; fills `slots` (byte offsets, 2 per group).
    pub fn search(
        &self,
        text: &str,
        start: usize,
        end: usize,
        slots: &mut Vec<Option<usize>>,
    ) -> Result<bool, StepLimit> {
        self.search_counting(text, start, end, slots).0
    }

    /// [`Prog::search`], and the steps it took.
    fn search_counting(
        &self,
        text: &str,
        start: usize,
        end: usize,
        slots: &mut Vec<Option<usize>>,
    ) -> (Result<bool, StepLimit>, u64) {
        let text = &text[..end];
        let (mut stack, mut mslots, mut regs) =
            SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
        stack.clear();
        mslots.clear();
        mslots.resize(self.slots, None);
        regs.clear();
        regs.resize(self.regs, 0);
        let mut m = Machine {
            prog: self,
            text,
            steps: 0,
            slots: mslots,
            regs,
            stack,
        };
        let r = self.search_with(&mut m, start, slots);
        let steps = m.steps;
        let scratch = (
            std::mem::take(&mut m.stack),
            std::mem::take(&mut m.slots),
            std::mem::take(&mut m.regs),
        );
        SCRATCH.with(|c| *c.borrow_mut() = scratch);
        (r, steps)
    }

    fn search_with(
        &self,
        m: &mut Machine<'_>,
        start: usize,
        slots: &mut Vec<Option<usize>>,
    ) -> Result<bool, StepLimit> {
        let text = m.text;
        let mut pos = start;
        loop {
            m.slots.iter_mut().for_each(|s| *s = None);
            if m.run(0, pos, Mode::Top)?.is_some() {
                slots.clear();
                slots.extend_from_slice(&m.slots);
                return Ok(true);
            }
            if self.anchored || pos >= text.len() {
                return Ok(false);
            }
            pos += text[pos..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

/// What may come next where a branch starts: a bit per byte value, and whether the end of
/// the text may. A branch whose set lacks what comes next would fail before consuming
/// anything or changing any state that outlives it, so skipping it changes no result.
#[derive(Debug, Clone, Copy, Default)]
struct First {
    bytes: [u64; 4],
    end: bool,
}

impl First {
    const ALL: First = First {
        bytes: [u64::MAX; 4],
        end: true,
    };

    fn add(&mut self, b: u8) {
        self.bytes[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    /// Every byte that starts or continues a non-ASCII character.
    fn add_non_ascii(&mut self) {
        self.bytes[2] = u64::MAX;
        self.bytes[3] = u64::MAX;
    }

    #[inline]
    fn has(&self, next: Option<&u8>) -> bool {
        match next {
            Some(&b) => self.bytes[usize::from(b >> 6)] >> (b & 63) & 1 != 0,
            None => self.end,
        }
    }
}

/// Instructions a [`first_of`] walk may visit before it settles for "anything".
const FIRST_BUDGET: usize = 64;

/// The bytes a match attempt starting at `start` can consume first (conservative: any
/// assertion, look-around, back-reference or the match itself means "anything").
fn first_of(insts: &[Inst], ascii: &[[u64; 2]], start: usize) -> First {
    let mut out = First::default();
    let mut todo = vec![start];
    let mut seen: Vec<usize> = Vec::new();
    while let Some(pc) = todo.pop() {
        if seen.contains(&pc) {
            continue;
        }
        if seen.len() >= FIRST_BUDGET {
            return First::ALL;
        }
        seen.push(pc);
        match insts.get(pc) {
            Some(Inst::Char(c)) => {
                let mut buf = [0u8; 4];
                out.add(c.encode_utf8(&mut buf).as_bytes()[0]);
            }
            Some(Inst::CharI(c)) if c.is_ascii() => {
                // A non-ASCII character may fold to an ASCII one (U+212A to `k`).
                out.add(c.to_ascii_lowercase() as u8);
                out.add(c.to_ascii_uppercase() as u8);
                out.add_non_ascii();
            }
            Some(Inst::Any) => {
                let mut all = First::ALL;
                all.end = false;
                all.bytes[0] &= !(1 << b'\n');
                out.bytes
                    .iter_mut()
                    .zip(all.bytes)
                    .for_each(|(o, a)| *o |= a);
            }
            Some(Inst::AnyNl) => {
                out.bytes = [u64::MAX; 4];
            }
            Some(Inst::Class(i)) => {
                out.bytes[0] |= ascii[*i][0];
                out.bytes[1] |= ascii[*i][1];
                out.add_non_ascii();
            }
            Some(Inst::Star(one) | Inst::LazyStar(one)) => {
                // Zero or more of `one`, then what follows.
                let body = match *one {
                    One::Char(c) => Inst::Char(c),
                    One::CharI(c) => Inst::CharI(c),
                    // (what `.` takes: a superset)
                    One::Any | One::NotLit(_) => Inst::Any,
                    One::AnyNl => Inst::AnyNl,
                    One::Class(i) => Inst::Class(i),
                };
                let f = first_of(std::slice::from_ref(&body), ascii, 0);
                out.bytes.iter_mut().zip(f.bytes).for_each(|(o, a)| *o |= a);
                todo.push(pc + 1);
            }
            Some(Inst::Save(_) | Inst::RepStart(_) | Inst::Need(_)) => todo.push(pc + 1),
            Some(Inst::Jmp(a)) => todo.push(*a),
            Some(Inst::Split(a, b)) => {
                todo.push(*b);
                todo.push(*a);
            }
            Some(Inst::Cond(_, no)) => {
                todo.push(*no);
                todo.push(pc + 1);
            }
            _ => return First::ALL,
        }
    }
    out
}

/// The ASCII string spelt by the `Char`s from `pc` on (as long as they last).
fn ascii_run(insts: &[Inst], pc: usize) -> Vec<u8> {
    insts[pc..]
        .iter()
        .map_while(|i| match *i {
            Inst::Char(c) if c.is_ascii() => Some(c as u8),
            _ => None,
        })
        .collect()
}

/// Turns each run of two or more ASCII `Char`s into an [`Inst::Lit`] at every position
/// of the run but the last (so a jump into the middle finds the rest of the run), and
/// each look-ahead whose body is one ASCII string into an [`Inst::LookLit`]. Runs after
/// the first-byte sets are computed: they read the `Char`s, which stay where they were.
fn fuse_literals(insts: &mut [Inst], lits: &mut Vec<Box<[u8]>>) {
    for pc in 0..insts.len() {
        if let Inst::Look {
            ahead: true,
            negate,
            body,
            ..
        } = insts[pc]
        {
            let run = ascii_run(insts, body);
            if !run.is_empty() && matches!(insts.get(body + run.len()), Some(Inst::Match)) {
                lits.push(run.into_boxed_slice());
                insts[pc] = Inst::LookLit {
                    negate,
                    lit: lits.len() - 1,
                };
            }
        }
    }
    for pc in 0..insts.len() {
        let run = ascii_run(insts, pc);
        if run.len() >= 2 {
            lits.push(run.into_boxed_slice());
            insts[pc] = Inst::Lit(lits.len() - 1);
        }
    }
}

/// How many leading bytes `a` and `b` share.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn starts_anchored(n: &Node) -> bool {
    match n {
        Node::Start { multiline: false } | Node::StartText => true,
        Node::Concat(v) => v.first().is_some_and(starts_anchored),
        Node::Group { node, .. } => starts_anchored(node),
        Node::Alt(v) => !v.is_empty() && v.iter().all(starts_anchored),
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Top,
    Keep,
    Undo,
}

/// A search's reusable buffers: stack, slots, registers.
type Scratch = (Vec<Frame>, Vec<Option<usize>>, Vec<usize>);

thread_local! {
    /// The backtracking stack, slots and registers, reused between searches on this thread
    /// (each search clears and sizes them first).
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

enum Frame {
    Branch(usize, usize),
    /// Backtracking into an [`Inst::Star`] at `pc`: the loop began at `lo`; positions
    /// below `hi` are still to be tried (longest first).
    Star {
        pc: usize,
        lo: usize,
        hi: usize,
    },
    /// Backtracking into an [`Inst::LazyStar`] at `pc` that went on at `pos`: one more
    /// character, if the loop takes it.
    Lazy {
        pc: usize,
        pos: usize,
    },
    Slot(usize, Option<usize>),
    Reg(usize, usize),
}

struct Machine<'a> {
    prog: &'a Prog,
    text: &'a str,
    steps: u64,
    slots: Vec<Option<usize>>,
    regs: Vec<usize>,
    stack: Vec<Frame>,
}

impl Machine<'_> {
    #[inline]
    fn prev_char(&self, pos: usize) -> Option<char> {
        match pos.checked_sub(1).and_then(|p| self.text.as_bytes().get(p)) {
            Some(&b) if b < 0x80 => Some(b as char),
            Some(_) => self.text[..pos].chars().next_back(),
            None => None,
        }
    }
    #[inline]
    fn next_char(&self, pos: usize) -> Option<char> {
        match self.text.as_bytes().get(pos) {
            Some(&b) if b < 0x80 => Some(b as char),
            Some(_) => self.text[pos..].chars().next(),
            None => None,
        }
    }
    fn at_word_boundary(&self, pos: usize) -> bool {
        self.prev_char(pos).is_some_and(is_word) != self.next_char(pos).is_some_and(is_word)
    }

    /// The end of the longest run of `one` from `pos`, and how many characters it has
    /// (what calling [`Machine::one`] until it fails gives): ASCII bytes of a class or
    /// `.` in a tight loop, the general path from the first other byte on; a
    /// [`One::NotLit`] run in one tight loop over all bytes.
    #[inline]
    fn star_run(&self, one: One, pos: usize) -> (usize, u64) {
        let bytes = self.text.as_bytes();
        let mut hi = pos;
        match one {
            One::NotLit(i) => {
                // It stops only at an ASCII byte (a newline or the literal's first byte)
                // or at the end: a character boundary. It counts characters: the bytes
                // that do not continue one.
                let lit = &self.prog.lits[i];
                let first = lit.first().copied();
                let mut n = 0;
                while let Some(&b) = bytes.get(hi) {
                    if b == b'\n'
                        || (Some(b) == first && bytes.get(hi..).is_some_and(|r| r.starts_with(lit)))
                    {
                        break;
                    }
                    n += u64::from(b & 0xc0 != 0x80);
                    hi += 1;
                }
                return (hi, n);
            }
            One::Class(i) => {
                let t = &self.prog.ascii[i];
                while let Some(&b) = bytes.get(hi) {
                    if b >= 0x80 || t[usize::from(b >> 6)] >> (b & 63) & 1 == 0 {
                        break;
                    }
                    hi += 1;
                }
            }
            One::Any => {
                while let Some(&b) = bytes.get(hi) {
                    if b >= 0x80 || b == b'\n' {
                        break;
                    }
                    hi += 1;
                }
            }
            _ => {}
        }
        let mut n = (hi - pos) as u64;
        if matches!(one, One::Class(_) | One::Any) && bytes.get(hi).is_none_or(|&b| b < 0x80) {
            // The tight loop stopped at the end or at an ASCII byte it refused: the
            // general path would refuse it too.
            return (hi, n);
        }
        while let Some(next) = self.one(one, hi) {
            hi = next;
            n += 1;
        }
        (hi, n)
    }

    /// The position after one `one` at `pos`, if it matches there.
    #[inline]
    fn one(&self, one: One, pos: usize) -> Option<usize> {
        match self.text.as_bytes().get(pos) {
            Some(&b) if b < 0x80 => {
                let hit = match one {
                    // A non-ASCII `c` (folded or not) never equals an ASCII character.
                    One::Char(c) | One::CharI(c) if !c.is_ascii() => false,
                    One::Char(c) => b == c as u8,
                    One::CharI(c) => b.to_ascii_lowercase() == c as u8,
                    One::Any => b != b'\n',
                    One::AnyNl => true,
                    One::Class(i) => self.prog.ascii[i][usize::from(b >> 6)] >> (b & 63) & 1 != 0,
                    One::NotLit(i) => {
                        b != b'\n'
                            && !self
                                .text
                                .as_bytes()
                                .get(pos..)
                                .is_some_and(|r| r.starts_with(&self.prog.lits[i]))
                    }
                };
                hit.then_some(pos + 1)
            }
            Some(_) => {
                let x = self.next_char(pos)?;
                let hit = match one {
                    One::Char(c) => x == c,
                    One::CharI(c) => fold(x) == c,
                    One::Any => x != '\n',
                    One::AnyNl => true,
                    One::Class(i) => class_has(&self.prog.classes[i], x),
                    // The literal is ASCII: it does not start at a non-ASCII character.
                    One::NotLit(_) => x != '\n',
                };
                hit.then(|| pos + x.len_utf8())
            }
            None => None,
        }
    }

    /// Tries the [`Inst::Star`] at `pc` (run from `lo` to `hi`) at `hi` or, when what
    /// follows cannot start there, the longest shorter run where it can; remembers the
    /// rest for backtracking.
    fn star_first(&mut self, pc: usize, lo: usize, hi: usize) -> Option<usize> {
        let follow = self.prog.firsts[self.prog.split_at[pc] as usize].0;
        let mut q = hi;
        loop {
            if follow.has(self.text.as_bytes().get(q)) {
                if q > lo {
                    self.stack.push(Frame::Star { pc, lo, hi: q });
                }
                return Some(q);
            }
            if q <= lo {
                return None;
            }
            q -= self.prev_char(q).map_or(1, char::len_utf8);
            self.steps += 1;
        }
    }

    /// The next shorter run of the [`Inst::Star`] at `pc` to try, below `hi`.
    fn star_next(&mut self, pc: usize, lo: usize, hi: usize) -> Option<usize> {
        if hi <= lo {
            return None;
        }
        let q = hi - self.prev_char(hi).map_or(1, char::len_utf8);
        self.star_first(pc, lo, q)
    }

    /// Tries the [`Inst::LazyStar`] at `pc` (body `one`) at `pos` or, when what follows
    /// cannot start there, after the fewest more characters where it can; remembers where
    /// it went on, to take one more character on backtracking.
    fn lazy_first(&mut self, pc: usize, one: One, mut pos: usize) -> Option<usize> {
        let follow = self.prog.firsts[self.prog.split_at[pc] as usize].0;
        loop {
            if follow.has(self.text.as_bytes().get(pos)) {
                self.stack.push(Frame::Lazy { pc, pos });
                return Some(pos);
            }
            pos = self.one(one, pos)?;
            self.steps += 1;
        }
    }

    /// Runs from `pc` at `pos`; returns the end position of the first match. The stack
    /// below the current base is left as it was.
    fn run(&mut self, pc: usize, pos: usize, mode: Mode) -> Result<Option<usize>, StepLimit> {
        let base = self.stack.len();
        self.stack.push(Frame::Branch(pc, pos));
        while self.stack.len() > base {
            let Some(frame) = self.stack.pop() else { break };
            let (mut pc, mut pos) = match frame {
                Frame::Branch(pc, pos) => (pc, pos),
                Frame::Star { pc, lo, hi } => {
                    self.steps += 1;
                    match self.star_next(pc, lo, hi) {
                        Some(q) => (pc + 1, q),
                        None => continue,
                    }
                }
                Frame::Lazy { pc, pos } => {
                    self.steps += 1;
                    let Inst::LazyStar(one) = self.prog.insts[pc] else {
                        continue;
                    };
                    match self.one(one, pos).and_then(|q| self.lazy_first(pc, one, q)) {
                        Some(q) => (pc + 1, q),
                        None => continue,
                    }
                }
                Frame::Slot(s, v) => {
                    self.slots[s] = v;
                    continue;
                }
                Frame::Reg(r, v) => {
                    self.regs[r] = v;
                    continue;
                }
            };
            loop {
                self.steps += 1;
                if self.steps > STEP_LIMIT {
                    self.stack.truncate(base);
                    return Err(StepLimit);
                }
                let ok = match self.prog.insts[pc] {
                    Inst::Match => {
                        match mode {
                            // Drop the alternatives: captures stay.
                            Mode::Top => self.stack.truncate(base),
                            // Drop the alternatives but keep the capture undo records,
                            // so the caller's backtracking restores them.
                            Mode::Keep => {
                                let mut w = base;
                                for r in base..self.stack.len() {
                                    if matches!(self.stack[r], Frame::Slot(..) | Frame::Reg(..)) {
                                        self.stack.swap(w, r);
                                        w += 1;
                                    }
                                }
                                self.stack.truncate(w);
                            }
                            // Undo every capture made inside.
                            Mode::Undo => {
                                while self.stack.len() > base {
                                    match self.stack.pop() {
                                        Some(Frame::Slot(s, v)) => self.slots[s] = v,
                                        Some(Frame::Reg(r, v)) => self.regs[r] = v,
                                        _ => {}
                                    }
                                }
                            }
                        }
                        return Ok(Some(pos));
                    }
                    Inst::Char(c) => match self.next_char(pos) {
                        Some(x) if x == c => {
                            pos += x.len_utf8();
                            true
                        }
                        _ => false,
                    },
                    Inst::CharI(c) => match self.next_char(pos) {
                        Some(x) if fold(x) == c => {
                            pos += x.len_utf8();
                            true
                        }
                        _ => false,
                    },
                    Inst::Any => match self.next_char(pos) {
                        Some(x) if x != '\n' => {
                            pos += x.len_utf8();
                            true
                        }
                        _ => false,
                    },
                    Inst::AnyNl => match self.next_char(pos) {
                        Some(x) => {
                            pos += x.len_utf8();
                            true
                        }
                        None => false,
                    },
                    Inst::Class(i) => match self.text.as_bytes().get(pos) {
                        Some(&b) if b < 0x80 => {
                            let hit = self.prog.ascii[i][usize::from(b >> 6)] >> (b & 63) & 1 != 0;
                            if hit {
                                pos += 1;
                            }
                            hit
                        }
                        _ => match self.next_char(pos) {
                            Some(x) if class_has(&self.prog.classes[i], x) => {
                                pos += x.len_utf8();
                                true
                            }
                            _ => false,
                        },
                    },
                    Inst::Start => pos == 0,
                    Inst::End => pos == self.text.len(),
                    Inst::StartLine => pos == 0 || self.prev_char(pos) == Some('\n'),
                    Inst::EndLine => pos == self.text.len() || self.next_char(pos) == Some('\n'),
                    Inst::WordB => self.at_word_boundary(pos),
                    Inst::NotWordB => !self.at_word_boundary(pos),
                    Inst::Split(a, b) => {
                        // Branches that cannot take the next byte are not tried.
                        let next = self.text.as_bytes().get(pos);
                        let (fa, fb) = &self.prog.firsts[self.prog.split_at[pc] as usize];
                        if fb.has(next) {
                            self.stack.push(Frame::Branch(b, pos));
                        }
                        if fa.has(next) {
                            pc = a;
                            continue;
                        }
                        false
                    }
                    Inst::Jmp(a) => {
                        pc = a;
                        continue;
                    }
                    Inst::Lit(i) => {
                        let lit = &self.prog.lits[i];
                        let rest = self.text.as_bytes().get(pos..).unwrap_or_default();
                        let k = common_prefix(lit, rest);
                        if k == lit.len() {
                            // One step per `Char`, this one counted above.
                            self.steps += k as u64 - 1;
                            pos += k;
                            pc += k;
                            continue;
                        }
                        self.steps += k as u64;
                        if self.steps > STEP_LIMIT {
                            self.stack.truncate(base);
                            return Err(StepLimit);
                        }
                        false
                    }
                    Inst::LookLit { negate, lit } => {
                        let lit = &self.prog.lits[lit];
                        let rest = self.text.as_bytes().get(pos..).unwrap_or_default();
                        let k = common_prefix(lit, rest);
                        // The nested run: one step per `Char` tried (the failing one
                        // included) or, on a match, per `Char` and its `Match`.
                        self.steps += k as u64 + 1;
                        if self.steps > STEP_LIMIT {
                            self.stack.truncate(base);
                            return Err(StepLimit);
                        }
                        if (k == lit.len()) != negate {
                            pc += 1;
                            continue;
                        }
                        false
                    }
                    Inst::Need(i) => {
                        let rest = &self.text[pos..];
                        self.prog.needs[i].iter().all(|n| rest.contains(n.as_str()))
                    }
                    Inst::Save(s) => {
                        // The undo record is needed only when there is something to
                        // backtrack to: at the top level with an empty stack, a failure
                        // ends this start position, and the search clears the slots
                        // before the next one.
                        if !(matches!(mode, Mode::Top) && self.stack.len() == base) {
                            self.stack.push(Frame::Slot(s, self.slots[s]));
                        }
                        self.slots[s] = Some(pos);
                        true
                    }
                    Inst::Backref(g, icase) => {
                        match (
                            self.slots.get(2 * g).copied(),
                            self.slots.get(2 * g + 1).copied(),
                        ) {
                            (Some(Some(s)), Some(Some(e))) => {
                                let want = &self.text[s..e];
                                let have = &self.text[pos..];
                                if icase {
                                    let mut hc = have.chars();
                                    let mut n = 0;
                                    let mut good = true;
                                    for w in want.chars() {
                                        match hc.next() {
                                            Some(h) if fold(h) == fold(w) => n += h.len_utf8(),
                                            _ => {
                                                good = false;
                                                break;
                                            }
                                        }
                                    }
                                    if good {
                                        pos += n;
                                    }
                                    good
                                } else if have.starts_with(want) {
                                    pos += want.len();
                                    true
                                } else {
                                    false
                                }
                            }
                            _ => false,
                        }
                    }
                    Inst::Look {
                        ahead,
                        negate,
                        body,
                        width,
                    } => {
                        let from = if ahead {
                            Some(pos)
                        } else {
                            let mut p = pos;
                            let mut ok = true;
                            for _ in 0..width {
                                match self.prev_char(p) {
                                    Some(c) => p -= c.len_utf8(),
                                    None => {
                                        ok = false;
                                        break;
                                    }
                                }
                            }
                            ok.then_some(p)
                        };
                        let found = match from {
                            Some(p) => {
                                // A positive look-around keeps its captures (restorable on
                                // backtracking); a negative one keeps none. A look-behind
                                // body is fixed-width, so a match from `p` ends at `pos`.
                                let mode = if negate { Mode::Undo } else { Mode::Keep };
                                self.run(body, p, mode)?.is_some()
                            }
                            None => false,
                        };
                        if found != negate {
                            pc += 1;
                            continue;
                        }
                        false
                    }
                    Inst::Cond(g, no) => {
                        let set = matches!(
                            (self.slots.get(2 * g), self.slots.get(2 * g + 1)),
                            (Some(Some(_)), Some(Some(_)))
                        );
                        if !set {
                            pc = no;
                            continue;
                        }
                        true
                    }
                    Inst::RepStart(r) => {
                        self.stack.push(Frame::Reg(r, self.regs[r]));
                        self.regs[r] = pos;
                        true
                    }
                    Inst::RepCheck(r) => self.regs[r] != pos,
                    Inst::Star(one) => {
                        let lo = pos;
                        let (hi, n) = self.star_run(one, pos);
                        self.steps += n;
                        if self.steps > STEP_LIMIT {
                            self.stack.truncate(base);
                            return Err(StepLimit);
                        }
                        // The longest run first: `hi` itself, then shorter ones.
                        match self.star_first(pc, lo, hi) {
                            Some(q) => {
                                pos = q;
                                true
                            }
                            None => false,
                        }
                    }
                    // The shortest run first, one more character on each backtrack.
                    Inst::LazyStar(one) => match self.lazy_first(pc, one, pos) {
                        Some(q) => {
                            pos = q;
                            true
                        }
                        None => false,
                    },
                };
                if !ok {
                    break;
                }
                pc += 1;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyre::parse::parse;

    fn run(p: &str, t: &str) -> (Prog, Option<Vec<Option<String>>>) {
        let parsed = parse(p, false).unwrap();
        let prog = Prog::compile(&parsed.node, parsed.groups).unwrap();
        let mut slots = Vec::new();
        let hit = prog.search(t, 0, t.len(), &mut slots).unwrap();
        let groups = hit.then(|| {
            (0..=parsed.groups)
                .map(|g| match (slots[2 * g], slots[2 * g + 1]) {
                    (Some(s), Some(e)) => Some(t[s..e].to_owned()),
                    _ => None,
                })
                .collect()
        });
        (prog, groups)
    }

    #[test]
    fn branches_whose_conditional_needs_absent_text_are_skipped_with_the_same_result() {
        // sshd's shape: the first user branch sets `cu`, so the end needs ": ".
        let p = r"^for (?P<inv>invalid user )?(?P<user>(?P<cu>\S+)|(?(inv)(?:(?! from ).)*?|[^:]+)) from (?P<h>\S+)(?: port \d+)?(?: ssh\d*)?(?(cu): |(?:(?:(?! from ).)*)$)";
        let (prog, m) = run(p, "for root from 192.0.2.1 port 22 ssh2");
        assert_eq!(prog.needs, vec![vec![" from ".to_owned(), ": ".to_owned()]]);
        let m = m.unwrap();
        assert_eq!(m[2].as_deref(), Some("root"));
        assert_eq!(m[3], None);
        assert_eq!(m[4].as_deref(), Some("192.0.2.1"));
        // With ": " present the first branch is taken.
        let (_, m) = run(p, "for root from 192.0.2.1 port 22 ssh2: x");
        let m = m.unwrap();
        assert_eq!(m[3].as_deref(), Some("root"));
        // The ": " is before the branch: it does not count.
        let (_, m) = run(p, "for a:b from 192.0.2.9 port 1");
        assert!(m.is_none());
        let (_, m) = run(p, "for invalid user a b from 198.51.100.4 port 7 ssh2");
        let m = m.unwrap();
        assert_eq!(m[1].as_deref(), Some("invalid user "));
        assert_eq!(m[2].as_deref(), Some("a b"));
        assert_eq!(m[3], None);
    }

    /// A small deterministic generator (xorshift) for the comparison tests.
    struct Gen(u64);
    impl Gen {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Patterns whose programs use the fused instructions: literal runs entered at their
    /// start and in their middle, literal look-aheads of both signs, and sshd's shapes.
    const FUSED: &[&str] = &[
        r"abc",
        r"(?:ab)*abc",
        r"a(?:bcd|bce)+",
        r"(?:x|ab)cd",
        r"(?:(?! fr).)*? fro",
        r"^(?:(?! ab).)*$",
        r"(?=ab)a(b)",
        r"(?!ab)\w+",
        r"(ab|a)(?(1)bc|c)",
        r"((?:ab)+)?c: ",
        r"^Failed (?:(?P<nofail>publickey)|\S+) for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip>\S+)(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
    ];

    /// Random texts over an alphabet that makes the literals above match in part, in
    /// whole and not at all, with a non-ASCII character.
    fn texts(g: &mut Gen, n: usize) -> Vec<String> {
        const WORDS: &[&str] = &[
            "a",
            "b",
            "c",
            "ab",
            "abc",
            "bcd",
            "bce",
            " ",
            " fr",
            " from ",
            ": ",
            "é",
            "x",
            "cd",
            "Failed ",
            "password",
            "publickey",
            " for ",
            "invalid user ",
            "root",
            "1.2.3.4",
            " port 22",
            " ssh2",
            "\n",
        ];
        // sshd's lines, with their parts varied.
        const PARTS: &[&[&str]] = &[
            &["Failed ", "Failed  ", "failed "],
            &["password", "publickey", "none", "é"],
            &[" for "],
            &["", "invalid user ", "invalid user  "],
            &["root", "a b", "a:b", "from", " from ", "é x", ""],
            &[" from "],
            &["192.0.2.1", "2001:db8::1", "x from y"],
            &["", " port 22", " port 22 port 23", " on x"],
            &["", " ssh2", " ssh"],
            &["", ": RSA SHA256:x", ": ", " from z", "\n"],
        ];
        let mut out: Vec<String> = (0..n)
            .map(|_| {
                (0..g.below(12))
                    .map(|_| WORDS[g.below(WORDS.len())])
                    .collect()
            })
            .collect();
        out.extend((0..n).map(|_| {
            PARTS
                .iter()
                .map(|p| p[g.below(p.len())])
                .collect::<String>()
        }));
        out
    }

    #[test]
    fn fused_literals_give_the_same_matches_groups_and_steps_as_single_chars() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let texts = texts(&mut g, 3000);
        for p in FUSED {
            let parsed = parse(p, false).unwrap();
            let fused = Prog::compile_with(&parsed.node, parsed.groups, true, false).unwrap();
            let plain = Prog::compile_with(&parsed.node, parsed.groups, false, false).unwrap();
            assert!(!fused.lits.is_empty(), "{p}: nothing fused");
            assert!(plain.lits.is_empty());
            let mut hits = 0;
            for t in &texts {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let ra = fused.search_counting(t, 0, t.len(), &mut a);
                let rb = plain.search_counting(t, 0, t.len(), &mut b);
                assert_eq!(ra, rb, "{p} on {t:?}");
                if ra.0 == Ok(true) {
                    hits += 1;
                    assert_eq!(a, b, "{p} on {t:?}");
                }
            }
            assert!(hits > 0, "{p}: no text matched");
        }
    }

    #[test]
    fn fused_literals_hit_the_step_limit_where_single_chars_do() {
        // Nested loops over a literal run and a literal look-ahead: exponential work
        // that ends on the step limit in both programs, and at the same count below it.
        let p = r"^(?:(?:(?!abz)ab)+)+c";
        let parsed = parse(p, false).unwrap();
        let fused = Prog::compile_with(&parsed.node, parsed.groups, true, false).unwrap();
        let plain = Prog::compile_with(&parsed.node, parsed.groups, false, false).unwrap();
        for n in [3, 6, 9, 12, 40] {
            let t = "ab".repeat(n);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ra = fused.search_counting(&t, 0, t.len(), &mut a);
            let rb = plain.search_counting(&t, 0, t.len(), &mut b);
            assert_eq!(ra.0, rb.0, "{n}");
            if rb.0.is_ok() {
                assert_eq!(ra.1, rb.1, "{n}");
            }
        }
        let t = "ab".repeat(40);
        let mut a = Vec::new();
        assert_eq!(fused.search(&t, 0, t.len(), &mut a), Err(StepLimit));
    }

    #[test]
    fn star_runs_end_where_single_characters_stop() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let texts = texts(&mut g, 2000);
        for p in [
            r"[^:]*",
            r"\S*",
            r"\d*",
            r"[a-c ]*",
            r".*",
            r"(?s:.)*",
            r"[éa]*",
            r"b*",
            r"(?:(?! fr).)*",
            r"(?:(?! from ).)*",
            r"(?:(?!x).)*",
        ] {
            let parsed = parse(p, false).unwrap();
            let prog = Prog::compile(&parsed.node, parsed.groups).unwrap();
            let one = prog
                .insts
                .iter()
                .find_map(|i| match i {
                    Inst::Star(o) => Some(*o),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{p}: no Star"));
            for t in &texts {
                let m = Machine {
                    prog: &prog,
                    text: t,
                    steps: 0,
                    slots: Vec::new(),
                    regs: Vec::new(),
                    stack: Vec::new(),
                };
                for pos in (0..=t.len()).filter(|&i| t.is_char_boundary(i)) {
                    let (mut hi, mut n) = (pos, 0);
                    while let Some(next) = m.one(one, hi) {
                        hi = next;
                        n += 1;
                    }
                    assert_eq!(m.star_run(one, pos), (hi, n), "{p} on {t:?} at {pos}");
                }
            }
        }
    }

    /// Patterns with `(?:(?!L).)` loops, greedy and lazy, and lazy single-character
    /// loops, alone and inside larger patterns (sshd's among them).
    const LOOPS: &[&str] = &[
        r"(?:(?! fr).)*",
        r"^(?:(?! from ).)*$",
        r"^(?:(?:(?! from ).)*)$",
        r"(?:(?! from ).)*? from (\S+)",
        r"^(.*?) (?:(?! from ).)* from",
        r"^a(?:(?!aa).)*a",
        r"(?:(?!ab).)+?b",
        r"((?:(?!a).)*)(a|$)",
        r"x(?:(?! ).){2,}?y",
        r"(?:(?!\n).)*\n",
        r"^(?:(?!b).)*(?:(?!a).)*?c",
        r"(\w*?)(\d)",
        r"^\S*?: (.*?)$",
        r"(?m)^(?:(?! fro).)*?$",
        r"^Failed (?:(?P<nofail>publickey)|\S+) for (?P<cond_inv>invalid user )?(?P<user>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)) from (?P<ip>\S+)(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
    ];

    #[test]
    fn fused_loops_give_the_same_matches_and_groups_as_unfused_ones() {
        let mut g = Gen(0x5851_f42d_4c95_7f2d);
        let mut texts = texts(&mut g, 3000);
        // The literal in part, overlapping itself and whole, around newlines and
        // non-ASCII characters.
        const PIECES: &[&str] = &[
            " fro", " from", "  from ", " from ", "from ", " fr", "aa", "a", "b", "ab", "é", "\n",
            " ", "x", "y", "c", ": ", "1", "z",
        ];
        texts.extend((0..3000).map(|_| {
            (0..g.below(14))
                .map(|_| PIECES[g.below(PIECES.len())])
                .collect::<String>()
        }));
        for p in LOOPS {
            let parsed = parse(p, false).unwrap();
            let fused = Prog::compile_with(&parsed.node, parsed.groups, true, true).unwrap();
            let plain = Prog::compile_with(&parsed.node, parsed.groups, true, false).unwrap();
            let bare = Prog::compile_with(&parsed.node, parsed.groups, false, false).unwrap();
            let loops = |p: &Prog| {
                p.insts
                    .iter()
                    .filter(|i| match i {
                        Inst::LazyStar(_) => true,
                        Inst::Star(o) => matches!(o, One::NotLit(_)),
                        _ => false,
                    })
                    .count()
            };
            assert!(loops(&fused) > 0, "{p}: no loop fused");
            assert_eq!(loops(&plain), 0, "{p}");
            let mut hits = 0;
            for t in &texts {
                let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
                let (ra, sa) = fused.search_counting(t, 0, t.len(), &mut a);
                let (rb, sb) = plain.search_counting(t, 0, t.len(), &mut b);
                let rc = bare.search(t, 0, t.len(), &mut c);
                assert_eq!(ra, rb, "{p} on {t:?}");
                assert_eq!(ra, rc, "{p} on {t:?}");
                if ra == Ok(true) {
                    hits += 1;
                    assert_eq!(a, b, "{p} on {t:?}");
                    assert_eq!(a, c, "{p} on {t:?}");
                }
                // One step per character taken or given back: never more than the loops
                // of single instructions.
                assert!(sa <= sb, "{p} on {t:?}: {sa} > {sb} steps");
            }
            assert!(hits > 20, "{p}: {hits} texts matched");
        }
    }

    #[test]
    fn fused_loops_still_hit_the_step_limit() {
        // Nested loops around a fused one: exponential in the number of `a`s.
        for p in [r"^(?:(?:(?!zz).)*a)*c", r"^(?:(?:(?!zz).)*?a)*c"] {
            let parsed = parse(p, false).unwrap();
            let fused = Prog::compile(&parsed.node, parsed.groups).unwrap();
            let t = "a".repeat(40);
            let mut a = Vec::new();
            assert_eq!(fused.search(&t, 0, t.len(), &mut a), Err(StepLimit), "{p}");
            let t = "a".repeat(8) + "c";
            assert_eq!(fused.search(&t, 0, t.len(), &mut a), Ok(true), "{p}");
        }
    }

    #[test]
    fn captures_set_before_any_choice_match_the_regex_crate() {
        // Groups opened while nothing is left to backtrack to (no undo record), then
        // choices and backtracking after them, on several start positions: the groups
        // must be the `regex` crate's (leftmost-first, like ours on these patterns).
        const PATS: &[&str] = &[
            r"^(a)(b|bc)(c?)$",
            r"(\w+)(\d)",
            r"^(?:(x)|(x)y)z",
            r"(a*)(b)?(ab)",
            r"(b)(a|ab)(c|bc)",
            r"^(\S+) (?:(a)|(\w+)) (b)",
            r"(?:(a)|b)(c)(?:(d)|(dx))x",
        ];
        const WORDS: &[&str] = &[
            "a", "b", "c", "ab", "bc", "x", "xy", "z", "d", "dx", " ", "1",
        ];
        let mut g = Gen(0x0dd_ba11_c0ff_ee42);
        let texts: Vec<String> = (0..6000)
            .map(|_| {
                (0..g.below(10))
                    .map(|_| WORDS[g.below(WORDS.len())])
                    .collect()
            })
            .collect();
        for p in PATS {
            let parsed = parse(p, false).unwrap();
            let prog = Prog::compile(&parsed.node, parsed.groups).unwrap();
            let re = regex::Regex::new(p).unwrap();
            let mut hits = 0;
            for t in &texts {
                let mut slots = Vec::new();
                let ours = prog.search(t, 0, t.len(), &mut slots).unwrap();
                let theirs = re.captures(t);
                assert_eq!(ours, theirs.is_some(), "{p} on {t:?}");
                if let Some(c) = theirs {
                    hits += 1;
                    for gi in 0..=parsed.groups {
                        let want = c.get(gi).map(|m| (m.start(), m.end()));
                        let have = match (slots[2 * gi], slots[2 * gi + 1]) {
                            (Some(a), Some(b)) => Some((a, b)),
                            _ => None,
                        };
                        assert_eq!(have, want, "{p} on {t:?}, group {gi}");
                    }
                }
            }
            assert!(hits > 10, "{p}: {hits} texts matched");
        }
    }

    #[test]
    fn no_needs_without_a_conditional_on_a_branch_group() {
        let (prog, m) = run(r"^(?:(a+)|b) x: (?(1)y|z)", "b x: z");
        assert!(prog.needs.is_empty(), "{:?}", prog.needs);
        assert!(m.is_some());
        let (prog, _) = run(r"^(?:(a+)|b) x(?:y|z)", "b xz");
        assert!(prog.needs.is_empty());
        let (prog, m) = run(r"^(?:(a+)|b) x(?(1): y|z)", "a x: y");
        assert_eq!(prog.needs, vec![vec![" x".to_owned(), ": y".to_owned()]]);
        assert!(m.is_some());
        let (_, m) = run(r"^(?:(a+)|b) x(?(1): y|z)", "a xz");
        assert!(m.is_none());
    }
}
