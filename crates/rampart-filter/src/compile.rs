//! A filter definition compiled into a matcher:
//! literal prefilter (Aho-Corasick) -> the first pattern in file order that matches (from
//! the literals the message contains, or one multi-pattern DFA pass) -> groups resolved for
//! that pattern only. Everything works on bytes with the `regex` crate only (linear time: no line an
//! attacker writes can stall it), with Unicode classes off so invalid UTF-8 never hides a
//! line and `\d`, `\s`, `\w` mean their ASCII classes.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};
use regex_syntax::hir::literal;

use crate::extract::{ExtractCache, Extractor};
use crate::plan::Plan;

use crate::def::{Attempt, FilterConfig, ParamValues, PatternConfig, ResolvedParam};
use crate::host::{parse_host, HOST_REGEX, HOST_TAG};
use crate::literal::required_literals;
use crate::time::FormatChoice;
use crate::FilterError;

/// The shortest leading literal of a pattern's part after the prefix for [`Dispatch`].
const MIN_LEAD: usize = 4;

/// Compiled regexes larger than this are refused (a filter is data, possibly untrusted).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Named groups a pattern may define besides `host` (which `<HOST>` creates).
const KNOWN_GROUPS: [&str; 2] = ["user", "conn"];

/// What a pattern does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternKind {
    /// The line is a failure of the address it names.
    Failure,
    /// The line names the address of a connection id; it is not a failure.
    Note,
}

/// One compiled pattern.
#[derive(Debug)]
pub struct Pattern {
    /// The pattern's id from the filter file.
    pub id: String,
    /// Failure or note.
    pub kind: PatternKind,
    /// The full regex (prefix + pattern, `<HOST>` expanded).
    pub source: String,
    extractor: Extractor,
    /// The literals the prefilter looks for (one of them is in every match), if any.
    pub literals: Option<Vec<Vec<u8>>>,
    /// The line's part in a login attempt of its connection, if the pattern declares one.
    pub attempt: Option<Attempt>,
}

/// A compiled filter. Immutable and shareable across threads; per-thread scratch space is a
/// [`Scratch`].
#[derive(Debug)]
pub struct Filter {
    name: String,
    description: String,
    sources: Vec<String>,
    timestamp: FormatChoice,
    params: Vec<ResolvedParam>,
    attacker_fields: Vec<String>,
    patterns: Vec<Pattern>,
    /// All failure and note patterns in one automaton, in priority order.
    set: meta::Regex,
    ignore_ids: Vec<String>,
    ignore: Option<RegexSet>,
    prefilter: Option<AhoCorasick>,
    /// Finds which patterns can match a message (see [`Filter::match_message`]).
    selector: Option<Selector>,
    /// The prefix matched once per line, then the patterns its next bytes allow.
    dispatch: Option<Dispatch>,
}

/// Patterns that share the filter's prefix, matched as "prefix once, then each candidate
/// pattern's own part from where the prefix ends". Built only when the prefix has a plan
/// that one byte decides whatever part follows it ([`Plan::prefix`]): its single match is
/// then the prefix part of every pattern's match, so a line the prefix does not match
/// matches no pattern, and a pattern can only match if its part matches at the prefix's
/// end. Each part's leading literals (every match of the part starts with one) pick the
/// candidates by the bytes at the prefix's end; every part must have them.
/// The tests compare this path with the combined automaton on every corpus line.
#[derive(Debug)]
struct Dispatch {
    /// A string every match of the prefix contains (common to its required literals): a
    /// line without it is ruled out by one SIMD search before the prefix's plan walks it
    /// (most lines of a shared log are another program's).
    gate: Option<memchr::memmem::Finder<'static>>,
    prefix: Plan,
    /// Leading literals of the parts by their first byte, each with the bit of its part.
    leads: Box<[Leads; 256]>,
    /// Each pattern's part after the prefix.
    parts: Vec<Extractor>,
}

