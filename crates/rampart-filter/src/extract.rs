//! Capture extraction: once the combined automaton has said which pattern matches a line,
//! find where that pattern's `host`, `user` and `conn` groups are.
//!
//! The general engine is a one-pass DFA when the pattern allows one, else a bounded
//! backtracker sized for this pattern alone (PikeVM for lines beyond its budget). Patterns of
//! the shape `A (?P<user>.*) B$`, where B starts with a literal (`... for (?P<user>.*) from
//! <HOST> port \d+ ssh2$`), are the common case in log filters and the slow case for a
//! backtracker, which walks `.*` to the end of the line and back. For them there is an exact
//! fast path: under leftmost-first semantics the greedy `.*` takes the *rightmost* split
//! where B matches through the end of the line, so the fast path runs A alone (its
//! preferred end `a`), then tries B anchored at each occurrence of B's leading literal from
//! the right. The first success gives the same groups the backtracker would; if A's
//! preferred end leaves no split, the general engine decides (A may have other ends).

use std::sync::OnceLock;

use regex_automata::dfa::onepass;
use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, backtrack, pikevm, NFA};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, PatternID};
use regex_syntax::hir::{Dot, Hir, HirKind, Look};

use crate::plan::Plan;

/// Spans of the groups rampart reads, by position: host, user, conn.
pub type Spans = [Option<(usize, usize)>; 3];

const NAMES: [&str; 3] = ["host", "user", "conn"];

/// The general engine of one pattern (or one part of it).
// One per pattern part, built once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Engine {
    /// A direct matcher, when the pattern's choices are decided by one byte (see [`Plan`]).
    Plan(Plan),
    OnePass(onepass::DFA, Groups),
    /// A lazy DFA decides first whether the pattern matches at all (most lines that reach a
    /// backtracking pattern do not), then the backtracker finds the groups.
    Backtrack(
        hybrid::dfa::DFA,
        backtrack::BoundedBacktracker,
        pikevm::PikeVM,
        Groups,
    ),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum EngineCache {
    Plan,
    OnePass(onepass::Cache, Captures),
    Backtrack(
        hybrid::dfa::Cache,
        backtrack::Cache,
        pikevm::Cache,
        Captures,
    ),
}

/// The group indexes of host, user and conn in an NFA.
type Groups = [Option<usize>; 3];

fn groups_of(nfa: &NFA) -> Groups {
    let gi = nfa.group_info();
    NAMES.map(|n| gi.to_index(PatternID::ZERO, n))
}

fn spans_of(groups: &Groups, caps: &Captures) -> Spans {
    groups.map(|g| g.and_then(|g| caps.get_group(g)).map(|s| (s.start, s.end)))
}

