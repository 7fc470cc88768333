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
//! pattern records a connection's address), `folded` (a failure line of an attempt that
//! already counted), `held` (a failure line held until a later line of its connection
//! decides), `none` (nothing matches: benign). Keys: `addr`, `user`, `time` (RFC 3339),
//! `pattern` (id), `forged=ADDR`: an address an attacker planted in the line, which must
//! never come out, and `via=FIELD`: which attacker-controlled field carries it. Values may
//! be double-quoted. Lines starting with `#` that are not annotations are comments; blank
//! lines are skipped. The scanner's state (year inference, connections) runs on across the
//! whole file, as it does on a real log.
//!
//! `# params: mode=aggressive agents=a|b` switches to the filter compiled with those
//! parameter values (a fresh scanner) for the lines that follow; `# params:` alone goes
//! back to the defaults. A pattern needs a sample in some variant.

use std::net::IpAddr;
use std::sync::Arc;

use rampart_core::Timestamp;

use crate::compile::Filter;
use crate::def::{FilterConfig, ParamValue, ParamValues};
use crate::scan::{EventKind, Scanner};
use crate::time::{TimeParser, Zone};
use crate::FilterError;

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
    /// The attacker-controlled field that carries `forged`.
    pub via: Option<String>,
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
    /// The `via=` fields of the injection lines.
    pub injected_fields: Vec<String>,
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

/// The annotation kinds.
pub const KINDS: [&str; 6] = ["failure", "ignored", "note", "folded", "held", "none"];

/// Parses the text after `# params:` (`key=value` pairs; a list's members split by `|`).
pub fn parse_params(text: &str) -> Result<ParamValues, String> {
    let mut out = ParamValues::new();
    for (k, v) in split_kv(text)? {
        if out.insert(k.clone(), ParamValue::One(v)).is_some() {
            return Err(format!("parameter {k:?} is given twice"));
        }
    }
    Ok(out)
}

/// Parses the text after `# expect:`.
pub fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut kv = split_kv(text)?.into_iter();
    let kind = match kv.next() {
        Some((k, v)) if v.is_empty() && KINDS.contains(&k.as_str()) => k,
        other => {
            return Err(format!(
                "an annotation starts with one of {}, not {other:?}",
                KINDS.join(", ")
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
        via: None,
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
            "via" => e.via = Some(v),
            other => return Err(format!("unknown annotation key {other:?}")),
        }
    }
    if e.kind == "failure" && (e.addr.is_none() || e.time.is_none() || e.pattern.is_none()) {
        return Err("a failure annotation needs addr=, time= and pattern=".into());
    }
    if e.via.is_some() != e.forged.is_some() {
        return Err(
            "forged= and via= go together (which field carries the planted address)".into(),
        );
    }
    Ok(e)
}

/// Checks `filter` against its corpus text. `origin` names the corpus in messages. A
/// `# params:` line in the corpus is an error here (see [`check_source`]).
pub fn check(filter: &Arc<Filter>, origin: &str, corpus: &str) -> CorpusReport {
    let ids: Vec<String> = filter.patterns().iter().map(|p| p.id.clone()).collect();
    check_with(
        |p: &ParamValues| {
            if p.is_empty() {
                Ok(Arc::clone(filter))
            } else {
                Err(FilterError::Param {
                    filter: filter.name().to_owned(),
                    message: "this check has one compiled filter; use check_source for `# params:`"
                        .into(),
                })
            }
        },
        &ids,
        origin,
        corpus,
    )
}

/// Checks a filter given as TOML against its corpus, compiling a variant for every
/// `# params:` section. Every failure and note pattern of the file, active in some
/// variant or not, needs a sample.
pub fn check_source(name: &str, toml_text: &str, origin: &str, corpus: &str) -> CorpusReport {
    let config: FilterConfig = match toml::from_str(toml_text) {
        Ok(c) => c,
        Err(e) => {
            return CorpusReport {
                errors: vec![format!("{name}: {e}")],
                ..CorpusReport::default()
            }
        }
    };
    let ids: Vec<String> = config
        .failure
        .iter()
        .chain(&config.note)
        .map(|p| p.id.clone())
        .collect();
    check_with(
        |p: &ParamValues| Filter::compile_with(name, name, &config, p).map(Arc::new),
        &ids,
        origin,
        corpus,
    )
}

/// One annotated log line.
struct Sample<'c> {
    n: usize,
    line: &'c str,
    expect: Expect,
    variant: usize,
}

