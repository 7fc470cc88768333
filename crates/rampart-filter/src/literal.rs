//! Literal extraction for the prefilter: for each pattern, a set of byte strings of which
//! every match must contain at least one. A line that contains none of the filter's literals
//! cannot match, so it is skipped after one Aho-Corasick scan, without running any regex.
//!
//! Concatenations contribute their most selective required part; alternations contribute the
//! union of their branches' sets (when every branch has one), so `(?:zgrab|masscan)` yields
//! `{zgrab, masscan}`.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Literals shorter than this select too many lines to be worth a prefilter.
pub const MIN_LITERAL: usize = 3;

/// Alternations with more branches than this are not worth a literal set.
const MAX_SET: usize = 256;

/// Most strings a run of literals multiplied by small alternations may grow to.
const MAX_PRODUCT: usize = 16;

/// A set of literals of which every match contains at least one, if a useful one exists
/// (every member at least [`MIN_LITERAL`] bytes).
pub fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    required(hir)
}

/// Literals at least this long count as equally selective: among them, fewer literals
/// (a faster scan) win, then longer ones.
const SELECTIVE: usize = 8;

fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>, usize) {
    let min = set.iter().map(Vec::len).min().unwrap_or(0);
    (min.min(SELECTIVE), std::cmp::Reverse(set.len()), min)
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

/// A set whose members are all long enough, deduplicated.
fn set(mut lits: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    if lits.is_empty() || lits.iter().any(|l| l.len() < MIN_LITERAL) {
        return None;
    }
    lits.sort();
    lits.dedup();
    Some(lits)
}

/// The strings a small alternation of literals (or a class of a few bytes) matches.
fn small_alternatives(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Alternation(branches) if branches.len() <= MAX_PRODUCT => branches
            .iter()
            .map(|b| match b.kind() {
                HirKind::Literal(l) => Some(l.0.to_vec()),
                _ => None,
            })
            .collect(),
        HirKind::Class(Class::Bytes(c)) => {
            let bytes: Vec<u8> = c.iter().flat_map(|r| r.start()..=r.end()).take(5).collect();
            // Letters in a class are mostly case folding: not worth multiplying.
            (bytes.len() <= 4 && !bytes.iter().any(u8::is_ascii_alphabetic))
                .then(|| bytes.into_iter().map(|b| vec![b]).collect())
        }
        HirKind::Class(Class::Unicode(c)) => {
            let chars: Vec<char> = c.iter().flat_map(|r| r.start()..=r.end()).take(5).collect();
            if chars.len() > 4
                || chars
                    .iter()
                    .any(|ch| !ch.is_ascii() || ch.is_ascii_alphabetic())
            {
                return None;
            }
            Some(chars.into_iter().map(|ch| vec![ch as u8]).collect())
        }
        _ => None,
    }
}

fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(lit) => single(lit.0.to_vec()),
        HirKind::Concat(subs) => {
            // Adjacent literal pieces form longer required runs; a small alternation of
            // literals (or a small class) between them multiplies the runs: every match
            // contains one of the products (`Connection (?:closed|reset) by ` yields
            // `Connection closed by ` and `Connection reset by `).
            let mut best = None;
            let mut runs: Vec<Vec<u8>> = vec![Vec::new()];
            for sub in subs {
                let pieces = match sub.kind() {
                    HirKind::Literal(lit) => Some(vec![lit.0.to_vec()]),
                    _ => small_alternatives(sub),
                };
                match pieces {
                    Some(p) if runs.len() * p.len() <= MAX_PRODUCT => {
                        runs = runs
                            .iter()
                            .flat_map(|r| {
                                p.iter().map(move |x| {
                                    let mut y = r.clone();
                                    y.extend_from_slice(x);
                                    y
                                })
                            })
                            .collect();
                    }
                    _ => {
                        best = better(best, set(std::mem::replace(&mut runs, vec![Vec::new()])));
                        best = better(best, required(sub));
                    }
                }
            }
            better(best, set(runs))
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
    fn small_alternations_multiply_the_runs_around_them() {
        assert_eq!(
            lits(r"^\S+ Connection (?:closed|reset) by (?:x|yy) \d"),
            Some(vec![
                " Connection closed by x ".into(),
                " Connection closed by yy ".into(),
                " Connection reset by x ".into(),
                " Connection reset by yy ".into(),
            ])
        );
        assert_eq!(
            lits(r#"^\S+ [^ ]*(?:/pma|/phpmyadmin|/admin)[^ ]* " (?:403|404) "#),
            Some(vec![" \" 403 ".into(), " \" 404 ".into()])
        );
    }

    #[test]
    fn case_insensitive_patterns_have_no_literal() {
        assert_eq!(lits(r"(?i)failed password"), None);
    }
}
