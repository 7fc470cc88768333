//! Python `re` patterns in Rust: parsed once, then run on the `regex` crate (linear time)
//! when the pattern's meaning allows, or on our own backtracking matcher (with a step
//! limit) when it uses look-around, back-references or conditional groups.

pub mod backtrack;
pub mod emit;
pub mod parse;

use std::collections::HashMap;
use std::sync::OnceLock;

use backtrack::{Prog, StepLimit};
use regex_automata::nfa::thompson::backtrack::{BoundedBacktracker, Cache};
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::Input;

/// Which engine runs a pattern.
#[derive(Debug, Clone)]
enum Engine {
    Linear(Box<Linear>),
    Backtrack(Box<Prog>),
}

/// A pattern the `regex` crate runs. Its engines are built on first use: compiling the
/// Unicode classes of fail2ban's patterns (`\S`, `\w` in `<HOST>` ...) is most of a
/// filter's load time, and a failregex that the first-match search covers is seldom run
/// on its own. The pattern's syntax is checked when it is made (errors belong to the load).
#[derive(Debug, Clone)]
struct Linear {
    /// The pattern in the `regex` crate's syntax.
    pattern: String,
    /// The `regex` crate's regex; `None` when it does not build (its size limits), and
    /// the pattern then runs on our backtracker (`fallback`), which means the same.
    re: OnceLock<Option<regex::Regex>>,
    fallback: OnceLock<Option<Box<Prog>>>,
    /// The same pattern on bounded backtrackers, for the captures of a match already known
    /// to exist (only failregexes need them).
    capturers: OnceLock<Capturers>,
}

/// Bounded backtrackers for the captures of a linear pattern, each built on first use.
#[derive(Debug, Clone)]
struct Capturers {
    /// With the regex crate's defaults (Unicode, UTF-8, all captures): the same
    /// leftmost-first match and groups as the `regex::Regex`.
    unicode: OnceLock<Option<BoundedBacktracker>>,
    /// The same pattern with ASCII-only classes, for ASCII texts; only for a pattern
    /// written in ASCII. On an ASCII text the two agree: what Unicode adds to `\w`, `\d`,
    /// `\s`, `\b`, `.` and case folding (U+212A for `k` ...) is all outside ASCII, and
    /// the NFA is several times smaller (less to clear and walk per search).
    ascii: OnceLock<Option<BoundedBacktracker>>,
    /// Our backtracking matcher on the same parse tree, for ASCII texts: no visited set
    /// to clear and a branch is skipped when it cannot take the next byte, so it finds
    /// the groups of a known match with a fraction of the work. Only for an ASCII
    /// pattern whose loops all consume text and that has no look-around (where the two
    /// engines' semantics are the same by construction: both give the leftmost-first,
    /// backtracking-order match); `None` otherwise.
    prog: Option<Box<Prog>>,
}

impl Capturers {
    fn new(source: &str, multiline: bool) -> Self {
        let prog = if source.is_ascii() {
            parse::parse(source, multiline)
                .ok()
                .filter(|p| same_semantics(&p.node))
                .and_then(|p| Prog::compile(&p.node, p.groups).ok())
                .map(Box::new)
        } else {
            None
        };
        Capturers {
            unicode: OnceLock::new(),
            ascii: OnceLock::new(),
            prog,
        }
    }

    /// The bounded backtracker for `text`: the ASCII one for an ASCII text when the
    /// pattern has one, else the Unicode one.
    fn for_text(&self, pattern: &str, text_is_ascii: bool) -> Option<&BoundedBacktracker> {
        use regex_automata::nfa::thompson;
        let limit = Some(64 << 20);
        if text_is_ascii && pattern.is_ascii() {
            let ascii = self.ascii.get_or_init(|| {
                BoundedBacktracker::builder()
                    .syntax(
                        regex_automata::util::syntax::Config::new()
                            .unicode(false)
                            .utf8(false),
                    )
                    .thompson(thompson::Config::new().utf8(false).nfa_size_limit(limit))
                    .build(pattern)
                    .ok()
            });
            if let Some(a) = ascii {
                return Some(a);
            }
        }
        self.unicode
            .get_or_init(|| {
                BoundedBacktracker::builder()
                    .thompson(thompson::Config::new().nfa_size_limit(limit))
                    .build(pattern)
                    .ok()
            })
            .as_ref()
    }
}

