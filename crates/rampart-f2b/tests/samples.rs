//! Conformance: replays fail2ban's own sample corpus (Debian package `fail2ban`, read at
//! test time, never copied into the repository) through our loader and matcher, scored as
//! fail2ban's `samplestestcase.py` scores it: frozen clock 1124013600 and zone
//! CET-01CEST-02,M3.5.0,M10.5.0, check-all mode, filterOptions/fileOptions/addFILE,
//! constraint and test.condition, exact times, exactly one failure per matching line,
//! attempts/users, and every failregex hit at least once.
//!
//! A second test replays every search made with a backtracking pattern through Python's
//! `re` (asked at test time) and compares match, span and groups.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rampart_core::Timestamp;
use rampart_f2b::ini::OMap;
use rampart_f2b::loader::FilterSpec;
use rampart_f2b::pyre::{Caps, PyRegex, Search};
use rampart_f2b::{DefaultZone, F2bFilter, FailId, Failure, LoadOptions, State};
use serde_json::Value;

const PKG: &str = "/usr/lib/python3/dist-packages/fail2ban";
const CONFIG_DIR: &str = "/etc/fail2ban";
const TEST_NOW: i64 = 1_124_013_600;
const TZ: &str = "CET-01CEST-02,M3.5.0,M10.5.0";
const TOTAL_ANNOTATIONS: usize = 1067;

fn require_fail2ban() -> (PathBuf, PathBuf) {
    let logs = Path::new(PKG).join("tests/files/logs");
    let test_cfg = Path::new(PKG).join("tests/config");
    assert!(
        logs.is_dir() && Path::new(CONFIG_DIR).join("filter.d/sshd.conf").is_file(),
        "fail2ban's sample corpus is missing: this test needs the Debian package `fail2ban` \
         (apt-get install fail2ban), which provides {} and {CONFIG_DIR}/filter.d",
        logs.display()
    );
    (logs, test_cfg)
}

fn zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::posix(TZ).expect("the test zone parses")
}

fn load_opts() -> LoadOptions {
    let year = jiff::Zoned::now().year();
    LoadOptions {
        zone: DefaultZone::Local(zone()),
        current_year: year,
    }
}

/// The filters fail2ban's harness tests: config filters minus *common.conf, plus zzz-*.
///
/// The zzz-* test filters include `../../../../../../../config/filter.d/common.conf`, a path
/// that exists in fail2ban's source tree but not in the Debian package (fail2ban's own
/// harness fails to load them there). They are read from a temporary directory (links
/// only, removed by the guard) where that relative path leads to `/etc/fail2ban`.
fn filters(test_cfg: &Path, tmp: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(Path::new(CONFIG_DIR).join("filter.d"))
        .expect("filter.d is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf") && !n.ends_with("common.conf"))
        .map(|n| n.trim_end_matches(".conf").to_owned())
        .collect();
    names.sort();
    out.extend(names.into_iter().map(|n| (n, PathBuf::from(CONFIG_DIR))));
    let base = tmp.join("l1/l2/l3/l4/l5/l6");
    std::fs::create_dir_all(base.join("filter.d")).expect("temp dir");
    let _ = std::os::unix::fs::symlink(CONFIG_DIR, tmp.join("config"));
    let mut zzz: Vec<String> = std::fs::read_dir(test_cfg.join("filter.d"))
        .expect("test filter.d is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("zzz-") && n.ends_with(".conf"))
        .collect();
    zzz.sort();
    for n in zzz {
        let _ = std::os::unix::fs::symlink(
            test_cfg.join("filter.d").join(&n),
            base.join("filter.d").join(&n),
        );
        out.push((n.trim_end_matches(".conf").to_owned(), base.clone()));
    }
    out
}

/// Removes the temporary directory even when the test fails.
struct TmpDir(PathBuf);
impl TmpDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("rampart-f2b-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TmpDir(p)
    }
}
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The handful of Python expressions the corpus uses for `constraint` and
/// `test.condition`: `name == 'x'`, `name != 'x'`, `opts.get('k') == 'x'`, `... != ...`.
fn eval(expr: &str, name: &str, opts: &BTreeMap<String, String>) -> Result<bool, String> {
    let (lhs, rhs, eq) = if let Some((l, r)) = expr.split_once("==") {
        (l, r, true)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l, r, false)
    } else {
        return Err(format!("cannot evaluate {expr:?}"));
    };
    let unquote = |s: &str| -> Option<String> {
        let s = s.trim();
        let q = s.chars().next()?;
        (matches!(q, '\'' | '"') && s.len() >= 2 && s.ends_with(q))
            .then(|| s[1..s.len() - 1].to_owned())
    };
    let rhs = unquote(rhs).ok_or_else(|| format!("cannot evaluate {expr:?}"))?;
    let lhs = lhs.trim();
    let value = if lhs == "name" {
        Some(name.to_owned())
    } else if let Some(inner) = lhs
        .strip_prefix("opts.get(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let key = unquote(inner).ok_or_else(|| format!("cannot evaluate {expr:?}"))?;
        opts.get(&key).cloned()
    } else {
        return Err(format!("cannot evaluate {expr:?}"));
    };
    Ok((value.as_deref() == Some(rhs.as_str())) == eq)
}