/// The longest string (at least 3 bytes) that each of `lits` contains, if any.
fn common_substring(lits: &[Vec<u8>]) -> Option<Vec<u8>> {
    let shortest = lits.iter().min_by_key(|l| l.len())?;
    (3..=shortest.len()).rev().find_map(|n| {
        shortest.windows(n).find_map(|w| {
            lits.iter()
                .all(|l| memchr::memmem::find(l, w).is_some())
                .then(|| w.to_vec())
        })
    })
}

/// Leading literals that start with one byte, each with the bits of the parts it starts.
type Leads = Vec<(Box<[u8]>, u64)>;

impl Dispatch {
    /// `parts`: each pattern's regex after the prefix, `<HOST>` expanded. `None` when the
    /// shape does not allow it (the filter then uses its other paths).
    fn new(prefix: &str, parts: &[String]) -> Option<Self> {
        // Flags set in the prefix (`(?i)`) would reach into the parts: not split then.
        let bytes = prefix.as_bytes();
        if bytes.windows(3).any(|w| {
            w[0] == b'('
                && w[1] == b'?'
                && (w[2].is_ascii_alphabetic() || w[2] == b'-')
                && w[2] != b'P'
        }) || parts.len() > 64
        {
            return None;
        }
        let parse = |p: &str| {
            regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(p)
                .ok()
        };
        let prefix_hir = parse(prefix)?;
        let part_hirs = parts.iter().map(|p| parse(p)).collect::<Option<Vec<_>>>()?;
        let plan = Plan::prefix(&prefix_hir, &part_hirs)?;
        let gate = required_literals(&prefix_hir)
            .and_then(|lits| common_substring(&lits))
            .map(|c| memchr::memmem::Finder::new(&c).into_owned());
        let mut lits: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut extractors = Vec::with_capacity(parts.len());
        for (i, hir) in part_hirs.iter().enumerate() {
            let seq = literal::Extractor::new()
                .kind(literal::ExtractKind::Prefix)
                .limit_class(4)
                .limit_total(64)
                .extract(hir);
            // Every part must start with a selective literal: matching the prefix on every
            // line only pays when its next bytes rule most lines out. (Filters whose parts
            // start with `"` or a class are better served by the line's literal scan.)
            match seq.literals() {
                Some(ls) if !ls.is_empty() && ls.iter().all(|l| l.as_bytes().len() >= MIN_LEAD) => {
                    lits.extend(ls.iter().map(|l| (l.as_bytes().to_vec(), 1u64 << i)));
                }
                _ => return None,
            }
            extractors.push(Extractor::new(hir).ok()?);
        }
        let mut leads: Box<[Leads; 256]> = Box::new(std::array::from_fn(|_| Vec::new()));
        for (l, bit) in lits {
            let bucket = &mut leads[usize::from(l[0])];
            match bucket.iter_mut().find(|(q, _)| **q == *l) {
                Some((_, bits)) => *bits |= bit,
                None => bucket.push((l.into(), bit)),
            }
        }
        Some(Self {
            gate,
            prefix: plan,
            leads,
            parts: extractors,
        })
    }
}

/// The patterns that may match a line: a bit per pattern, or `None` for "use the combined
/// automaton" (filters whose patterns do not all have literals, or have more than 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidates(Option<u64>);

/// Picks the candidate patterns of a message from the literals it contains, so that the
/// pattern that wins can be found without running the combined automaton: every pattern
/// that matches contains one of its literals, and the candidates are tried in file order.
/// Searching leftmost-longest and restarting one byte after each hit's start finds a
/// literal at every position where one starts; the only literals that can hide are
/// shorter literals starting at the same position, which are prefixes of the one reported,
/// so each literal's owner mask includes the owners of its prefixes.
#[derive(Debug)]
struct Selector {
    finder: AhoCorasick,
    /// Per literal: bit i set when pattern i owns it or one of its prefixes.
    owners: Vec<u64>,
}