/// Whether our backtracker and the `regex` crate surely give the same match and groups
/// for `node` on an ASCII text: no look-around, back-reference or conditional, and no
/// loop whose body can match empty (where the engines' empty-iteration rules differ).
fn same_semantics(node: &parse::Node) -> bool {
    use parse::Node;
    match node {
        Node::Look { .. } | Node::Backref { .. } | Node::Cond { .. } => false,
        Node::Repeat { node, .. } => parse::min_width(node) > 0 && same_semantics(node),
        Node::Group { node, .. } => same_semantics(node),
        Node::Concat(v) | Node::Alt(v) => v.iter().all(same_semantics),
        _ => true,
    }
}

/// A compiled Python pattern.
#[derive(Debug, Clone)]
pub struct PyRegex {
    engine: Engine,
    groups: usize,
    names: HashMap<String, usize>,
    source: String,
    /// `re.MULTILINE`.
    multiline: bool,
}

/// Capture positions of one match: `slots[2*g]..slots[2*g+1]` for group `g`, plus the
/// scratch space the linear capture engine reuses between searches.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    slots: Vec<Option<usize>>,
    /// The bounded backtracker's cache and the backtracker it was last used with.
    bt_cache: Option<(Cache, usize)>,
    bt_slots: Vec<Option<NonMaxUsize>>,
}

impl Caps {
    /// The span of group `g`, if it participated.
    pub fn get(&self, g: usize) -> Option<(usize, usize)> {
        match (self.slots.get(2 * g)?, self.slots.get(2 * g + 1)?) {
            (Some(s), Some(e)) => Some((*s, *e)),
            _ => None,
        }
    }
}

/// The outcome of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// No match.
    NoMatch,
    /// A match; the captures are in the `Caps` passed in.
    Match,
    /// The backtracking matcher gave up (step limit); treated as no match.
    Limit,
}

impl PyRegex {
    /// Compiles `pattern` with Python's syntax; `multiline` is `re.MULTILINE`. A linear
    /// pattern's engines are built when first used (see [`Linear`]); its syntax is
    /// checked now.
    pub fn new(pattern: &str, multiline: bool) -> Result<Self, String> {
        let parsed = parse::parse(pattern, multiline)?;
        let engine = if parse::needs_backtracking(&parsed.node) {
            Engine::Backtrack(Box::new(Prog::compile(&parsed.node, parsed.groups)?))
        } else {
            let mut out = String::new();
            emit::emit(&parsed.node, &mut out);
            // The checks the `regex` crate makes before compiling (its parser and
            // translator, with its default settings).
            regex_syntax::ParserBuilder::new()
                .build()
                .parse(&out)
                .map_err(|e| format!("cannot translate {pattern:?}: {e}"))?;
            Engine::Linear(Box::new(Linear {
                pattern: out,
                re: OnceLock::new(),
                fallback: OnceLock::new(),
                capturers: OnceLock::new(),
            }))
        };
        Ok(PyRegex {
            engine,
            groups: parsed.groups,
            names: parsed.names,
            source: pattern.to_owned(),
            multiline,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this pattern runs on the backtracking matcher.
    pub fn is_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Backtrack(_))
    }

    /// Number of capture groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Group names and their indices.
    pub fn names(&self) -> &HashMap<String, usize> {
        &self.names
    }

    /// The index of group `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.names.get(name).copied()
    }

    /// The pattern in the `regex` crate's syntax, when this runs on the linear engine.
    pub fn linear_pattern(&self) -> Option<&str> {
        match &self.engine {
            Engine::Linear(l) => Some(&l.pattern),
            Engine::Backtrack(_) => None,
        }
    }

