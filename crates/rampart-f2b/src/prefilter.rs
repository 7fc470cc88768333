//! A literal prefilter derived from the failregexes: for each failregex, a set of strings
//! one of which every match must contain. A line that contains none of them (checked with
//! one case-insensitive Aho-Corasick scan) cannot match any failregex, so it skips the
//! regexes entirely. Look-around, back-references and conditionals only add constraints,
//! so ignoring them keeps the sets valid for the backtracking patterns too.

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

/// One automaton over every failregex's literals, or `None` when some failregex has none.
pub fn build(_pref: Option<&Rx>, fail: &[Rx]) -> Option<AhoCorasick> {
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
    let pats: Vec<String> = pats
        .into_iter()
        .zip(redundant)
        .filter_map(|(p, r)| (!r).then_some(p))
        .collect();
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(icase)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&pats)
        .ok()
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
}