impl Engine {
    fn new(hir: &Hir) -> Result<Self, String> {
        if let Some(plan) = Plan::new(hir) {
            return Ok(Self::Plan(plan));
        }
        let nfa = compile(hir)?;
        let groups = groups_of(&nfa);
        if let Ok(dfa) = onepass::DFA::new_from_nfa(nfa.clone()) {
            return Ok(Self::OnePass(dfa, groups));
        }
        let bt = backtrack::BoundedBacktracker::builder()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let gate = hybrid::dfa::DFA::builder()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let pike = pikevm::PikeVM::new_from_nfa(nfa).map_err(|e| e.to_string())?;
        Ok(Self::Backtrack(gate, bt, pike, groups))
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Plan(p) if p.has_rest() => "plan+dfa",
            Self::Plan(_) => "plan",
            Self::OnePass(..) => "one-pass",
            Self::Backtrack(..) => "backtrack",
        }
    }

    fn create_cache(&self) -> EngineCache {
        match self {
            Self::Plan(_) => EngineCache::Plan,
            Self::OnePass(d, _) => EngineCache::OnePass(
                d.create_cache(),
                Captures::all(d.get_nfa().group_info().clone()),
            ),
            Self::Backtrack(d, b, p, _) => EngineCache::Backtrack(
                d.create_cache(),
                b.create_cache(),
                p.create_cache(),
                Captures::all(b.get_nfa().group_info().clone()),
            ),
        }
    }

    /// The anchored match at `start`: its end and the groups.
    fn run(&self, cache: &mut EngineCache, hay: &[u8], start: usize) -> Option<(usize, Spans)> {
        match (self, cache) {
            (Self::Plan(p), _) => p.run(hay, start),
            (Self::OnePass(d, g), EngineCache::OnePass(c, caps)) => {
                let input = Input::new(hay).range(start..).anchored(Anchored::Yes);
                d.captures(c, input, caps);
                caps.get_match().map(|m| (m.end(), spans_of(g, caps)))
            }
            (Self::Backtrack(d, b, p, g), EngineCache::Backtrack(dc, bc, pc, caps)) => {
                let input = Input::new(hay).range(start..).anchored(Anchored::Yes);
                // An error (the DFA gave up) means "maybe": the backtracker decides.
                if let Ok(None) = d.try_search_fwd(dc, &input.clone().earliest(true)) {
                    return None;
                }
                if !(input.get_span().len() <= b.max_haystack_len()
                    && b.try_captures(bc, input.clone(), caps).is_ok())
                {
                    p.captures(pc, input, caps);
                }
                caps.get_match().map(|m| (m.end(), spans_of(g, caps)))
            }
            _ => None,
        }
    }
}

/// The split fast path for `A (?P<g>.*) B$`.
#[derive(Debug)]
struct Split {
    head: Engine,
    tail: Engine,
    /// B's leading literal: every feasible split starts with it.
    tail_literal: Box<[u8]>,
    /// A searcher for it, built once (building one per line costs more than the search).
    tail_find: memchr::memmem::Finder<'static>,
    /// 0 for `.*`, 1 for `.+`.
    min_gap: usize,
    /// Which of host/user/conn the `.*` itself captures, if any.
    gap_group: Option<usize>,
}

impl Split {
    /// Where B's leading literal starts in `msg[from..]`, right to left: found by the
    /// positions of its first byte that is not a space (rarer in log lines than the
    /// spaces these literals start with), each checked whole.
    fn tail_starts<'m>(&'m self, msg: &'m [u8], from: usize) -> impl Iterator<Item = usize> + 'm {
        let lit = &self.tail_literal[..];
        let k = lit.iter().position(|&b| b != b' ').unwrap_or(0);
        let hay = &msg[from..];
        memchr::memrchr_iter(lit[k], hay)
            .filter_map(move |p| p.checked_sub(k))
            .filter(move |&p| {
                hay.get(p..p + lit.len())
                    .is_some_and(|h| crate::plan::bytes_eq(h, lit))
            })
            .map(move |p| from + p)
    }
}

/// What the fast path can say.
enum Fast {
    Match(Spans),
    NoMatch,
    Unknown,
}

/// Extracts one pattern's groups.
#[derive(Debug)]
pub struct Extractor {
    full: Engine,
    split: Option<Split>,
    /// The PikeVM over the whole pattern: the reference the tests compare with, built on
    /// first use (compiling it for every pattern of every filter at start would cost more
    /// than the engines that run).
    reference: OnceLock<pikevm::PikeVM>,
    /// The pattern, for the reference.
    hir: Hir,
}

/// Scratch space of the reference engine (see [`Extractor::reference_extract_with`]).
#[derive(Debug)]
pub struct ReferenceCache(pikevm::Cache, Captures);

/// Per-thread state of an [`Extractor`].
#[derive(Debug)]
pub struct ExtractCache {
    full: EngineCache,
    head: Option<EngineCache>,
    tail: Option<EngineCache>,
}

fn compile(hir: &Hir) -> Result<NFA, String> {
    NFA::compiler()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .nfa_size_limit(Some(16 << 20)),
        )
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