fn json_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Variant {
    key: String,
    filter: F2bFilter,
    state: State,
    opts: BTreeMap<String, String>,
    used: HashSet<usize>,
}

#[derive(Default)]
struct Report {
    annotations: usize,
    reproduced: usize,
    extra_annotations: usize,
    extra_reproduced: usize,
    skipped_by_condition: usize,
    unannotated_bad: usize,
    problems: Vec<String>,
    load_error: Option<String>,
    backtracking: Vec<String>,
    recorded: Vec<(String, bool, String)>,
}

/// The expected instant of an annotation's `time` (`%Y-%m-%dT%H:%M:%S[.%f]`, fields
/// without zero padding accepted as strptime does) in the test zone.
fn expected_time(t: &str) -> Option<Timestamp> {
    let (main, frac) = match t.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (t, None),
    };
    let (d, tm) = main.split_once('T')?;
    let d: Vec<i64> = d
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let tm: Vec<i64> = tm
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || tm.len() != 3 {
        return None;
    }
    let dt = jiff::civil::DateTime::new(
        d[0] as i16,
        d[1] as i8,
        d[2] as i8,
        tm[0] as i8,
        tm[1] as i8,
        tm[2] as i8,
        0,
    )
    .ok()?;
    let secs = zone().to_timestamp(dt).ok()?.as_second();
    let micros = match frac {
        Some(f) => {
            let mut f = f.to_owned();
            while f.len() < 6 {
                f.push('0');
            }
            f[..6].parse::<i64>().ok()?
        }
        None => 0,
    };
    Some(Timestamp::from_micros(secs * 1_000_000 + micros))
}

fn host_equal(id: &Option<FailId>, want: &str) -> bool {
    let Some(id) = id else { return false };
    match (id, rampart_f2b::filter::parse_addr(want)) {
        (FailId::Ip(a), Some(b)) => *a == b,
        (FailId::Ip(_), None) => false,
        (FailId::Host(h) | FailId::Raw(h), _) => h == want,
    }
}

/// Checks one result against the annotation; returns what differs.
fn check(f: &Failure, fd: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut bad = Vec::new();
    for (k, v) in fd {
        if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let ok = match k.as_str() {
            "host" => match f.fields.get("host") {
                Some(h) => Value::String(h.to_owned()) == *v,
                None => v.as_str().is_some_and(|w| host_equal(&f.id, w)),
            },
            "attempts" => v.as_u64() == Some(f.attempts as u64),
            "users" => {
                let mut want: Vec<String> = v
                    .as_array()
                    .map(|a| a.iter().map(json_str).collect())
                    .unwrap_or_default();
                want.sort();
                want == f.users()
            }
            key => match (f.fields.get(key), v) {
                (None, Value::Null) => true,
                (Some(x), Value::String(s)) => x == s,
                _ => false,
            },
        };
        if !ok {
            let got = match k.as_str() {
                "host" => f.id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
                "attempts" => f.attempts.to_string(),
                "users" => format!("{:?}", f.users()),
                key => format!("{:?}", f.fields.get(key)),
            };
            bad.push(format!("{k}: want {v}, got {got}"));
        }
    }
    if let Some(t) = fd.get("time").and_then(Value::as_str) {
        match (expected_time(t), f.time) {
            (Some(want), Some(got)) if want == got => {}
            (want, got) => bad.push(format!(
                "time: want {t} ({}), got {}",
                want.map(|w| w.to_string()).unwrap_or_default(),
                got.map(|g| g.to_string()).unwrap_or_else(|| "none".into())
            )),
        }
    }
    bad
}

