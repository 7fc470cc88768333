//! Literal extraction for the prefilter: for each pattern, a set of byte strings of which
//! every match must contain at least one. A line that contains none of the filter's literals
//! cannot match, so it is skipped after one Aho-Corasick scan, without running any regex.
//!
//! Concatenations contribute their most selective required part; alternations contribute the
//! union of their branches' sets (when every branch has one), so `(?:zgrab|masscan)` yields
//! `{zgrab, masscan}`.

use regex_syntax::hir::{Hir, HirKind};

/// Literals shorter than this select too many lines to be worth a prefilter.
pub const MIN_LITERAL: usize = 3;

/// Alternations with more branches than this are not worth a literal set.
const MAX_SET: usize = 256;

/// A set of literals of which every match contains at least one, if a useful one exists
/// (every member at least [`MIN_LITERAL`] bytes).
pub fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    required(hir)
}

fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let min = set.iter().map(Vec::len).min().unwrap_or(0);
    (min, std::cmp::Reverse(set.len()))
}

fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

fn single(lit: Vec<u8>) -> Option<Vec<Vec<u8>>> {
    (lit.len() >= MIN_LITERAL).then(|| vec![lit])
}

fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(lit) => single(lit.0.to_vec()),
        HirKind::Concat(subs) => {
            // Adjacent literal pieces form one longer required run.
            let mut best = None;
            let mut run: Vec<u8> = Vec::new();
            for sub in subs {
                if let HirKind::Literal(lit) = sub.kind() {
                    run.extend_from_slice(&lit.0);
                } else {
                    best = better(best, single(std::mem::take(&mut run)));
                    best = better(best, required(sub));
                }
            }
            better(best, single(run))
        }
        HirKind::Alternation(branches) => {
            let mut union = Vec::new();
            for b in branches {
                union.extend(required(b)?);
                if union.len() > MAX_SET {
                    return None;
                }
            }
            union.sort();
            union.dedup();
            Some(union)
        }
        HirKind::Capture(cap) => required(&cap.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => required(&rep.sub),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(pattern: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .unwrap();
        required_literals(&hir).map(|s| {
            s.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn finds_the_longest_required_literal() {
        assert_eq!(
            lits(r"^\S+ sshd\[\d+\]: Failed password for (?P<u>.*) from x$"),
            Some(vec!["]: Failed password for ".to_owned()])
        );
    }

    #[test]
    fn alternations_yield_a_set() {
        assert_eq!(
            lits(r#"^\S+ "(?:zgrab|masscan/\d|sqlmap)""#),
            Some(vec!["masscan/".into(), "sqlmap".into(), "zgrab".into()])
        );
    }

    #[test]
    fn optional_parts_and_short_branches_give_nothing() {
        assert_eq!(
            lits(r"^(?:alpha|beta)(?:gamma-long)?x"),
            Some(vec!["alpha".into(), "beta".into()])
        );
        assert_eq!(lits(r"^(?:gamma-long)?x"), None);
        assert_eq!(lits(r"^(?:ab|cdef)"), None);
        assert_eq!(lits(r"^(?:foobar)+baz"), Some(vec!["foobar".into()]));
    }

    #[test]
    fn case_insensitive_patterns_have_no_literal() {
        assert_eq!(lits(r"(?i)failed password"), None);
    }
}