impl Selector {
    fn new(patterns: &[Pattern]) -> Option<Self> {
        if patterns.len() > 64 {
            return None;
        }
        let mut lits: Vec<(&[u8], u64)> = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            for l in p.literals.as_ref()? {
                lits.push((l, 1u64 << i));
            }
        }
        let owners = lits
            .iter()
            .map(|(l, _)| {
                lits.iter()
                    .filter(|(q, _)| l.starts_with(q))
                    .fold(0u64, |m, (_, o)| m | o)
            })
            .collect();
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(lits.iter().map(|(l, _)| l))
            .ok()?;
        Some(Self { finder, owners })
    }

    fn candidates(&self, msg: &[u8]) -> u64 {
        let mut mask = 0u64;
        let mut at = 0;
        while at < msg.len() {
            let input = aho_corasick::Input::new(msg).span(at..msg.len());
            let Some(m) = self.finder.find(input) else {
                break;
            };
            mask |= self.owners[m.pattern().as_usize()];
            at = m.start() + 1;
        }
        mask
    }
}

/// Reusable capture buffers for one thread (no allocation per line).
#[derive(Debug)]
pub struct Scratch {
    caches: Vec<ExtractCache>,
    /// For the parts after the prefix (see [`Dispatch`]).
    part_caches: Vec<ExtractCache>,
}

/// What a pattern captured on one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    /// Index of the pattern in [`Filter::patterns`].
    pub pattern: usize,
    /// Failure or note.
    pub kind: PatternKind,
    /// The address, if the pattern has `<HOST>` and its text parsed as an address.
    pub addr: Option<IpAddr>,
    /// The `user` capture, if any.
    pub user: Option<&'a [u8]>,
    /// The `conn` capture, if any.
    pub conn: Option<&'a [u8]>,
}

/// The verdict of a filter on one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// No pattern matched.
    NoMatch,
    /// A failure pattern matched but an ignore pattern vetoed it.
    Ignored {
        /// The failure pattern that matched.
        pattern: usize,
    },
    /// A pattern matched but its `<HOST>` text is not an address.
    BadHost {
        /// The pattern that matched.
        pattern: usize,
    },
    /// A pattern matched.
    Hit(Hit<'a>),
}

impl Pattern {
    /// The engines that extract this pattern's groups.
    pub fn extractor(&self) -> &Extractor {
        &self.extractor
    }
}

impl Filter {
    /// Compiles a filter from its TOML text with its parameters' defaults. `origin` names
    /// the file in errors.
    pub fn from_toml(name: &str, origin: &str, text: &str) -> Result<Self, FilterError> {
        Self::from_toml_with(name, origin, text, &ParamValues::new())
    }