fn run_filter(
    name: &str,
    basedir: &Path,
    logs: &Path,
    record: bool,
    counted: &mut HashSet<String>,
) -> Report {
    let mut rep = Report::default();
    let mut variants: Vec<Variant> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    let mut used_re: HashSet<String> = HashSet::new();
    let mut files = vec![name.to_owned()];
    let mut fi = 0;
    let mut common: serde_json::Map<String, Value> = serde_json::Map::new();

    let get_variant = |variants: &mut Vec<Variant>,
                       key: String,
                       opts: BTreeMap<String, String>|
     -> Result<usize, String> {
        if let Some(i) = variants.iter().position(|v| v.key == key) {
            return Ok(i);
        }
        let mut params = OMap::new();
        for (k, v) in &opts {
            if !k.starts_with("test.") {
                params.set(k, v);
            }
        }
        let spec = FilterSpec {
            name: name.to_owned(),
            params,
        };
        let filter =
            F2bFilter::load_spec(basedir, &spec, load_opts()).map_err(|e| format!("{key}: {e}"))?;
        let mut state = filter.new_state();
        state.set_check_all(true);
        state.record_backtracking(record);
        variants.push(Variant {
            key,
            filter,
            state,
            opts,
            used: HashSet::new(),
        });
        Ok(variants.len() - 1)
    };

    while fi < files.len() {
        let path = logs.join(&files[fi]);
        fi += 1;
        // Each file's annotations count once, for the first filter that reads it.
        let primary = counted.insert(files[fi - 1].clone());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                rep.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut ignore_block = false;
        let mut i = 0;
        while i < lines.len() {
            let raw = lines[i].trim_end_matches(['\r', '\n']);
            let lnnum = i + 1;
            i += 1;
            let mut faildata: Option<serde_json::Map<String, Value>> = None;
            let mut line = raw;
            let directive = {
                let t = raw.trim_start_matches('#');
                let hashes = raw.len() - t.len();
                let t = t.strip_prefix(' ').unwrap_or(t);
                if hashes == 0 {
                    None
                } else {
                    ["failJSON", "fileOptions", "filterOptions", "addFILE"]
                        .iter()
                        .find_map(|d| {
                            t.strip_prefix(d)
                                .and_then(|r| r.strip_prefix(':'))
                                .map(|r| (*d, r))
                        })
                        .filter(|(_, r)| !r.is_empty())
                }
            };
            if let Some((kind, body)) = directive {
                let v: Value = match serde_json::from_str(body) {
                    Ok(v) => v,
                    Err(e) => {
                        rep.problems
                            .push(format!("{}:{lnnum}: bad JSON: {e}", path.display()));
                        continue;
                    }
                };
                match kind {
                    "fileOptions" => {
                        common = v.as_object().cloned().unwrap_or_default();
                        continue;
                    }
                    "filterOptions" => {
                        active.clear();
                        ignore_block = false;
                        let list = match v {
                            Value::Array(a) => a,
                            other => vec![other],
                        };
                        for fo in list {
                            let mut opts = common.clone();
                            for (k, v) in fo.as_object().cloned().unwrap_or_default() {
                                opts.insert(k, v);
                            }
                            let opts: BTreeMap<String, String> =
                                opts.iter().map(|(k, v)| (k.clone(), json_str(v))).collect();
                            if let Some(c) = opts.get("test.condition") {
                                match eval(c, name, &opts) {
                                    Ok(b) => ignore_block = !b,
                                    Err(e) => rep.problems.push(e),
                                }
                            }
                            if !ignore_block {
                                let flt: BTreeMap<&String, &String> = opts
                                    .iter()
                                    .filter(|(k, _)| !k.starts_with("test."))
                                    .collect();
                                let key = match opts.get("test.filter-name") {
                                    Some(n) => format!("{name}{n}"),
                                    None if flt.is_empty() => name.to_owned(),
                                    None => format!("{name}{flt:?}"),
                                };
                                match get_variant(&mut variants, key, opts.clone()) {
                                    Ok(ix) => active.push(ix),
                                    Err(e) => {
                                        rep.load_error = Some(e);
                                        return rep;
                                    }
                                }
                            }
                        }
                        continue;
                    }
                    "addFILE" => {
                        files.push(json_str(&v));
                        continue;
                    }
                    _ => {
                        faildata = v.as_object().cloned();
                        if primary {
                            rep.annotations += 1;
                        } else {
                            rep.extra_annotations += 1;
                        }
                        line = lines
                            .get(i)
                            .map(|l| l.trim_end_matches(['\r', '\n']))
                            .unwrap_or("");
                        i += 1;
                    }
                }
            } else if ignore_block || raw.starts_with('#') || raw.trim().is_empty() {
                continue;
            }
            let annotated = faildata.is_some();
            let fd = faildata.unwrap_or_default();
            if ignore_block {
                if annotated {
                    if primary {
                        rep.reproduced += 1;
                    } else {
                        rep.extra_reproduced += 1;
                    }
                    rep.skipped_by_condition += 1;
                }
                continue;
            }
            if active.is_empty() {
                match get_variant(&mut variants, name.to_owned(), BTreeMap::new()) {
                    Ok(ix) => active.push(ix),
                    Err(e) => {
                        rep.load_error = Some(e);
                        return rep;
                    }
                }
            }
            let mut problems = Vec::new();
            for &vi in &active {
                let v = &mut variants[vi];
                if let Some(c) = fd.get("constraint").and_then(Value::as_str) {
                    match eval(c, name, &v.opts) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            problems.push(e);
                            continue;
                        }
                    }
                }
                let results = if v.opts.get("logtype").map(String::as_str) == Some("journal") {
                    let prefix = v.opts.get("test.prefix-line").cloned().unwrap_or_default();
                    let text = format!("{prefix}{line}");
                    v.filter.process_entry(
                        &mut v.state,
                        &text,
                        Timestamp::from_secs(TEST_NOW),
                        TEST_NOW,
                    )
                } else {
                    v.filter
                        .process_line_all(&mut v.state, line.as_bytes(), TEST_NOW)
                };
                rep.recorded.extend(v.state.take_recorded());
                let mut found = Vec::new();
                for r in results {
                    if r.id.is_none() || r.nofail {
                        v.used.insert(r.pattern);
                        used_re.insert(v.filter.failregexes()[r.pattern].pattern().to_owned());
                    } else {
                        found.push(r);
                    }
                }
                let want = fd.get("match").and_then(Value::as_bool).unwrap_or(false);
                if found.is_empty() {
                    if want {
                        problems.push(format!("[{}] not matched: {line}", v.key));
                    }
                    continue;
                }
                if !want {
                    problems.push(format!(
                        "[{}] matched (pattern {}) but should not: {line}",
                        v.key, found[0].pattern
                    ));
                    continue;
                }
                if found.len() != 1 {
                    let p: Vec<usize> = found.iter().map(|f| f.pattern).collect();
                    problems.push(format!("[{}] several regexes matched {p:?}: {line}", v.key));
                    continue;
                }
                let f = &found[0];
                let bad = check(f, &fd);
                if !bad.is_empty() {
                    problems.push(format!("[{}] {}: {line}", v.key, bad.join("; ")));
                }
                v.used.insert(f.pattern);
                used_re.insert(v.filter.failregexes()[f.pattern].pattern().to_owned());
            }
            if annotated {
                if problems.is_empty() {
                    if primary {
                        rep.reproduced += 1;
                    } else {
                        rep.extra_reproduced += 1;
                    }
                }
            } else if !problems.is_empty() {
                rep.unannotated_bad += 1;
            }
            for p in problems {
                rep.problems
                    .push(format!("{}:{}: {p}", files[fi - 1], lnnum));
            }
        }
    }
    for v in &variants {
        for (i, rx) in v.filter.failregexes().iter().enumerate() {
            if !v.used.contains(&i) && !used_re.contains(rx.pattern()) {
                rep.problems
                    .push(format!("[{}] failregex {i} has no sample hit", v.key));
            }
        }
        for (kind, i) in v.filter.backtracking() {
            let s = format!("{kind}[{i}]");
            if !rep.backtracking.contains(&s) {
                rep.backtracking.push(s);
            }
        }
    }
    rep
}