fn check_with(
    compile: impl Fn(&ParamValues) -> Result<Arc<Filter>, FilterError>,
    ids: &[String],
    origin: &str,
    corpus: &str,
) -> CorpusReport {
    let mut report = CorpusReport::default();
    let mut now = Timestamp::from_secs(0);
    let mut zone = Zone::utc();
    let mut pending: Option<(usize, Expect)> = None;
    let mut hits = vec![0usize; ids.len()];
    let mut variants: Vec<ParamValues> = vec![ParamValues::new()];
    let mut samples: Vec<Sample<'_>> = Vec::new();
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
        } else if let Some(rest) = raw.strip_prefix("# params:") {
            match parse_params(rest) {
                Ok(p) => variants.push(p),
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
                Some((_, expect)) => samples.push(Sample {
                    n,
                    line: raw,
                    expect,
                    variant: variants.len() - 1,
                }),
                None => report.errors.push(format!(
                    "{origin}:{n}: log line without a `# expect:` annotation"
                )),
            }
        }
    }
    let mut current: Option<(usize, Arc<Filter>, Scanner)> = None;
    for Sample {
        n,
        line,
        expect,
        variant,
    } in samples
    {
        if current.as_ref().map(|c| c.0) != Some(variant) {
            match compile(&variants[variant]) {
                Ok(filter) => {
                    let scanner = Scanner::new(
                        vec![Arc::clone(&filter)],
                        TimeParser::new(filter.timestamp(), zone.clone(), now),
                        true,
                    );
                    current = Some((variant, filter, scanner));
                }
                Err(e) => {
                    report.errors.push(format!("{origin}:{n}: {e}"));
                    current = None;
                    continue;
                }
            }
        }
        let Some((_, filter, scanner)) = current.as_mut() else {
            continue;
        };
        report.lines += 1;
        match expect.kind.as_str() {
            "none" => report.benign += 1,
            "failure" => report.failures += 1,
            _ => {}
        }
        if expect.forged.is_some() {
            report.injections += 1;
        }
        if let Some(v) = &expect.via {
            if !report.injected_fields.contains(v) {
                report.injected_fields.push(v.clone());
            }
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
            let id = &filter.patterns()[e.0].id;
            if let Some(i) = ids.iter().position(|x| x == id) {
                hits[i] += 1;
            }
        }
        let got_kind = match events.first() {
            None => "none",
            Some((_, EventKind::Failure, ..)) => "failure",
            Some((_, EventKind::Ignored, ..)) => "ignored",
            Some((_, EventKind::Note, ..)) => "note",
            Some((_, EventKind::Folded, ..)) => "folded",
            Some((_, EventKind::Held, ..)) => "held",
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
    for (i, id) in ids.iter().enumerate() {
        if hits[i] == 0 {
            report.errors.push(format!(
                "{origin}: pattern {id:?} has no sample in the corpus"
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

/// Every address-shaped token of `text` that is not in a documentation range
/// (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), the unspecified
/// address or loopback, with its line number.
pub fn undocumented_addresses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let tokens = line.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'));
        for tok in tokens {
            let tok = tok.trim_matches(|c| c == '.' || c == ':');
            if !tok.contains('.') && tok.matches(':').count() < 2 {
                continue;
            }
            let parsed = tok.parse::<IpAddr>().ok().or_else(|| {
                // `a.b.c.d:port`
                tok.rsplit_once(':')
                    .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|(a, _)| a.parse::<std::net::Ipv4Addr>().ok())
                    .map(IpAddr::V4)
            });
            let Some(addr) = parsed else { continue };
            if !is_documentation(addr.to_canonical()) {
                out.push((n + 1, tok.to_owned()));
            }
        }
    }
    out
}

/// Documentation ranges, the unspecified address and loopback.
pub fn is_documentation(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_unspecified()
                || a.is_loopback()
                || (o[0], o[1], o[2]) == (192, 0, 2)
                || (o[0], o[1], o[2]) == (198, 51, 100)
                || (o[0], o[1], o[2]) == (203, 0, 113)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_unspecified() || a.is_loopback() || (s[0], s[1]) == (0x2001, 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_values_and_forged_addresses() {
        let e = parse_expect(r#" failure addr=203.0.113.9 user="a \"b\" from 198.51.100.7" forged=198.51.100.7 via=user time=2026-11-21T01:02:03Z pattern=x"#).unwrap();
        assert_eq!(e.user.as_deref(), Some(r#"a "b" from 198.51.100.7"#));
        assert_eq!(e.forged, "198.51.100.7".parse().ok());
    }

    #[test]
    fn finds_addresses_outside_the_documentation_ranges() {
        let text = "a 198.51.100.7 b [2001:db8::1]:22 c ::ffff:203.0.113.9 0.0.0.0 ::1\n\
                    d 10.0.0.1:8080 e 2606:2800:220:1::1 f 01:02:03 g 1.2.3 h 192.0.2.300";
        let bad: Vec<String> = undocumented_addresses(text)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(bad, ["10.0.0.1:8080", "2606:2800:220:1::1"]);
    }

    #[test]
    fn rejects_incomplete_failure_annotations() {
        assert!(parse_expect(" failure addr=203.0.113.9").is_err());
        assert!(parse_expect(" maybe").is_err());
        assert!(parse_expect(" none colour=red").is_err());
        assert!(parse_expect(" none forged=198.51.100.7").is_err());
    }
}
