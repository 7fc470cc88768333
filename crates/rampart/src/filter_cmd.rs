//! `rampart filter test|list|show`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use rampart_filter::builtin::{builtin, BUILTINS};
use rampart_filter::time::{TimeParser, Zone};
use rampart_filter::{EventKind, Filter, Scanner};
use rampart_source::{LineReader, DEFAULT_MAX_LINE};

use crate::cli::{FilterTestArgs, Show};
use crate::cpu::cpu_seconds;

/// Distinct addresses tallied by `filter test`; beyond this, further new addresses are
/// only counted in `addresses_untallied` (a hostile log chooses how many there are).
const MAX_TALLIED_ADDRESSES: usize = 1_000_000;

pub fn open_log(path: &std::path::Path) -> anyhow::Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let f = File::open(path).with_context(|| format!("cannot read log file {}", path.display()))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        bail!("cannot read log file {}: it is a directory", path.display());
    }
    Ok(Box::new(f))
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

pub fn test(args: &FilterTestArgs) -> anyhow::Result<ExitCode> {
    if crate::f2b_cmd::applies(&args.filter) {
        return crate::f2b_cmd::test(args);
    }
    if args.json && !args.show.is_empty() {
        bail!("--show prints lines in the text report; with --json every match is already in `matches`");
    }
    let filter = Arc::new(rampart_filter::load(&args.filter)?);
    let zone = Zone::parse(&args.timezone).context("--timezone")?;
    let now = args.time.now()?;
    let mut reader = LineReader::new(open_log(&args.logfile)?, DEFAULT_MAX_LINE);
    let mut scanner = Scanner::new(
        vec![Arc::clone(&filter)],
        TimeParser::new(filter.timestamp(), zone, now),
        true,
    );
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut addrs: HashMap<IpAddr, u64> = HashMap::new();
    let mut untallied = 0u64;
    let mut first_match = true;
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
        let mut event = None;
        scanner.scan(line, |e| event = Some(e));
        match event {
            Some(e) if e.kind == EventKind::Failure => {
                let Some(addr) = e.addr else { continue };
                let room = addrs.len() < MAX_TALLIED_ADDRESSES;
                match addrs.get_mut(&addr) {
                    Some(c) => *c += 1,
                    None if room => {
                        addrs.insert(addr, 1);
                    }
                    None => untallied += 1,
                }
                if args.json {
                    if !first_match {
                        out.write_all(b",")?;
                    }
                    first_match = false;
                    write!(out, "{{\"line\":{n},\"addr\":\"{addr}\",\"time\":")?;
                    match e.time {
                        Some(t) => write!(out, "\"{t}\"")?,
                        None => out.write_all(b"null")?,
                    }
                    write!(out, ",\"pattern\":\"{}\"", filter.patterns()[e.pattern].id)?;
                    if let Some(u) = e.user {
                        out.write_all(b",\"user\":")?;
                        serde_json::to_writer(&mut out, &lossy(u))?;
                    }
                    out.write_all(b"}")?;
                } else if show(Show::Matched) {
                    writeln!(
                        out,
                        "matched {n}: [{}] {addr}: {}",
                        filter.patterns()[e.pattern].id,
                        lossy(line)
                    )?;
                }
            }
            Some(e) if e.kind == EventKind::Ignored && show(Show::Ignored) => {
                writeln!(out, "ignored {n}: {}", lossy(line))?;
            }
            None if show(Show::Missed) => writeln!(out, "missed {n}: {}", lossy(line))?,
            _ => {}
        }
    }
    let cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let wall = wall0.elapsed().as_secs_f64();
    let st = scanner.filter_stats(0).clone();
    let src = scanner.stats().clone();
    let lst = reader.stats().clone();
    let mut top: Vec<(IpAddr, u64)> = addrs.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let format = scanner
        .time_parser()
        .detected()
        .map(|f| f.to_string())
        .unwrap_or_else(|| "none".into());
    let per_line = |secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    if args.json {
        let patterns: Vec<serde_json::Value> = filter
            .patterns()
            .iter()
            .zip(&st.per_pattern)
            .map(|(p, c)| serde_json::json!({"id": p.id, "kind": p.kind.to_string(), "matched": c}))
            .collect();
        let addresses: Vec<serde_json::Value> = top
            .iter()
            .map(|(a, c)| serde_json::json!({"addr": a.to_string(), "count": c}))
            .collect();
        let summary = serde_json::json!({
            "filter": filter.name(),
            "file": args.logfile.display().to_string(),
            "lines": n,
            "bytes": lst.bytes,
            "too_long": lst.too_long,
            "no_timestamp": src.no_timestamp,
            "timestamp_format": format,
            "candidates": st.candidates,
            "matched": st.failures,
            "ignored": st.ignored,
            "bad_host": st.bad_host,
            "no_time": st.no_time,
            "unattributed": st.unattributed,
            "patterns": patterns,
            "addresses": addresses,
            "addresses_untallied": untallied,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "lines_per_cpu_second": cpu.map(per_line),
        });
        let obj = summary
            .as_object()
            .map(|m| m.iter().collect::<Vec<_>>())
            .unwrap_or_default();
        out.write_all(b"]")?;
        for (k, v) in obj {
            write!(out, ",{}:", serde_json::Value::String(k.clone()))?;
            serde_json::to_writer(&mut out, v)?;
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
            "filter      {} ({})",
            filter.name(),
            filter.description()
        )?;
        writeln!(out, "log         {}", args.logfile.display())?;
        writeln!(
            out,
            "lines       {n} ({:.1} MB); too long, skipped: {}",
            lst.bytes as f64 / 1e6,
            lst.too_long
        )?;
        writeln!(
            out,
            "timestamps  {format}; lines without a timestamp: {}",
            src.no_timestamp
        )?;
        writeln!(
            out,
            "matched     {} failures ({:.2}% of lines); ignored {}; bad address {}; no time {}; no address for connection {}",
            st.failures, pct(st.failures), st.ignored, st.bad_host, st.no_time, st.unattributed
        )?;
        writeln!(
            out,
            "patterns    (matches, capture engine, prefilter literals)"
        )?;
        for (p, c) in filter.patterns().iter().zip(&st.per_pattern) {
            let lits = p
                .literals
                .as_ref()
                .map(|l| {
                    l.iter()
                        .map(|x| format!("{:?}", lossy(x)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| "none: every line is a candidate".into());
            let note = if p.kind == rampart_filter::PatternKind::Note {
                " (note)"
            } else {
                ""
            };
            writeln!(
                out,
                "  {:<28} {:>10}{note}  {}  {}",
                p.id,
                c,
                p.extractor().describe(),
                lits
            )?;
        }
        writeln!(out, "prefilter   {} candidate lines", st.candidates)?;
        writeln!(
            out,
            "addresses   {} distinct{}",
            top.len(),
            if untallied > 0 {
                format!(" (+{untallied} failures from untallied addresses)")
            } else {
                String::new()
            }
        )?;
        for (a, c) in top.iter().take(args.top) {
            writeln!(out, "  {a:<40} {c:>10}")?;
        }
        match cpu {
            Some(c) => writeln!(
                out,
                "speed       {c:.3} CPU s, {:.0} lines per CPU second ({wall:.3} s wall)",
                per_line(c)
            )?,
            None => writeln!(
                out,
                "speed       {wall:.3} s wall, {:.0} lines per second",
                per_line(wall)
            )?,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn list() -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    for b in BUILTINS {
        let f = Filter::from_toml(b.name, b.name, b.toml)?;
        writeln!(out, "{:<16} {}", b.name, f.description())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(name: &str) -> anyhow::Result<ExitCode> {
    let Some(b) = builtin(name) else {
        bail!("no built-in filter named {name:?} (see `rampart filter list`)");
    };
    io::stdout().lock().write_all(b.toml.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
