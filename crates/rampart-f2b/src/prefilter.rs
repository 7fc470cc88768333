//! A literal prefilter derived from the failregexes: for each failregex, a set of strings
//! one of which every match must contain. A line that contains none of them (checked with
//! one case-insensitive Aho-Corasick scan) cannot match any failregex, so it skips the
//! regexes entirely. When the literals are case-sensitive (the common case) the scan calls
//! the packed (Teddy) searcher directly: the same answers as the full automaton with less
//! work per line. Look-around, back-references and conditionals only add constraints,
//! so ignoring them keeps the sets valid for the backtracking patterns too.

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::filter::Rx;
use crate::pyre::parse::{parse, Node};

/// Shortest literal worth scanning for; a regex whose best set has a shorter string gets
/// no literals (and so disables the prefilter).
const MIN_LITERAL: usize = 3;

/// Most strings in one set (larger alternations are not worth it).
const MAX_SET: usize = 64;

fn best(a: Option<Vec<String>>, b: Option<Vec<String>>) -> Option<Vec<String>> {
    let score = |s: &Vec<String>| s.iter().map(String::len).min().unwrap_or(0);
    match (a, b) {
        (Some(x), Some(y)) => Some(if score(&y) > score(&x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A set of strings one of which every match of `n` contains (`None`: no such set found).
fn required(n: &Node) -> Option<Vec<String>> {
    match n {
        Node::Literal { c, .. } => Some(vec![c.to_string()]),
        Node::Group { node, .. } => required(node),
        Node::Repeat { node, min, .. } if *min >= 1 => required(node),
        Node::Alt(v) => {
            let mut all = Vec::new();
            for x in v {
                all.extend(required(x)?);
                if all.len() > MAX_SET {
                    return None;
                }
            }
            Some(all)
        }
        Node::Concat(v) => {
            let mut out: Option<Vec<String>> = None;
            let mut run = String::new();
            for x in v {
                match x {
                    Node::Literal { c, .. } => run.push(*c),
                    // Zero-width items do not break a run of literals.
                    x if x.is_assertion() => {}
                    other => {
                        if !run.is_empty() {
                            out = best(out, Some(vec![std::mem::take(&mut run)]));
                        }
                        out = best(out, required(other));
                    }
                }
            }
            if !run.is_empty() {
                out = best(out, Some(vec![run]));
            }
            out
        }
        _ => None,
    }
}

fn has_icase(n: &Node) -> bool {
    match n {
        Node::Literal { icase, .. } => *icase,
        Node::Class(c) => c.icase,
        Node::Backref { icase, .. } => *icase,
        Node::Group { node, .. } | Node::Repeat { node, .. } | Node::Look { node, .. } => {
            has_icase(node)
        }
        Node::Concat(v) | Node::Alt(v) => v.iter().any(has_icase),
        Node::Cond { yes, no, .. } => has_icase(yes) || has_icase(no),
        _ => false,
    }
}

/// The required literals of an expanded failregex, and whether they must be matched
/// case-insensitively (the regex uses `(?i)` somewhere).
pub fn required_literals(expanded: &str, multiline: bool) -> Option<(Vec<String>, bool)> {
    let parsed = parse(expanded, multiline).ok()?;
    let set = required(&parsed.node)?;
    (set.iter().all(|s| s.chars().count() >= MIN_LITERAL)).then(|| (set, has_icase(&parsed.node)))
}

/// The literal prefilter: a scan that tells whether a line contains one of the literals
/// the failregexes need and, when the prefregex has its own, one of those too.
#[derive(Debug, Clone)]
pub struct Prefilter {
    /// The scan that runs first (of the two sets, the one whose shortest literal is
    /// longer: likely the rarer).
    first: Scan,
    /// The other set, checked on lines that pass `first`.
    then: Option<Scan>,
    /// How many literals the scans look for.
    len: usize,
}

#[derive(Debug, Clone)]
enum Scan {
    /// Case-sensitive literals: the packed searcher alone (Teddy, or Rabin-Karp on short
    /// haystacks), without the automaton's per-call dispatch.
    Packed(packed::Searcher),
    /// Case-insensitive literals (the packed searcher has no such mode).
    Automaton(AhoCorasick),
}

impl Scan {
    fn new(pats: &[String], icase: bool) -> Option<Scan> {
        if !icase {
            let searcher = packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostFirst)
                .builder()
                .extend(pats)
                .build();
            if let Some(s) = searcher {
                return Some(Scan::Packed(s));
            }
        }
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(icase)
            .match_kind(MatchKind::LeftmostFirst)
            .build(pats)
            .ok()
            .map(Scan::Automaton)
    }

    /// For the second set (out of line: the first one's check stays small where it is
    /// inlined).
    #[inline(never)]
    fn is_match(&self, haystack: &str) -> bool {
        match self {
            Scan::Packed(s) => s.find(haystack).is_some(),
            Scan::Automaton(ac) => ac.is_match(haystack),
        }
    }
}

impl Prefilter {
    /// Whether `haystack` (the line without its date: what the prefregex, or without
    /// one the failregexes, run on) contains one of the literals of each set (`false`:
    /// no failregex can match).
    #[inline]
    pub fn is_match(&self, haystack: &str) -> bool {
        let first = match &self.first {
            Scan::Packed(s) => s.find(haystack).is_some(),
            Scan::Automaton(ac) => ac.is_match(haystack),
        };
        first && self.then.as_ref().is_none_or(|t| t.is_match(haystack))
    }

    /// How many literals the scans look for (after dropping redundant ones).
    pub fn patterns_len(&self) -> usize {
        self.len
    }
}

/// The literals the prefilter scans for: every failregex's set, deduplicated, without
/// those that contain another one; and whether they match case-insensitively. `None`
/// when some failregex has no set (so no line can be skipped).
pub fn patterns(fail: &[Rx]) -> Option<(Vec<String>, bool)> {
    let mut pats: Vec<String> = Vec::new();
    let mut icase = false;
    for rx in fail {
        let (l, i) = rx.literals()?;
        pats.extend(l.iter().cloned());
        icase |= i;
    }
    if pats.is_empty() {
        return None;
    }
    Some((minimal(pats, icase), icase))
}

/// `pats` sorted, deduplicated and without those that contain another one.
fn minimal(mut pats: Vec<String>, icase: bool) -> Vec<String> {
    pats.sort();
    pats.dedup();
    // A literal that contains another one adds nothing (a line with it has the other
    // too); dropping it leaves the same lines and less for the scan to verify.
    let key = |p: &str| {
        if icase {
            p.to_ascii_lowercase()
        } else {
            p.to_owned()
        }
    };
    let keys: Vec<String> = pats.iter().map(|p| key(p)).collect();
    let redundant: Vec<bool> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            keys.iter()
                .enumerate()
                .any(|(j, o)| j != i && k.contains(o.as_str()) && (k != o || j < i))
        })
        .collect();
    pats.into_iter()
        .zip(redundant)
        .filter_map(|(p, r)| (!r).then_some(p))
        .collect()
}

/// The scans over the failregexes' literals and the prefregex's (a line that lacks
/// the prefregex's cannot match it, so no failregex is tried on it); `None` when
/// neither has a set.
pub fn build(pref: Option<&Rx>, fail: &[Rx]) -> Option<Prefilter> {
    let pref = pref
        .and_then(Rx::literals)
        .filter(|(l, _)| !l.is_empty())
        .map(|(l, i)| (minimal(l.to_vec(), i), i));
    let mut sets: Vec<(Vec<String>, bool)> = pref.into_iter().chain(patterns(fail)).collect();
    let shortest = |s: &(Vec<String>, bool)| s.0.iter().map(String::len).min().unwrap_or(0);
    sets.sort_by_key(|s| std::cmp::Reverse(shortest(s)));
    let len = sets.iter().map(|s| s.0.len()).sum();
    let mut scans = sets.iter().filter_map(|(p, i)| Scan::new(p, *i));
    let first = scans.next()?;
    Some(Prefilter {
        first,
        then: scans.next(),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_required_substrings() {
        assert_eq!(
            required_literals(r"^Failed (?:password|publickey) for \S+", false),
            Some((vec!["password".to_owned(), "publickey".to_owned()], false))
        );
        assert_eq!(
            required_literals(r"(?i)^(Connection (?:closed|reset)|Disconnected) by", false),
            Some((
                vec!["Connection ".to_owned(), "Disconnected".to_owned()],
                true
            ))
        );
        assert_eq!(required_literals(r"^\S+ x? \d+$", false), None);
    }

    #[test]
    fn literals_containing_others_leave_the_same_lines() {
        let rx = |p: &str| Rx::new(p, false).unwrap();
        let fail = [
            rx(r"^Failed \S+ for"),
            rx(r"^Failed publickey for invalid user \S+"),
            rx(r"(?i)^Accepted \w+ for"),
            rx(r"accepted password"),
        ];
        let ac = build(None, &fail).unwrap();
        assert_eq!(
            ac.patterns_len(),
            2,
            "only `Failed ` and `accepted ` are needed"
        );
        for (line, hit) in [
            ("Failed password for root", true),
            ("Failed publickey for invalid user x", true),
            ("ACCEPTED PASSWORD", true),
            ("accepted", false),
            ("Failedpassword", false),
        ] {
            assert_eq!(ac.is_match(line), hit, "{line}");
        }
    }

    /// A small deterministic generator (xorshift) for test lines.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Lines built from the literals' pieces (whole, cut, case-flipped, one byte changed),
    /// the failregexes' own words and filler, 0 to ~250 bytes long: both the short-haystack
    /// path and the vector scan see hits, near misses and literals split at every point.
    fn lines(lits: &[&str], words: &[&str], seed: u64, n: usize) -> Vec<String> {
        let mut g = Gen(seed);
        let filler = [
            " ",
            "x",
            "sshd[123]: ",
            "from 192.0.2.7 port 22",
            "é",
            "ü",
            "Ĳ",
            "\t",
        ];
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            // Half the lines start with one of the words (whole sample messages among them),
            // so anchored failregexes match often enough.
            let mut line = if g.below(2) == 0 {
                words[g.below(words.len())].to_owned()
            } else {
                String::new()
            };
            let parts = g.below(12);
            for _ in 0..parts {
                let lit = lits[g.below(lits.len())];
                let piece: String = match g.below(7) {
                    0 | 1 => lit.to_owned(),
                    2 => lit[..g.below(lit.len())].to_owned(),
                    3 => lit[g.below(lit.len())..].to_owned(),
                    4 => {
                        let mut b = lit.as_bytes().to_vec();
                        let k = g.below(b.len());
                        b[k] = if b[k].is_ascii_lowercase() {
                            b[k].to_ascii_uppercase()
                        } else {
                            b'~'
                        };
                        String::from_utf8(b).unwrap()
                    }
                    5 => words[g.below(words.len())].to_owned(),
                    _ => filler[g.below(filler.len())].repeat(1 + g.below(20)),
                };
                line.push_str(&piece);
            }
            out.push(line);
        }
        out
    }

    /// Of 40,000 generated lines, enough match for the check to mean something, and the
    /// prefilter rejects some that do not.
    fn generator_is_useful(accepted: usize, matched: usize) {
        assert!(
            matched > 500,
            "the generator must produce matching lines ({matched})"
        );
        assert!(
            accepted > matched && accepted < 40_000,
            "accepted {accepted}"
        );
    }

    fn check_no_match_is_rejected(regexes: &[&str], words: &[&str], seed: u64) -> (usize, usize) {
        let fail: Vec<Rx> = regexes.iter().map(|p| Rx::new(p, false).unwrap()).collect();
        let checks: Vec<regex::Regex> = regexes
            .iter()
            .map(|p| regex::Regex::new(p).unwrap())
            .collect();
        let pf = build(None, &fail).unwrap();
        let (pats, icase) = patterns(&fail).unwrap();
        let lits: Vec<&str> = pats.iter().map(String::as_str).collect();
        let (mut accepted, mut matched) = (0, 0);
        for line in lines(&lits, words, seed, 40_000) {
            let hit = pf.is_match(&line);
            let expect = if icase {
                let l = line.to_ascii_lowercase();
                lits.iter().any(|p| l.contains(&p.to_ascii_lowercase()))
            } else {
                lits.iter().any(|p| line.contains(p))
            };
            assert_eq!(
                hit, expect,
                "prefilter disagrees with a plain search: {line:?}"
            );
            let m = checks.iter().any(|re| re.is_match(&line));
            assert!(
                hit || !m,
                "prefilter rejected a line a failregex matches: {line:?}"
            );
            accepted += usize::from(hit);
            matched += usize::from(m);
        }
        (accepted, matched)
    }

    const SSHD_LIKE: &[&str] = &[
        r"^Failed (?:password|publickey) for (?:invalid user )?\S+ from \S+",
        r"^[iI](?:llegal|nvalid) user \S* from \S+",
        r"^pam_unix\(sshd:auth\):\s+authentication failure;\s*logname=\S*",
        r"^User \S+ not allowed because not listed in AllowUsers",
        r"^User \S+ not allowed because listed in DenyUsers",
        r"^User \S+ not allowed because account is locked",
        r"^Received disconnect from \S+ port \d+:3: \S+: Auth fail",
        r"^(?:Connection (?:closed|reset)|Disconnected) (?:by|from) \S+",
        r"^User \S+ not allowed because not in any group",
        r"^Accepted \w+ for \S+ from \S+",
        r"^Change of username or service not allowed: \S+",
        r"^refused connect from \S+",
        r"^Received disconnect from \S+ port \d+:11: ",
    ];
    const WORDS: &[&str] = &[
        "Failed ",
        "password ",
        "for ",
        "invalid user ",
        "root ",
        "from ",
        "Invalid user ",
        "pam_unix(sshd:auth): ",
        "authentication failure; ",
        "logname=",
        "User ",
        "Received disconnect ",
        "port 22",
        ":3: ",
        "Connection closed ",
        "by ",
        "Failed password for root from 192.0.2.1",
        "Failed publickey for invalid user x from 2001:db8::1",
        "Invalid user admin from 198.51.100.3",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0",
        "User bob not allowed because listed in DenyUsers",
        "Received disconnect from 203.0.113.9 port 22:3: com.jcraft.jsch.JSchException: Auth fail",
        "Disconnected from 192.0.2.200",
        "refused connect from 192.0.2.4",
        "Accepted publickey for maria from 2001:db8::5",
        "User eve not allowed because not in any group",
        "Received disconnect from 192.0.2.8 port 4772:11: disconnected by user",
    ];

    #[test]
    fn packed_scan_accepts_every_line_a_failregex_matches() {
        let fail: Vec<Rx> = SSHD_LIKE
            .iter()
            .map(|p| Rx::new(p, false).unwrap())
            .collect();
        let pf = build(None, &fail).unwrap();
        assert!(
            matches!(pf.first, Scan::Packed(_)),
            "case-sensitive literals use the packed scan"
        );
        let (accepted, matched) =
            check_no_match_is_rejected(SSHD_LIKE, WORDS, 0x9e37_79b9_7f4a_7c15);
        generator_is_useful(accepted, matched);
    }

    #[test]
    fn case_insensitive_scan_accepts_every_line_a_failregex_matches() {
        let mut regexes = SSHD_LIKE.to_vec();
        regexes.push(r"(?i)^refused connect from \S+");
        let fail: Vec<Rx> = regexes.iter().map(|p| Rx::new(p, false).unwrap()).collect();
        let pf = build(None, &fail).unwrap();
        assert!(
            matches!(pf.first, Scan::Automaton(_)),
            "(?i) needs the automaton"
        );
        let (_, matched) = check_no_match_is_rejected(&regexes, WORDS, 0x2545_f491_4f6c_dd1d);
        assert!(
            matched > 500,
            "the generator must produce matching lines ({matched})"
        );
    }

    #[test]
    fn prefregex_literals_reject_only_lines_the_prefregex_cannot_match() {
        let pref_src = r"^(?:\S+ )?(?:\w+: reject:|too many errors after \S+) (?P<content>.+)$";
        let fail_src = [
            r"RCPT from \S+: 554 ",
            r"from \S+\[\S+\]: 450 ",
            r"lost connection",
        ];
        let pref = Rx::new(pref_src, false).unwrap();
        let fail: Vec<Rx> = fail_src
            .iter()
            .map(|p| Rx::new(p, false).unwrap())
            .collect();
        let pf = build(Some(&pref), &fail).unwrap();
        assert!(
            pf.then.is_some(),
            "two sets: the prefregex's and the failregexes'"
        );
        let pref_re = regex::Regex::new(pref_src).unwrap();
        let fail_re: Vec<regex::Regex> = fail_src
            .iter()
            .map(|p| regex::Regex::new(p).unwrap())
            .collect();
        let (pl, _) = pref.literals().unwrap();
        let (fl, _) = patterns(&fail).unwrap();
        let words = [
            "mail ",
            "NOQUEUE: reject: ",
            "too many errors after DATA ",
            "RCPT from ",
            "x.example[192.0.2.1]: 554 ",
            "[198.51.100.2]: 450 ",
            "from ",
            "lost connection",
            "mail NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1",
            "mail too many errors after RCPT from y[203.0.113.5]: 450 4.1.1",
            "mail connect from z[192.0.2.9]",
        ];
        let lits: Vec<&str> = pl.iter().chain(&fl).map(String::as_str).collect();
        let (mut accepted, mut matched) = (0, 0);
        for line in lines(&lits, &words, 0x5851_f42d_4c95_7f2d, 40_000) {
            let hit = pf.is_match(&line);
            let expect = pl.iter().any(|p| line.contains(p.as_str()))
                && fl.iter().any(|p| line.contains(p.as_str()));
            assert_eq!(
                hit, expect,
                "prefilter disagrees with a plain search: {line:?}"
            );
            let m = pref_re.is_match(&line) && fail_re.iter().any(|re| re.is_match(&line));
            assert!(
                hit || !m,
                "prefilter rejected a line both regexes match: {line:?}"
            );
            accepted += usize::from(hit);
            matched += usize::from(m);
        }
        generator_is_useful(accepted, matched);
    }
}
