//! A loaded fail2ban filter and its per-line processing, as fail2ban's `Filter.processLine`
//! and `findFailure` do it: date cut, line buffer (`maxlines`), `ignoreregex` pre-check,
//! `prefregex` with `<F-CONTENT>`, the failregexes (first match wins, or all of them in
//! check-all mode), ignoreregex veto, multi-line correlation by `<F-MLFID>` with
//! `<F-NOFAIL>`, `<F-MLFFORGET>`, `<F-MLFGAINED>`, and the failure id.

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;
use rampart_core::Timestamp;

use crate::date::{year_of, DateDetector, DefaultZone};
use crate::loader::{load_def, parse_spec, FilterDef, FilterSpec};
use crate::pyre::{Caps, PyRegex, Search};
use crate::{tags, F2bError};

/// How [`F2bFilter::load`] builds a filter.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Zone for dates that carry none (fail2ban: the system's local time, or `logtimezone`).
    pub zone: DefaultZone,
    /// The current year, which bounds `%ExY` (fail2ban: this year -1 .. +3, and 2000+).
    pub current_year: i16,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        LoadOptions {
            zone: DefaultZone::Local(jiff::tz::TimeZone::system()),
            current_year: year_of(now),
        }
    }
}

/// One compiled regex with the indices of the groups fail2ban gives meaning to.
#[derive(Debug, Clone)]
pub struct Rx {
    re: PyRegex,
    /// All named groups (name, index), sorted by name.
    named: Vec<(&'static str, usize)>,
    alts: Vec<(usize, &'static str)>,
    tuples: Vec<(usize, &'static str)>,
    skiplines: Vec<usize>,
    literals: Option<(Vec<String>, bool)>,
    /// For backtracking patterns: a scan for the literals before running the matcher.
    gate: Option<AhoCorasick>,
    multiline: bool,
    /// Every match sets `mlfforget` and `nofail` or `mlfgained` (non-empty), and there is
    /// no `mlfid` group: with no live cache entry for the line's multi-line id, such a
    /// match yields nothing and changes nothing (first-match mode, no ignoreregex).
    forget_nofail: bool,
    /// For a pattern anchored at the start of the text (not `re.MULTILINE`) that begins
    /// with case-sensitive literals: those literals, which every matching text starts
    /// with (a check cheaper than the gate's scan).
    lead: Option<String>,
}

impl Rx {
    pub(crate) fn new(expanded: &str, multiline: bool) -> Result<Self, String> {
        let re = PyRegex::new(expanded, multiline)?;
        let mut named: Vec<(&'static str, usize)> = Vec::new();
        for (k, v) in re.names() {
            named.push((intern(k)?, *v));
        }
        named.sort();
        let mut alts = Vec::new();
        let mut tuples = Vec::new();
        let mut skiplines: Vec<(usize, usize)> = Vec::new();
        for (name, idx) in &named {
            if name.len() > 4 {
                for (pre, list) in [("alt_", &mut alts), ("tuple_", &mut tuples)] {
                    if let Some(rest) = name.strip_prefix(pre) {
                        // `(.*?)(?:_\d+)?$`: a trailing `_<digits>` is a counter.
                        let base = match rest.rfind('_') {
                            Some(i)
                                if i + 1 < rest.len()
                                    && rest[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
                            {
                                &rest[..i]
                            }
                            _ => rest,
                        };
                        list.push((*idx, intern(&tags::group_name(base))?));
                    }
                }
            }
            if let Some(n) = name.strip_prefix("skiplines") {
                if let Ok(k) = n.parse::<usize>() {
                    skiplines.push((k, *idx));
                }
            }
        }
        skiplines.sort();
        let parsed = crate::pyre::parse::parse(expanded, multiline).ok();
        let lead = parsed.as_ref().and_then(|p| leading_literals(&p.node));
        let forget_nofail = {
            let mut always = Vec::new();
            if let Some(p) = &parsed {
                crate::pyre::parse::always_nonempty_groups(&p.node, &mut always);
            }
            let idx = |g: &str| named.iter().find(|(n, _)| *n == g).map(|x| x.1);
            let sure = |g: &str| idx(g).is_some_and(|i| always.contains(&i));
            (sure("nofail") || sure("mlfgained")) && sure("mlfforget") && idx("mlfid").is_none()
        };
        let literals = crate::prefilter::required_literals(expanded, multiline);
        let gate = if re.is_backtracking() {
            literals.as_ref().and_then(|(l, icase)| {
                aho_corasick::AhoCorasickBuilder::new()
                    .ascii_case_insensitive(*icase)
                    .build(l)
                    .ok()
            })
        } else {
            None
        };
        Ok(Rx {
            gate,
            re,
            named,
            alts,
            tuples,
            skiplines: skiplines.into_iter().map(|x| x.1).collect(),
            literals,
            multiline,
            forget_nofail,
            lead,
        })
    }

    /// The pattern after tag expansion.
    pub fn pattern(&self) -> &str {
        self.re.as_str()
    }

    /// Whether it runs on the backtracking matcher.
    pub fn is_backtracking(&self) -> bool {
        self.re.is_backtracking()
    }

    /// Strings one of which every match contains (for the prefilter), and whether they
    /// are to be matched case-insensitively.
    pub fn literals(&self) -> Option<(&[String], bool)> {
        self.literals.as_ref().map(|(l, i)| (l.as_slice(), *i))
    }

    /// The literal checks: `false` when `text` lacks what every match needs (the leading
    /// literals of an anchored pattern, or all of the gate's literals).
    fn gate_passes(&self, text: &str) -> bool {
        if let Some(lead) = &self.lead {
            if !text.starts_with(lead.as_str()) {
                return false;
            }
        }
        self.gate.as_ref().is_none_or(|g| g.is_match(text))
    }

    fn has_group(&self, name: &str) -> bool {
        self.named.iter().any(|(n, _)| *n == name)
    }

    /// groupdict plus fail2ban's alt/tuple post-processing.
    /// (Values in buffers from `pool` where it has them.)
    fn groups(&self, text: &str, caps: &Caps, pool: &mut Pool) -> Fields {
        let mut f = Fields {
            vals: pool.list(),
            ..Fields::default()
        };
        f.vals.reserve(self.named.len());
        for (name, idx) in &self.named {
            let v = caps.get(*idx).map(|(s, e)| pool.string(&text[s..e]));
            f.vals.push((name, v));
        }
        for (idx, base) in &self.alts {
            let v = caps.get(*idx).map(|(s, e)| &text[s..e]);
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                if !f.truthy(base) {
                    let v = pool.string(v);
                    if let Some(old) = f.set(base, Some(v)) {
                        pool.give_string(old);
                    }
                }
            }
        }
        for (idx, base) in &self.tuples {
            let v = caps.get(*idx).map(|(s, e)| text[s..e].to_owned());
            let cur = f.get(base).map(str::to_owned);
            let t = match cur {
                Some(c) if c.starts_with('\u{1}') => format!("{c}\u{1}{}", v.unwrap_or_default()),
                c => format!(
                    "\u{1}{}\u{1}{}",
                    c.unwrap_or_default(),
                    v.unwrap_or_default()
                ),
            };
            f.set(base, Some(t));
        }
        f
    }
}

/// Most distinct group names [`intern`] keeps (for all filters a process loads: a
/// configuration has some tens); past it, loading a filter with a new name fails.
const MAX_NAMES: usize = 4096;

/// The one copy of a group name, kept for the life of the process (bounded by
/// [`MAX_NAMES`]): the values of a match carry names as `&'static str`, which cost nothing
/// to copy (an `Arc` per value was two atomic operations on every matching line).
fn intern(name: &str) -> Result<&'static str, String> {
    use std::collections::HashSet;
    use std::sync::{Mutex, PoisonError};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return Ok(n);
    }
    if names.len() >= MAX_NAMES {
        return Err(format!(
            "more than {MAX_NAMES} distinct group names in the filters loaded; {name:?} is one too many"
        ));
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(n);
    Ok(n)
}

/// Named values of one match (Python's `groupdict()`, `None` for groups that did not take
/// part), plus fail2ban's merged multi-line data.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// (name, value): the names are interned ([`intern`]), so a copy is free.
    vals: Vec<(&'static str, Option<String>)>,
    users: Option<BTreeSet<String>>,
    /// Lines merged into this failure (fail2ban keeps the lines; only their number is
    /// ever read).
    matches: usize,
    /// Lines merged while the id was only `nofail` data.
    nofail_matches: usize,
    pending: bool,
}

impl Fields {
    /// The value of `k` (`None` when absent or not participating).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.vals
            .iter()
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| v.as_deref())
    }
    /// Whether `k` is present with a participating value (`None` means "did not take part").
    pub fn has(&self, k: &str) -> Option<bool> {
        self.vals
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.is_some())
    }
    fn truthy(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| !v.is_empty())
    }
    /// Sets `k` to `v`; returns the value it replaces (`None` if there was none).
    fn set(&mut self, k: &'static str, v: Option<String>) -> Option<String> {
        match self
            .vals
            .iter_mut()
            .find(|(n, _)| std::ptr::eq(*n, k) || *n == k)
        {
            Some(e) => std::mem::replace(&mut e.1, v),
            None => {
                self.vals.push((k, v));
                None
            }
        }
    }
    fn pop(&mut self, k: &str) -> Option<String> {
        let i = self.vals.iter().position(|(n, _)| *n == k)?;
        self.vals.remove(i).1
    }
    /// All values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.vals.iter().map(|(k, v)| (*k, v.as_deref()))
    }
}

/// Most strings a [`Pool`] keeps.
const POOL_STRINGS: usize = 256;
/// Most value lists a [`Pool`] keeps.
const POOL_LISTS: usize = 16;
/// Longest string buffer a [`Pool`] keeps (a longer one is freed).
const POOL_STRING_CAPACITY: usize = 256;

/// Buffers of values that a state's matches gave up (a merge replaces the old values
/// of a multi-line id; the oldest cache entries are dropped), reused for the values of
/// the next matches instead of allocating. Bounded: past [`POOL_STRINGS`] strings or
/// [`POOL_LISTS`] lists a buffer given back is freed.
#[derive(Debug, Clone, Default)]
struct Pool {
    strings: Vec<String>,
    lists: Vec<Vec<(&'static str, Option<String>)>>,
}

impl Pool {
    /// A string holding `v`, in a pooled buffer if there is one.
    fn string(&mut self, v: &str) -> String {
        match self.strings.pop() {
            Some(mut s) => {
                s.clear();
                s.push_str(v);
                s
            }
            None => v.to_owned(),
        }
    }
    /// An empty value list, pooled if there is one.
    fn list(&mut self) -> Vec<(&'static str, Option<String>)> {
        self.lists.pop().unwrap_or_default()
    }
    /// Takes a string back (or frees it).
    fn give_string(&mut self, s: String) {
        if self.strings.len() < POOL_STRINGS
            && s.capacity() > 0
            && s.capacity() <= POOL_STRING_CAPACITY
        {
            self.strings.push(s);
        }
    }
    /// Takes the buffers of `f` back (or frees them).
    fn give(&mut self, mut f: Fields) {
        for (_, v) in f.vals.drain(..) {
            if let Some(s) = v {
                self.give_string(s);
            }
        }
        if self.lists.len() < POOL_LISTS {
            self.lists.push(f.vals);
        }
    }
}

/// What a failure is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailId {
    /// An IP address (from `ip4`/`ip6`, or a `dns`/`fid` value that parses as one).
    Ip(IpAddr),
    /// A host name (`dns` group; fail2ban would resolve it according to `usedns`).
    Host(String),
    /// Any other failure id (`<F-ID>`, an invalid address such as `192.030.0.6`).
    Raw(String),
}

impl std::fmt::Display for FailId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailId::Ip(ip) => write!(f, "{ip}"),
            FailId::Host(h) | FailId::Raw(h) => f.write_str(h),
        }
    }
}

/// One result of a line.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The failure id; `None` while pending (waiting for a later line with the same MLFID).
    pub id: Option<FailId>,
    /// The line's time (`None` when no date was found and none could be reused).
    pub time: Option<Timestamp>,
    /// Index of the failregex that matched.
    pub pattern: usize,
    /// Lines merged into this failure (fail2ban's `len(matches)`).
    pub attempts: usize,
    /// `<F-NOFAIL>` (or a success): not a failure, only data for the MLFID.
    pub nofail: bool,
    /// The named values (groups and merged multi-line data); shared with the multi-line
    /// id cache.
    pub fields: Arc<Fields>,
}

impl Failure {
    /// `user` (from `<F-USER>` or an `<F-ALT_USER>`).
    pub fn user(&self) -> Option<&str> {
        self.fields.get("user")
    }
    /// Every user seen on this multi-line id, sorted.
    pub fn users(&self) -> Vec<&str> {
        self.fields
            .users
            .iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }
    /// A real failure: an id and not `nofail`.
    pub fn is_failure(&self) -> bool {
        self.id.is_some() && !self.nofail
    }
    /// The address, when the id is one.
    pub fn addr(&self) -> Option<IpAddr> {
        match &self.id {
            Some(FailId::Ip(ip)) => Some(*ip),
            _ => None,
        }
    }
}

/// A fail2ban filter, compiled.
#[derive(Debug, Clone)]
pub struct F2bFilter {
    def: FilterDef,
    pref: Option<Rx>,
    fail: Vec<Rx>,
    ignore: Vec<Rx>,
    prefilter: Option<crate::prefilter::Prefilter>,
    /// The linear failregexes in one set (one pass finds which can match) and, per
    /// failregex, its index in the set.
    set: Option<LazySet>,
    set_index: Vec<Option<usize>>,
    /// The same patterns as `set`, when each is anchored at the start of the text: one
    /// leftmost-first search gives the first of them (in file order) that matches, which
    /// is all a first-match-wins line needs (the set runs only when more is asked).
    first: Option<Dual>,
    /// For a single-line buffer whose first-match answer is known: the failregexes to
    /// try, in order, when set pattern `j` is the first that matches (`orders[j]`), or
    /// when none does (the last one). The others are set patterns the answer rules out.
    orders: Vec<Vec<usize>>,
    /// Every failregex, in order.
    order_all: Vec<usize>,
    /// The failregexes outside the set (all of them without one), in order.
    outside: Vec<usize>,
    /// With the first-match search: what the first byte of an ASCII text tells of the
    /// failregexes that can match it ([`ByFirst`]). When no set pattern can, the search
    /// is not needed; when one can, that pattern's own search (which finds its groups
    /// too) replaces it; when only nofail + forget ones can, a line without a live
    /// multi-line id needs no search at all.
    by_first: Option<Box<ByFirst>>,
    pref_fast: Option<PrefFast>,
    /// This filter's number in the process (copies share it): the lazy DFA caches of a
    /// [`State`] are for the filter with this number.
    id: u64,
    /// The date detector in its initial state, copied into each new [`State`].
    date: DateDetector,
}

