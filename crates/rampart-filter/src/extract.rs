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

use regex_automata::dfa::onepass;
use regex_automata::nfa::thompson::{self, backtrack, pikevm, NFA};
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, PatternID};
use regex_syntax::hir::{Dot, Hir, HirKind, Look};

/// Spans of the groups rampart reads, by position: host, user, conn.
pub type Spans = [Option<(usize, usize)>; 3];

const NAMES: [&str; 3] = ["host", "user", "conn"];

/// The general engine over one NFA.
// One per pattern part, built once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Engine {
    OnePass(onepass::DFA),
    Backtrack(backtrack::BoundedBacktracker, pikevm::PikeVM),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum EngineCache {
    OnePass(onepass::Cache),
    Backtrack(backtrack::Cache, pikevm::Cache),
}

impl Engine {
    fn new(nfa: NFA) -> Result<Self, String> {
        if let Ok(dfa) = onepass::DFA::new_from_nfa(nfa.clone()) {
            return Ok(Self::OnePass(dfa));
        }
        let bt = backtrack::BoundedBacktracker::builder()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let pike = pikevm::PikeVM::new_from_nfa(nfa).map_err(|e| e.to_string())?;
        Ok(Self::Backtrack(bt, pike))
    }

    fn nfa(&self) -> &NFA {
        match self {
            Self::OnePass(d) => d.get_nfa(),
            Self::Backtrack(b, _) => b.get_nfa(),
        }
    }

    fn groups(&self) -> [Option<usize>; 3] {
        let gi = self.nfa().group_info();
        NAMES.map(|n| gi.to_index(PatternID::ZERO, n))
    }

    fn create_cache(&self) -> (EngineCache, Captures) {
        let caps = Captures::all(self.nfa().group_info().clone());
        let cache = match self {
            Self::OnePass(d) => EngineCache::OnePass(d.create_cache()),
            Self::Backtrack(b, p) => EngineCache::Backtrack(b.create_cache(), p.create_cache()),
        };
        (cache, caps)
    }

    fn captures(&self, cache: &mut EngineCache, input: &Input<'_>, caps: &mut Captures) {
        match (self, cache) {
            (Self::OnePass(d), EngineCache::OnePass(c)) => d.captures(c, input.clone(), caps),
            (Self::Backtrack(b, p), EngineCache::Backtrack(bc, pc)) => {
                if input.get_span().len() <= b.max_haystack_len()
                    && b.try_captures(bc, input.clone(), caps).is_ok()
                {
                    return;
                }
                p.captures(pc, input.clone(), caps);
            }
            _ => caps.set_pattern(None),
        }
    }
}

/// The split fast path for `A (?P<g>.*) B$`.
#[derive(Debug)]
struct Split {
    head: Engine,
    head_groups: [Option<usize>; 3],
    tail: Engine,
    tail_groups: [Option<usize>; 3],
    /// B's leading literal: every feasible split starts with it.
    tail_literal: Vec<u8>,
    /// 0 for `.*`, 1 for `.+`.
    min_gap: usize,
    /// Which of host/user/conn the `.*` itself captures, if any.
    gap_group: Option<usize>,
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
    full_groups: [Option<usize>; 3],
    split: Option<Split>,
}

/// Per-thread state of an [`Extractor`].
#[derive(Debug)]
pub struct ExtractCache {
    full: (EngineCache, Captures),
    head: Option<(EngineCache, Captures)>,
    tail: Option<(EngineCache, Captures)>,
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
    let head = Engine::new(compile(&Hir::concat(parts[..i].to_vec())).ok()?).ok()?;
    let tail = Engine::new(compile(&Hir::concat(tail_parts.to_vec())).ok()?).ok()?;
    Some(Split {
        head_groups: head.groups(),
        tail_groups: tail.groups(),
        head,
        tail,
        tail_literal: lit.0.to_vec(),
        min_gap,
        gap_group: name.and_then(|n| NAMES.iter().position(|&x| x == n)),
    })
}

impl Extractor {
    /// Builds the engines for one pattern from its parsed form (`<HOST>` expanded, Unicode
    /// off, as the filter compiler parses it).
    pub fn new(hir: &Hir) -> Result<Self, String> {
        let full = Engine::new(compile(hir)?)?;
        let split = match full {
            // A one-pass DFA is already as fast as it gets.
            Engine::OnePass(_) => None,
            Engine::Backtrack(..) => split_of(hir),
        };
        Ok(Self {
            full_groups: full.groups(),
            full,
            split,
        })
    }