    /// The `regex` crate's regex, when this runs on the linear engine (built now if it was
    /// not yet); `None` also when it does not build.
    pub fn linear(&self) -> Option<&regex::Regex> {
        match &self.engine {
            Engine::Linear(l) => l.regex(),
            Engine::Backtrack(_) => None,
        }
    }

    /// Python's `pattern.search(text, start, end)`.
    pub fn search_in(&self, text: &str, start: usize, end: usize, caps: &mut Caps) -> Search {
        let prog = match &self.engine {
            Engine::Linear(l) => match l.regex() {
                Some(re) => {
                    let hay = &text[..end];
                    let mut locs = re.capture_locations();
                    if re.captures_read_at(&mut locs, hay, start).is_none() {
                        return Search::NoMatch;
                    }
                    caps.slots.clear();
                    for g in 0..=self.groups {
                        match locs.get(g) {
                            Some((s, e)) => {
                                caps.slots.push(Some(s));
                                caps.slots.push(Some(e));
                            }
                            None => {
                                caps.slots.push(None);
                                caps.slots.push(None);
                            }
                        }
                    }
                    return Search::Match;
                }
                None => match l.fallback(&self.source, self.multiline) {
                    Some(p) => p,
                    // Neither engine builds: reported as the step limit (never silently).
                    None => return Search::Limit,
                },
            },
            Engine::Backtrack(p) => p,
        };
        match prog.search(text, start, end, &mut caps.slots) {
            Ok(true) => Search::Match,
            Ok(false) => Search::NoMatch,
            Err(StepLimit) => Search::Limit,
        }
    }

    /// Python's `pattern.search(text)`.
    pub fn search(&self, text: &str, caps: &mut Caps) -> Search {
        self.search_in(text, 0, text.len(), caps)
    }

    /// [`PyRegex::search`] for a text the pattern is already known to match (a `RegexSet`
    /// said so): a linear pattern's groups come straight from a backtracker, without the
    /// DFA pass that would first look for the match. Same result as [`PyRegex::search`]
    /// in every case.
    pub fn search_matching(&self, text: &str, caps: &mut Caps) -> Search {
        self.search_matching_with(text, caps, true, false)
    }

    /// [`PyRegex::search`] for a linear pattern that may well match (the only candidate
    /// of a first-byte check): our backtracker answers on an ASCII text, match or not
    /// (its "no match" is final: it tried every path); the step limit and other texts
    /// take regex-automata's bounded backtracker, as in [`PyRegex::search_matching`].
    /// Same result as [`PyRegex::search`] in every case.
    pub fn search_linear(&self, text: &str, caps: &mut Caps) -> Search {
        self.search_matching_with(text, caps, true, true)
    }

    /// [`PyRegex::search_matching`]; `ours`: our backtracker may find the groups (an
    /// ASCII text, a pattern it agrees on); else regex-automata's bounded backtracker.
    /// `no_is_final`: our backtracker's "no match" is the answer (else the bounded
    /// backtracker decides it too).
    fn search_matching_with(
        &self,
        text: &str,
        caps: &mut Caps,
        ours: bool,
        no_is_final: bool,
    ) -> Search {
        let Engine::Linear(l) = &self.engine else {
            return self.search(text, caps);
        };
        let bts = l
            .capturers
            .get_or_init(|| Capturers::new(&self.source, self.multiline));
        let ascii = text.is_ascii();
        if let (true, Some(p)) = (ours && ascii, &bts.prog) {
            // `slots` is written only on a match. No match (unless final) or the step
            // limit: the bounded backtracker below decides.
            match p.search(text, 0, text.len(), &mut caps.slots) {
                Ok(true) => return Search::Match,
                Ok(false) if no_is_final => return Search::NoMatch,
                Ok(false) | Err(StepLimit) => {}
            }
        }
        let Some(bt) = bts.for_text(&l.pattern, ascii) else {
            return self.search(text, caps);
        };
        if text.len() > bt.max_haystack_len() {
            return self.search(text, caps);
        }
        let id = std::ptr::from_ref::<BoundedBacktracker>(bt) as usize;
        let cache = match &mut caps.bt_cache {
            Some((c, last)) => {
                if *last != id {
                    bt.reset_cache(c);
                    *last = id;
                }
                c
            }
            slot @ None => &mut slot.insert((bt.create_cache(), id)).0,
        };
        let n = 2 * (self.groups + 1);
        caps.bt_slots.clear();
        caps.bt_slots.resize(n, None);
        match bt.try_search_slots(cache, &Input::new(text), &mut caps.bt_slots) {
            Ok(Some(_)) => {
                caps.slots.clear();
                caps.slots
                    .extend(caps.bt_slots.iter().map(|s| s.map(NonMaxUsize::get)));
                Search::Match
            }
            Ok(None) => Search::NoMatch,
            Err(_) => self.search(text, caps),
        }
    }