/// For a prefregex `^<F-MLFID>P</F-MLFID>Q<F-CONTENT>.+</F-CONTENT>$` (sshd's form): the
/// leftmost-first match ends of `^PQ` and `^P`, found with a DFA. When `^PQ` leaves at least
/// one character, `.+$` takes the rest, so these ends are exactly where the content starts
/// and the mlfid ends (both optional parts can match empty), without running captures.
/// Both begin with `^`, so one anchored forward pass finds each end (no start to find).
#[derive(Debug, Clone)]
struct PrefFast {
    content: Dual,
    mlfid: Dual,
    /// When `Q` can match empty and has no assertion: the bytes a non-empty match of `Q`
    /// can start with (ASCII form). Where the mlfid is followed by none of them, `Q`
    /// matches empty there and the content starts where the mlfid ends, so one search
    /// (for `^P`) gives both ends. `None`: always search for `^PQ`.
    q_first: Option<ByteSet>,
}

/// A set of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.0[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    }
    fn union(&mut self, o: ByteSet) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a |= b;
        }
    }
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
}

/// The bytes a non-empty match of `hir` can start with, and whether it can match empty;
/// `None` for what this does not follow (Unicode classes, and assertions unless
/// `loose`). `loose`: an assertion counts as matching empty, which can only add bytes
/// and emptiness (an assertion only rules matches out), so the answer is a superset.
fn first_bytes(hir: &regex_syntax::hir::Hir, loose: bool) -> Option<(ByteSet, bool)> {
    use regex_syntax::hir::{Class, HirKind};
    Some(match hir.kind() {
        HirKind::Empty => (ByteSet::default(), true),
        HirKind::Literal(l) => {
            let mut f = ByteSet::default();
            let b = *l.0.first()?;
            f.add_range(b, b);
            (f, false)
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut f = ByteSet::default();
            for r in c.ranges() {
                f.add_range(r.start(), r.end());
            }
            (f, false)
        }
        HirKind::Look(_) if loose => (ByteSet::default(), true),
        HirKind::Class(Class::Unicode(_)) | HirKind::Look(_) => return None,
        HirKind::Repetition(r) => {
            let (f, n) = first_bytes(&r.sub, loose)?;
            (f, n || r.min == 0)
        }
        HirKind::Capture(c) => first_bytes(&c.sub, loose)?,
        HirKind::Concat(v) => {
            let mut f = ByteSet::default();
            for x in v {
                let (g, n) = first_bytes(x, loose)?;
                f.union(g);
                if !n {
                    return Some((f, false));
                }
            }
            (f, true)
        }
        HirKind::Alternation(v) => {
            let mut f = ByteSet::default();
            let mut any = false;
            for x in v {
                let (g, n) = first_bytes(x, loose)?;
                f.union(g);
                any |= n;
            }
            (f, any)
        }
    })
}

impl PrefFast {
    fn new(expanded: &str) -> Option<Self> {
        use crate::pyre::parse::{needs_backtracking, parse, Node};
        let parsed = parse(expanded, false).ok()?;
        let Node::Concat(items) = &parsed.node else {
            return None;
        };
        let n = items.len();
        let content = *parsed.names.get("content")?;
        let mlfid = *parsed.names.get("mlfid")?;
        if parsed.names.len() != 2 || parsed.groups != 2 || n < 4 {
            return None;
        }
        let start_ok = matches!(items[0], Node::Start { multiline: false });
        let end_ok = matches!(items[n - 1], Node::End { multiline: false });
        let content_ok = match &items[n - 2] {
            Node::Group {
                index: Some(i),
                node,
            } => {
                *i == content
                    && matches!(node.as_ref(), Node::Repeat { node, min: 1, max: None, greedy: true }
                        if matches!(node.as_ref(), Node::Any { dotall: false }))
            }
            _ => false,
        };
        let mlfid_ok = matches!(&items[1], Node::Group { index: Some(i), .. } if *i == mlfid);
        if !(start_ok && end_ok && content_ok && mlfid_ok) {
            return None;
        }
        let prefix = &items[..n - 2];
        if prefix.iter().any(needs_backtracking) {
            return None;
        }
        // (the meta regex's default limits)
        let limits = Limits {
            nfa: 10 << 20,
            cache: 2 << 20,
        };
        let emit = |nodes: &[Node], slot: usize| {
            let mut out = String::new();
            for x in nodes {
                crate::pyre::emit::emit(x, &mut out);
            }
            Dual::new(vec![out], limits, slot)
        };
        // `Q`, in the ASCII form (the shortcut is taken on ASCII lines only).
        let q_first = {
            let mut q = String::new();
            for x in &items[2..n - 2] {
                crate::pyre::emit::emit(x, &mut q);
            }
            regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(&q)
                .ok()
                .and_then(|h| first_bytes(&h, false))
                .and_then(|(f, nullable)| nullable.then_some(f))
        };
        Some(PrefFast {
            content: emit(prefix, SLOT_PREF_CONTENT)?,
            mlfid: emit(&items[..2], SLOT_PREF_MLFID)?,
            q_first,
        })
    }

    /// Where the content starts in `line` (the end of `^PQ`) and, when that came from it,
    /// where the mlfid ends; `ascii`: whether the line is ASCII.
    fn split(
        &self,
        caches: &mut DfaCaches,
        line: &str,
        ascii: bool,
    ) -> Option<(usize, Option<usize>)> {
        if let (Some(qf), true) = (&self.q_first, ascii) {
            // The match of `^PQ` is `P`'s preferred match, then `Q`'s preferred match
            // from there (`Q` can match empty, so `P`'s first choice always completes);
            // `Q`'s is empty when no non-empty match can start at the next byte.
            let m = self.mlfid_end(caches, line, true)?;
            return match line.as_bytes().get(m) {
                Some(&b) if qf.contains(b) => {
                    Some((self.content_end(caches, line, true)?, Some(m)))
                }
                _ => Some((m, Some(m))),
            };
        }
        Some((self.content_end(caches, line, ascii)?, None))
    }

    /// Where the content starts in `line` (the end of `^PQ`); `ascii`: whether the line
    /// is ASCII.
    fn content_end(&self, caches: &mut DfaCaches, line: &str, ascii: bool) -> Option<usize> {
        Self::end(&self.content, caches, line, ascii)
    }

    /// Where the mlfid ends in `line` (the end of `^P`).
    fn mlfid_end(&self, caches: &mut DfaCaches, line: &str, ascii: bool) -> Option<usize> {
        Self::end(&self.mlfid, caches, line, ascii)
    }

    /// Where the leftmost-first match of `re` (anchored at the start) ends in `text`: the
    /// end `regex::Regex::find` reports, from the forward pass alone. (The Unicode form
    /// not building is not expected, as the ASCII one did; then it is "no match".)
    fn end(re: &Dual, caches: &mut DfaCaches, text: &str, ascii: bool) -> Option<usize> {
        re.search_half(caches, text, ascii)?.map(|h| h.offset())
    }
}

/// Size limits of a [`Dual`]'s automata.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The NFA's size limit, in bytes.
    nfa: usize,
    /// The lazy DFA's cache capacity, in bytes (per state).
    cache: usize,
}

/// What the first byte and the literals of a text leave of the set patterns that can
/// match it ([`ByFirst::left`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// None can: the first-match search is not needed.
    None,
    /// Only this one can (and its match needs its groups): its own search, which finds
    /// the groups too, replaces the first-match search.
    One(usize),
    /// Only set patterns that are nofail + forget can, and no failregex outside the set:
    /// with no live cache entry for the line's multi-line id, the line needs no search.
    Forget,
    /// Ask the first-match search.
    Many,
}

/// For ASCII texts: which set patterns (anchored at the start) can match, from the text's
/// first byte and their literals.
#[derive(Debug, Clone)]
struct ByFirst {
    /// Per ASCII byte, the set patterns whose matches can start with it.
    cands: Vec<Vec<u16>>,
    /// Per ASCII byte, whether a failregex outside the set can start with it.
    others: [bool; 128],
    /// Per set pattern, searchers for strings one of which every match contains (`None`:
    /// no such case-sensitive set).
    lits: Vec<Option<Vec<memchr::memmem::Finder<'static>>>>,
    /// Per set pattern, whether it is nofail + forget ([`Rx::forget_nofail`]).
    forget: Vec<bool>,
}

impl ByFirst {
    /// What can match `body` (an ASCII text): the set patterns that can start with its
    /// first byte and whose literals it contains.
    fn left(&self, body: &str) -> Left {
        let Some(&b) = body.as_bytes().first().filter(|b| b.is_ascii()) else {
            return Left::Many;
        };
        let (mut n, mut last, mut all_forget) = (0, 0, true);
        for &k in &self.cands[usize::from(b)] {
            let k = usize::from(k);
            if let Some(l) = &self.lits[k] {
                if !l.iter().any(|x| x.find(body.as_bytes()).is_some()) {
                    continue;
                }
            }
            n += 1;
            last = k;
            all_forget &= self.forget[k];
        }
        match n {
            0 => Left::None,
            _ if all_forget && !self.others[usize::from(b)] => Left::Forget,
            1 if !self.forget[last] => Left::One(last),
            _ => Left::Many,
        }
    }
}

/// [`ByFirst`] for the set patterns `pats` (anchored at the start); `lits(k)`: set
/// pattern `k`'s case-sensitive literals; `forget(k)`: it is nofail + forget; `others`:
/// the first byte of each failregex outside the set, `None` when it could be any. `None`
/// when there are too many patterns.
fn first_byte_table(
    pats: &[String],
    lits: impl Fn(usize) -> Option<Vec<String>>,
    forget: impl Fn(usize) -> bool,
    others: &[Option<u8>],
) -> Option<Box<ByFirst>> {
    if pats.len() > usize::from(u16::MAX) {
        return None;
    }
    let mut t = Box::new(ByFirst {
        cands: vec![Vec::new(); 128],
        others: [false; 128],
        lits: (0..pats.len())
            .map(|k| {
                lits(k).map(|l| {
                    l.iter()
                        .map(|x| memchr::memmem::Finder::new(x.as_bytes()).into_owned())
                        .collect()
                })
            })
            .collect(),
        forget: (0..pats.len()).map(&forget).collect(),
    });
    for (k, p) in pats.iter().enumerate() {
        // (ASCII classes: the table serves ASCII texts only, where they agree. A parser
        // that failed cannot be used again, hence one per pattern.)
        let first = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(p)
            .ok()
            .and_then(|h| first_bytes(&h, true));
        for b in 0..128u8 {
            let can = match &first {
                Some((set, nullable)) => *nullable || set.contains(b),
                None => true,
            };
            if can {
                t.cands[usize::from(b)].push(k as u16);
            }
        }
    }
    for b in 0..128u8 {
        t.others[usize::from(b)] = others.iter().any(|o| o.is_none_or(|x| x == b));
    }
    Some(t)
}

/// Slots of the lazy DFAs' caches in [`DfaCaches`]: each [`Dual`] takes two (ASCII form,
/// Unicode form).
const SLOT_FIRST: usize = 0;
const SLOT_PREF_CONTENT: usize = 2;
const SLOT_PREF_MLFID: usize = 4;

/// One set of patterns (leftmost-first, anchored searches) as lazy DFAs, built twice:
/// with ASCII-only classes, for ASCII texts, when the filter loads; with Unicode classes,
/// for the other texts, when first needed. On an ASCII text the two give the same answer
/// (what Unicode adds to `\w`, `\d`, `\s`, `\b`, `.` and case folding is outside ASCII);
/// the ASCII automaton takes a fraction of the time to build (Unicode classes are most of
/// a fail2ban filter's load time) and has fewer byte classes to walk.
///
/// The lazy DFAs are searched directly, with caches the [`State`] keeps
/// ([`DfaCaches`]): a meta regex would add a cache pool and its strategy layers to each
/// search, which are short (a line's first bytes, or one line). When a lazy DFA cannot
/// answer (it gives up on an input that keeps clearing its cache, or meets a non-ASCII
/// byte near a Unicode `\b`) or does not build, the search takes a meta regex over the
/// same patterns, which falls back to an NFA simulation.
#[derive(Debug, Clone)]
struct Dual {
    pats: Vec<String>,
    limits: Limits,
    /// The first of the two cache slots ([`DfaCaches`]) of this automaton.
    slot: usize,
    ascii: Option<regex_automata::hybrid::dfa::DFA>,
    unicode: OnceLock<Option<regex_automata::hybrid::dfa::DFA>>,
    fallback: OnceLock<Option<regex_automata::meta::Regex>>,
}

/// The lazy DFAs' caches of one [`State`] (a search writes to its automaton's cache), one
/// per [`Dual`] form, made on first use.
#[derive(Debug, Clone, Default)]
struct DfaCaches {
    /// The filter the caches belong to ([`F2bFilter::id`]): a state used with another
    /// filter starts over with new caches.
    owner: u64,
    slots: Vec<Option<regex_automata::hybrid::dfa::Cache>>,
}

impl DfaCaches {
    /// The cache in `slot` for `dfa`, made if there is none yet.
    fn get(
        &mut self,
        slot: usize,
        dfa: &regex_automata::hybrid::dfa::DFA,
    ) -> &mut regex_automata::hybrid::dfa::Cache {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot].get_or_insert_with(|| dfa.create_cache())
    }
}

