//! The outside yardstick: every built-in filter run over fail2ban's annotated sample log of
//! the same service (Debian package `fail2ban`, read where it is installed, never copied
//! into this repository).
//!
//! fail2ban's annotation format (see its `samplestestcase.py`): a `# failJSON: {...}` line
//! describes the very next line (`"match": true` with `"host"`, or `"match": false`);
//! a line without one is a non-failure; `# filterOptions:` sets the filter variants (modes)
//! for the lines that follow, `# fileOptions:` adds to every later one; a `"constraint"`
//! limits an annotation to some variants; `"logtype": "journal"` lines carry no timestamp
//! (they are handed over the way the daemon hands over journal entries).
//!
//! Per filter it reports: annotated failures found with the right address (recall), lines
//! annotated (or left) as non-failures that we count (false positives), and every miss by
//! reason. It fails when a gated filter (sshd, the web filters, postfix, dovecot,
//! asterisk) is below 95% recall or has any false positive, and when the package is
//! missing.
//!
//! Run with `cargo test -p rampart-filter --test f2b_samples -- --nocapture` to see the
//! table and the misses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rampart_core::Timestamp;
use rampart_filter::builtin::builtin;
use rampart_filter::time::{TimeParser, Zone};
use rampart_filter::{EventKind, Filter, ParamValue, ParamValues, Scanner};
use serde_json::Value;

/// Where Debian's `fail2ban` package installs its sample logs.
const SAMPLES: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/// fail2ban's frozen "now": 2005-08-14 10:00:00 UTC, in its test time zone.
const NOW: &str = "2005-08-14T10:00:00Z";
const ZONE: &str = "Europe/Zurich";

/// Recall a gated filter must reach.
const MIN_RECALL: f64 = 0.95;

/// One of our filters and the fail2ban sample files of the same service.
struct Mapping {
    ours: &'static str,
    samples: &'static [&'static str],
    /// Held to the 95% recall / zero false positive target.
    gated: bool,
    /// fail2ban `mode` values mapped onto ours where the names differ; `-`: a mode we do
    /// not have, whose lines are not scored (and reported as such).
    modes: &'static [(&'static str, &'static str)],
}

const MAPPINGS: &[Mapping] = &[
    Mapping {
        ours: "sshd",
        samples: &["sshd", "sshd-journal"],
        gated: true,
        // fail2ban's ddos and extra modes also count authentication failures in its
        // samples: our aggressive mode (normal + ddos) is the one that does.
        modes: &[("ddos", "aggressive"), ("extra", "aggressive")],
    },
    Mapping {
        ours: "nginx-auth",
        samples: &["nginx-http-auth"],
        gated: true,
        modes: &[("auth", "normal"), ("fallback", "aggressive")],
    },
    Mapping {
        ours: "apache-auth",
        samples: &["apache-auth"],
        gated: true,
        modes: &[],
    },
    Mapping {
        ours: "web-scan",
        samples: &["nginx-botsearch", "apache-botsearch"],
        gated: true,
        modes: &[],
    },
    Mapping {
        ours: "nginx-limit-req",
        samples: &["nginx-limit-req"],
        gated: true,
        modes: &[],
    },
    Mapping {
        ours: "web-badbots",
        samples: &["apache-badbots"],
        gated: false,
        modes: &[],
    },
    Mapping {
        ours: "postfix",
        samples: &["postfix"],
        gated: true,
        // fail2ban's `errors` mode is a jail for "too many errors" lines alone; rampart has
        // no such mode (its normal mode counts those lines among others).
        modes: &[("errors", "-"), ("rbl", "normal")],
    },
    Mapping {
        ours: "dovecot",
        samples: &["dovecot"],
        gated: true,
        modes: &[],
    },
    Mapping {
        ours: "asterisk",
        samples: &["asterisk"],
        gated: true,
        modes: &[],
    },
    Mapping {
        ours: "exim",
        samples: &["exim"],
        gated: false,
        modes: &[],
    },
    Mapping {
        ours: "freeswitch",
        samples: &["freeswitch"],
        gated: false,
        modes: &[],
    },
    Mapping {
        ours: "vsftpd",
        samples: &["vsftpd"],
        gated: false,
        modes: &[],
    },
    Mapping {
        ours: "proftpd",
        samples: &["proftpd"],
        gated: false,
        modes: &[],
    },
    Mapping {
        ours: "mysqld",
        samples: &["mysqld-auth"],
        gated: false,
        modes: &[],
    },
];

