//! Annotated corpora: the proof that a filter catches what it should and nothing else.
//!
//! Every log line is preceded by one annotation line:
//!
//! ```text
//! # corpus: now=2026-11-25T00:00:00Z zone=UTC
//! # expect: failure addr=198.51.100.7 user=root time=2026-11-21T01:02:03Z pattern=failed-password
//! Nov 21 01:02:03 web1 sshd[4242]: Failed password for root from 198.51.100.7 port 22 ssh2
//! # expect: none
//! Nov 21 01:02:04 web1 sshd[4243]: Accepted publickey for deploy from 192.0.2.10 port 50022 ssh2
//! # expect: failure addr=203.0.113.9 user="x from 198.51.100.7 port 22" forged=198.51.100.7 time=... pattern=...
//! ```
//!
//! Kinds: `failure` (counts), `ignored` (an ignore pattern vetoes it), `note` (a note
//! pattern records a connection's address), `none` (nothing matches: benign). Keys: `addr`,
//! `user`, `time` (RFC 3339), `pattern` (id), and `forged=ADDR`: an address an attacker
//! planted in the line, which must never come out. Values may be double-quoted. Lines
//! starting with `#` that are not annotations are comments; blank lines are skipped. The
//! scanner's state (year inference, connections) runs on across the whole file, as it does
//! on a real log.

use std::net::IpAddr;
use std::sync::Arc;

use rampart_core::Timestamp;

use crate::compile::Filter;
use crate::scan::{EventKind, Scanner};
use crate::time::{TimeParser, Zone};

/// What an annotation expects of the next line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// `failure`, `ignored`, `note` or `none`.
    pub kind: String,
    /// The address the line must yield.
    pub addr: Option<IpAddr>,
    /// The user the line must yield (required when the pattern captures one).
    pub user: Option<String>,
    /// The time the line must yield.
    pub time: Option<Timestamp>,
    /// The pattern that must hit.
    pub pattern: Option<String>,
    /// An address planted by the attacker that must never be produced.
    pub forged: Option<IpAddr>,
}

/// The outcome of checking a corpus.
#[derive(Debug, Default)]
pub struct CorpusReport {
    /// Annotated log lines checked.
    pub lines: usize,
    /// Lines annotated `none`.
    pub benign: usize,
    /// Lines carrying a `forged=` address.
    pub injections: usize,
    /// Lines annotated `failure`.
    pub failures: usize,
    /// Every problem found, each naming the corpus line.
    pub errors: Vec<String>,
}

fn split_kv(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        let key = s[ks..i].to_owned();
        if i >= b.len() || b[i] != b'=' {
            out.push((key, String::new()));
            continue;
        }
        i += 1;
        let mut val = String::new();
        if b.get(i) == Some(&b'"') {
            i += 1;
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        val.push(b[i + 1] as char);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => {
                        let ch = s[i..].chars().next().unwrap_or(' ');
                        val.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            if !closed {
                return Err(format!("unterminated quote in {key}="));
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            val = s[vs..i].to_owned();
        }
        out.push((key, val));
    }
    Ok(out)
}

/// Parses the text after `# expect:`.
pub fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut kv = split_kv(text)?.into_iter();
    let kind = match kv.next() {
        Some((k, v))
            if v.is_empty() && ["failure", "ignored", "note", "none"].contains(&k.as_str()) =>
        {
            k
        }
        other => {
            return Err(format!(
                "an annotation starts with failure, ignored, note or none, not {other:?}"
            ))
        }
    };
    let mut e = Expect {
        kind,
        addr: None,
        user: None,
        time: None,
        pattern: None,
        forged: None,
    };
    let ip = |v: &str| {
        v.parse::<IpAddr>()
            .map(|a| a.to_canonical())
            .map_err(|_| format!("not an address: {v:?}"))
    };
    for (k, v) in kv {
        match k.as_str() {
            "addr" => e.addr = Some(ip(&v)?),
            "forged" => e.forged = Some(ip(&v)?),
            "user" => e.user = Some(v),
            "time" => e.time = Some(Timestamp::parse_rfc3339(&v).map_err(|x| x.to_string())?),
            "pattern" => e.pattern = Some(v),
            other => return Err(format!("unknown annotation key {other:?}")),
        }
    }
    if e.kind == "failure" && (e.addr.is_none() || e.time.is_none() || e.pattern.is_none()) {
        return Err("a failure annotation needs addr=, time= and pattern=".into());
    }
    Ok(e)
}

