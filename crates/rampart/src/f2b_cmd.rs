//! `rampart filter test fail2ban:NAME[params] LOGFILE` (or a path to a fail2ban `.conf`
//! filter): runs a fail2ban filter, read unchanged from `--fail2ban-dir`, over a log the way
//! fail2ban's daemon would (first matching failregex wins), with the same report and JSON
//! shape as the native `filter test`.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rampart_f2b::{DefaultZone, F2bFilter, FailId, LoadOptions};
use rampart_source::{LineReader, DEFAULT_MAX_LINE};

use crate::cli::{FilterTestArgs, Show};
use crate::cpu::{Elapsed, Stopwatch};
use crate::filter_cmd::open_log;

/// A failure id as tallied: two ids are the same key exactly when they print the same
/// (an address never prints like a host name or raw id, which are kept only when they do
/// not parse as an address), without formatting every address on the way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Ip(std::net::IpAddr),
    Text(String),
}

impl IdKey {
    fn of(id: Option<&FailId>) -> Self {
        match id {
            Some(FailId::Ip(ip)) => IdKey::Ip(*ip),
            Some(FailId::Host(s) | FailId::Raw(s)) => IdKey::Text(s.clone()),
            None => IdKey::Text(String::new()),
        }
    }
}

impl std::fmt::Display for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdKey::Ip(ip) => write!(f, "{ip}"),
            IdKey::Text(s) => f.write_str(s),
        }
    }
}

/// Distinct failure ids tallied; beyond this, failures from new ids are only counted.
const MAX_TALLIED: usize = 1_000_000;

/// Whether `filter` names a fail2ban filter: `fail2ban:NAME[...]` or a `.conf`/`.local` file.
pub fn applies(filter: &str) -> bool {
    let name = filter.split('[').next().unwrap_or(filter);
    filter.starts_with("fail2ban:") || name.ends_with(".conf") || name.ends_with(".local")
}

fn zone(tz: &str) -> anyhow::Result<DefaultZone> {
    Ok(match tz {
        "local" => DefaultZone::Local(jiff::tz::TimeZone::system()),
        "UTC" | "utc" | "Z" => DefaultZone::Fixed(0),
        z if z.starts_with(['+', '-']) => DefaultZone::Fixed(
            rampart_f2b::date::zone_offset(&format!("UTC{z}"))
                .with_context(|| format!("--timezone {z:?}: expected +HH:MM"))?,
        ),
        name => DefaultZone::Local(
            jiff::tz::TimeZone::get(name).with_context(|| format!("--timezone {name:?}"))?,
        ),
    })
}