/// Counts for one filter.
#[derive(Debug, Default)]
struct Score {
    /// Annotated failures with an address (host names are never resolved by rampart).
    failures: usize,
    /// ... counted with that address.
    found: usize,
    /// ... recognised with that address and folded into a failure of the same attempt or
    /// connection that counted already (one attempt counts once).
    folded: usize,
    /// ... annotated with a host name or an invalid address: not scorable.
    not_an_address: usize,
    /// Lines of a fail2ban mode we have no counterpart for: not scored.
    no_such_mode: usize,
    /// Annotated or implied non-failures.
    non_failures: usize,
    /// ... that we counted.
    false_positives: usize,
    /// Every miss and false positive, with the reason.
    notes: Vec<String>,
}

impl Score {
    /// Found with the right address: counted, or folded into what counted.
    fn recall(&self) -> f64 {
        ratio(self.found + self.folded, self.failures)
    }

    /// Counted on the annotated line itself.
    fn strict_recall(&self) -> f64 {
        ratio(self.found, self.failures)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// A sample line with what fail2ban expects of it.
struct Test {
    file: &'static str,
    n: usize,
    line: String,
    annotation: Value,
    variants: Vec<BTreeMap<String, String>>,
}

fn options(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a sample file into test lines, each with the variants it applies to.
fn read_samples(file: &'static str) -> Vec<Test> {
    let path = Path::new(SAMPLES).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut file_opts: BTreeMap<String, String> = BTreeMap::new();
    let mut variants = vec![BTreeMap::new()];
    let mut pending: Option<Value> = None;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if let Some((key, rest)) = directive(line) {
            let json: Value = serde_json::from_str(rest.trim())
                .unwrap_or_else(|e| panic!("{file}:{}: bad JSON in {key}: {e}", n + 1));
            match key {
                "failJSON" => pending = Some(json),
                "fileOptions" => file_opts = options(&json),
                "filterOptions" => {
                    let list = match &json {
                        Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    variants = list
                        .iter()
                        .map(|o| {
                            let mut m = file_opts.clone();
                            m.extend(options(o));
                            m
                        })
                        .collect();
                }
                _ => {} // addFILE: every sample file is scored on its own.
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let annotation = pending
            .take()
            .unwrap_or_else(|| serde_json::json!({"match": false}));
        let applies: Vec<BTreeMap<String, String>> =
            if variants.len() == 1 && variants[0].is_empty() {
                vec![file_opts.clone()]
            } else {
                variants.clone()
            };
        out.push(Test {
            file,
            n: n + 1,
            line: line.to_owned(),
            annotation,
            variants: applies,
        });
    }
    out
}

/// `# failJSON: {...}` and friends: the directive and its JSON.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches('#').trim_start();
    if !line.starts_with('#') {
        return None;
    }
    for key in ["failJSON", "fileOptions", "filterOptions", "addFILE"] {
        if let Some(json) = rest.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            return Some((key, json));
        }
    }
    None
}

/// Evaluates the few expressions the samples use: `name == 'x'`, `name != 'x'`,
/// `opts.get('k') == 'x'`, `opts.get('k') != 'x'`.
fn holds(expr: &str, name: &str, opts: &BTreeMap<String, String>) -> bool {
    let (lhs, rhs, eq) = match (expr.split_once("=="), expr.split_once("!=")) {
        (Some((l, r)), _) => (l, r, true),
        (None, Some((l, r))) => (l, r, false),
        _ => panic!("unsupported fail2ban expression {expr:?}"),
    };
    let lit = rhs.trim().trim_matches(|c| c == '\'' || c == '"');
    let lhs = lhs.trim();
    let value = if lhs == "name" {
        Some(name.to_owned())
    } else if let Some(k) = lhs
        .strip_prefix("opts.get(")
        .and_then(|r| r.strip_suffix(')'))
    {
        opts.get(k.trim_matches(|c| c == '\'' || c == '"')).cloned()
    } else {
        panic!("unsupported fail2ban expression {expr:?}")
    };
    (value.as_deref() == Some(lit)) == eq
}

/// Our parameters for a fail2ban variant; `None` for a mode we do not have.
fn params_for(
    m: &Mapping,
    filter_toml: &str,
    opts: &BTreeMap<String, String>,
) -> Option<ParamValues> {
    let mut p = ParamValues::new();
    let Some(mode) = opts.get("mode").filter(|v| !v.is_empty()) else {
        return Some(p);
    };
    let mode = m
        .modes
        .iter()
        .find(|(theirs, _)| theirs == mode)
        .map(|(_, ours)| (*ours).to_owned())
        .unwrap_or_else(|| mode.clone());
    if mode == "-" {
        return None;
    }
    let base = Filter::from_toml(m.ours, m.ours, filter_toml).expect("built-in filter compiles");
    let Some(decl) = base.params().iter().find(|x| x.name == "mode") else {
        return Some(p);
    };
    let _ = decl;
    // Our mode names: take fail2ban's when we have it, else aggressive if we have that.
    let try_mode = |v: &str| {
        let mut q = ParamValues::new();
        q.insert("mode".into(), ParamValue::One(v.to_owned()));
        Filter::from_toml_with(m.ours, m.ours, filter_toml, &q).ok()
    };
    if try_mode(&mode).is_some() {
        p.insert("mode".into(), ParamValue::One(mode));
    } else if try_mode("aggressive").is_some() {
        p.insert("mode".into(), ParamValue::One("aggressive".into()));
    }
    Some(p)
}

struct Variant {
    scanner: Scanner,
    filter: Arc<Filter>,
}

/// A fail2ban variant: ours, or one we have no counterpart for.
enum Slot {
    Ours(Box<Variant>),
    NoSuchMode,
}

fn score(m: &Mapping) -> Option<Score> {
    let b = builtin(m.ours)?;
    let now = Timestamp::parse_rfc3339(NOW).expect("time");
    let zone = Zone::parse(ZONE).expect("zone");
    let mut score = Score::default();
    for &file in m.samples {
        // One scanner per variant and file, kept across the file (state runs on).
        let mut scanners: BTreeMap<String, Slot> = BTreeMap::new();
        for t in read_samples(file) {
            // fail2ban's `name` is the filter under test: `sshd-journal` is read by `sshd`
            // (through `addFILE`).
            let name = file.strip_suffix("-journal").unwrap_or(file);
            for opts in &t.variants {
                if let Some(cond) = opts.get("test.condition") {
                    if !holds(cond, name, opts) {
                        continue;
                    }
                }
                if let Some(c) = t.annotation.get("constraint").and_then(Value::as_str) {
                    if !holds(c, name, opts) {
                        continue;
                    }
                }
                // Keyed by fail2ban's variant: two of its variants may map to one of ours,
                // and each must see every line once.
                let key = format!("{opts:?}");
                let slot = scanners.entry(key).or_insert_with(|| {
                    let Some(params) = params_for(m, b.toml, opts) else {
                        return Slot::NoSuchMode;
                    };
                    let filter = Arc::new(
                        Filter::from_toml_with(m.ours, m.ours, b.toml, &params)
                            .expect("built-in filter compiles with these parameters"),
                    );
                    Slot::Ours(Box::new(Variant {
                        scanner: Scanner::new(
                            vec![Arc::clone(&filter)],
                            TimeParser::new(filter.timestamp(), zone.clone(), now),
                            true,
                        ),
                        filter,
                    }))
                });
                let v = match slot {
                    Slot::Ours(v) => v,
                    Slot::NoSuchMode => {
                        score.no_such_mode += 1;
                        continue;
                    }
                };
                let journal = opts.get("logtype").map(String::as_str) == Some("journal");
                let prefix = opts.get("test.prefix-line").cloned().unwrap_or_default();
                let text = format!("{prefix}{}", t.line);
                let mut got: Vec<(EventKind, Option<IpAddr>, usize)> = Vec::new();
                if journal {
                    v.scanner.scan_message(text.as_bytes(), now, |e| {
                        got.push((e.kind, e.addr, e.pattern))
                    });
                } else {
                    v.scanner
                        .scan(text.as_bytes(), |e| got.push((e.kind, e.addr, e.pattern)));
                }
                let counted = got
                    .iter()
                    .find(|e| matches!(e.0, EventKind::Failure | EventKind::NoTime));
                let mode = opts.get("mode").map(String::as_str).unwrap_or("-");
                let whereabouts = format!("{}:{} [mode {mode}]", t.file, t.n);
                let pid = |i: usize| v.filter.patterns()[i].id.clone();
                let expected = t.annotation.get("match").and_then(Value::as_bool) == Some(true);
                if !expected {
                    score.non_failures += 1;
                    if let Some(e) = counted {
                        score.false_positives += 1;
                        score.notes.push(format!(
                            "FALSE POSITIVE {whereabouts} ({}): {}",
                            pid(e.2),
                            t.line
                        ));
                    }
                    continue;
                }
                let host = t
                    .annotation
                    .get("host")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let Ok(want) = host.parse::<IpAddr>().map(|a| a.to_canonical()) else {
                    score.not_an_address += 1;
                    continue;
                };
                score.failures += 1;
                let why = match (counted, got.first()) {
                    (Some((EventKind::Failure, Some(a), _)), _) if *a == want => {
                        score.found += 1;
                        continue;
                    }
                    (Some((EventKind::NoTime, ..)), _) => "no parsable time".to_owned(),
                    (Some((_, a, i)), _) => format!("address {a:?} ({})", pid(*i)),
                    (None, Some((EventKind::Folded, Some(a), i))) if *a == want => {
                        score.folded += 1;
                        score
                            .notes
                            .push(format!("folded {whereabouts} ({}): {}", pid(*i), t.line));
                        continue;
                    }
                    (None, Some((EventKind::Held, _, i))) => {
                        format!("held for a later line of the connection ({})", pid(*i))
                    }
                    (None, Some((k, _, i))) => format!("{k:?} ({})", pid(*i)),
                    (None, None) => "no pattern matches".to_owned(),
                };
                score
                    .notes
                    .push(format!("MISS {whereabouts} {why}: {}", t.line));
            }
        }
    }
    Some(score)
}

#[test]
fn builtin_filters_score_against_fail2ban_samples() {
    assert!(
        Path::new(SAMPLES).is_dir(),
        "fail2ban's sample logs are not installed at {SAMPLES}: install the Debian package \
         `fail2ban` (apt-get install fail2ban) to run the scorer"
    );
    let mut table = String::from(
        "| filter | fail2ban samples | failures | counted | folded | recall | counted on the line | host names (not scored) | no such mode (not scored) | non-failures | false positives | gated |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut problems = Vec::new();
    let mut notes = String::new();
    for m in MAPPINGS {
        let Some(s) = score(m) else {
            let _ = writeln!(
                table,
                "| `{}` | {} | - | - | - | - | - | - | - | - | - | {} |",
                m.ours,
                m.samples.join(", "),
                if m.gated { "yes" } else { "no" }
            );
            if m.gated {
                problems.push(format!("{}: no such built-in filter", m.ours));
            }
            continue;
        };
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} | {} | {:.1}% | {:.1}% | {} | {} | {} | {} | {} |",
            m.ours,
            m.samples.join(", "),
            s.failures,
            s.found,
            s.folded,
            100.0 * s.recall(),
            100.0 * s.strict_recall(),
            s.not_an_address,
            s.no_such_mode,
            s.non_failures,
            s.false_positives,
            if m.gated { "yes" } else { "no" }
        );
        for n in &s.notes {
            let _ = writeln!(notes, "{}: {n}", m.ours);
        }
        if m.gated && (s.recall() < MIN_RECALL || s.false_positives > 0) {
            problems.push(format!(
                "{}: recall {:.1}% (target {:.0}%), {} false positive(s)",
                m.ours,
                100.0 * s.recall(),
                100.0 * MIN_RECALL,
                s.false_positives
            ));
        }
    }
    println!("{table}\n{notes}");
    assert!(
        problems.is_empty(),
        "below target:\n{}\n\n{table}\n{notes}",
        problems.join("\n")
    );
}

#[test]
fn constraint_expressions_evaluate_like_fail2ban() {
    let mut o = BTreeMap::new();
    assert!(holds("name == 'sshd'", "sshd", &o));
    assert!(!holds("name=='sshd'", "sshd-journal", &o));
    assert!(holds("opts.get('mode') != 'aggressive'", "sshd", &o));
    o.insert("mode".to_owned(), "aggressive".to_owned());
    assert!(holds("opts.get('mode') == 'aggressive'", "sshd", &o));
}