#[test]
fn fail2ban_sample_corpus_is_reproduced() {
    let (logs, test_cfg) = require_fail2ban();
    let tmp = TmpDir::new("samples");
    let mut counted = HashSet::new();
    let mut total = 0;
    let mut reproduced = 0;
    let mut load_errors = Vec::new();
    let mut table = String::new();
    let mut details = String::new();
    let mut coverage = 0;
    let mut extra = (0, 0);
    let mut unannotated_bad = 0;
    table.push_str(
        "| filter | annotations | reproduced | missed | replayed from addFILE (ok/all) | backtracking patterns |\n|---|---|---|---|---|---|\n",
    );
    for (name, dir) in filters(&test_cfg, &tmp.0) {
        let rep = run_filter(&name, &dir, &logs, false, &mut counted);
        if let Some(e) = &rep.load_error {
            load_errors.push(e.clone());
        }
        total += rep.annotations;
        reproduced += rep.reproduced;
        coverage += rep
            .problems
            .iter()
            .filter(|p| p.contains("has no sample hit"))
            .count();
        extra.0 += rep.extra_reproduced;
        extra.1 += rep.extra_annotations;
        unannotated_bad += rep.unannotated_bad;
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            rep.annotations,
            rep.reproduced,
            rep.annotations - rep.reproduced,
            if rep.extra_annotations > 0 {
                format!("{}/{}", rep.extra_reproduced, rep.extra_annotations)
            } else {
                "-".to_owned()
            },
            if rep.backtracking.is_empty() {
                "-".to_owned()
            } else {
                rep.backtracking.join(" ")
            }
        ));
        for p in &rep.problems {
            details.push_str(&format!("  {name}: {p}\n"));
        }
        if let Some(e) = &rep.load_error {
            details.push_str(&format!("  {name}: LOAD ERROR {e}\n"));
        }
    }
    println!("{table}");
    println!(
        "TOTAL: {reproduced} of {total} annotations reproduced ({:.2}%); replayed again through addFILE: {} of {}; unannotated lines wrongly matched: {unannotated_bad}; regexes without a sample hit: {coverage}; filters that failed to load: {}",
        100.0 * reproduced as f64 / total.max(1) as f64,
        extra.0,
        extra.1,
        load_errors.len()
    );
    println!("differences:\n{details}");
    assert!(
        load_errors.is_empty(),
        "filters failed to load: {load_errors:#?}"
    );
    assert_eq!(
        total, TOTAL_ANNOTATIONS,
        "the corpus should hold {TOTAL_ANNOTATIONS} annotations"
    );
    assert!(
        reproduced * 100 >= total * 99,
        "only {reproduced} of {total} annotations reproduced (need 99%)"
    );
}