/// A forward lazy DFA over `pats`, leftmost-first; `ascii`: ASCII-only classes.
fn lazy_dfa(
    pats: &[String],
    ascii: bool,
    limits: Limits,
) -> Option<regex_automata::hybrid::dfa::DFA> {
    use regex_automata::hybrid::dfa::DFA;
    use regex_automata::nfa::thompson;
    use regex_automata::util::syntax;
    let syntax = if ascii {
        syntax::Config::new().unicode(false).utf8(false)
    } else {
        syntax::Config::new()
    };
    DFA::builder()
        .syntax(syntax)
        .thompson(
            thompson::Config::new()
                .utf8(!ascii)
                .nfa_size_limit(Some(limits.nfa)),
        )
        // As the meta regex configures its own lazy DFA: give up (and let the meta
        // regex's NFA answer) when the cache keeps being cleared for little progress.
        .configure(
            DFA::config()
                .cache_capacity(limits.cache)
                .unicode_word_boundary(true)
                .minimum_cache_clear_count(Some(3))
                .minimum_bytes_per_state(Some(10)),
        )
        .build_many(pats)
        .ok()
}

impl Dual {
    /// `None` when neither form builds (nor the fallback).
    fn new(pats: Vec<String>, limits: Limits, slot: usize) -> Option<Self> {
        let dual = Dual {
            ascii: lazy_dfa(&pats, true, limits),
            pats,
            limits,
            slot,
            unicode: OnceLock::new(),
            fallback: OnceLock::new(),
        };
        // Without the ASCII form every text takes the Unicode one (or the fallback): it
        // must build now.
        if dual.ascii.is_none() && dual.unicode().is_none() && dual.fallback().is_none() {
            return None;
        }
        Some(dual)
    }

    fn unicode(&self) -> Option<&regex_automata::hybrid::dfa::DFA> {
        self.unicode
            .get_or_init(|| lazy_dfa(&self.pats, false, self.limits))
            .as_ref()
    }

    /// The meta regex over the patterns (Unicode classes), for what the lazy DFAs cannot
    /// answer.
    fn fallback(&self) -> Option<&regex_automata::meta::Regex> {
        use regex_automata::meta::Config;
        use regex_automata::nfa::thompson::WhichCaptures;
        self.fallback
            .get_or_init(|| {
                regex_automata::meta::Regex::builder()
                    .configure(
                        Config::new()
                            .which_captures(WhichCaptures::Implicit)
                            .nfa_size_limit(Some(self.limits.nfa))
                            .hybrid_cache_capacity(self.limits.cache),
                    )
                    .build_many(&self.pats)
                    .ok()
            })
            .as_ref()
    }

    /// The end (and pattern) of the leftmost-first match anchored at the start of `text`,
    /// from the forward pass alone; `ascii`: whether `text` is ASCII. `None` when no
    /// automaton `text` can take builds.
    fn search_half(
        &self,
        caches: &mut DfaCaches,
        text: &str,
        ascii: bool,
    ) -> Option<Option<regex_automata::HalfMatch>> {
        use regex_automata::{Anchored, Input};
        let input = Input::new(text).anchored(Anchored::Yes);
        let (dfa, slot) = match (&self.ascii, ascii) {
            (Some(a), true) => (Some(a), self.slot),
            _ => (self.unicode(), self.slot + 1),
        };
        if let Some(dfa) = dfa {
            if let Ok(m) = dfa.try_search_fwd(caches.get(slot, dfa), &input) {
                return Some(m);
            }
        }
        Some(self.fallback()?.search_half(&input))
    }
}

/// Most lines the multi-line buffer holds, whatever `maxlines` says (fail2ban has no cap).
pub const MAX_BUFFER_LINES: usize = 1000;
/// Entries in the multi-line id cache (fail2ban: 100). When full, the oldest entries are
/// dropped first (insertion order), as fail2ban does.
pub const MLFID_CACHE_SIZE: usize = 100;
/// Lifetime of a multi-line id cache entry, in seconds (fail2ban: 5 minutes).
pub const MLFID_CACHE_SECS: i64 = 300;

/// The multi-line id cache: (mlfid, expiry in Unix seconds, data), oldest first, at most
/// one entry per id; bounded by MLFID_CACHE_SIZE. The data is shared with the last
/// [`Failure`] of that id (copied on write). The key hashes are kept apart, in the same
/// order, and 16 bits of each once more: a look-up scans those 2 bytes an entry (16 at a
/// time in vector code), then checks hash and key; before that, a count of the entries
/// per hash bucket answers most look-ups of an id that is not there at once.
#[derive(Debug, Clone, Default)]
struct MlfidCache {
    hashes: VecDeque<u64>,
    /// [`MlfidCache::tag`] of each hash, in the same order.
    tags: VecDeque<u16>,
    /// (id, expiry, data): the data is `None` only while [`merge_failure`] has taken it
    /// out or made the entry, until its caller puts the final data back.
    entries: VecDeque<(String, i64, Option<Arc<Fields>>)>,
    /// The id string of the last entry removed, whose buffer the next new entry reuses
    /// (the cache is full most of the time: each new id drops an old one).
    spare: Option<String>,
    /// Entries per bucket ([`MlfidCache::bucket`]): `MLFID_BUCKETS` counters once the
    /// first entry arrives (at most MLFID_CACHE_SIZE entries, so a `u8` never overflows).
    counts: Vec<u8>,
}

/// Buckets of the multi-line id cache's counters (ten times its size: few collisions).
const MLFID_BUCKETS: usize = 1024;
// A bucket never counts more entries than the cache holds, so its `u8` cannot overflow.
const _: () = assert!(MLFID_CACHE_SIZE < u8::MAX as usize);

impl MlfidCache {
    /// The counter of hash `h` (its top bits: [`key_hash`] mixes every byte into them).
    fn bucket(h: u64) -> usize {
        (h >> 54) as usize % MLFID_BUCKETS
    }
    /// Counts an entry of hash `h` in (`add`) or out.
    fn count(&mut self, h: u64, add: bool) {
        if self.counts.is_empty() {
            self.counts.resize(MLFID_BUCKETS, 0);
        }
        let c = &mut self.counts[Self::bucket(h)];
        *c = if add {
            c.saturating_add(1)
        } else {
            c.saturating_sub(1)
        };
    }
    /// The 16 bits of hash `h` the scan compares (others than the bucket's).
    fn tag(h: u64) -> u16 {
        (h >> 8) as u16
    }
    /// The index of the entry of `key` (hash `h`).
    fn find(&self, h: u64, key: &str) -> Option<usize> {
        if self.counts.get(Self::bucket(h)).is_none_or(|&c| c == 0) {
            return None;
        }
        let tag = Self::tag(h);
        let (a, b) = self.tags.as_slices();
        let mut base = 0;
        for part in [a, b] {
            let mut from = 0;
            while let Some(i) = first_eq(&part[from..], tag) {
                let at = base + from + i;
                if self.hashes[at] == h && self.entries[at].0 == key {
                    return Some(at);
                }
                from += i + 1;
            }
            base += part.len();
        }
        None
    }
    /// The index of the entry of `key` if it has not expired at `now`.
    fn find_live(&self, h: u64, key: &str, now: i64) -> Option<usize> {
        self.find(h, key).filter(|&i| self.entries[i].1 > now)
    }
    fn len(&self) -> usize {
        self.entries.len()
    }
    /// Drops entry `i`; returns its data.
    fn remove(&mut self, i: usize) -> Option<Arc<Fields>> {
        if let Some(h) = self.hashes.remove(i) {
            self.count(h, false);
        }
        self.tags.remove(i);
        let e = self.entries.remove(i)?;
        self.spare = Some(e.0);
        e.2
    }
    /// Drops the oldest entry; returns its expiry and data.
    fn pop_front(&mut self) -> Option<(i64, Option<Arc<Fields>>)> {
        if let Some(h) = self.hashes.pop_front() {
            self.count(h, false);
        }
        self.tags.pop_front();
        let e = self.entries.pop_front()?;
        self.spare = Some(e.0);
        Some((e.1, e.2))
    }
    fn push_back(&mut self, key: &str, h: u64, expiry: i64) {
        self.count(h, true);
        self.hashes.push_back(h);
        self.tags.push_back(Self::tag(h));
        let mut k = self.spare.take().unwrap_or_default();
        k.clear();
        k.push_str(key);
        self.entries.push_back((k, expiry, None));
    }
}

/// Per-source state of a filter: date detector, last date, line buffer, MLFID cache.
#[derive(Debug, Clone)]
pub struct State {
    date: DateDetector,
    last_date: Option<Timestamp>,
    last_time_text: String,
    buffer: VecDeque<(String, String, String)>,
    /// The multi-line id cache.
    mlfid: MlfidCache,
    check_all: bool,
    caps: Caps,
    /// The caches of the filter's lazy DFAs.
    dfa: DfaCaches,
    /// Buffers for the values of matches.
    pool: Pool,
    record: Option<Vec<(String, bool, String)>>,
    /// Searches that hit the backtracking step limit (counted, treated as no match).
    pub step_limit_hits: u64,
    /// Lines skipped by the literal prefilter.
    pub prefiltered: u64,
    /// Lines without a date (none found, or it did not convert).
    pub no_date: u64,
    /// Matches vetoed by an ignoreregex.
    pub ignored: u64,
}

impl State {
    /// Check-all mode (fail2ban-regex and the sample harness): every failregex is tried
    /// and every match reported, `nofail` and pending ones included.
    pub fn set_check_all(&mut self, on: bool) {
        self.check_all = on;
    }

    /// Records every search made with a backtracking pattern (pattern, multiline, text),
    /// so tests can replay them through Python's `re`.
    pub fn record_backtracking(&mut self, on: bool) {
        self.record = on.then(Vec::new);
    }

    /// The searches recorded since the last call.
    pub fn take_recorded(&mut self) -> Vec<(String, bool, String)> {
        self.record.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

fn regex_err(filter: &str, option: &str, index: usize, message: String) -> F2bError {
    F2bError::Regex {
        filter: filter.to_owned(),
        option: option.to_owned(),
        index,
        message,
    }
}

/// Normalises an address text as fail2ban compares it: IPv4-mapped IPv6 to IPv4, IPv6
/// compressed and lower case; anything that does not parse stays as it is.
pub fn parse_addr(s: &str) -> Option<IpAddr> {
    let t = s.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = t.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    })
}

impl F2bFilter {
    /// Loads filter `spec` (`"sshd"`, `"sshd[mode=aggressive]"`, or a path to a `.conf`
    /// file with optional `[params]`) from fail2ban's configuration directory `dir`.
    pub fn load(dir: &Path, spec: &str, opts: LoadOptions) -> Result<Self, F2bError> {
        let spec = parse_spec(spec)?;
        Self::load_spec(dir, &spec, opts)
    }

    /// Loads a filter from a parsed spec (name and parameters).
    pub fn load_spec(dir: &Path, spec: &FilterSpec, opts: LoadOptions) -> Result<Self, F2bError> {
        let def = load_def(dir, spec)?;
        Self::from_def(def, opts)
    }

    /// Compiles a loaded definition.
    pub fn from_def(def: FilterDef, opts: LoadOptions) -> Result<Self, F2bError> {
        let name = def.name.clone();
        let multiline = def.maxlines > 1;
        let usedns = def.usedns.clone();
        let pref = match &def.prefregex {
            Some(p) => Some(
                Rx::new(&tags::expand(p, &usedns), false)
                    .map_err(|m| regex_err(&name, "prefregex", 0, m))?,
            ),
            None => None,
        };
        let mut fail = Vec::new();
        for (i, r) in def.failregex.iter().enumerate() {
            if r.trim().is_empty() {
                return Err(regex_err(&name, "failregex", i, "empty regex".into()));
            }
            let rx = Rx::new(&tags::expand(r, &usedns), multiline)
                .map_err(|m| regex_err(&name, "failregex", i, m))?;
            let ids = ["fid", "ip4", "ip6", "dns", "mlfid"];
            let has = |x: &Rx| ids.iter().any(|g| x.has_group(g));
            if !has(&rx) && !pref.as_ref().is_some_and(has) {
                return Err(regex_err(
                    &name,
                    "failregex",
                    i,
                    format!("no failure-id group (<HOST>, <ADDR>, <F-ID>, <F-MLFID> ...) in {r:?}"),
                ));
            }
            fail.push(rx);
        }
        let mut ignore = Vec::new();
        for (i, r) in def.ignoreregex.iter().enumerate() {
            ignore.push(
                Rx::new(&tags::expand(r, &usedns), false)
                    .map_err(|m| regex_err(&name, "ignoreregex", i, m))?,
            );
        }
        // The date detector is built once here (errors are reported at load time); each
        // state starts from a copy (the compiled templates are shared).
        let date = DateDetector::new(
            def.datepattern.as_deref(),
            opts.zone.clone(),
            opts.current_year,
        )
        .map_err(|m| regex_err(&name, "datepattern", 0, m))?;
        let prefilter = crate::prefilter::build(pref.as_ref(), &fail);
        let mut set_index = Vec::new();
        let mut pats = Vec::new();
        for rx in &fail {
            match rx.re.linear_pattern() {
                Some(r) => {
                    set_index.push(Some(pats.len()));
                    pats.push(r.to_owned());
                }
                None => set_index.push(None),
            }
        }
        let first = if pats.len() > 1 && def.maxlines == 1 {
            first_match(&pats)
        } else {
            None
        };
        let mut set = (pats.len() > 1).then(|| LazySet {
            pats,
            set: OnceLock::new(),
        });
        // Without the first-match search every candidate line asks the set, so it is
        // built now (and, if it cannot be, the patterns run one by one); with it, the set
        // answers only what the first match leaves open (check-all mode, vetoes), and is
        // built on first use.
        if first.is_none() && set.as_ref().is_some_and(|s| s.get().is_none()) {
            set = None;
        }
        if set.is_none() {
            set_index.iter_mut().for_each(|x| *x = None);
        }
        let pref_fast = if def.maxlines == 1 {
            pref.as_ref().and_then(|p| PrefFast::new(p.pattern()))
        } else {
            None
        };
        let order_all: Vec<usize> = (0..fail.len()).collect();
        let outside: Vec<usize> = (0..fail.len())
            .filter(|&i| set_index[i].is_none())
            .collect();
        // A pattern whose match may need no groups at all (nofail + forget) keeps the
        // first-match search, which tells without captures.
        let by_first = match (&first, &set) {
            (Some(_), Some(set)) => {
                let set_fail: Vec<usize> = (0..fail.len())
                    .filter(|&i| set_index[i].is_some())
                    .collect();
                let others: Vec<Option<u8>> = (0..fail.len())
                    .filter(|&i| set_index[i].is_none())
                    .map(|i| fail[i].lead.as_ref().map(|l| l.as_bytes()[0]))
                    .collect();
                let lits = |k: usize| match fail[set_fail[k]].literals() {
                    Some((l, false)) => Some(l.to_vec()),
                    _ => None,
                };
                first_byte_table(
                    &set.pats,
                    lits,
                    |k| fail[set_fail[k]].forget_nofail,
                    &others,
                )
            }
            _ => None,
        };
        let mut orders = Vec::new();
        if first.is_some() && set.is_some() {
            let set_fail: Vec<usize> = (0..fail.len())
                .filter(|&i| set_index[i].is_some())
                .collect();
            for j in 0..=set_fail.len() {
                // Before the first match: only the failregexes outside the set.
                let limit = set_fail.get(j).copied().unwrap_or(fail.len());
                let mut o: Vec<usize> = (0..limit).filter(|&i| set_index[i].is_none()).collect();
                // From it on: every one (after a veto, the search goes on).
                if j < set_fail.len() {
                    o.extend(limit..fail.len());
                }
                orders.push(o);
            }
        }
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(F2bFilter {
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            by_first,
            outside,
            orders,
            order_all,
            date,
            pref_fast,
            def,
            pref,
            fail,
            ignore,
            prefilter,
            set,
            set_index,
            first,
        })
    }