fn is_dotstar(h: &Hir) -> Option<usize> {
    match h.kind() {
        HirKind::Repetition(r)
            if r.max.is_none()
                && r.greedy
                && r.min <= 1
                && *r.sub == Hir::dot(Dot::AnyByteExceptLF) =>
        {
            Some(r.min as usize)
        }
        _ => None,
    }
}

fn split_of(hir: &Hir) -> Option<Split> {
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    // The first top-level `.*` (bare, or as a whole named group).
    let (i, min_gap, name) = parts.iter().enumerate().find_map(|(i, p)| match p.kind() {
        HirKind::Capture(c) => {
            is_dotstar(&c.sub).map(|m| (i, m, c.name.as_deref().map(str::to_owned)))
        }
        _ => is_dotstar(p).map(|m| (i, m, None)),
    })?;
    let tail_parts = &parts[i + 1..];
    let HirKind::Literal(lit) = tail_parts.first()?.kind() else {
        return None;
    };
    if !matches!(tail_parts.last()?.kind(), HirKind::Look(Look::End)) {
        return None;
    }
    let head = Engine::new(&Hir::concat(parts[..i].to_vec())).ok()?;
    let tail = Engine::new(&Hir::concat(tail_parts.to_vec())).ok()?;
    Some(Split {
        head,
        tail,
        tail_find: memchr::memmem::Finder::new(&lit.0).into_owned(),
        tail_literal: lit.0.clone(),
        min_gap,
        gap_group: name.and_then(|n| NAMES.iter().position(|&x| x == n)),
    })
}

impl Extractor {
    /// Builds the engines for one pattern from its parsed form (`<HOST>` expanded, Unicode
    /// off, as the filter compiler parses it).
    pub fn new(hir: &Hir) -> Result<Self, String> {
        let full = Engine::new(hir)?;
        let split = match full {
            // A plan or a one-pass DFA is already as fast as it gets, unless the split's
            // parts both have plans.
            Engine::Plan(_) => None,
            Engine::OnePass(..) => split_of(hir)
                .filter(|s| matches!((&s.head, &s.tail), (Engine::Plan(_), Engine::Plan(_)))),
            Engine::Backtrack(..) => split_of(hir),
        };
        Ok(Self {
            full,
            split,
            reference: OnceLock::new(),
            hir: hir.clone(),
        })
    }

    /// Which engines run: "plan", "one-pass", "backtrack", or "split(HEAD+TAIL)" (for
    /// reports).
    pub fn describe(&self) -> String {
        match &self.split {
            Some(s) => format!("split({}+{})", s.head.name(), s.tail.name()),
            None => self.full.name().to_owned(),
        }
    }

    /// Whether the split fast path applies to this pattern.
    pub fn has_fast_path(&self) -> bool {
        self.split.is_some()
    }

    /// Whether the pattern's own engine is a [`Plan`].
    pub fn has_plan(&self) -> bool {
        matches!(self.full, Engine::Plan(_))
    }

    /// Fresh per-thread state.
    pub fn create_cache(&self) -> ExtractCache {
        ExtractCache {
            full: self.full.create_cache(),
            head: self.split.as_ref().map(|s| s.head.create_cache()),
            tail: self.split.as_ref().map(|s| s.tail.create_cache()),
        }
    }

    /// The groups of this pattern on `msg` (an anchored match at its start); `None` if it
    /// does not match.
    pub fn extract(&self, cache: &mut ExtractCache, msg: &[u8]) -> Option<Spans> {
        self.extract_at(cache, msg, 0)
    }

    /// The groups of this pattern matched anchored at `start` in `msg` (the bytes before
    /// `start` count only as context, as for `^` or `\b`); spans are offsets in `msg`.
    pub fn extract_at(&self, cache: &mut ExtractCache, msg: &[u8], start: usize) -> Option<Spans> {
        match self.split_decide(cache, msg, start) {
            Fast::Match(spans) => Some(spans),
            Fast::NoMatch => None,
            Fast::Unknown => self
                .full
                .run(&mut cache.full, msg, start)
                .map(|(_, spans)| spans),
        }
    }