    /// The group indexes of the full pattern (host, user, conn).
    pub fn groups(&self) -> [Option<usize>; 3] {
        self.full_groups
    }

    /// Which engines run: "one-pass", "backtrack", or "split(HEAD+TAIL)" (for reports).
    pub fn describe(&self) -> String {
        let name = |e: &Engine| match e {
            Engine::OnePass(_) => "one-pass",
            Engine::Backtrack(..) => "backtrack",
        };
        match &self.split {
            Some(s) => format!("split({}+{})", name(&s.head), name(&s.tail)),
            None => name(&self.full).to_owned(),
        }
    }

    /// Whether the split fast path applies to this pattern.
    pub fn has_fast_path(&self) -> bool {
        self.split.is_some()
    }

    /// Fresh per-thread state.
    pub fn create_cache(&self) -> ExtractCache {
        ExtractCache {
            full: self.full.create_cache(),
            head: self.split.as_ref().map(|s| s.head.create_cache()),
            tail: self.split.as_ref().map(|s| s.tail.create_cache()),
        }
    }

    /// The groups of this pattern on `msg`, which it is known to match; `None` if, after
    /// all, it does not.
    pub fn extract(&self, cache: &mut ExtractCache, msg: &[u8]) -> Option<Spans> {
        match self.split_decide(cache, msg) {
            Fast::Match(spans) => Some(spans),
            Fast::NoMatch => None,
            Fast::Unknown => self.full_extract(cache, msg),
        }
    }

    /// The general engine only (for tests that compare both paths).
    pub fn full_extract(&self, cache: &mut ExtractCache, msg: &[u8]) -> Option<Spans> {
        let (c, caps) = &mut cache.full;
        self.full
            .captures(c, &Input::new(msg).anchored(Anchored::Yes), caps);
        if !caps.is_match() {
            return None;
        }
        Some(
            self.full_groups
                .map(|g| g.and_then(|g| caps.get_group(g)).map(|s| (s.start, s.end))),
        )
    }

    /// The fast path only; `None` when it does not apply or cannot decide.
    pub fn split_extract(&self, cache: &mut ExtractCache, msg: &[u8]) -> Option<Spans> {
        match self.split_decide(cache, msg) {
            Fast::Match(spans) => Some(spans),
            Fast::NoMatch | Fast::Unknown => None,
        }
    }

    /// Whether the fast path rules the line out: A matches no prefix of it, so
    /// `A .* B` cannot match (the general engine would say the same, only slower).
    pub fn split_rules_out(&self, cache: &mut ExtractCache, msg: &[u8]) -> bool {
        matches!(self.split_decide(cache, msg), Fast::NoMatch)
    }

    fn split_decide(&self, cache: &mut ExtractCache, msg: &[u8]) -> Fast {
        let (Some(split), Some((hc, hcaps)), Some((tc, tcaps))) = (
            self.split.as_ref(),
            cache.head.as_mut(),
            cache.tail.as_mut(),
        ) else {
            return Fast::Unknown;
        };
        split
            .head
            .captures(hc, &Input::new(msg).anchored(Anchored::Yes), hcaps);
        let Some(head) = hcaps.get_match() else {
            return Fast::NoMatch;
        };
        let a = head.end();
        let from = a + split.min_gap;
        if from > msg.len() {
            return Fast::Unknown;
        }
        for rel in memchr::memmem::rfind_iter(&msg[from..], &split.tail_literal) {
            let s = from + rel;
            split.tail.captures(
                tc,
                &Input::new(msg).range(s..).anchored(Anchored::Yes),
                tcaps,
            );
            if tcaps.is_match() {
                let mut spans: Spans = [0, 1, 2].map(|k| {
                    let head = split.head_groups[k].and_then(|g| hcaps.get_group(g));
                    let tail = split.tail_groups[k].and_then(|g| tcaps.get_group(g));
                    head.or(tail).map(|sp| (sp.start, sp.end))
                });
                if let Some(k) = split.gap_group {
                    spans[k] = Some((a, s));
                }
                return Fast::Match(spans);
            }
        }
        // A's preferred end left no split. Another end of A might, but only if B's leading
        // literal occurs somewhere at all; when it does not, nothing can match.
        if memchr::memmem::find(msg, &split.tail_literal).is_none() {
            return Fast::NoMatch;
        }
        Fast::Unknown
    }
}
