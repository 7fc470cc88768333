//! `rampart replay`: the configured jails over whole logs, in log time.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use rampart_config::{Config, JailFilter};
use rampart_core::{format_duration, Failure, Timestamp};
use rampart_daemon::escalate::{details, Escalation};
use rampart_detect::{JailDetector, Outcome};
use rampart_filter::time::{FormatChoice, TimeParser};
use rampart_filter::{EventKind, Filter, Scanner};
use rampart_source::{LineReader, DEFAULT_MAX_LINE};
use rampart_store::BanRecord;
use serde::Serialize;

use crate::cli::ReplayArgs;
use crate::cpu::Stopwatch;
use crate::filter_cmd::open_log;

/// One decision as `--json` prints it.
#[derive(Serialize)]
struct DecisionJson<'a> {
    addr: String,
    offender: String,
    jail: &'a str,
    failures: u32,
    /// Log time of the first and last counted failure (`null` for recidive and block bans,
    /// which count bans, not failures).
    first_failure: Option<String>,
    last_failure: Option<String>,
    ban_start: String,
    ban_end: String,
    ban_for: String,
    level: u32,
    /// `detected`, `recidive` or `block`.
    reason: &'a str,
    /// The words after the kind (`"3 bans within 1d in sshd, postfix"`), `null` for
    /// detected bans.
    reason_detail: Option<&'a str>,
    /// Only when the config has `[geo]` (then `null` when no source knows the address).
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<Option<String>>,
    /// The registry block of the address, as CIDRs (with `[geo]` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    block: Option<Option<String>>,
}

/// Prints one decision: a jail's ban (`failures` = its first and last failure times) or a
/// recidive or block ban.
fn print_ban(
    out: &mut impl Write,
    json: bool,
    rec: &BanRecord,
    failures: Option<(Timestamp, Timestamp)>,
    geo: bool,
) -> io::Result<()> {
    let ban_for = format_duration(rec.end.duration_since(rec.start));
    let d = rec.details.as_deref();
    let g = geo.then(|| {
        (
            d.and_then(|d| d.country.clone()),
            d.and_then(|d| d.block.clone()),
        )
    });
    let offender = match rec.net {
        ipnet::IpNet::V4(n) if n.prefix_len() == 32 => n.addr().to_string(),
        ipnet::IpNet::V6(n) if n.prefix_len() == 128 => n.addr().to_string(),
        n => n.to_string(),
    };
    if json {
        let j = DecisionJson {
            addr: rec.addr.to_string(),
            offender,
            jail: rec.jail.as_str(),
            failures: rec.failures,
            first_failure: failures.map(|f| f.0.to_string()),
            last_failure: failures.map(|f| f.1.to_string()),
            ban_start: rec.start.to_string(),
            ban_end: rec.end.to_string(),
            ban_for,
            level: rec.level,
            reason: rec.reason_kind(),
            reason_detail: rec.reason_detail(),
            country: g.as_ref().map(|g| g.0.clone()),
            block: g.as_ref().map(|g| g.1.clone()),
        };
        serde_json::to_writer(&mut *out, &j)?;
        out.write_all(b"\n")
    } else {
        write!(
            out,
            "{} ban {} {offender} failures={}",
            rec.start, rec.jail, rec.failures
        )?;
        if let Some((first, last)) = failures {
            write!(out, " first={first} last={last}")?;
        }
        write!(
            out,
            " until={} for={ban_for} level={} reason={}",
            rec.end,
            rec.level,
            rec.reason_kind()
        )?;
        if let Some((country, block)) = g {
            write!(
                out,
                " country={} block={}",
                country.as_deref().unwrap_or("-"),
                block.as_deref().unwrap_or("-").replace(' ', ",")
            )?;
        }
        if let Some(why) = rec.reason_detail() {
            write!(out, " why=\"{why}\"")?;
        }
        writeln!(out)
    }
}