    /// Whether the pattern matches anywhere in `text` (no captures).
    pub fn is_match(&self, text: &str) -> bool {
        match &self.engine {
            Engine::Linear(l) => match l.regex() {
                Some(re) => re.is_match(text),
                None => self.search(text, &mut Caps::default()) == Search::Match,
            },
            Engine::Backtrack(_) => {
                let mut c = Caps::default();
                self.search(text, &mut c) == Search::Match
            }
        }
    }
}

impl Linear {
    /// The `regex` crate's regex, built on first use.
    fn regex(&self) -> Option<&regex::Regex> {
        self.re
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.pattern)
                    .size_limit(64 << 20)
                    .dfa_size_limit(16 << 20)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// Our backtracker on the same pattern, for when the `regex` crate's does not build.
    fn fallback(&self, source: &str, multiline: bool) -> Option<&Prog> {
        self.fallback
            .get_or_init(|| {
                parse::parse(source, multiline)
                    .ok()
                    .and_then(|p| Prog::compile(&p.node, p.groups).ok())
                    .map(Box::new)
            })
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(p: &str, t: &str) -> Option<Vec<Option<String>>> {
        let re = PyRegex::new(p, false).unwrap();
        let mut c = Caps::default();
        (re.search(t, &mut c) == Search::Match).then(|| {
            (0..=re.groups())
                .map(|g| c.get(g).map(|(s, e)| t[s..e].to_owned()))
                .collect()
        })
    }

    #[test]
    fn python_dialect_is_translated() {
        assert!(find(r"a{,2}b", "aab").is_some());
        assert_eq!(find(r"x{a}", "x{a}").unwrap()[0].as_deref(), Some("x{a}"));
        assert!(find(r"[^[]*\[", "ab[").is_some());
        assert!(find(r"\<W\>", "<W>").is_some());
        assert!(find(r"^abc$", "abc").is_some());
        assert!(!PyRegex::new(r"^abc$", false).unwrap().is_backtracking());
    }

    #[test]
    fn conditional_groups_follow_python_backtracking() {
        let p = r"for (?P<inv>invalid user )?(?P<u>\S+)|(?(inv)X|Y) from";
        assert!(PyRegex::new(p, false).unwrap().is_backtracking());
        let m = find(p, "for invalid user bob from").unwrap();
        assert_eq!(m[1].as_deref(), Some("invalid user "));
        assert_eq!(m[2].as_deref(), Some("bob"));
        // the second alternative with the group unset after backtracking:
        let m = find(r"^(?:(a)b|c)(?(1)x|y)", "cy").unwrap();
        assert_eq!(m[1], None);
    }

    #[test]
    fn lookaround_and_backrefs_work() {
        assert!(find(r"foo(?!bar)", "foobar").is_none());
        assert!(find(r"foo(?!bar)", "foobaz").is_some());
        assert!(find(r"(?<=\[)\d+", "[123]").is_some());
        assert!(find(r"(?<!\[)\b\d+", "[123]").is_none());
        assert!(find(r"(?P<s>[-/])\d(?P=s)", "1-2-3").is_some());
        assert!(find(r"(?P<s>[-/])\d(?P=s)", "1-2/3").is_none());
    }

    #[test]
    fn word_edge_lookaheads_stay_linear() {
        let re = PyRegex::new(r"(?=^|\b|\W)\d+(?=\b|\W|$)", false).unwrap();
        assert!(!re.is_backtracking());
        assert!(re.is_match("x 12 y"));
        assert!(!re.is_match("x12y"));
    }

    #[test]
    fn known_match_captures_equal_a_full_search() {
        let cases = [
            (
                r"^(?P<a>\w+)?x(?P<b>\d*)(c|(d))$",
                vec!["xc", "abx12d", "abx12c", "é1x9d"],
            ),
            (
                r"from (?P<ip>[\d.]+)(?: port (?P<p>\d+))?",
                vec!["a from 192.0.2.7 port 22 b", "from 198.51.100.1"],
            ),
            (
                r"(?P<u>.*?) (?P<v>\S*)\s*$",
                vec!["root 203.0.113.5  ", " "],
            ),
        ];
        for (p, texts) in cases {
            let re = PyRegex::new(p, false).unwrap();
            assert!(!re.is_backtracking(), "{p}");
            for t in texts {
                let (mut a, mut b) = (Caps::default(), Caps::default());
                assert_eq!(re.search(t, &mut a), Search::Match, "{p} on {t:?}");
                assert_eq!(re.search_matching(t, &mut b), Search::Match, "{p} on {t:?}");
                let spans = |c: &Caps| (0..=re.groups()).map(|g| c.get(g)).collect::<Vec<_>>();
                assert_eq!(spans(&a), spans(&b), "{p} on {t:?}");
            }
        }
        // Reusing one Caps across patterns (the cache moves between backtrackers).
        let re2 = PyRegex::new(r"(?P<n>\d+)$", false).unwrap();
        let mut c = Caps::default();
        assert_eq!(re2.search_matching("ab 42", &mut c), Search::Match);
        assert_eq!(c.get(1), Some((3, 5)));
        assert_eq!(re2.search_matching("ab", &mut c), Search::NoMatch);
    }

    #[test]
    fn ascii_texts_use_the_ascii_capturer_with_the_same_groups() {
        let p = r"^(?i)(?P<w>\w+) for (?P<u>\S+) from (?P<ip>(?:\d{1,3}\.){3}\d{1,3})\b(?P<r>.*)$";
        let re = PyRegex::new(p, false).unwrap();
        let texts = [
            "Failed for root from 192.0.2.7 port 22",
            "fAILED for r\u{f6}\u{f6}t from 198.51.100.9",
            "\u{e9}t\u{e9} for x from 203.0.113.1 \u{2028}",
            "K for \u{212a} from 192.0.2.200",
        ];
        for t in texts {
            let (mut a, mut b) = (Caps::default(), Caps::default());
            assert_eq!(re.search(t, &mut a), Search::Match, "{t:?}");
            // (the bounded backtrackers, not ours)
            assert_eq!(
                re.search_matching_with(t, &mut b, false, false),
                Search::Match,
                "{t:?}"
            );
            let spans = |c: &Caps| (0..=re.groups()).map(|g| c.get(g)).collect::<Vec<_>>();
            assert_eq!(spans(&a), spans(&b), "{t:?}");
        }
        let Engine::Linear(l) = &re.engine else {
            panic!("{p} should be linear");
        };
        let bts = l.capturers.get().expect("built by search_matching");
        let (ascii, unicode) = (bts.ascii.get(), bts.unicode.get());
        assert!(ascii.is_some_and(Option::is_some) && unicode.is_some_and(Option::is_some));
        let small = ascii
            .and_then(Option::as_ref)
            .map(|b| b.get_nfa().states().len());
        let big = unicode
            .and_then(Option::as_ref)
            .map(|b| b.get_nfa().states().len());
        assert!(small < big, "{small:?} {big:?}");
    }

    #[test]
    fn classes_agree_on_ascii_and_beyond() {
        assert!(find(r"^[^\s:]+:", "héllo:").is_some());
        assert!(find(r"(?i)^[a-c]+$", "AbC").is_some());
        assert!(find(r"^(\S+) (?(1)x|y)", "a\u{a0}b x").is_none());
        assert!(find(r"^(\S+) (?(1)x|y)", "\u{e9}\u{e8} x").is_some());
        let m = find(r"^(\w+)(?=\s)(?(1)\s\d|x)", "ünï 5").unwrap();
        assert_eq!(m[1].as_deref(), Some("ünï"));
    }

    #[test]
    fn branches_skipped_by_their_first_byte_change_no_match() {
        // Each of these backtracks (look-around or a conditional) through loops whose
        // exits start with a fixed byte, at the end of the text, and case-folded.
        let m = find(
            r"^(\S+)(?= )(?(1) from|x) (?P<h>\S+?)(?:\.|$)",
            "bob from 192.0.2.1",
        )
        .unwrap();
        assert_eq!(m[1].as_deref(), Some("bob"));
        assert_eq!(m[2].as_deref(), Some("192"));
        let m = find(r"(?i)(k*)(?!y)x$", "ab\u{212A}kx").unwrap();
        assert_eq!(m[1].as_deref(), Some("\u{212A}k"));
        assert!(find(r"^a*(?=$)", "aaa").is_some());
        assert!(find(r"^a*(?=b)", "aaa").is_none());
        let m = find(r"^[^:]+ from (\d+)(?(1)$|:)", "x from y from 7").unwrap();
        assert_eq!(m[0].as_deref(), Some("x from y from 7"));
    }

    #[test]
    fn greedy_single_character_loops_give_back_like_python() {
        let m = find(r"(?=(\w*)x)(\w+)", "abcx").unwrap();
        assert_eq!(m[1].as_deref(), Some("abc"));
        assert_eq!(m[2].as_deref(), Some("abcx"));
        let m = find(r"(?i)^(?=k)(k*)k$", "kK\u{212a}K").unwrap();
        assert_eq!(m[1].as_deref(), Some("kK\u{212a}"));
        let m = find(r"^(?P<a>[^:]*) (?P<b>.*)(?<=\d)$", "x y: \u{e9}t\u{e9} 12").unwrap();
        assert_eq!(m[1].as_deref(), Some("x"));
        assert_eq!(m[2].as_deref(), Some("y: \u{e9}t\u{e9} 12"));
        let m = find(
            r"^(?P<a>[^:]*) (?P<b>\S+)(?<=\d)$",
            "\u{e9} \u{e0} \u{fc} 12",
        )
        .unwrap();
        assert_eq!(m[1].as_deref(), Some("\u{e9} \u{e0} \u{fc}"));
        assert_eq!(m[2].as_deref(), Some("12"));
        assert!(find(r"^a*(?!b)a", "aaab").is_some());
        assert!(find(r"^\S*(?<=z)$", "abc").is_none());
    }

    #[test]
    fn our_backtracker_finds_the_same_groups_as_the_bounded_one() {
        // Patterns in the shape of log failregexes (written here, with the <HOST> tag
        // expanded) and texts each one matches: the groups our backtracker finds for a
        // known match (the fast path) must be the bounded backtracker's, group by group.
        let tail = r"(?: (?:port \d+|via \S+|\[\w+\])){0,3}\s*$";
        let pats = [
            format!(r"^[bB]ad (?:login|key) for <F-USER>.*?</F-USER> from <HOST>{tail}"),
            format!(r"^Login <F-USER>\S+|.*?</F-USER> from <HOST> refused(?: by rule \d+)?{tail}"),
            format!(
                r"^<F-NOFAIL>pam: (?:auth|acct) error;</F-NOFAIL>(?:\s+(?:uid|tty)=\S*){{0,2}}\s+rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?{tail}"
            ),
            r"^Closed <F-MLFFORGET>(?:by|for)</F-MLFFORGET>(?: (?:bad|unknown) user <F-USER>\S+</F-USER>)? <HOST>( on \S+)?\s*$"
                .to_owned(),
            r"^(a|ab)(c|bcd)(d*)$".to_owned(),
            r"^(?i)Drop(?:ped)? (\w+)=(\d+|x)+ ([^ ]+)? ?$".to_owned(),
        ];
        let texts = [
            "Bad login for admin from 192.0.2.10 port 2222",
            "bad key for  from 2001:db8::1 via eth0 [preauth]",
            "Bad login for a from b from 198.51.100.7",
            "Bad login for x from host.example.net port 22",
            "Login root from 203.0.113.5 refused by rule 4 port 22",
            "Login two words from 192.0.2.77 refused",
            "pam: auth error; uid=0 tty=ssh rhost=198.51.100.9 user=bob",
            "pam: acct error;  rhost=2001:db8:a::9  ",
            "Closed by unknown user eve 203.0.113.44 on pts0",
            "Closed for [2001:db8::7]",
            "abcd",
            "DROPPED src=12x ",
            "drop n=1x2 y",
        ];
        let mut tried = 0;
        for p in &pats {
            let re = PyRegex::new(&crate::tags::expand(p, "warn"), false).unwrap();
            assert!(!re.is_backtracking(), "{p}");
            for t in texts {
                if re.linear().is_some_and(|r| !r.is_match(t)) {
                    continue;
                }
                let (mut a, mut b) = (Caps::default(), Caps::default());
                assert_eq!(
                    re.search_matching_with(t, &mut a, true, false),
                    Search::Match
                );
                assert_eq!(
                    re.search_matching_with(t, &mut b, false, false),
                    Search::Match
                );
                let spans = |c: &Caps| (0..=re.groups()).map(|g| c.get(g)).collect::<Vec<_>>();
                assert_eq!(spans(&a), spans(&b), "{p} on {t:?}");
                tried += 1;
            }
            // The fast path was there to be taken.
            let Engine::Linear(l) = &re.engine else {
                unreachable!()
            };
            assert!(l.capturers.get().is_some_and(|b| b.prog.is_some()), "{p}");
        }
        assert!(tried >= 13, "{tried}");
        // Loops whose body can match empty, look-arounds: the bounded backtracker only.
        for p in [r"^(a*)*b", r"^(a|)+b", r"^x(?=\b|\W|$)"] {
            let re = PyRegex::new(p, false).unwrap();
            let mut c = Caps::default();
            re.search_matching(if p.starts_with("^x") { "x" } else { "aab" }, &mut c);
            let Engine::Linear(l) = &re.engine else {
                unreachable!()
            };
            assert!(l.capturers.get().is_some_and(|b| b.prog.is_none()), "{p}");
        }
    }

    #[test]
    fn linear_engines_are_built_on_first_use_and_syntax_errors_at_once() {
        let re = PyRegex::new(r"^(?P<u>\S+) from (?P<h>\w+)$", false).unwrap();
        let Engine::Linear(l) = &re.engine else {
            panic!("linear");
        };
        assert!(l.re.get().is_none() && l.capturers.get().is_none());
        assert!(re.is_match("bob from host1"));
        assert!(l.re.get().is_some_and(Option::is_some));
        // The `regex` crate's own errors still come from `new`.
        for bad in [r"\p{NoSuchClass}x", r"[z-a]"] {
            assert!(PyRegex::new(bad, false).is_err(), "{bad}");
        }
        // Our backtracker, which serves if the `regex` crate's does not build, means the
        // same.
        let fb = l.fallback(re.as_str(), false).expect("it compiles");
        let mut slots = Vec::new();
        assert_eq!(fb.search("bob from host1", 0, 14, &mut slots), Ok(true));
        assert_eq!(fb.search("bob from -", 0, 10, &mut slots), Ok(false));
    }

    #[test]
    fn step_limit_stops_catastrophic_patterns() {
        let re = PyRegex::new(r"^(a+)+(?!x)b", false).unwrap();
        let text = "a".repeat(40);
        let mut c = Caps::default();
        assert_eq!(re.search(&text, &mut c), Search::Limit);
    }
}