    /// Compiles a filter from its TOML text with parameter values.
    pub fn from_toml_with(
        name: &str,
        origin: &str,
        text: &str,
        params: &ParamValues,
    ) -> Result<Self, FilterError> {
        let config: FilterConfig = toml::from_str(text).map_err(|e| FilterError::Toml {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::compile_with(name, origin, &config, params)
    }

    /// Loads a filter file from disk with its parameters' defaults; its name is the file
    /// stem.
    pub fn from_path(path: &Path) -> Result<Self, FilterError> {
        Self::from_path_with(path, &ParamValues::new())
    }

    /// Loads a filter file from disk with parameter values.
    pub fn from_path_with(path: &Path, params: &ParamValues) -> Result<Self, FilterError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| FilterError::Io {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("filter")
            .to_owned();
        Self::from_toml_with(&name, &origin, &text, params)
    }

    /// Compiles a parsed definition with its parameters' defaults.
    pub fn compile(name: &str, origin: &str, config: &FilterConfig) -> Result<Self, FilterError> {
        Self::compile_with(name, origin, config, &ParamValues::new())
    }

    /// Compiles a parsed definition with parameter values (see [`FilterConfig::resolve`]).
    pub fn compile_with(
        name: &str,
        origin: &str,
        config: &FilterConfig,
        params: &ParamValues,
    ) -> Result<Self, FilterError> {
        let (config, resolved_params) = config.resolve(name, origin, params)?;
        let config = &config;
        let err = |id: &str, what: String| FilterError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            what,
        };
        if config.failure.is_empty() {
            return Err(err(
                "-",
                "a filter needs at least one [[failure]] pattern".into(),
            ));
        }
        let prefix = config.prefix.as_deref().unwrap_or("");
        let mut seen = std::collections::HashSet::new();
        let all = config
            .failure
            .iter()
            .map(|p| (p, PatternKind::Failure))
            .chain(config.note.iter().map(|p| (p, PatternKind::Note)));
        let mut patterns = Vec::new();
        let mut any_host = false;
        for (p, kind) in all {
            check_id(origin, &p.id, &mut seen)?;
            let full = expand(prefix, p, origin)?;
            // Parsed once: the engines are built from this, and it names the groups.
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(&full)
                .map_err(|e| FilterError::Regex {
                    origin: origin.to_owned(),
                    id: p.id.clone(),
                    message: e.to_string(),
                })?;
            let mut names = Vec::new();
            group_names(&hir, &mut names);
            let group = |n: &str| names.iter().position(|g| g == n);
            for g in &names {
                let g = g.as_str();
                if g != "host" && !KNOWN_GROUPS.contains(&g) {
                    return Err(err(
                        &p.id,
                        format!(
                            "unknown named group {g:?} (allowed: user, conn; <HOST> makes host)"
                        ),
                    ));
                }
            }
            let (host, conn) = (group("host"), group("conn"));
            any_host |= host.is_some();
            match (kind, p.attempt) {
                (_, Some(a)) if conn.is_none() => {
                    return Err(err(
                        &p.id,
                        format!("attempt = \"{a}\" needs a (?P<conn>...) group (in the pattern or the prefix) naming the connection"),
                    ));
                }
                (PatternKind::Failure, Some(Attempt::Succeeds)) => {
                    return Err(err(
                        &p.id,
                        "attempt = \"succeeds\" is for note patterns".into(),
                    ));
                }
                (
                    PatternKind::Note,
                    Some(a @ (Attempt::Opens | Attempt::Pending | Attempt::Closes)),
                ) => {
                    return Err(err(
                        &p.id,
                        format!("attempt = \"{a}\" is for failure patterns (notes take \"ends\" or \"succeeds\")"),
                    ));
                }
                _ => {}
            }
            match kind {
                PatternKind::Failure if host.is_none() && conn.is_none() => {
                    return Err(err(&p.id, "a failure pattern needs <HOST> (or a (?P<conn>...) group whose address a note pattern supplies)".into()));
                }
                PatternKind::Note if host.is_none() || conn.is_none() => {
                    return Err(err(
                        &p.id,
                        "a note pattern needs both <HOST> and (?P<conn>...)".into(),
                    ));
                }
                _ => {}
            }
            let extractor = Extractor::new(&hir).map_err(|e| err(&p.id, e))?;
            patterns.push(Pattern {
                id: p.id.clone(),
                kind,
                literals: required_literals(&hir),
                source: full,
                extractor,
                attempt: p.attempt,
            });
        }
        if !any_host {
            return Err(err("-", "no pattern contains <HOST>".into()));
        }
        let set = meta::Regex::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                meta::Config::new()
                    .utf8_empty(false)
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT * 4)),
            )
            .build_many(
                &patterns
                    .iter()
                    .map(|p| p.source.as_str())
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| FilterError::Regex {
                origin: origin.to_owned(),
                id: "(all patterns together)".into(),
                message: e.to_string(),
            })?;
        let mut ignore_ids = Vec::new();
        let mut ignore_res = Vec::new();
        for p in &config.ignore {
            check_id(origin, &p.id, &mut seen)?;
            // An ignore pattern may use <HOST> (or inherit it from the prefix) to match
            // the address's place; its value is not used.
            let full = expand(prefix, p, origin)?;
            build_regex(&full, origin, &p.id)?;
            ignore_ids.push(p.id.clone());
            ignore_res.push(full);
        }
        let ignore = if ignore_res.is_empty() {
            None
        } else {
            Some(build_ignore_set(
                ignore_res.iter().map(String::as_str),
                origin,
            )?)
        };
        // The prefilter is only sound when every pattern has a required literal.
        // Leftmost-first (any hit will do) lets Aho-Corasick use its SIMD (Teddy) search.
        let prefilter = if patterns.iter().all(|p| p.literals.is_some()) {
            let lits: Vec<&[u8]> = patterns
                .iter()
                .filter_map(|p| p.literals.as_ref())
                .flatten()
                .map(Vec::as_slice)
                .collect();
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(lits)
                    .map_err(|e| err("-", e.to_string()))?,
            )
        } else {
            None
        };
        let dispatch = match config.prefix.as_deref() {
            Some(prefix) => {
                let parts = config
                    .failure
                    .iter()
                    .chain(&config.note)
                    .map(|p| p.regex.replace(HOST_TAG, HOST_REGEX))
                    .collect::<Vec<_>>();
                Dispatch::new(&prefix.replace(HOST_TAG, HOST_REGEX), &parts)
            }
            None => None,
        };
        // A filter with the prefix path never asks its selector (one automaton less to
        // build at start).
        let selector = match dispatch {
            Some(_) => None,
            None => Selector::new(&patterns),
        };
        Ok(Self {
            name: name.to_owned(),
            description: config.description.clone(),
            sources: config.sources.clone(),
            timestamp: config.timestamp,
            params: resolved_params,
            attacker_fields: config.attacker_fields.clone(),
            patterns,
            set,
            ignore_ids,
            ignore,
            prefilter,
            selector,
            dispatch,
        })
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the filter catches.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The log sources it is written for.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The timestamp format it expects.
    pub fn timestamp(&self) -> FormatChoice {
        self.timestamp
    }

    /// Its parameters with the values in effect (empty when it declares none).
    pub fn params(&self) -> &[ResolvedParam] {
        &self.params
    }

    /// The parts of a line the remote party chooses, as the filter declares them.
    pub fn attacker_fields(&self) -> &[String] {
        &self.attacker_fields
    }

    /// The name with the parameters that differ from their defaults, as a spec:
    /// `sshd[mode=aggressive]`, or just `sshd`.
    pub fn spec(&self) -> String {
        let set: Vec<String> = self
            .params
            .iter()
            .filter(|p| !p.is_default)
            .map(|p| format!("{}={}", p.name, p.value))
            .collect();
        if set.is_empty() {
            self.name.clone()
        } else {
            format!("{}[{}]", self.name, set.join(","))
        }
    }

    /// The failure and note patterns, in priority order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// The ids of the ignore patterns.
    pub fn ignore_ids(&self) -> &[String] {
        &self.ignore_ids
    }

    /// Whether the literal prefilter is active (every pattern has a required literal).
    pub fn has_prefilter(&self) -> bool {
        self.prefilter.is_some()
    }

    /// Fresh scratch space for [`Filter::match_message`].
    pub fn scratch(&self) -> Scratch {
        Scratch {
            caches: self
                .patterns
                .iter()
                .map(|p| p.extractor.create_cache())
                .collect(),
            part_caches: self
                .dispatch
                .iter()
                .flat_map(|d| d.parts.iter().map(Extractor::create_cache))
                .collect(),
        }
    }

    /// Cheap test on the raw line: can any pattern match it? `false` is definite.
    #[inline]
    pub fn is_candidate(&self, line: &[u8]) -> bool {
        self.candidates(line).is_some()
    }

    /// The patterns that can match `line` (from the literals it contains), or `None` when
    /// none can. One literal scan serves as both the prefilter and the pattern choice;
    /// scanning the raw line finds a superset of what its message (a suffix) contains.
    #[inline]
    pub fn candidates(&self, line: &[u8]) -> Option<Candidates> {
        match (&self.selector, &self.prefilter) {
            (Some(sel), _) => match sel.candidates(line) {
                0 => None,
                mask => Some(Candidates(Some(mask))),
            },
            (None, Some(ac)) => ac.is_match(line).then_some(Candidates(None)),
            (None, None) => Some(Candidates(None)),
        }
    }

    /// Runs the filter on one message (the line after its leading timestamp): the first
    /// pattern in file order that matches wins, and its groups are extracted. With literals
    /// for every pattern, the candidates come from the literals the message contains;
    /// otherwise one pass of the combined automaton picks the pattern.
    pub fn match_message<'a>(&self, scratch: &mut Scratch, msg: &'a [u8]) -> Verdict<'a> {
        if self.dispatch.is_some() {
            return self
                .match_dispatch(scratch, msg)
                .unwrap_or(Verdict::NoMatch);
        }
        match self.candidates(msg) {
            Some(c) => self.match_candidates(scratch, msg, c),
            None => Verdict::NoMatch,
        }
    }

    /// [`Filter::match_message`] with the candidates already found by
    /// [`Filter::candidates`] on the message's line.
    pub fn match_candidates<'a>(
        &self,
        scratch: &mut Scratch,
        msg: &'a [u8],
        candidates: Candidates,
    ) -> Verdict<'a> {
        let Candidates(Some(mut mask)) = candidates else {
            return self.match_message_with_set(scratch, msg);
        };
        while mask != 0 {
            let index = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let pattern = &self.patterns[index];
            if let Some(spans) = pattern.extractor.extract(&mut scratch.caches[index], msg) {
                return self.verdict(index, spans, msg);
            }
        }
        Verdict::NoMatch
    }

    /// Whether the filter matches its prefix once per line and then the patterns its next
    /// bytes allow ([`Filter::match_dispatch`]).
    pub fn has_dispatch(&self) -> bool {
        self.dispatch.is_some()
    }

    /// Runs a filter with a shared prefix on one message: `None` when the line is no
    /// candidate at all (the prefix does not match, or no pattern can start where it
    /// ends; also when the filter has no such path), else the verdict.
    pub fn match_dispatch<'a>(&self, scratch: &mut Scratch, msg: &'a [u8]) -> Option<Verdict<'a>> {
        if !self.passes_gate(msg) {
            return None;
        }
        self.match_dispatch_gated(scratch, msg)
    }

    /// Whether `text` contains the prefix path's gate string (true without one). A line
    /// that does not is no candidate; asked of the raw line, it spares the timestamp too
    /// (the message is part of the line, so the answer never wrongly rules a line out).
    pub fn passes_gate(&self, text: &[u8]) -> bool {
        match self.dispatch.as_ref().and_then(|d| d.gate.as_ref()) {
            Some(gate) => gate.find(text).is_some(),
            None => true,
        }
    }

    /// [`Filter::match_dispatch`] for a message whose line passed [`Filter::passes_gate`].
    pub fn match_dispatch_gated<'a>(
        &self,
        scratch: &mut Scratch,
        msg: &'a [u8],
    ) -> Option<Verdict<'a>> {
        let d = self.dispatch.as_ref()?;
        let (end, head) = d.prefix.run(msg, 0)?;
        let rest = &msg[end..];
        let mut mask = 0u64;
        if let Some(&b) = rest.first() {
            for (lit, bit) in &d.leads[usize::from(b)] {
                if rest
                    .get(..lit.len())
                    .is_some_and(|r| crate::plan::bytes_eq(r, lit))
                {
                    mask |= bit;
                }
            }
        }
        if mask == 0 {
            return None;
        }
        while mask != 0 {
            let index = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(part) = d.parts[index].extract_at(&mut scratch.part_caches[index], msg, end)
            {
                let spans = [
                    part[0].or(head[0]),
                    part[1].or(head[1]),
                    part[2].or(head[2]),
                ];
                return Some(self.verdict(index, spans, msg));
            }
        }
        Some(Verdict::NoMatch)
    }

    /// [`Filter::match_message`] by the combined automaton alone (public for the tests that
    /// compare both ways).
    pub fn match_message_with_set<'a>(&self, scratch: &mut Scratch, msg: &'a [u8]) -> Verdict<'a> {
        let Some(m) = self.set.search(&Input::new(msg).anchored(Anchored::Yes)) else {
            return Verdict::NoMatch;
        };
        let index = m.pattern().as_usize();
        match self.patterns[index]
            .extractor
            .extract(&mut scratch.caches[index], msg)
        {
            Some(spans) => self.verdict(index, spans, msg),
            // The combined automaton and the pattern's own engines agree by construction.
            None => Verdict::NoMatch,
        }
    }

    fn verdict<'a>(
        &self,
        index: usize,
        spans: crate::extract::Spans,
        msg: &'a [u8],
    ) -> Verdict<'a> {
        let pattern = &self.patterns[index];
        let slice = |k: usize| spans[k].map(|(s, e)| &msg[s..e]);
        if pattern.kind == PatternKind::Failure {
            if let Some(ignore) = &self.ignore {
                if ignore.is_match(msg) {
                    return Verdict::Ignored { pattern: index };
                }
            }
        }
        let addr = match slice(0) {
            Some(text) => match parse_host(text) {
                Some(a) => Some(a),
                None => return Verdict::BadHost { pattern: index },
            },
            None => None,
        };
        Verdict::Hit(Hit {
            pattern: index,
            kind: pattern.kind,
            addr,
            user: slice(1),
            conn: slice(2),
        })
    }
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Failure => "failure",
            Self::Note => "note",
        })
    }
}