    /// A fresh per-source state.
    pub fn new_state(&self) -> State {
        State {
            date: self.date.clone(),
            last_date: None,
            last_time_text: String::new(),
            buffer: VecDeque::new(),
            mlfid: MlfidCache::default(),
            check_all: false,
            caps: Caps::default(),
            dfa: DfaCaches {
                owner: self.id,
                slots: Vec::new(),
            },
            pool: Pool::default(),
            record: None,
            step_limit_hits: 0,
            prefiltered: 0,
            no_date: 0,
            ignored: 0,
        }
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }
    /// The definition (options after interpolation).
    pub fn def(&self) -> &FilterDef {
        &self.def
    }
    /// The files read.
    pub fn files(&self) -> &[PathBuf] {
        &self.def.files
    }
    /// `journalmatch`, one entry per line, split into words.
    pub fn journalmatch(&self) -> &[Vec<String>] {
        &self.def.journalmatch
    }
    /// `maxlines`.
    pub fn maxlines(&self) -> usize {
        self.def.maxlines
    }
    /// The failregexes, compiled.
    pub fn failregexes(&self) -> &[Rx] {
        &self.fail
    }
    /// The ignoreregexes, compiled.
    pub fn ignoreregexes(&self) -> &[Rx] {
        &self.ignore
    }
    /// The prefregex, compiled.
    pub fn prefregex(&self) -> Option<&Rx> {
        self.pref.as_ref()
    }
    /// Whether a literal prefilter is in use (lines without any of the literals skip the
    /// regexes entirely).
    pub fn has_prefilter(&self) -> bool {
        self.prefilter.is_some()
    }
    /// Every pattern (kind, index) that runs on the backtracking matcher.
    pub fn backtracking(&self) -> Vec<(&'static str, usize)> {
        let mut v = Vec::new();
        if self.pref.as_ref().is_some_and(Rx::is_backtracking) {
            v.push(("prefregex", 0));
        }
        for (i, r) in self.fail.iter().enumerate() {
            if r.is_backtracking() {
                v.push(("failregex", i));
            }
        }
        for (i, r) in self.ignore.iter().enumerate() {
            if r.is_backtracking() {
                v.push(("ignoreregex", i));
            }
        }
        v
    }

    /// Processes one log line read from a file: finds its date, then matches. `now` is
    /// the current time (Unix seconds). Returns the real failures (id set, not nofail);
    /// in check-all mode use [`F2bFilter::process_line_all`].
    pub fn process_line<'s>(
        &self,
        state: &'s mut State,
        line: &[u8],
        now: i64,
    ) -> impl Iterator<Item = Failure> + 's {
        self.process_line_all(state, line, now)
            .into_iter()
            .filter(Failure::is_failure)
    }

    /// Processes one line and returns every result, pending and `nofail` ones included.
    pub fn process_line_all(&self, state: &mut State, line: &[u8], now: i64) -> Vec<Failure> {
        self.own_caches(state);
        // (simdutf8's check, which accepts exactly what std's does, with vector code)
        let text = match simdutf8::basic::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        let text = text.trim_end_matches(['\r', '\n']);
        let hit = state.date.find(text, now);
        state.step_limit_hits += std::mem::take(&mut state.date.limit_hits);
        // (date span to cut, time); `None` span: the whole line is the message.
        let mut cut: Option<(usize, usize)> = None;
        let mut reuse_text = false;
        let date = match hit {
            Some(h) if h.span.0 != h.span.1 => match h.time {
                Some(t) => {
                    cut = Some(h.span);
                    state.last_time_text.clear();
                    state.last_time_text.push_str(&text[h.span.0..h.span.1]);
                    state.last_date = Some(t);
                    Some(t)
                }
                None => {
                    // The text is cut out even though it did not convert, unless the
                    // last date is reused (then the whole line is the message).
                    state.no_date += 1;
                    let d = self.recent_date(state, now, &mut reuse_text);
                    if !reuse_text {
                        cut = Some(h.span);
                    }
                    d
                }
            },
            Some(_) => {
                // A template matched an empty date: reuse the last one if recent, else now.
                match self.recent_date(state, now, &mut reuse_text) {
                    Some(d) => Some(d),
                    None => Some(Timestamp::from_secs(now)),
                }
            }
            None => {
                state.no_date += 1;
                self.recent_date(state, now, &mut reuse_text)
            }
        };
        // The prefilter: a line whose text (date cut out) contains none of the literals
        // the failregexes need cannot match. Its date was still read (later lines may
        // reuse it).
        if self.def.maxlines == 1 {
            if let Some(ac) = &self.prefilter {
                let candidate = match cut {
                    Some((0, e)) => ac.is_match(&text[e..]),
                    Some((s, e)) => ac.is_match(&format!("{}{}", &text[..s], &text[e..])),
                    None => ac.is_match(text),
                };
                if !candidate {
                    state.prefiltered += 1;
                    return Vec::new();
                }
            }
        }
        // Quick reject without building anything: single-line buffer whose message (the
        // line after a leading date) no failregex can match, after the prefregex fast path.
        let mut content_start = None;
        let mut known_mlfid_end = None;
        let mut set_hits = None;
        if self.def.maxlines == 1 {
            let msg = match cut {
                Some((0, e)) => Some(&text[e..]),
                None if !reuse_text => Some(text),
                _ => None,
            };
            if let Some(msg) = msg {
                let ascii = is_ascii(msg);
                let body = match (&self.pref, &self.pref_fast) {
                    (None, _) => Some(msg),
                    (Some(_), Some(pf)) => match pf.split(&mut state.dfa, msg, ascii) {
                        None => return Vec::new(),
                        Some((e, m)) if e < msg.len() => {
                            content_start = Some(e);
                            known_mlfid_end = m;
                            Some(&msg[e..])
                        }
                        Some(_) => None,
                    },
                    (Some(_), None) => None,
                };
                if let Some(body) = body {
                    // Only nofail + forget failregexes can match (by the first byte): with
                    // no live cache entry for the line's multi-line id, a match yields
                    // nothing and changes nothing, and so does no match (the search that
                    // finds which would end the same way, see find_failure).
                    let mut left = match (&self.by_first, ascii) {
                        (Some(t), true) => t.left(body),
                        _ => Left::Many,
                    };
                    if left == Left::Forget {
                        if let (Some(m), false, true) =
                            (known_mlfid_end, state.check_all, self.ignore.is_empty())
                        {
                            if !has_live_mlfid(state, &msg[..m], now) {
                                return Vec::new();
                            }
                        }
                        left = Left::Many;
                    }
                    if !self.may_match(&mut state.dfa, body, ascii, left, &mut set_hits) {
                        return Vec::new();
                    }
                }
            }
        }
        let last_time;
        let parts = match cut {
            Some((s, e)) if date.is_some() || !reuse_text => (&text[..s], &text[s..e], &text[e..]),
            Some(_) | None if reuse_text => {
                last_time = state.last_time_text.clone();
                ("", last_time.as_str(), text)
            }
            Some(_) | None => ("", "", text),
        };
        self.find_failure(
            state,
            parts,
            date,
            now,
            content_start.map(|c| (c, known_mlfid_end)),
            set_hits,
        )
    }

    /// Gives `state` new lazy DFA caches if those it has are another filter's.
    fn own_caches(&self, state: &mut State) {
        if state.dfa.owner != self.id {
            state.dfa = DfaCaches {
                owner: self.id,
                slots: Vec::new(),
            };
        }
    }

    /// Whether some failregex may match `buf` (the set of linear ones, then the literal
    /// gates of the others); `ascii`: whether `buf` is ASCII.
    fn may_match(
        &self,
        caches: &mut DfaCaches,
        buf: &str,
        ascii: bool,
        left: Left,
        hits: &mut Option<Hits>,
    ) -> bool {
        if let Some(set) = &self.set {
            let mut h = Hits::default();
            let any = if left == Left::None {
                h.first = Some(None);
                false
            } else if let Left::One(k) = left {
                h.only = Some(k);
                true
            } else {
                let first = self
                    .first
                    .as_ref()
                    .and_then(|fm| h.first(fm, caches, buf, ascii));
                match first {
                    Some(k) => k.is_some(),
                    None => {
                        let m = self.set_answer(set, buf);
                        let any = m.any();
                        h.all = Some(m);
                        any
                    }
                }
            };
            *hits = Some(h);
            if any {
                return true;
            }
        }
        self.outside.iter().any(|&i| {
            let rx = &self.fail[i];
            if !rx.gate_passes(buf) {
                return false;
            }
            match (&rx.gate, rx.re.linear()) {
                (Some(_), _) => true,
                (None, Some(r)) => r.is_match(buf),
                (None, None) => true,
            }
        })
    }

    /// Which set patterns match `buf`: from the set, or one by one if it did not build.
    fn set_answer(&self, set: &LazySet, buf: &str) -> SetAnswer {
        match set.get() {
            Some(s) => SetAnswer::Set(s.matches(buf)),
            None => SetAnswer::Each(
                self.fail
                    .iter()
                    .zip(&self.set_index)
                    .filter(|(_, k)| k.is_some())
                    .map(|(rx, _)| rx.re.linear().is_some_and(|r| r.is_match(buf)))
                    .collect(),
            ),
        }
    }

    /// The last date if it is less than a minute old (fail2ban reuses it for lines
    /// without one).
    fn recent_date(&self, state: &State, now: i64, reuse_text: &mut bool) -> Option<Timestamp> {
        match state.last_date {
            Some(d) if d.as_secs() > now - 60 => {
                *reuse_text = true;
                Some(d)
            }
            _ => None,
        }
    }

    /// Processes one journal entry: the time comes from the journal, not the text
    /// (`text` is `host ident[pid]: message`).
    pub fn process_entry(
        &self,
        state: &mut State,
        text: &str,
        time: Timestamp,
        now: i64,
    ) -> Vec<Failure> {
        self.own_caches(state);
        state.last_time_text = time.to_string();
        state.last_date = Some(time);
        let time_text = state.last_time_text.clone();
        self.find_failure(state, ("", &time_text, text), Some(time), now, None, None)
    }

    fn search(&self, rx: &Rx, state: &mut State, text: &str) -> bool {
        if rx.is_backtracking() {
            if let Some(r) = state.record.as_mut() {
                r.push((rx.pattern().to_owned(), rx.multiline, text.to_owned()));
            }
        }
        match rx.re.search(text, &mut state.caps) {
            Search::Match => true,
            Search::NoMatch => false,
            Search::Limit => {
                state.step_limit_hits += 1;
                false
            }
        }
    }

    fn ignored(&self, state: &mut State, buf: &str) -> bool {
        for rx in &self.ignore {
            if self.search(rx, state, buf) {
                return true;
            }
        }
        false
    }

    /// fail2ban's `findFailure` for one line, given as (text before the date, the date
    /// text, text after it). A single-line filter (`maxlines` 1) works on borrowed text
    /// and keeps no buffer; owned data is built only for a line that matches.
    fn find_failure(
        &self,
        state: &mut State,
        parts: (&str, &str, &str),
        date: Option<Timestamp>,
        now: i64,
        content_split: Option<(usize, Option<usize>)>,
        known_hits: Option<Hits>,
    ) -> Vec<Failure> {
        // (where the content starts, and where the mlfid ends if known: prefregex fast
        // path of a single-line buffer)
        let content_start = content_split.map(|c| c.0);
        let mut out = Vec::new();
        let maxlines = self.def.maxlines.min(MAX_BUFFER_LINES);
        // A single-line buffer is rebuilt from each line, so no copy is kept in the state.
        let single = maxlines <= 1;
        let join = |lines: &[Tuple]| -> String {
            let mut s = String::new();
            for (i, (a, _, c)) in lines.iter().enumerate() {
                if i > 0 {
                    s.push('\n');
                }
                s.push_str(a);
                s.push_str(c);
            }
            s
        };
        let org: Vec<Tuple> = if single {
            state.buffer.clear();
            Vec::new()
        } else {
            state
                .buffer
                .push_back((parts.0.to_owned(), parts.1.to_owned(), parts.2.to_owned()));
            while state.buffer.len() > maxlines {
                state.buffer.pop_front();
            }
            state.buffer.iter().cloned().collect()
        };
        let mut buf: Cow<'_, str> = if !single {
            Cow::Owned(join(&org))
        } else if parts.0.is_empty() {
            Cow::Borrowed(parts.2)
        } else {
            Cow::Owned(format!("{}{}", parts.0, parts.2))
        };
        if !self.ignore.is_empty()
            && self.ignore.len() + 2 < self.fail.len()
            && self.ignored(state, &buf)
        {
            state.ignored += 1;
            return out;
        }
        let mut pre = Fields::default();
        // With the fast path the prefregex groups (only mlfid) are read when a failregex
        // matches: (line, end of the mlfid group).
        let mut pre_lazy: Option<Cow<'_, str>> = None;
        // Whether the mlfid was read from `pre_lazy` (once: check-all mode keeps it in
        // `pre` for the failregexes after the first match).
        let mut mlfid_read = false;
        if let Some(p) = &self.pref {
            let fast = match (&self.pref_fast, maxlines) {
                (Some(_), 1) if content_start.is_some() => content_start,
                (Some(pf), 1) => match pf.content_end(&mut state.dfa, &buf, is_ascii(&buf)) {
                    None => return out,
                    Some(e) if e < buf.len() => Some(e),
                    Some(_) => None,
                },
                _ => None,
            };
            match fast {
                // Only single-line buffers take the fast path.
                Some(start) => match std::mem::take(&mut buf) {
                    Cow::Borrowed(line) => {
                        buf = Cow::Borrowed(&line[start..]);
                        pre_lazy = Some(Cow::Borrowed(line));
                    }
                    Cow::Owned(line) => {
                        buf = Cow::Owned(line[start..].to_owned());
                        pre_lazy = Some(Cow::Owned(line));
                    }
                },
                None => {
                    if !self.search(p, state, &buf) {
                        return out;
                    }
                    pre = p.groups(&buf, &state.caps, &mut state.pool);
                    let content = pre.pop("content");
                    if let Some(c) = content.filter(|c| !c.is_empty()) {
                        if !single {
                            state.buffer.clear();
                            state
                                .buffer
                                .push_back((String::new(), String::new(), c.clone()));
                        }
                        buf = Cow::Owned(c);
                    }
                }
            }
        }
        let mut buf_valid = true;
        // The set's answer for this buffer when the caller already has it: the message
        // after the prefregex split (single-line buffers only).
        let mut set_hits: Hits = known_hits
            .filter(|_| maxlines == 1 && (self.pref.is_none() || content_start.is_some()))
            .unwrap_or_default();
        // Where the mlfid ends in the line, once found (prefregex fast path).
        let mut mlfid_end: Option<usize> = content_split.and_then(|c| c.1);
        // The failregexes to try: without those the known first-match answer rules out
        // (the loop below would skip them), else all.
        let order = match (set_hits.only, set_hits.first) {
            (Some(j), _) | (None, Some(Some(j))) if single && !self.orders.is_empty() => {
                &self.orders[j]
            }
            (None, Some(None)) if single && !self.orders.is_empty() => {
                &self.orders[self.orders.len() - 1]
            }
            _ => &self.order_all,
        };
        for &idx in order {
            let rx = &self.fail[idx];
            if !buf_valid {
                let lines: Vec<_> = state.buffer.iter().cloned().collect();
                buf = Cow::Owned(join(&lines));
                buf_valid = true;
                set_hits = Hits::default();
            }
            let mut known = false;
            // The only set pattern that can match, not yet searched for.
            let mut only = false;
            if let (Some(set), Some(k)) = (&self.set, self.set_index[idx]) {
                match set_hits.only {
                    Some(o) if o != k => continue,
                    Some(_) => only = true,
                    None => {
                        let all = || self.set_answer(set, &buf);
                        if !set_hits.matched(self.first.as_ref(), &mut state.dfa, &buf, k, all) {
                            continue;
                        }
                        known = true;
                    }
                }
            } else if !rx.gate_passes(&buf) {
                continue;
            }
            if known && rx.forget_nofail && single && !state.check_all && self.ignore.is_empty() {
                // A nofail (or mlfgained) + mlfforget match without a live cache entry:
                // merge_failure finds nothing to forget and the nofail line ends the
                // search, so the captures are not needed (the general path gives the
                // same empty answer).
                if let (Some(line), Some(pf)) = (&pre_lazy, &self.pref_fast) {
                    let end = mlfid_end.unwrap_or_else(|| {
                        pf.mlfid_end(&mut state.dfa, line, is_ascii(line))
                            .unwrap_or(0)
                    });
                    mlfid_end = Some(end);
                    if !has_live_mlfid(state, &line[..end], now) {
                        return out;
                    }
                }
            }
            let hit = if known {
                // The set saw the match: only its groups are left to find.
                rx.re.search_matching(&buf, &mut state.caps) == Search::Match
            } else if only {
                match rx.re.search_linear(&buf, &mut state.caps) {
                    Search::Match => true,
                    Search::NoMatch => false,
                    Search::Limit => {
                        state.step_limit_hits += 1;
                        false
                    }
                }
            } else {
                self.search(rx, state, &buf)
            };
            if !hit {
                continue;
            }
            let caps = std::mem::take(&mut state.caps);
            let mut fail = rx.groups(&buf, &caps, &mut state.pool);
            // (lines the match covers, the others): a single line is matched whole.
            let (matched, unmatched) = if single {
                (Vec::new(), Vec::new())
            } else {
                matched_lines(rx, &buf, &caps, &org)
            };
            let matched_count = if single { 1 } else { matched.len() };
            state.caps = caps;
            if !self.ignore.is_empty() {
                let vetoed = if single {
                    self.ignored(state, &buf)
                } else {
                    self.ignored(state, &join(&matched))
                };
                if vetoed {
                    state.ignored += 1;
                    if !single {
                        state.buffer = unmatched.iter().cloned().collect();
                        buf_valid = false;
                    }
                    if !state.check_all {
                        break;
                    }
                    continue;
                }
            }
            if !single {
                state.buffer = unmatched.iter().cloned().collect();
                buf_valid = false;
            }
            // Where the mlfid value ends in the line when it is the line's prefix
            // (first-match mode, prefregex fast path): the cache key is read from there.
            let mut key_end: Option<usize> = None;
            if let (false, Some(line), Some(pf)) = (mlfid_read, &pre_lazy, &self.pref_fast) {
                mlfid_read = true;
                // The prefregex's one group besides the content, the mlfid, read from the
                // line. A first-match search ends with this failregex, so it goes straight
                // into the failregex's values, unless the failregex has an mlfid group of
                // its own (which overrides it, as the merge below would); check-all mode
                // keeps it with the prefregex's values for the failregexes after this one.
                let own = !state.check_all && fail.vals.iter().any(|(n, _)| *n == "mlfid");
                if !own {
                    let end = mlfid_end.unwrap_or_else(|| {
                        pf.mlfid_end(&mut state.dfa, line, is_ascii(line))
                            .unwrap_or(0)
                    });
                    let v = Some(state.pool.string(&line[..end]));
                    if state.check_all {
                        pre.set("mlfid", v);
                    } else {
                        fail.vals.push(("mlfid", v));
                        key_end = Some(end);
                    }
                }
            }
            if !pre.vals.is_empty() {
                // Past this point a first-match search ends with this failregex, so the
                // prefregex groups are needed no more (check-all mode reuses them).
                let mut merged = if state.check_all {
                    pre.clone()
                } else {
                    std::mem::take(&mut pre)
                };
                merged.vals.reserve(fail.vals.len());
                for (k, v) in fail.vals.drain(..) {
                    merged.set(k, v);
                }
                fail = merged;
            }
            // The multi-line id (borrowed from the line when it is its prefix, else a
            // copy: `fail` moves into the merge).
            let mlfid: Option<Cow<'_, str>> = match (key_end, &pre_lazy) {
                (Some(e), Some(line)) => Some(Cow::Borrowed(&line[..e])),
                _ => fail.get("mlfid").map(|m| Cow::Owned(m.to_owned())),
            };
            let has_mlfid = mlfid.is_some();
            // The multi-line id cache entry that takes this failure's final data (shared
            // with the result, not copied).
            let mut cached: Option<usize> = None;
            if let Some(id) = mlfid {
                let (f, entry) = merge_failure(state, &id, fail, matched_count, now, date);
                fail = f;
                cached = entry;
                if fail.truthy("nofail") && !state.check_all {
                    if let Some(i) = cached {
                        state.mlfid.entries[i].2 = Some(Arc::new(fail));
                    }
                    return out;
                }
            } else {
                fail.matches += matched_count;
            }
            let id = failure_id(&fail, has_mlfid);
            if id.is_none() {
                fail.pending = true;
            }
            let fields = Arc::new(fail);
            if let Some(i) = cached {
                state.mlfid.entries[i].2 = Some(Arc::clone(&fields));
            }
            out.push(Failure {
                nofail: fields.truthy("nofail"),
                attempts: fields.matches,
                id,
                time: date,
                pattern: idx,
                fields,
            });
            if !state.check_all {
                break;
            }
        }
        out
    }
}