    /// The general engine only (for tests that compare both paths).
    pub fn full_extract(&self, cache: &mut ExtractCache, msg: &[u8]) -> Option<Spans> {
        self.full
            .run(&mut cache.full, msg, 0)
            .map(|(_, spans)| spans)
    }

    /// The reference engine. Panics if the pattern's automaton exceeds the size limit,
    /// which a compiled filter's patterns never do (its combined automaton holds them all
    /// within the same limit).
    fn reference(&self) -> &pikevm::PikeVM {
        self.reference.get_or_init(|| {
            let nfa = compile(&self.hir).expect("the pattern compiled with its filter");
            pikevm::PikeVM::new_from_nfa(nfa).expect("a compiled pattern has a PikeVM")
        })
    }

    /// The regex crate's PikeVM over the whole pattern: slow, and the reference every
    /// faster path is tested against.
    pub fn reference_extract(&self, msg: &[u8]) -> Option<Spans> {
        self.reference_extract_with(&mut self.reference_cache(), msg)
    }

    /// Scratch space for [`Extractor::reference_extract_with`].
    pub fn reference_cache(&self) -> ReferenceCache {
        ReferenceCache(
            self.reference().create_cache(),
            self.reference().create_captures(),
        )
    }

    /// [`Extractor::reference_extract`] with reused scratch space.
    pub fn reference_extract_with(&self, cache: &mut ReferenceCache, msg: &[u8]) -> Option<Spans> {
        self.reference_extract_at(cache, msg, 0)
    }

    /// [`Extractor::reference_extract_with`] anchored at `start`.
    pub fn reference_extract_at(
        &self,
        cache: &mut ReferenceCache,
        msg: &[u8],
        start: usize,
    ) -> Option<Spans> {
        let ReferenceCache(c, caps) = cache;
        self.reference().captures(
            c,
            Input::new(msg).range(start..).anchored(Anchored::Yes),
            caps,
        );
        caps.is_match()
            .then(|| spans_of(&groups_of(self.reference().get_nfa()), caps))
    }

    /// The fast path only; `None` when it does not apply or cannot decide.
    pub fn split_extract(&self, cache: &mut ExtractCache, msg: &[u8]) -> Option<Spans> {
        match self.split_decide(cache, msg, 0) {
            Fast::Match(spans) => Some(spans),
            Fast::NoMatch | Fast::Unknown => None,
        }
    }

    /// Whether the fast path rules the line out: A matches no prefix of it, so
    /// `A .* B` cannot match (the general engine would say the same, only slower).
    pub fn split_rules_out(&self, cache: &mut ExtractCache, msg: &[u8]) -> bool {
        matches!(self.split_decide(cache, msg, 0), Fast::NoMatch)
    }

    fn split_decide(&self, cache: &mut ExtractCache, msg: &[u8], start: usize) -> Fast {
        let (Some(split), Some(hc), Some(tc)) = (
            self.split.as_ref(),
            cache.head.as_mut(),
            cache.tail.as_mut(),
        ) else {
            return Fast::Unknown;
        };
        let Some((a, head)) = split.head.run(hc, msg, start) else {
            return Fast::NoMatch;
        };
        let from = a + split.min_gap;
        if from > msg.len() {
            return Fast::Unknown;
        }
        for s in split.tail_starts(msg, from) {
            if let Some((_, tail)) = split.tail.run(tc, msg, s) {
                let mut spans: Spans = [
                    head[0].or(tail[0]),
                    head[1].or(tail[1]),
                    head[2].or(tail[2]),
                ];
                if let Some(k) = split.gap_group {
                    spans[k] = Some((a, s));
                }
                return Fast::Match(spans);
            }
        }
        // A's preferred end left no split. Another end of A might, but only if B's leading
        // literal occurs somewhere at all; when it does not, nothing can match.
        if split.tail_find.find(&msg[start..]).is_none() {
            return Fast::NoMatch;
        }
        Fast::Unknown
    }
}