pub fn test(args: &FilterTestArgs) -> anyhow::Result<ExitCode> {
    if args.json && !args.show.is_empty() {
        bail!("--show prints lines in the text report; with --json every match is already in `matches`");
    }
    let spec = args
        .filter
        .strip_prefix("fail2ban:")
        .unwrap_or(&args.filter);
    let now = args.time.now()?;
    let now_secs = now.as_secs();
    let opts = LoadOptions {
        zone: zone(&args.timezone)?,
        current_year: rampart_f2b::date::year_of(now_secs),
    };
    let dir: &Path = &args.fail2ban_dir;
    let filter = F2bFilter::load(dir, spec, opts)
        .with_context(|| format!("loading fail2ban filter {spec:?} from {}", dir.display()))?;
    let mut state = filter.new_state();
    let mut reader = LineReader::new(open_log(&args.logfile)?, DEFAULT_MAX_LINE);
    let clock = Stopwatch::start();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let npat = filter.failregexes().len();
    let mut per_pattern = vec![0u64; npat];
    let mut ids: HashMap<IdKey, u64> = HashMap::new();
    let mut untallied = 0u64;
    let mut matched = 0u64;
    let mut non_ip = 0u64;
    let mut first = true;
    if args.json {
        out.write_all(b"{\"matches\":[")?;
    }
    let show = |k: Show| args.show.contains(&k);
    let mut n: u64 = 0;
    while let Some(line) = reader
        .next_line()
        .with_context(|| format!("reading {}", args.logfile.display()))?
    {
        n += 1;
        let mut any = false;
        for f in filter.process_line(&mut state, line, now_secs) {
            any = true;
            matched += 1;
            per_pattern[f.pattern] += 1;
            let id = IdKey::of(f.id.as_ref());
            if f.addr().is_none() {
                non_ip += 1;
            }
            let room = ids.len() < MAX_TALLIED;
            match ids.get_mut(&id) {
                Some(c) => *c += 1,
                None if room => {
                    ids.insert(id.clone(), 1);
                }
                None => untallied += 1,
            }
            if args.json {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                out.write_all(b"{\"line\":")?;
                write!(out, "{n},\"addr\":")?;
                match &id {
                    // An address needs no escaping.
                    IdKey::Ip(ip) => write!(out, "\"{ip}\"")?,
                    IdKey::Text(s) => serde_json::to_writer(&mut out, s)?,
                }
                out.write_all(b",\"time\":")?;
                match f.time {
                    Some(t) => write!(out, "\"{t}\"")?,
                    None => out.write_all(b"null")?,
                }
                write!(out, ",\"pattern\":\"failregex[{}]\"", f.pattern)?;
                if let Some(u) = f.user() {
                    out.write_all(b",\"user\":")?;
                    serde_json::to_writer(&mut out, u)?;
                }
                out.write_all(b"}")?;
            } else if show(Show::Matched) {
                writeln!(
                    out,
                    "matched {n}: [failregex[{}]] {id}: {}",
                    f.pattern,
                    String::from_utf8_lossy(line)
                )?;
            }
        }
        if !any && !args.json && show(Show::Missed) {
            writeln!(out, "missed {n}: {}", String::from_utf8_lossy(line))?;
        }
    }
    let time = clock.elapsed();
    let (cpu, wall) = (time.cpu, time.wall);
    let lst = reader.stats().clone();
    let mut top: Vec<(String, u64)> = ids.into_iter().map(|(k, c)| (k.to_string(), c)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let per_line = |secs: f64| Elapsed::rate(n, secs);
    let backtracking: Vec<String> = filter
        .backtracking()
        .iter()
        .map(|(k, i)| format!("{k}[{i}]"))
        .collect();
    let candidates = n - state.prefiltered;
    if args.json {
        let patterns: Vec<serde_json::Value> = filter
            .failregexes()
            .iter()
            .zip(&per_pattern)
            .enumerate()
            .map(|(i, (rx, c))| {
                serde_json::json!({
                    "id": format!("failregex[{i}]"),
                    "kind": if rx.is_backtracking() { "backtracking" } else { "regex" },
                    "matched": c,
                })
            })
            .collect();
        let addresses: Vec<serde_json::Value> = top
            .iter()
            .map(|(a, c)| serde_json::json!({"addr": a, "count": c}))
            .collect();
        let summary = serde_json::json!({
            "filter": format!("fail2ban:{}", filter.name()),
            "file": args.logfile.display().to_string(),
            "lines": n,
            "bytes": lst.bytes,
            "too_long": lst.too_long,
            "no_timestamp": state.no_date,
            "timestamp_format": "fail2ban datepattern",
            "candidates": candidates,
            "matched": matched,
            "ignored": state.ignored,
            "bad_host": non_ip,
            "no_time": 0,
            "unattributed": 0,
            "patterns": patterns,
            "addresses": addresses,
            "addresses_untallied": untallied,
            "backtracking": backtracking,
            "step_limit_hits": state.step_limit_hits,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "lines_per_cpu_second": cpu.map(per_line),
        });
        out.write_all(b"]")?;
        if let Some(m) = summary.as_object() {
            for (k, v) in m {
                write!(out, ",{}:", serde_json::Value::String(k.clone()))?;
                serde_json::to_writer(&mut out, v)?;
            }
        }
        out.write_all(b"}\n")?;
    } else {
        let pct = |x: u64| {
            if n > 0 {
                100.0 * x as f64 / n as f64
            } else {
                0.0
            }
        };
        writeln!(
            out,
            "filter      fail2ban:{} ({})",
            filter.name(),
            filter
                .files()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        writeln!(out, "log         {}", args.logfile.display())?;
        writeln!(
            out,
            "lines       {n} ({:.1} MB); too long, skipped: {}",
            lst.bytes as f64 / 1e6,
            lst.too_long
        )?;
        writeln!(out, "timestamps  lines without a date: {}", state.no_date)?;
        writeln!(
            out,
            "matched     {matched} failures ({:.2}% of lines); ignored {}; ids that are not addresses {non_ip}",
            pct(matched),
            state.ignored
        )?;
        writeln!(out, "patterns    (matches, engine)")?;
        for (i, (rx, c)) in filter.failregexes().iter().zip(&per_pattern).enumerate() {
            let engine = if rx.is_backtracking() {
                "backtracking"
            } else {
                "regex"
            };
            writeln!(out, "  failregex[{i:<2}] {c:>10}  {engine}")?;
        }
        writeln!(
            out,
            "prefilter   {} candidate lines{}",
            candidates,
            if filter.has_prefilter() {
                ""
            } else {
                " (no literal prefilter: every line is a candidate)"
            }
        )?;
        if !backtracking.is_empty() {
            writeln!(
                out,
                "backtrack   {} (step limit hit {} times)",
                backtracking.join(" "),
                state.step_limit_hits
            )?;
        }
        writeln!(out, "addresses   {} distinct", top.len())?;
        for (a, c) in top.iter().take(args.top) {
            writeln!(out, "  {a:<40} {c:>10}")?;
        }
        writeln!(out, "{}", time.speed_line(n))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_filters_are_recognised_by_prefix_or_conf_path() {
        assert!(applies("fail2ban:sshd"));
        assert!(applies("fail2ban:sshd[mode=aggressive]"));
        assert!(applies("/etc/fail2ban/filter.d/sshd.conf"));
        assert!(applies("my.local[mode=x.conf]"));
        assert!(!applies("sshd"));
        assert!(!applies("filters/sshd.toml"));
    }

    #[test]
    fn timezone_option_maps_to_fail2ban_zones() {
        assert!(matches!(zone("UTC").unwrap(), DefaultZone::Fixed(0)));
        assert!(matches!(zone("+01:30").unwrap(), DefaultZone::Fixed(90)));
        assert!(matches!(zone("-05:00").unwrap(), DefaultZone::Fixed(-300)));
        assert!(zone("Nowhere/Else").is_err());
    }

    #[test]
    fn id_keys_are_equal_exactly_when_the_ids_print_the_same() {
        let ids = [
            FailId::Ip("192.0.2.1".parse().unwrap()),
            FailId::Ip("2001:db8::1".parse().unwrap()),
            FailId::Host("host.example".into()),
            FailId::Raw("host.example".into()),
            FailId::Raw("192.030.0.6".into()),
            FailId::Raw("('a', 'b')".into()),
        ];
        for a in &ids {
            assert_eq!(IdKey::of(Some(a)).to_string(), a.to_string());
            for b in &ids {
                assert_eq!(
                    IdKey::of(Some(a)) == IdKey::of(Some(b)),
                    a.to_string() == b.to_string(),
                    "{a:?} {b:?}"
                );
            }
        }
        assert_eq!(IdKey::of(None).to_string(), "");
    }
}