/// The case-sensitive literals right after a leading `^` (not multi-line) or `\A`: every
/// match starts at the start of the text with them. `None` when there are none.
fn leading_literals(node: &crate::pyre::parse::Node) -> Option<String> {
    use crate::pyre::parse::Node;
    let Node::Concat(items) = node else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    if !matches!(first, Node::Start { multiline: false } | Node::StartText) {
        return None;
    }
    let lead: String = rest
        .iter()
        .map_while(|n| match n {
            Node::Literal { c, icase: false } => Some(*c),
            _ => None,
        })
        .collect();
    (!lead.is_empty()).then_some(lead)
}

/// What is known of which linear failregexes match one buffer.
#[derive(Debug, Clone, Default)]
struct Hits {
    /// From the first-match search: the set index of the first pattern that matches
    /// (`Some(None)`: none does).
    first: Option<Option<usize>>,
    /// From the first byte ([`F2bFilter::by_first`]): the only set pattern that can
    /// match; the first-match search was not run, the pattern's own search decides.
    only: Option<usize>,
    /// From the set: every pattern that matches.
    all: Option<SetAnswer>,
}

/// The linear failregexes as one `RegexSet`, built on first use.
#[derive(Debug, Clone)]
struct LazySet {
    pats: Vec<String>,
    set: OnceLock<Option<regex::RegexSet>>,
}