fn check_id(
    origin: &str,
    id: &str,
    seen: &mut std::collections::HashSet<String>,
) -> Result<(), FilterError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(FilterError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            what: "a pattern id is 1 to 64 of [a-z0-9-]".into(),
        });
    }
    if !seen.insert(id.to_owned()) {
        return Err(FilterError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            what: "the id is used twice".into(),
        });
    }
    Ok(())
}

fn anchored(prefix: &str, regex: &str, origin: &str, id: &str) -> Result<String, FilterError> {
    let full = format!("{prefix}{regex}");
    if !full.starts_with('^') {
        return Err(FilterError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            what: "patterns must be anchored: start the prefix or the pattern with '^'".into(),
        });
    }
    Ok(full)
}

fn expand(prefix: &str, p: &PatternConfig, origin: &str) -> Result<String, FilterError> {
    let full = anchored(prefix, &p.regex, origin, &p.id)?;
    match full.matches(HOST_TAG).count() {
        0 | 1 => Ok(full.replace(HOST_TAG, HOST_REGEX)),
        _ => Err(FilterError::Invalid {
            origin: origin.to_owned(),
            id: p.id.clone(),
            what: "<HOST> may appear only once in a pattern".into(),
        }),
    }
}

/// The names of the named groups of a pattern.
fn group_names(hir: &regex_syntax::hir::Hir, out: &mut Vec<String>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            if let Some(n) = &c.name {
                out.push(n.to_string());
            }
            group_names(&c.sub, out);
        }
        HirKind::Repetition(r) => group_names(&r.sub, out),
        HirKind::Concat(xs) | HirKind::Alternation(xs) => {
            for x in xs {
                group_names(x, out);
            }
        }
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {}
    }
}

fn build_regex(full: &str, origin: &str, id: &str) -> Result<Regex, FilterError> {
    RegexBuilder::new(full)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| FilterError::Regex {
            origin: origin.to_owned(),
            id: id.to_owned(),
            message: e.to_string(),
        })
}

fn build_ignore_set<'a>(
    regexes: impl IntoIterator<Item = &'a str>,
    origin: &str,
) -> Result<RegexSet, FilterError> {
    RegexSetBuilder::new(regexes)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT * 4)
        .build()
        .map_err(|e| FilterError::Regex {
            origin: origin.to_owned(),
            id: "(set)".into(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::common_substring;

    #[test]
    fn the_prefix_gate_is_a_string_every_required_literal_contains() {
        let lits = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            common_substring(&lits(&[" sshd", "[sshd]"])),
            Some(b"sshd".to_vec())
        );
        assert_eq!(
            common_substring(&lits(&["proftpd[", "proftpd "])),
            Some(b"proftpd".to_vec())
        );
        assert_eq!(common_substring(&lits(&["abc", "xyz"])), None);
        assert_eq!(common_substring(&lits(&["ab"])), None);
        assert_eq!(common_substring(&[]), None);
    }
}
