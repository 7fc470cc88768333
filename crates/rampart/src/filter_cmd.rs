//! `rampart filter test|list|show`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use rampart_filter::builtin::{builtin, BUILTINS};
use rampart_filter::time::{TimeParser, Zone};
use rampart_filter::{EventKind, Filter, FilterStats, Scanner};
use rampart_source::{LineReader, DEFAULT_MAX_LINE};

use crate::cli::{FilterTestArgs, Show};
use crate::cpu::{Elapsed, Stopwatch};

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

/// One filter's verdict on a line, owned (the scanner's borrows the line).
struct Ev {
    filter: usize,
    pattern: usize,
    kind: EventKind,
    addr: Option<IpAddr>,
    time: Option<rampart_core::Timestamp>,
    user: Option<String>,
}

pub fn test(args: &FilterTestArgs) -> anyhow::Result<ExitCode> {
    if crate::f2b_cmd::applies(&args.filter) {
        return crate::f2b_cmd::test(args);
    }
    if args.json && !args.show.is_empty() {
        bail!("--show prints lines in the text report; with --json every match is already in `matches`");
    }
    let filters: Vec<Arc<Filter>> = rampart_filter::load_many(&args.filter)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let multi = filters.len() > 1;
    let zone = Zone::parse(&args.timezone).context("--timezone")?;
    let now = args.time.now()?;
    let mut reader = LineReader::new(open_log(&args.logfile)?, DEFAULT_MAX_LINE);
    // One timestamp format per source: the filters' common choice, else detection.
    let format = match filters.first().map(|f| f.timestamp()) {
        Some(f) if filters.iter().all(|g| g.timestamp() == f) => f,
        _ => rampart_filter::time::FormatChoice::Auto,
    };
    let mut scanner = Scanner::new(filters.clone(), TimeParser::new(format, zone, now), true);
    let clock = Stopwatch::start();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut addrs: HashMap<IpAddr, u64> = HashMap::new();
    let mut untallied = 0u64;
    let mut first_match = true;
    if args.json {
        out.write_all(b"{\"matches\":[")?;
    }
    let show = |k: Show| args.show.contains(&k);
    let label = |e: &Ev| {
        let id = &filters[e.filter].patterns()[e.pattern].id;
        if multi {
            format!("{}:{id}", filters[e.filter].name())
        } else {
            id.clone()
        }
    };
    let mut n: u64 = 0;
    let mut events: Vec<Ev> = Vec::new();
    while let Some(line) = reader
        .next_line()
        .with_context(|| format!("reading {}", args.logfile.display()))?
    {
        n += 1;
        // Owned copies, in a Vec reused from line to line; the user name is only printed
        // with --json.
        events.clear();
        scanner.scan(line, |e| {
            events.push(Ev {
                filter: e.filter,
                pattern: e.pattern,
                kind: e.kind,
                addr: e.addr,
                time: e.time,
                user: if args.json {
                    e.user.map(|u| lossy(u).into_owned())
                } else {
                    None
                },
            })
        });
        // Missed: no failure pattern matched (a note only records an address).
        if show(Show::Missed) && events.iter().all(|e| e.kind == EventKind::Note) {
            writeln!(out, "missed {n}: {}", lossy(line))?;
        }
        for e in &events {
            match e.kind {
                EventKind::Failure => {
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
                        if multi {
                            write!(out, ",\"filter\":")?;
                            serde_json::to_writer(&mut out, &filters[e.filter].spec())?;
                        }
                        write!(
                            out,
                            ",\"pattern\":\"{}\"",
                            filters[e.filter].patterns()[e.pattern].id
                        )?;
                        if let Some(u) = &e.user {
                            out.write_all(b",\"user\":")?;
                            serde_json::to_writer(&mut out, u)?;
                        }
                        out.write_all(b"}")?;
                    } else if show(Show::Matched) {
                        writeln!(out, "matched {n}: [{}] {addr}: {}", label(e), lossy(line))?;
                    }
                }
                EventKind::Ignored if show(Show::Ignored) => {
                    writeln!(out, "ignored {n}: [{}] {}", label(e), lossy(line))?;
                }
                _ => {}
            }
        }
    }
    let time = clock.elapsed();
    let (cpu, wall) = (time.cpu, time.wall);
    let stats: Vec<FilterStats> = (0..filters.len())
        .map(|i| scanner.filter_stats(i).clone())
        .collect();
    let src = scanner.stats().clone();
    let lst = reader.stats().clone();
    let mut top: Vec<(IpAddr, u64)> = addrs.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let format = scanner
        .time_parser()
        .detected()
        .map(|f| f.to_string())
        .unwrap_or_else(|| "none".into());
    let per_line = |secs: f64| Elapsed::rate(n, secs);
    let sum = |f: fn(&FilterStats) -> u64| stats.iter().map(f).sum::<u64>();
    let spec = filters
        .iter()
        .map(|f| f.spec())
        .collect::<Vec<_>>()
        .join(",");
    if args.json {
        let patterns: Vec<serde_json::Value> = filters
            .iter()
            .zip(&stats)
            .flat_map(|(f, st)| {
                f.patterns().iter().zip(&st.per_pattern).map(move |(p, c)| {
                    let mut v =
                        serde_json::json!({"id": p.id, "kind": p.kind.to_string(), "matched": c});
                    if multi {
                        v["filter"] = serde_json::Value::String(f.spec());
                    }
                    v
                })
            })
            .collect();
        let addresses: Vec<serde_json::Value> = top
            .iter()
            .map(|(a, c)| serde_json::json!({"addr": a.to_string(), "count": c}))
            .collect();
        let mut summary = serde_json::json!({
            "filter": spec,
            "file": args.logfile.display().to_string(),
            "lines": n,
            "bytes": lst.bytes,
            "too_long": lst.too_long,
            "no_timestamp": src.no_timestamp,
            "timestamp_format": format,
            "candidates": sum(|s| s.candidates),
            "matched": sum(|s| s.failures),
            "ignored": sum(|s| s.ignored),
            "bad_host": sum(|s| s.bad_host),
            "no_time": sum(|s| s.no_time),
            "unattributed": sum(|s| s.unattributed),
            "folded": sum(|s| s.folded),
            "held": sum(|s| s.held),
            "patterns": patterns,
            "addresses": addresses,
            "addresses_untallied": untallied,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "lines_per_cpu_second": cpu.map(per_line),
        });
        if multi {
            summary["filters"] = filters
                .iter()
                .zip(&stats)
                .map(|(f, st)| {
                    serde_json::json!({
                        "filter": f.spec(),
                        "candidates": st.candidates,
                        "matched": st.failures,
                        "ignored": st.ignored,
                        "folded": st.folded,
                        "held": st.held,
                    })
                })
                .collect();
        }
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
        let header = |out: &mut BufWriter<_>, f: &Filter| -> io::Result<()> {
            writeln!(out, "filter      {} ({})", f.spec(), f.description())
        };
        if !multi {
            header(&mut out, &filters[0])?;
        }
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
        for (f, st) in filters.iter().zip(&stats) {
            if multi {
                header(&mut out, f)?;
            }
            writeln!(
                out,
                "matched     {} failures ({:.2}% of lines); ignored {}; bad address {}; no time {}; folded into a counted attempt {}; held {}, of them never counted {}",
                st.failures, pct(st.failures), st.ignored, st.bad_host, st.no_time, st.folded, st.held, st.unattributed + st.forgiven
            )?;
            writeln!(
                out,
                "patterns    (matches, capture engine, prefilter literals)"
            )?;
            for (p, c) in f.patterns().iter().zip(&st.per_pattern) {
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
        }
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
        writeln!(out, "{}", time.speed_line(n))?;
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