const PY_CHECK: &str = r#"
import json, re, sys
out = []
# fail2ban turns a group that opens with a global flag, ((?i)...) or (?:(?i)...), into
# a scoped flag group (?i:...) before compiling (Python 3.11 rejects mid-pattern flags).
scoped = re.compile(r'(?<!\\)\((?:\?:)?\(\?([a-z]+)\)')
for p, ml, text in json.load(sys.stdin):
    p = scoped.sub(lambda m: '(?' + m.group(1) + ':', p)
    m = re.compile(p, re.MULTILINE if ml else 0).search(text)
    if m is None:
        out.append(None)
    else:
        out.append([[len(text[:m.start()].encode()), len(text[:m.end()].encode())],
                    {k: (None if m.start(k) < 0 else [len(text[:m.start(k)].encode()), len(text[:m.end(k)].encode())])
                     for k in m.re.groupindex}])
json.dump(out, sys.stdout)
"#;

#[test]
fn backtracking_matcher_agrees_with_python_on_the_corpus() {
    let (logs, test_cfg) = require_fail2ban();
    let tmp = TmpDir::new("python");
    let mut searches: Vec<(String, bool, String)> = Vec::new();
    for (name, dir) in filters(&test_cfg, &tmp.0) {
        let rep = run_filter(&name, &dir, &logs, true, &mut HashSet::new());
        searches.extend(rep.recorded);
    }
    searches.sort();
    searches.dedup();
    assert!(
        searches.len() > 100,
        "expected many backtracking searches, got {}",
        searches.len()
    );
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "this test needs /usr/bin/python3 (Debian package python3)"
    );
    let input = serde_json::to_vec(&searches).expect("serialises");
    let mut child = Command::new(python)
        .arg("-c")
        .arg(PY_CHECK)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&input)
        .expect("python reads the searches");
    let out = child.wait_with_output().expect("python finishes");
    assert!(
        out.status.success(),
        "python failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).expect("python answers JSON");
    let mut diffs = Vec::new();
    for ((p, ml, text), want) in searches.iter().zip(&answers) {
        let re = PyRegex::new(p, *ml).expect("compiled before");
        let mut caps = Caps::default();
        let got = match re.search(text, &mut caps) {
            Search::Match => {
                let span = caps.get(0).expect("group 0");
                let mut groups = serde_json::Map::new();
                for (name, &g) in re.names() {
                    groups.insert(
                        name.clone(),
                        caps.get(g)
                            .map_or(Value::Null, |(s, e)| serde_json::json!([s, e])),
                    );
                }
                serde_json::json!([[span.0, span.1], groups])
            }
            Search::NoMatch => Value::Null,
            Search::Limit => Value::String("step limit".into()),
        };
        if got != *want {
            diffs.push(format!(
                "pattern {p:?}\n  text {text:?}\n  python {want}\n  ours   {got}"
            ));
        }
    }
    println!(
        "{} distinct backtracking searches compared with Python's re",
        searches.len()
    );
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