/// Checks `filter` against its corpus text. `origin` names the corpus in messages.
pub fn check(filter: &Arc<Filter>, origin: &str, corpus: &str) -> CorpusReport {
    let mut report = CorpusReport::default();
    let mut now = Timestamp::from_secs(0);
    let mut zone = Zone::utc();
    let mut pending: Option<(usize, Expect)> = None;
    let mut hits = vec![0usize; filter.patterns().len()];
    let mut lines: Vec<(usize, &str, Expect)> = Vec::new();
    for (n, raw) in corpus.lines().enumerate() {
        let n = n + 1;
        if let Some(rest) = raw.strip_prefix("# corpus:") {
            match split_kv(rest) {
                Ok(kv) => {
                    for (k, v) in kv {
                        match k.as_str() {
                            "now" => match Timestamp::parse_rfc3339(&v) {
                                Ok(t) => now = t,
                                Err(e) => report.errors.push(format!("{origin}:{n}: {e}")),
                            },
                            "zone" => match Zone::parse(&v) {
                                Ok(z) => zone = z,
                                Err(e) => report.errors.push(format!("{origin}:{n}: {e}")),
                            },
                            other => report
                                .errors
                                .push(format!("{origin}:{n}: unknown corpus key {other:?}")),
                        }
                    }
                }
                Err(e) => report.errors.push(format!("{origin}:{n}: {e}")),
            }
        } else if let Some(rest) = raw.strip_prefix("# expect:") {
            if let Some((m, _)) = &pending {
                report.errors.push(format!(
                    "{origin}:{m}: annotation not followed by a log line"
                ));
            }
            match parse_expect(rest) {
                Ok(e) => pending = Some((n, e)),
                Err(e) => {
                    report.errors.push(format!("{origin}:{n}: {e}"));
                    pending = None;
                }
            }
        } else if raw.starts_with('#') || raw.trim().is_empty() {
            continue;
        } else {
            match pending.take() {
                Some((_, e)) => lines.push((n, raw, e)),
                None => report.errors.push(format!(
                    "{origin}:{n}: log line without a `# expect:` annotation"
                )),
            }
        }
    }
    let mut scanner = Scanner::new(
        vec![Arc::clone(filter)],
        TimeParser::new(filter.timestamp(), zone, now),
        true,
    );
    for (n, line, expect) in lines {
        report.lines += 1;
        match expect.kind.as_str() {
            "none" => report.benign += 1,
            "failure" => report.failures += 1,
            _ => {}
        }
        if expect.forged.is_some() {
            report.injections += 1;
        }
        let mut events = Vec::new();
        scanner.scan(line.as_bytes(), |ev| {
            events.push((
                ev.pattern,
                ev.kind,
                ev.addr,
                ev.time,
                ev.user.map(|u| String::from_utf8_lossy(u).into_owned()),
            ));
        });
        let mut fail = |what: String| {
            report
                .errors
                .push(format!("{origin}:{n}: {what}\n    {line}"))
        };
        if let Some(forged) = expect.forged {
            if events.iter().any(|e| e.2 == Some(forged)) {
                fail(format!("the forged address {forged} came out"));
            }
        }
        for e in &events {
            hits[e.0] += 1;
        }
        let got_kind = match events.first() {
            None => "none",
            Some((_, EventKind::Failure, ..)) => "failure",
            Some((_, EventKind::Ignored, ..)) => "ignored",
            Some((_, EventKind::Note, ..)) => "note",
            Some((_, k, ..)) => {
                fail(format!("unexpected outcome {k:?}"));
                continue;
            }
        };
        if got_kind != expect.kind {
            let pat = events
                .first()
                .map(|e| filter.patterns()[e.0].id.as_str())
                .unwrap_or("-");
            fail(format!(
                "expected {}, got {got_kind} (pattern {pat})",
                expect.kind
            ));
            continue;
        }
        let Some((pattern, _, addr, time, user)) = events.first().cloned() else {
            continue;
        };
        let pid = &filter.patterns()[pattern].id;
        if let Some(p) = &expect.pattern {
            if p != pid {
                fail(format!("expected pattern {p}, got {pid}"));
            }
        }
        if expect.addr.is_some() && expect.addr != addr {
            fail(format!("expected addr {:?}, got {addr:?}", expect.addr));
        }
        if expect.time.is_some() && expect.time != time {
            fail(format!(
                "expected time {}, got {}",
                expect.time.map(|t| t.to_string()).unwrap_or_default(),
                time.map(|t| t.to_string()).unwrap_or_else(|| "none".into())
            ));
        }
        if expect.user != user && (expect.user.is_some() || expect.kind == "failure") {
            fail(format!("expected user {:?}, got {user:?}", expect.user));
        }
    }
    if let Some((m, _)) = pending {
        report
            .errors
            .push(format!("{origin}:{m}: annotation at the end of the file"));
    }
    for (i, p) in filter.patterns().iter().enumerate() {
        if hits[i] == 0 {
            report.errors.push(format!(
                "{origin}: pattern {:?} has no sample in the corpus",
                p.id
            ));
        }
    }
    if report.benign == 0 {
        report
            .errors
            .push(format!("{origin}: no benign (`none`) lines"));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_values_and_forged_addresses() {
        let e = parse_expect(r#" failure addr=203.0.113.9 user="a \"b\" from 198.51.100.7" forged=198.51.100.7 time=2026-11-21T01:02:03Z pattern=x"#).unwrap();
        assert_eq!(e.user.as_deref(), Some(r#"a "b" from 198.51.100.7"#));
        assert_eq!(e.forged, "198.51.100.7".parse().ok());
    }

    #[test]
    fn rejects_incomplete_failure_annotations() {
        assert!(parse_expect(" failure addr=203.0.113.9").is_err());
        assert!(parse_expect(" maybe").is_err());
        assert!(parse_expect(" none colour=red").is_err());
    }
}