pub fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let now = args.time.now()?;
    let geo = match &config.geo {
        Some(g) => Some(
            rampart_daemon::geo::load_db(g)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?
                .0,
        ),
        None => None,
    };
    let mut jails: Vec<_> = config.jails.iter().collect();
    if !args.jails.is_empty() {
        for name in &args.jails {
            if !jails.iter().any(|j| j.policy.jail.as_str() == name) {
                bail!("{}: no jail named {name:?}", args.config.display());
            }
        }
        jails.retain(|j| args.jails.iter().any(|n| n == j.policy.jail.as_str()));
    }
    // Open every file first, so an unreadable one fails before anything is printed.
    let mut readers = Vec::new();
    for path in &args.logfiles {
        readers.push((path, open_log(path)?));
    }
    // Native filters run together in one scanner per file; fail2ban filters each keep
    // their own per-file state. `native[i]` is the jail index of the scanner's filter i.
    let mut native: Vec<usize> = Vec::new();
    let mut filters: Vec<Arc<Filter>> = Vec::new();
    let mut f2b: Vec<(usize, Arc<rampart_f2b::F2bFilter>)> = Vec::new();
    for (i, j) in jails.iter().enumerate() {
        match &j.filter {
            JailFilter::Native(f) => {
                native.push(i);
                filters.push(Arc::clone(f));
            }
            JailFilter::Fail2ban(f) => f2b.push((i, Arc::clone(f))),
        }
    }
    let mut detectors = jails
        .iter()
        .map(|j| JailDetector::new(j.policy.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut esc =
        Escalation::new(&config).map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    // One timestamp format per source: the filters' common choice, else detection.
    let format = match filters.first().map(|f| f.timestamp()) {
        Some(f) if filters.iter().all(|g| g.timestamp() == f) => f,
        _ => FormatChoice::Auto,
    };
    let clock = Stopwatch::start();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let (mut lines, mut too_long, mut no_time_lines) = (0u64, 0u64, 0u64);
    let mut filter_stats = vec![rampart_filter::FilterStats::default(); jails.len()];
    let mut bans_out = 0u64;
    let now_secs = now.as_secs();
    for (path, read) in readers {
        let mut reader = LineReader::new(read, DEFAULT_MAX_LINE);
        let mut scanner = Scanner::new(
            filters.clone(),
            TimeParser::new(format, config.zone.clone(), now),
            false,
        );
        let mut states: Vec<rampart_f2b::State> = f2b.iter().map(|(_, f)| f.new_state()).collect();
        let mut pending_err: Option<io::Error> = None;
        let mut record =
            |ji: usize, addr, time, out: &mut BufWriter<_>, pending: &mut Option<io::Error>| {
                let Outcome::Banned(ban) = detectors[ji].record(Failure { addr, time }) else {
                    return;
                };
                bans_out += 1;
                let db = geo.as_ref();
                let mut rec = BanRecord::from(&ban);
                rec.details = Some(details(&db, ban.addr, "detected".into()));
                let mut res = print_ban(
                    out,
                    args.json,
                    &rec,
                    Some((ban.first_failure, ban.last_failure)),
                    db.is_some(),
                );
                // Recidive and blocks see every jail's ban (the host's own addresses are not
                // known offline: only the allowlist protects a block).
                let (more, _) = esc.observe(&ban.jail, ban.addr, ban.start, false, &db, &|_| false);
                for r in more {
                    bans_out += 1;
                    res = res.and_then(|()| print_ban(out, args.json, &r, None, db.is_some()));
                }
                if let Err(err) = res {
                    pending.get_or_insert(err);
                }
            };
        while let Some(line) = reader
            .next_line()
            .with_context(|| format!("reading {}", path.display()))?
        {
            if !filters.is_empty() {
                scanner.scan(line, |e| {
                    if e.kind != EventKind::Failure {
                        return;
                    }
                    let (Some(addr), Some(time)) = (e.addr, e.time) else {
                        return;
                    };
                    record(native[e.filter], addr, time, &mut out, &mut pending_err);
                });
            }
            for ((ji, f), st) in f2b.iter().zip(states.iter_mut()) {
                for x in f.process_line(st, line, now_secs) {
                    let fs = &mut filter_stats[*ji];
                    fs.failures += 1;
                    match (x.addr(), x.time) {
                        (Some(addr), Some(time)) => {
                            record(*ji, addr, time, &mut out, &mut pending_err)
                        }
                        (None, _) => fs.bad_host += 1,
                        (_, None) => fs.no_time += 1,
                    }
                }
            }
            if let Some(e) = pending_err.take() {
                return Err(e.into());
            }
        }
        lines += reader.stats().lines;
        too_long += reader.stats().too_long;
        no_time_lines += scanner.stats().no_timestamp;
        for (i, &ji) in native.iter().enumerate() {
            let s = &mut filter_stats[ji];
            let f = scanner.filter_stats(i);
            s.failures += f.failures;
            s.ignored += f.ignored;
            s.no_time += f.no_time;
            s.bad_host += f.bad_host;
            s.unattributed += f.unattributed;
        }
        for ((ji, _), st) in f2b.iter().zip(&states) {
            filter_stats[*ji].ignored += st.ignored;
        }
    }
    out.flush()?;
    let time = clock.elapsed();
    let cpu = match time.cpu {
        Some(c) => format!("{c:.3} CPU s"),
        None => "CPU time unavailable".into(),
    };
    // The summary: stdout in text mode, stderr with --json (stdout stays one decision per line).
    let mut summary: Box<dyn Write> = if args.json {
        Box::new(io::stderr().lock())
    } else {
        Box::new(out)
    };
    writeln!(
        summary,
        "summary: {lines} lines in {} file(s); too long {too_long}; candidate lines without a timestamp {no_time_lines}; {bans_out} bans; {cpu}, {:.3} s wall",
        args.logfiles.len(),
        time.wall
    )?;
    for ((j, d), fs) in jails.iter().zip(&detectors).zip(&filter_stats) {
        let s = d.stats();
        writeln!(
            summary,
            "jail {}: failures {} (ignored {}, no time {}, bad address {}); allowlisted {}; while banned {}; too late {}; bans {}; tracked {}; evictions {}",
            j.policy.jail, fs.failures, fs.ignored, fs.no_time, fs.bad_host, s.allowlisted, s.while_banned, s.too_late, s.bans, d.tracked(), s.evictions
        )?;
    }
    if esc.is_on() {
        writeln!(
            summary,
            "escalation: recidive bans {}; block bans {}; blocks protected by the allowlist {}",
            esc.recidive_bans, esc.block_bans_decided, esc.protected
        )?;
    }
    summary.flush()?;
    Ok(ExitCode::SUCCESS)
}