impl LazySet {
    /// The set, `None` when it does not build.
    fn get(&self) -> Option<&regex::RegexSet> {
        self.set
            .get_or_init(|| {
                regex::RegexSetBuilder::new(&self.pats)
                    .size_limit(64 << 20)
                    .dfa_size_limit(32 << 20)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// Which set patterns match one buffer.
#[derive(Debug, Clone)]
enum SetAnswer {
    /// From the set.
    Set(regex::SetMatches),
    /// From each pattern on its own (the set did not build).
    Each(Vec<bool>),
}

impl SetAnswer {
    fn any(&self) -> bool {
        match self {
            SetAnswer::Set(m) => m.matched_any(),
            SetAnswer::Each(v) => v.iter().any(|&b| b),
        }
    }
    fn matched(&self, k: usize) -> bool {
        match self {
            SetAnswer::Set(m) => m.matched(k),
            SetAnswer::Each(v) => v.get(k).copied().unwrap_or(false),
        }
    }
}

impl Hits {
    /// The first pattern (set index) that matches `buf`, searched once; `ascii`: whether
    /// `buf` is ASCII. `None` when the search cannot run (its automaton does not build).
    fn first(
        &mut self,
        fm: &Dual,
        caches: &mut DfaCaches,
        buf: &str,
        ascii: bool,
    ) -> Option<Option<usize>> {
        if self.first.is_none() {
            self.first = fm
                .search_half(caches, buf, ascii)
                .map(|h| h.map(|h| h.pattern().as_usize()));
        }
        self.first
    }

    /// Whether set pattern `k` matches `buf`: from the first match when that decides it
    /// (`k` before it: no; `k` itself: yes), else from the set.
    fn matched(
        &mut self,
        fm: Option<&Dual>,
        caches: &mut DfaCaches,
        buf: &str,
        k: usize,
        all: impl FnOnce() -> SetAnswer,
    ) -> bool {
        if let (None, Some(fm)) = (&self.all, fm) {
            // (`is_ascii` only when the search is still to run)
            let ascii = self.first.is_none() && is_ascii(buf);
            match self.first(fm, caches, buf, ascii) {
                Some(None) => return false,
                Some(Some(j)) if k <= j => return k == j,
                Some(Some(_)) | None => {}
            }
        }
        self.all.get_or_insert_with(all).matched(k)
    }
}

/// A leftmost-first search over `pats` (each in the `regex` crate's syntax), when every
/// one of them is anchored at the start of the text: an anchored search then reports
/// the first pattern in order that matches at all, as trying them one by one would.
fn first_match(pats: &[String]) -> Option<Dual> {
    use regex_syntax::hir::Look;
    let anchored = pats.iter().all(|p| {
        regex_syntax::parse(p).is_ok_and(|h| h.properties().look_set_prefix().contains(Look::Start))
    });
    if !anchored {
        return None;
    }
    let limits = Limits {
        nfa: 64 << 20,
        cache: 32 << 20,
    };
    Dual::new(pats.to_vec(), limits, SLOT_FIRST)
}

/// Whether `s` is ASCII: one OR over all its bytes, which the compiler turns into vector
/// code (`str::is_ascii` stops at the first non-ASCII byte and takes a word at a time:
/// several times the instructions on the lines filters see, which are ASCII).
fn is_ascii(s: &str) -> bool {
    s.bytes().fold(0u8, |acc, b| acc | b) < 0x80
}

/// The failure id by fail2ban's precedence: ip4, ip6, dns, then fid.
fn failure_id(fail: &Fields, has_mlfid: bool) -> Option<FailId> {
    let fid = fail.get("fid");
    let from_ip = |s: &str| match parse_addr(s) {
        Some(ip) => FailId::Ip(ip),
        None => FailId::Raw(s.to_owned()),
    };
    let ip = fail.get("ip4").or_else(|| fail.get("ip6"));
    let (text, is_dns) = match ip {
        Some(ip) => (ip, false),
        None => match fail.get("dns") {
            Some(d) => (d, true),
            None => match fid {
                Some(f) => (f, false),
                None => {
                    let _ = has_mlfid;
                    return None;
                }
            },
        },
    };
    if let Some(f) = fid {
        if f != text {
            return Some(fid_value(f));
        }
    }
    Some(if is_dns {
        match parse_addr(text) {
            Some(ip) => FailId::Ip(ip),
            None => FailId::Host(text.to_owned()),
        }
    } else {
        from_ip(text)
    })
}

fn fid_value(f: &str) -> FailId {
    if let Some(rest) = f.strip_prefix('\u{1}') {
        // A tuple id from <F-TUPLE_…> groups.
        let parts: Vec<String> = rest.split('\u{1}').map(|p| format!("'{p}'")).collect();
        return FailId::Raw(format!("({})", parts.join(", ")));
    }
    match parse_addr(f) {
        Some(ip) => FailId::Ip(ip),
        None => FailId::Raw(f.to_owned()),
    }
}

type Tuple = (String, String, String);

/// The buffer lines a match covers (minus `<SKIPLINES>` lines) and the others.
fn matched_lines(rx: &Rx, buf: &str, caps: &Caps, org: &[Tuple]) -> (Vec<Tuple>, Vec<Tuple>) {
    if org.len() <= 1 {
        return (org.to_vec(), Vec::new());
    }
    let Some((s, e)) = caps.get(0) else {
        return (org.to_vec(), Vec::new());
    };
    let count = |upto: usize| {
        buf.as_bytes()[..upto.min(buf.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    let lc1 = count(s + 1);
    let lc2 = count(e.saturating_sub(1)) + 1;
    let lc1 = lc1.min(org.len());
    let lc2 = lc2.clamp(lc1, org.len());
    let mut matched: Vec<Tuple> = org[lc1..lc2].to_vec();
    let mut unmatched: Vec<Tuple> = org[..lc1].to_vec();
    let mut skipped = String::new();
    for &g in &rx.skiplines {
        if let Some((a, b)) = caps.get(g) {
            skipped.push_str(&buf[a..b]);
        }
    }
    let mut n = 0;
    for sl in skipped.lines() {
        if let Some(m) = matched[n.min(matched.len())..]
            .iter()
            .position(|(a, _, c)| format!("{a}{c}") == sl)
        {
            unmatched.push(matched.remove(n + m));
            n += m;
        }
    }
    unmatched.extend(org[lc2..].iter().cloned());
    (matched, unmatched)
}

/// fail2ban's `_mergeFailure`: returns the merged data and, when it is the data of a
/// multi-line id cache entry (later changes to it must reach the cache), that entry's
/// index (the entry's data is `None` until the caller puts the final data there).
fn merge_failure(
    state: &mut State,
    mlfid: &str,
    mut fail: Fields,
    matched: usize,
    now: i64,
    date: Option<Timestamp>,
) -> (Fields, Option<usize>) {
    let _ = date;
    let h = key_hash(mlfid);
    let pos = state.mlfid.find_live(h, mlfid, now);
    let mut nf: u8 = 0;
    if fail.truthy("mlfgained") {
        nf |= 8 | 1;
        if !fail.truthy("nofail") {
            let g = fail.get("mlfgained").map(str::to_owned);
            fail.set("nofail", g);
        }
    } else if fail.truthy("nofail") {
        nf |= 1;
    }
    if fail.pop("mlfforget").is_some_and(|v| !v.is_empty()) {
        nf |= 2;
    }
    let users;
    let mut target: Fields;
    let entry;
    if let Some(p) = pos {
        let mut g = state.mlfid.entries[p]
            .2
            .take()
            .map(Arc::unwrap_or_clone)
            .unwrap_or_default();
        users = update_users(&mut g, fail.get("user"));
        if g.pop("nofail").is_some_and(|v| !v.is_empty()) {
            nf |= 4;
        }
        if g.pop("mlfgained").is_some_and(|v| !v.is_empty()) {
            nf |= 4;
        }
        if nf & 8 != 0 {
            g.pending = false;
        }
        if nf & 4 == 0 && !g.pending {
            g.matches = 0;
        }
        for (k, v) in fail.vals.drain(..) {
            if v.is_some() {
                if let Some(old) = g.set(k, v) {
                    state.pool.give_string(old);
                }
            }
        }
        state.pool.give(fail);
        target = g;
        if nf & 2 != 0 {
            state.mlfid.remove(p);
            entry = None;
        } else {
            entry = Some(p);
        }
    } else if nf & 2 == 0 {
        if let Some(u) = fail.get("user").filter(|u| !u.is_empty()) {
            let u = u.to_owned();
            fail.users.get_or_insert_with(BTreeSet::new).insert(u);
        }
        users = fail.users.as_ref().map_or(0, BTreeSet::len);
        target = fail;
        // Bounded: when full, drop the oldest entries (expired or not), as fail2ban does.
        if state.mlfid.len() >= MLFID_CACHE_SIZE {
            while let Some((expiry, data)) = state.mlfid.pop_front() {
                recycle(&mut state.pool, data);
                if expiry > now && state.mlfid.len() < MLFID_CACHE_SIZE {
                    break;
                }
            }
        }
        if let Some(i) = state.mlfid.find(h, mlfid) {
            let data = state.mlfid.remove(i);
            recycle(&mut state.pool, data);
        }
        state.mlfid.push_back(mlfid, h, now + MLFID_CACHE_SECS);
        entry = Some(state.mlfid.len() - 1);
    } else {
        users = fail.users.as_ref().map_or(0, BTreeSet::len);
        target = fail;
        entry = None;
    }
    if std::mem::take(&mut target.pending) || users > 1 {
        target.pop("nofail");
        target.pop("mlfgained");
        nf &= !(8 | 1);
    }
    if nf & 1 == 0 {
        let mut m =
            std::mem::take(&mut target.nofail_matches) + std::mem::take(&mut target.matches);
        if nf & 8 == 0 {
            m += matched;
        }
        target.matches = m;
    } else if nf & 3 == 1 {
        target.nofail_matches += matched;
    }
    (target, entry)
}

/// Gives the buffers of a dropped cache entry's data to `pool`, unless a failure still
/// shares the data.
fn recycle(pool: &mut Pool, data: Option<Arc<Fields>>) {
    if let Some(f) = data.and_then(|d| Arc::try_unwrap(d).ok()) {
        pool.give(f);
    }
}

/// Whether the multi-line id cache has an unexpired entry for `mlfid` (the entry
/// [`merge_failure`] would merge into).
fn has_live_mlfid(state: &State, mlfid: &str, now: i64) -> bool {
    state.mlfid.find_live(key_hash(mlfid), mlfid, now).is_some()
}

/// The index of the first `h` in `s`: sixteen at a time with a branch-free compare (which
/// the compiler turns into vector instructions), then the position inside the block.
fn first_eq(s: &[u16], h: u16) -> Option<usize> {
    let blocks = s.chunks_exact(16);
    let rest = blocks.remainder();
    let whole = s.len() - rest.len();
    for (k, c) in blocks.enumerate() {
        if c.iter().fold(false, |m, &x| m | (x == h)) {
            return c.iter().position(|&x| x == h).map(|i| 16 * k + i);
        }
    }
    rest.iter().position(|&x| x == h).map(|i| whole + i)
}

/// A hash of an MLFID, compared before the string in cache look-ups: eight bytes at a
/// time (an id is some 20 bytes: a byte-at-a-time hash was a chain of 20 multiplies),
/// then mixed so that the top bits ([`MlfidCache::bucket`]) and the tag bits depend on
/// every byte. (The cache is small and local, so a cheap hash is enough.)
fn key_hash(s: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = s.len() as u64;
    let mut words = s.as_bytes().chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = step(h, u64::from_le_bytes(b));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(b));
    }
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// Adds `user` to the users seen; returns how many there are.
fn update_users(f: &mut Fields, user: Option<&str>) -> usize {
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        let users = f.users.get_or_insert_with(BTreeSet::new);
        if !users.contains(u) {
            users.insert(u.to_owned());
        }
    }
    f.users.as_ref().map_or(0, BTreeSet::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A single-line filter definition with these failregexes.
    fn def(failregex: &[&str]) -> FilterDef {
        FilterDef {
            name: "t".into(),
            failregex: failregex.iter().map(|s| s.to_string()).collect(),
            maxlines: 1,
            usedns: "warn".into(),
            ..FilterDef::default()
        }
    }

    /// Loads a definition with UTC and 2026 as the current year.
    fn load(def: FilterDef) -> F2bFilter {
        let opts = LoadOptions {
            zone: DefaultZone::Fixed(0),
            current_year: 2026,
        };
        F2bFilter::from_def(def, opts).unwrap()
    }

    fn filter(failregex: &[&str]) -> F2bFilter {
        load(def(failregex))
    }

    /// The multi-line ids in a state's cache, oldest first.
    fn cache_ids(s: &State) -> Vec<String> {
        s.mlfid.entries.iter().map(|e| e.0.clone()).collect()
    }

    /// A failure's pattern, id, user, attempts and whether it is `nofail`, in one string.
    fn summary(x: &Failure) -> String {
        format!(
            "{} {:?} {:?} {} {}",
            x.pattern,
            x.id,
            x.user(),
            x.attempts,
            x.nofail
        )
    }

    fn patterns(f: &F2bFilter, st: &mut State, line: &str) -> Vec<(usize, String)> {
        f.process_line_all(st, line.as_bytes(), 1_790_000_000)
            .iter()
            .map(|x| {
                (
                    x.pattern,
                    x.id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn first_match_search_picks_the_first_failregex_in_file_order() {
        let f = filter(&[
            r"^foo <HOST>$",
            r"^foo <HOST>",
            r"^bar (?:x|xy) <HOST>",
            r"^bar xy? <HOST> z$",
        ]);
        assert!(
            f.first.is_some(),
            "all anchored: the first-match search is built"
        );
        let mut st = f.new_state();
        let p = |st: &mut State, l: &str| patterns(&f, st, l);
        assert_eq!(p(&mut st, "foo 192.0.2.1"), vec![(0, "192.0.2.1".into())]);
        assert_eq!(p(&mut st, "foo 192.0.2.1 x"), vec![(1, "192.0.2.1".into())]);
        // Pattern 3 matches at a shorter end than pattern 2; pattern 2 still wins.
        assert_eq!(
            p(&mut st, "bar xy 198.51.100.7 z"),
            vec![(2, "198.51.100.7".into())]
        );
        assert_eq!(
            p(&mut st, "bar x 203.0.113.9 z"),
            vec![(2, "203.0.113.9".into())]
        );
        assert!(p(&mut st, "baz 192.0.2.3").is_empty());
        // Check-all mode still sees every match (the set answers past the first).
        st.set_check_all(true);
        let all: Vec<usize> = p(&mut st, "foo 192.0.2.1").iter().map(|x| x.0).collect();
        assert_eq!(all, vec![0, 1]);
        let all: Vec<usize> = p(&mut st, "bar xy 198.51.100.7 z")
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(all, vec![2, 3]);
    }

    /// A prefregex in sshd's form (the fast split) with nofail + mlfforget failregexes.
    fn mlfid_filter() -> F2bFilter {
        load(FilterDef {
            prefregex: Some(r"^<F-MLFID>\S+ d\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$".into()),
            ..def(&[
                r"^Failed for <F-USER>\S+</F-USER> from <HOST>$",
                r"^<F-NOFAIL>Try</F-NOFAIL> for <F-USER>\S+</F-USER> from <HOST>$",
                r"^<F-NOFAIL><F-MLFFORGET>(Closed|Gone)</F-MLFFORGET></F-NOFAIL> by (?:user <F-USER>\S+</F-USER> )?<HOST>$",
                r"^<F-MLFFORGET><F-MLFGAINED>Accepted</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>$",
            ])
        })
    }

    #[test]
    fn forget_nofail_matches_skip_captures_with_the_same_results() {
        let fast = mlfid_filter();
        assert!(fast.pref_fast.is_some() && fast.first.is_some());
        let kinds: Vec<bool> = fast.fail.iter().map(|r| r.forget_nofail).collect();
        assert_eq!(kinds, vec![false, false, true, true]);
        // By the first byte, only nofail + forget failregexes can match "Closed",
        // "Gone" and "Accepted" lines.
        let t = fast.by_first.as_ref().expect("first-byte table");
        for text in [
            "Closed by 192.0.2.1",
            "Gone by 192.0.2.1",
            "Accepted for x from 192.0.2.1",
        ] {
            assert_eq!(t.left(text), Left::Forget, "{text:?}");
        }
        assert_eq!(t.left("Failed for x from 192.0.2.1"), Left::One(0));
        assert_eq!(t.left("Try for x from 192.0.2.1"), Left::One(1));
        assert_eq!(t.left("Closing soon"), Left::None);
        let mut slow = fast.clone();
        slow.fail.iter_mut().for_each(|r| r.forget_nofail = false);
        slow.by_first = None;
        let lines = [
            // Only nofail + forget failregexes could match, and none does.
            "h d[7]: Closing soon",
            "h d[8]: Try for ivy from 192.0.2.8",
            "h d[8]: Closing soon",
            // No entry: the fast path answers (nothing).
            "h d[1]: Closed by 192.0.2.1",
            // An entry made by a nofail line, then forgotten (the entry must go).
            "h d[2]: Try for alice from 192.0.2.2",
            "h d[2]: Gone by 192.0.2.2",
            "h d[2]: Failed for alice from 192.0.2.2",
            // Two users on one id: the closing line becomes a failure.
            "h d[3]: Try for bob from 198.51.100.3",
            "h d[3]: Try for carol from 198.51.100.3",
            "h d[3]: Closed by user dave 198.51.100.3",
            "h d[3]: Closed by 198.51.100.3",
            // A failure, forgotten, then a fresh failure on the same id.
            "h d[4]: Failed for erin from 203.0.113.4",
            "h d[4]: Closed by 203.0.113.4",
            "h d[4]: Failed for erin from 203.0.113.4",
            "h d[5]: Accepted for frank from 203.0.113.5",
            "h d[5]: Gone by 203.0.113.5",
            // Accepted with a live entry of another user: a failure.
            "h d[6]: Try for gina from 192.0.2.6",
            "h d[6]: Accepted for hank from 192.0.2.6",
            "h d[6]: Accepted for hank from 192.0.2.6",
        ];
        let show = |v: Vec<Failure>| -> Vec<String> { v.iter().map(summary).collect() };
        let (mut a, mut b) = (fast.new_state(), slow.new_state());
        let mut failures = 0;
        for (n, l) in lines.iter().enumerate() {
            let now = 1_790_000_000 + n as i64;
            let x = show(fast.process_line_all(&mut a, l.as_bytes(), now));
            let y = show(slow.process_line_all(&mut b, l.as_bytes(), now));
            assert_eq!(x, y, "line {n}: {l}");
            failures += x.len();
            assert_eq!(cache_ids(&a), cache_ids(&b), "cache after line {n}");
        }
        assert!(failures >= 4, "{failures}");
    }

    #[test]
    fn leading_literals_never_reject_a_text_the_regex_matches() {
        let cases: [(&str, bool, Option<&str>); 5] = [
            (r"^Fail(?=ed) (?P<h>\S+) from (?P=h)$", false, Some("Fail")),
            (r"^(?i)Fail(?=ed) (?P<h>\S+)", false, None),
            (r"^Fail(?=ed) (?P<h>\S+)", true, None),
            (r"\AFa(?:il)(?=ed) (?P<h>\S+)", false, Some("Fa")),
            (r"x^Fail(?=ed)", false, None),
        ];
        let texts = [
            "Failed 192.0.2.1 from 192.0.2.1",
            "FAILED 192.0.2.1 from 192.0.2.1",
            "x Failed 192.0.2.1 from 192.0.2.1",
            "Failed 192.0.2.1 from 192.0.2.2",
            "Fa",
            "",
        ];
        for (p, multiline, lead) in cases {
            let rx = Rx::new(p, multiline).unwrap();
            assert!(rx.is_backtracking(), "{p}");
            assert_eq!(rx.lead.as_deref(), lead, "{p}");
            for t in texts {
                let mut c = Caps::default();
                let m = rx.re.search(t, &mut c) == Search::Match;
                assert!(
                    rx.gate_passes(t) || !m,
                    "{p} rejected {t:?}, which it matches"
                );
            }
        }
        // The leading literals reject a text the literal gate alone lets through.
        let rx = Rx::new(cases[0].0, false).unwrap();
        let (inner, start) = (texts[2], &texts[2][2..]);
        assert!(rx.gate.as_ref().unwrap().is_match(inner));
        assert!(!rx.gate_passes(inner));
        assert!(rx.gate_passes(start));
    }

    #[test]
    fn the_pool_reuses_buffers_within_its_bounds() {
        let mut pool = Pool::default();
        let long = pool.string("a much longer value than the next");
        let cap = long.capacity();
        pool.give_string(long);
        let s = pool.string("short");
        assert_eq!(
            (s.as_str(), s.capacity()),
            ("short", cap),
            "same buffer, new value"
        );
        // Empty and oversized buffers are not kept; the count is bounded.
        pool.give_string(String::new());
        pool.give_string("x".repeat(POOL_STRING_CAPACITY + 1));
        assert!(pool.strings.is_empty());
        for _ in 0..POOL_STRINGS + 10 {
            pool.give_string("abc".to_owned());
        }
        assert_eq!(pool.strings.len(), POOL_STRINGS);
        // A value list comes back empty, its strings into the pool.
        let mut pool = Pool::default();
        let mut f = Fields::default();
        f.set("user", Some("bob".to_owned()));
        f.set("ip4", None);
        pool.give(f);
        assert_eq!(pool.strings, vec!["bob".to_owned()]);
        let list = pool.list();
        assert!(list.is_empty() && list.capacity() >= 2);
        for _ in 0..POOL_LISTS + 3 {
            pool.give(Fields::default());
        }
        assert_eq!(pool.lists.len(), POOL_LISTS);
    }

    #[test]
    fn mlfid_cache_tells_keys_with_the_same_hash_apart() {
        let mut c = MlfidCache::default();
        c.push_back("a", 7, 100);
        c.push_back("b", 7, 50);
        c.push_back("c", 8, 100);
        assert_eq!(c.find(7, "a"), Some(0));
        assert_eq!(c.find(7, "b"), Some(1));
        assert_eq!(c.find(7, "c"), None);
        assert_eq!(c.find(8, "c"), Some(2));
        assert_eq!(c.find_live(7, "b", 60), None);
        assert_eq!(c.find_live(7, "b", 40), Some(1));
        c.remove(0);
        assert_eq!(c.find(7, "b"), Some(0));
        assert_eq!(c.pop_front().map(|e| e.0), Some(50));
        assert_eq!(
            c.spare.as_deref(),
            Some("b"),
            "the id's buffer is kept for reuse"
        );
        assert_eq!((c.len(), c.find(8, "c")), (1, Some(0)));
        // A new entry takes the spare buffer, with its own id.
        c.push_back("dd", 9, 100);
        assert!(c.spare.is_none());
        assert_eq!((c.find(9, "dd"), c.entries[1].0.as_str()), (Some(1), "dd"));
        assert_eq!(c.hashes.len(), c.entries.len());
        assert_eq!(c.tags.len(), c.entries.len());
    }

    #[test]
    fn mlfid_cache_find_agrees_with_a_plain_scan() {
        // The bucket counters and the blockwise hash scan against a scan of every entry,
        // over a cache that fills, wraps around (both halves of the deque), and loses
        // entries from the front and the middle. Hashes: real ones, plus colliding ones
        // (same hash, other keys; same bucket, other hashes).
        let plain = |c: &MlfidCache, h: u64, k: &str| {
            c.hashes
                .iter()
                .zip(&c.entries)
                .position(|(&x, e)| x == h && e.0 == k)
        };
        let mut c = MlfidCache::default();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let key = |n: u64| format!("host sshd[{}]: ", n % 300);
        let hash = |n: u64, k: &str| match n % 6 {
            0 => 42,                        // one hash for many keys
            1 => ((n % 3) << 54) | (n % 7), // same bucket, other hashes
            2 => ((n % 5) << 32) | 0x1200,  // same tag, other hashes
            _ => key_hash(k),
        };
        for step in 0..20_000u64 {
            let r = next();
            let k = key(r >> 8);
            let h = hash(r >> 20, &k);
            assert_eq!(c.find(h, &k), plain(&c, h, &k), "step {step}");
            match r % 4 {
                0 | 1 => {
                    if plain(&c, h, &k).is_none() {
                        if c.len() >= MLFID_CACHE_SIZE {
                            c.pop_front();
                        }
                        c.push_back(&k, h, 0);
                    }
                }
                2 if c.len() > 0 => {
                    c.remove((r >> 32) as usize % c.len());
                }
                _ => {
                    c.pop_front();
                }
            }
            assert!(c.len() <= MLFID_CACHE_SIZE);
            assert_eq!(
                c.counts.iter().map(|&n| usize::from(n)).sum::<usize>(),
                c.len(),
                "step {step}"
            );
        }
        // Every entry left is found where it is.
        for i in 0..c.len() {
            let (h, k) = (c.hashes[i], c.entries[i].0.clone());
            assert_eq!(c.find(h, &k), plain(&c, h, &k));
        }
    }

    #[test]
    fn prefregex_fast_ends_agree_with_the_captures() {
        // The anchored forward pass's ends against the prefregex's own groups: the
        // content starts where `^PQ` ends, the mlfid ends where `^P` ends.
        let pref = tags::expand(
            r"^<F-MLFID>\s*(?:\S+\s+)?(?:[\w.-]+(?:\[\d+\])?:?\s+)?</F-MLFID>(?:(?:warn|crit): (?:AUTH: )?)?<F-CONTENT>.+</F-CONTENT>$",
            "warn",
        );
        let pf = PrefFast::new(&pref).expect("the fast path applies");
        let re = PyRegex::new(&pref, false).unwrap();
        let (content, mlfid) = (
            re.group_index("content").unwrap(),
            re.group_index("mlfid").unwrap(),
        );
        let mut tried = 0;
        let dc = &mut DfaCaches::default();
        for line in [
            "gate1 authd[42]: warn: AUTH: bad password for x",
            "gate1 authd[42]: crit: user y locked",
            "gate1 authd: message",
            " host2  authd[7]:  spaced out",
            "gate1 authd[42]: ",
            "gate1 authd[42]: x",
            "gate1 authd[42]: wonder why",
            "gate1 authd[42]: crit:x",
            "gate1 authd[42]: warn: AUTH:",
            "gate1 authd[42]: warn: ",
            "gate1 authd[42]:  warn: spaced",
            "nospace",
            "",
            "h\u{e9}te d\u{e6}mon[1]: non-ASCII \u{fc}",
        ] {
            let mut caps = Caps::default();
            let matched = re.search(line, &mut caps) == Search::Match;
            let ascii = is_ascii(line);
            assert_eq!(ascii, line.is_ascii());
            if ascii {
                // Both automata give the same ends on an ASCII line.
                assert_eq!(
                    pf.content_end(dc, line, true),
                    pf.content_end(dc, line, false)
                );
                assert_eq!(pf.mlfid_end(dc, line, true), pf.mlfid_end(dc, line, false));
            }
            // One search for both ends where the byte after the mlfid cannot start `Q`.
            let split = pf.split(dc, line, ascii);
            assert_eq!(
                split.map(|s| s.0),
                pf.content_end(dc, line, ascii),
                "{line:?}"
            );
            if let Some((_, Some(m))) = split {
                assert!(ascii);
                assert_eq!(Some(m), pf.mlfid_end(dc, line, ascii), "{line:?}");
            }
            match pf.content_end(dc, line, ascii) {
                // The fast path's answer (the caller takes it when content is left).
                Some(e) if e < line.len() => {
                    assert!(matched, "{line:?}");
                    let (c, m) = (caps.get(content).unwrap(), caps.get(mlfid).unwrap());
                    assert_eq!(e, c.0, "{line:?}");
                    assert_eq!(pf.mlfid_end(dc, line, ascii), Some(m.1), "{line:?}");
                    tried += 1;
                }
                // Nothing left for `.+` (the caller runs the prefregex), or no match.
                Some(_) => {}
                None => assert!(!matched, "{line:?}"),
            }
        }
        assert!(tried >= 6, "{tried}");
        // `Q` here can match empty and starts with `w` or `c`.
        let qf = pf.q_first.expect("the shortcut applies");
        assert!(qf.contains(b'w') && qf.contains(b'c') && !qf.contains(b'x'));
        // A `Q` that cannot match empty, or has an assertion, gets no shortcut.
        for q in [r"(?:warn|crit): ", r"(?:\bwarn: )?"] {
            let p = format!(r"^(?P<mlfid>\S+ )(?:{q})(?P<content>.+)$");
            let pf = PrefFast::new(&p).expect("the fast path applies");
            assert!(pf.q_first.is_none(), "{q}");
        }
    }

    #[test]
    fn prefregex_fast_path_gives_the_general_fields() {
        // The mlfid from the line straight into the failregex's values, or the failregex's
        // own mlfid group over it, against the prefregex run with captures and merged.
        let fast = load(FilterDef {
            prefregex: Some(r"^<F-MLFID>\S+ d\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$".into()),
            ..def(&[
                r"^Failed for <F-USER>\S+</F-USER> from <HOST>$",
                r"^Own <F-MLFID>\w+</F-MLFID> for <F-USER>\S+</F-USER> from <HOST>$",
                r"^<F-NOFAIL>Try</F-NOFAIL> for <F-USER>\S+</F-USER> from <HOST>$",
            ])
        });
        assert!(fast.pref_fast.is_some());
        let mut general = fast.clone();
        general.pref_fast = None;
        let (mut a, mut b) = (fast.new_state(), general.new_state());
        let show = |v: Vec<Failure>| -> Vec<String> {
            v.iter()
                .map(|x| {
                    let mut f: Vec<_> = x.fields.iter().collect();
                    f.sort();
                    format!(
                        "{} {:?} {:?} {:?} {} {f:?}",
                        x.pattern,
                        x.id,
                        x.users(),
                        x.user(),
                        x.attempts
                    )
                })
                .collect()
        };
        let mut results = 0;
        for (n, l) in [
            "h d[1]: Try for ann from 192.0.2.1",
            "h d[1]: Failed for bo from 192.0.2.1",
            "h d[2]: Own sess7 for cy from 192.0.2.2",
            "h d[2]: Own sess7 for cy from 192.0.2.2",
            "h d[3]: Failed for di from 192.0.2.3",
        ]
        .iter()
        .enumerate()
        {
            let now = 1_790_000_000 + n as i64;
            let x = show(fast.process_line_all(&mut a, l.as_bytes(), now));
            let y = show(general.process_line_all(&mut b, l.as_bytes(), now));
            assert_eq!(x, y, "line {n}: {l}");
            assert!(x.iter().all(|r| r.contains("mlfid")), "{x:?}");
            results += x.len();
        }
        assert!(results >= 3, "{results}");
        assert_eq!(cache_ids(&a), cache_ids(&b));
        assert!(cache_ids(&a).contains(&"sess7".to_owned()));
    }

    #[test]
    fn group_names_are_interned_once() {
        let a = intern("some_group").unwrap();
        let b = intern(&String::from("some_group")).unwrap();
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "some_group");
        assert!(!std::ptr::eq(a, intern("other_group").unwrap()));
        // Two filters with the same group names share them.
        let (f, g) = (filter(&[r"^x <HOST>$"]), filter(&[r"^y <HOST>$"]));
        let ip4 = |f: &F2bFilter| {
            f.fail[0]
                .named
                .iter()
                .find(|(n, _)| *n == "ip4")
                .map(|x| x.0)
        };
        assert!(std::ptr::eq(ip4(&f).unwrap(), ip4(&g).unwrap()));
    }

    #[test]
    fn lines_that_are_not_utf8_are_read_lossily() {
        // The SIMD check takes what std's takes; a line that is not UTF-8 is read with
        // U+FFFD in place of the bad bytes, as before, and still matches.
        let f = filter(&[r"^user (?P<user>\S+) from <HOST>$"]);
        let mut st = f.new_state();
        let mut line = b"user b".to_vec();
        line.extend_from_slice(&[0xff, 0xc3]);
        line.extend_from_slice(b"b from 192.0.2.4");
        let got = f.process_line_all(&mut st, &line, 1_790_000_000);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].user(), Some("b\u{fffd}\u{fffd}b"));
        for bytes in [
            &b"plain"[..],
            "h\u{e9}llo \u{2003} \u{1f600}".as_bytes(),
            &[0xed, 0xa0, 0x80],       // a surrogate
            &[0xc0, 0xaf],             // overlong
            &[0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
            &[0xe2, 0x82],             // cut short
            &[b'a'; 70],
        ] {
            assert_eq!(
                simdutf8::basic::from_utf8(bytes).ok(),
                std::str::from_utf8(bytes).ok(),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn orders_skip_only_what_the_first_match_rules_out() {
        // Set patterns (linear) between backtracking ones (a back-reference), with an
        // ignoreregex that vetoes some matches (the search then goes on past the first).
        let mut d = def(&[
            r"^(\w)\1 from <HOST>$",
            r"^foo <HOST>$",
            r"^foo <HOST>",
            r"^(\w+) \1 <HOST>",
            r"^bar (?:x|xy) <HOST>",
            r"^bar xy? <HOST> z$",
        ]);
        d.ignoreregex = vec![r"^foo 192\.0\.2\.9".to_owned()];
        for d in [
            def(&d.failregex.iter().map(String::as_str).collect::<Vec<_>>()),
            d,
        ] {
            let fast = load(d);
            assert!(fast.first.is_some() && !fast.orders.is_empty());
            // Set patterns 1, 2, 4, 5: before set pattern 2 (failregex 4) only the
            // backtracking ones, then all from it on; none matching: backtracking only.
            assert_eq!(fast.orders[2], vec![0, 3, 4, 5]);
            assert_eq!(fast.orders[4], vec![0, 3]);
            let mut skip_first = fast.clone();
            skip_first.orders[0] = vec![0, 3];
            let mut st = skip_first.new_state();
            assert!(
                patterns(&skip_first, &mut st, "foo 192.0.2.1").is_empty(),
                "the orders are what the loop follows"
            );
            let mut general = fast.clone();
            general.orders.clear();
            for check_all in [false, true] {
                let (mut a, mut b) = (fast.new_state(), general.new_state());
                a.set_check_all(check_all);
                b.set_check_all(check_all);
                for line in [
                    "aa from 192.0.2.1",
                    "foo 192.0.2.1",
                    "foo 192.0.2.9",
                    "foo 192.0.2.9 x",
                    "foo foo 192.0.2.9",
                    "bar xy 198.51.100.7 z",
                    "bar bar 203.0.113.1",
                    "bar x 203.0.113.9 z",
                    "ab from 192.0.2.1",
                    "nothing here",
                ] {
                    assert_eq!(
                        patterns(&fast, &mut a, line),
                        patterns(&general, &mut b, line),
                        "{line:?} check_all={check_all}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_first_byte_skips_the_first_match_search_with_the_same_results() {
        let mut d = def(&[
            r"^Bad (?!x)(?P<user>\S+) from <HOST>$",
            r"^pam_\w+ fail for <F-USER>\S*</F-USER> from <HOST>$",
            r"^Conn closed by <HOST>$",
            r"^Conn reset by <HOST>",
            r"^(?i)xyz from <HOST>",
            r"^<F-NOFAIL>Gone</F-NOFAIL> <F-MLFFORGET>by</F-MLFFORGET> <HOST>",
            r"^\s*Sure <F-USER>\w*</F-USER> at <HOST>$",
        ]);
        let t = load(d.clone()).by_first.expect("first-match search: table");
        let at = |text: &str| t.left(text);
        // Set indices: 0 pam, 1 and 2 Conn, 3 xyz, 4 Gone (nofail + forget), 5 the last.
        assert_eq!(at("pam_x fail for u from 192.0.2.1"), Left::One(0));
        assert_eq!(at("pam_x"), Left::None, "its literals are missing");
        assert_eq!(
            at("Conn closed by 192.0.2.1"),
            Left::One(1),
            "by the literals"
        );
        assert_eq!(at("Conn closed by Conn reset by 192.0.2.1"), Left::Many);
        assert_eq!(
            (at("xyz from 192.0.2.1"), at("XYZ")),
            (Left::One(3), Left::One(3)),
            "(?i): no literals to check, the only one by its first byte"
        );
        assert_eq!(
            at("Gone by 192.0.2.1"),
            Left::Forget,
            "nofail + forget, nothing else"
        );
        assert_eq!(at("Bad x"), Left::None, "only outside the set");
        for text in ["Sure bob at 192.0.2.1", " Sure b at 1", "\tSure b at 1"] {
            assert_eq!(at(text), Left::One(5), "{text:?}");
        }
        for text in ["-", "B", "_", ""] {
            assert!(matches!(at(text), Left::None | Left::Many), "{text:?}");
        }
        // The pattern's own search (the one the table leads to) against the general one,
        // on ASCII and other texts.
        let pam = &load(d.clone()).fail[1];
        for text in [
            "pam_unix fail for root from 192.0.2.1",
            "pam_unix fail for r\u{f6}t from 192.0.2.1",
            "pam_\u{e9} fail for root from 192.0.2.1",
            "pam_unix fail for root from 192.0.2.1 x",
        ] {
            let (mut a, mut b) = (Caps::default(), Caps::default());
            let (x, y) = (
                pam.re.search_linear(text, &mut a),
                pam.re.search(text, &mut b),
            );
            assert_eq!(x, y, "{text:?}");
            if x == Search::Match {
                assert_eq!(a.get(0), b.get(0), "{text:?}");
                let u = pam.named.iter().find(|n| n.0 == "user").unwrap().1;
                assert_eq!(a.get(u), b.get(u), "{text:?}");
            }
        }
        d.ignoreregex = vec![r"^pam_\w+ fail for eve".to_owned()];
        for d in [
            def(&d.failregex.iter().map(String::as_str).collect::<Vec<_>>()),
            d,
        ] {
            let fast = load(d);
            let mut general = fast.clone();
            general.by_first = None;
            let lines = [
                "pam_unix fail for root from 192.0.2.1",
                "pam_unix fail for from 192.0.2.1",
                "pam_unix fail for eve from 192.0.2.1",
                "pam_unix fail for root from 192.0.2.1 x",
                "pam_x fail",
                "pam_\u{e9} fail for root from 192.0.2.1",
                "XYZ from 192.0.2.4",
                "xyz from 192.0.2.4 and more",
                "Sure bob at 192.0.2.5",
                "  Sure bob at 192.0.2.5",
                "Sure  at 192.0.2.5",
                "Gone by 192.0.2.6",
                "Bad bob from 192.0.2.7",
                "Bad xbob from 192.0.2.7",
                "Conn closed by 192.0.2.8",
                "-- nothing",
                "",
            ];
            for check_all in [false, true] {
                let (mut a, mut b) = (fast.new_state(), general.new_state());
                a.set_check_all(check_all);
                b.set_check_all(check_all);
                for line in lines {
                    let all = |f: &F2bFilter, st: &mut State| -> Vec<String> {
                        f.process_line_all(st, line.as_bytes(), 1_790_000_000)
                            .iter()
                            .map(summary)
                            .collect()
                    };
                    assert_eq!(
                        all(&fast, &mut a),
                        all(&general, &mut b),
                        "{line:?} {check_all}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_lazy_dfa_that_gives_up_hands_the_search_to_the_fallback() {
        // Many states (the 13th byte from the end decides) and a cache only just big
        // enough to build: the lazy DFA keeps clearing it and gives up; the answer must
        // then come from the meta regex, the same as a plain regex's.
        let pats = vec![r"^(?:[ab]*a[ab]{12})+x".to_owned(), r"^[ab]*y".to_owned()];
        let limits = (10..24)
            .map(|k| Limits {
                nfa: 10 << 20,
                cache: 1 << k,
            })
            .find(|l| lazy_dfa(&pats, true, *l).is_some())
            .expect("some small cache builds");
        let dual = Dual::new(pats.clone(), limits, 0).expect("it builds");
        let plain = regex_automata::meta::Regex::new_many(&pats).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut gave_up = 0;
        for n in [0, 1, 13, 200, 5000, 20000] {
            for end in ["x", "y", "z"] {
                let mut t = String::new();
                for _ in 0..n {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    t.push(if seed & 1 == 0 { 'a' } else { 'b' });
                }
                t.push_str(end);
                let input = regex_automata::Input::new(&t).anchored(regex_automata::Anchored::Yes);
                let dfa = dual.ascii.as_ref().unwrap();
                if dfa.try_search_fwd(&mut dfa.create_cache(), &input).is_err() {
                    gave_up += 1;
                }
                let mut c = DfaCaches::default();
                assert_eq!(
                    dual.search_half(&mut c, &t, true),
                    Some(plain.search_half(&input)),
                    "{n} {end}"
                );
            }
        }
        assert!(
            gave_up > 0,
            "the lazy DFA never gave up: the fallback was not tried"
        );
    }

    #[test]
    fn a_state_used_with_another_filter_gets_its_own_caches() {
        // Both failregexes of each filter can match the line by its first byte and
        // literals, so the first-match automaton answers (with the state's cache).
        let a = filter(&[r"^Bad (?:user|pass) from <HOST>$", r"^Bad user from <HOST>"]);
        let b = filter(&[r"^Bad user from <HOST> x$", r"^Bad user from <HOST>"]);
        let line = b"Bad user from 192.0.2.7";
        for f in [&a, &b] {
            let t = f.by_first.as_ref().expect("first-byte table");
            let body = std::str::from_utf8(line).unwrap();
            assert_eq!(t.left(body), Left::Many, "the automaton must run");
        }
        let mut st = a.new_state();
        let hit = |f: &F2bFilter, st: &mut State| -> Vec<usize> {
            f.process_line(st, line, 0).map(|x| x.pattern).collect()
        };
        assert_eq!(hit(&a, &mut st), vec![0]);
        assert_eq!(hit(&b, &mut st), vec![1], "b's automaton, not a's cache");
        assert_eq!(hit(&a, &mut st), vec![0]);
        assert_eq!(st.dfa.owner, a.id);
    }

    #[test]
    fn first_match_takes_the_unicode_automaton_for_other_texts() {
        // Unicode classes: the ASCII automaton would answer differently on these texts
        // (`\w` and `\s` take more than ASCII), so they must go to the Unicode one.
        let f = filter(&[
            r"^\w+ from <HOST>$",
            r"^user\s(?P<user>\S+) from <HOST>$",
            r"^(?i)kill from <HOST>$",
        ]);
        let fm = f.first.as_ref().expect("all anchored: first-match search");
        let c = &mut DfaCaches::default();
        let mut first = |text: &str| {
            let mut h = Hits::default();
            h.first(fm, c, text, is_ascii(text)).expect("it builds")
        };
        for (text, want) in [
            ("abc from 192.0.2.1", Some(0)),
            ("user\u{2003}x from 192.0.2.1", Some(1)),
            ("\u{e9}t\u{e9} from 192.0.2.1", Some(0)),
            ("user bob from 192.0.2.1", Some(1)),
            ("user b\u{f6}b from 192.0.2.1", Some(1)),
            ("\u{212a}ILL from 192.0.2.1", Some(0)),
            ("- from 192.0.2.1", None),
        ] {
            assert_eq!(first(text), want, "{text:?}");
            if is_ascii(text) {
                let mut h = Hits::default();
                let c = &mut DfaCaches::default();
                assert_eq!(h.first(fm, c, text, false), Some(want), "{text:?}");
            }
        }
        // The ASCII check itself, at every length around a vector's width.
        for n in 0..70 {
            let mut t = "a".repeat(n);
            assert!(is_ascii(&t));
            t.push('\u{e9}');
            assert!(!is_ascii(&t), "{n}");
        }
    }

    #[test]
    fn the_set_is_built_on_first_use_and_its_fallback_agrees() {
        let f = filter(&[
            r"^foo <HOST>$",
            r"^foo <HOST>",
            r"^bar (?:x|xy) <HOST>",
            r"^bar xy? <HOST> z$",
        ]);
        let built = |f: &F2bFilter| f.set.as_ref().is_some_and(|s| s.set.get().is_some());
        let mut st = f.new_state();
        assert_eq!(patterns(&f, &mut st, "foo 192.0.2.1").len(), 1);
        assert!(!built(&f), "first-match mode does not need the set");
        // The same answers from the set and from the patterns one by one.
        let mut each = f.clone();
        if let Some(s) = each.set.as_mut() {
            s.set = OnceLock::from(None);
        }
        let (mut a, mut b) = (f.new_state(), each.new_state());
        a.set_check_all(true);
        b.set_check_all(true);
        for l in [
            "foo 192.0.2.1",
            "foo 192.0.2.1 x",
            "bar xy 198.51.100.7 z",
            "bar x 203.0.113.9 z",
            "baz 192.0.2.3",
        ] {
            let x: Vec<usize> = patterns(&f, &mut a, l).iter().map(|x| x.0).collect();
            let y: Vec<usize> = patterns(&each, &mut b, l).iter().map(|x| x.0).collect();
            assert_eq!(x, y, "{l}");
        }
        assert!(built(&f), "check-all mode asked the set");
        assert!(each.set.as_ref().is_some_and(|s| s.get().is_none()));
    }

    #[test]
    fn unanchored_failregexes_keep_the_set() {
        let f = filter(&[r"foo <HOST>$", r"^bar <HOST>"]);
        assert!(f.first.is_none());
        let mut st = f.new_state();
        assert_eq!(
            patterns(&f, &mut st, "x foo 192.0.2.1"),
            vec![(0, "192.0.2.1".into())]
        );
        assert_eq!(
            patterns(&f, &mut st, "bar 192.0.2.2"),
            vec![(1, "192.0.2.2".into())]
        );
    }
}
