//! `rampart run` and the control commands that talk to a running daemon.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rampart_daemon::control::{request, Request, Response};
use rampart_daemon::RunOptions;
use serde_json::Value;

use crate::cli::RunArgs;

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        let (config, path) =
            rampart_daemon::load_config_from(args.config.as_deref(), args.fail2ban.as_deref())?;
        let from = match (&args.fail2ban, path) {
            (Some(dir), Some(p)) => format!("fail2ban {} with {}", dir.display(), p.display()),
            (Some(dir), None) => format!("fail2ban {}", dir.display()),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => "the built-in default".into(),
        };
        println!("{from}: valid, {} jail(s)", config.jails.len());
        for j in &config.jails {
            let ports = if j.scope.ports.is_empty() {
                "all ports".to_string()
            } else {
                j.scope
                    .ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "  {}: filter {}, {:?} source, max_failures {} in {}, ban {}, drops {}",
                j.policy.jail,
                j.filter.name(),
                j.source,
                j.policy.max_failures,
                rampart_core::format_duration(j.policy.window),
                rampart_core::format_duration(j.policy.ban_for),
                ports
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Before the daemon allocates anything big: keep glibc from hoarding freed memory
    // (rampart-malloc explains the numbers).
    rampart_malloc::tune_for_daemon();
    rampart_daemon::run(RunOptions {
        config: args.config.clone(),
        dry_run: args.dry_run,
        journal_file: args.journal_file.clone(),
        fail2ban: args.fail2ban.clone(),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn call(socket: &Path, req: &Request) -> anyhow::Result<Value> {
    let resp: Response = request(socket, req).with_context(|| {
        "is the daemon running? (`rampart run`, or `systemctl status rampart`)".to_string()
    })?;
    if !resp.ok {
        bail!(
            "{}",
            resp.error.unwrap_or_else(|| "the daemon refused".into())
        );
    }
    Ok(resp.data)
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

pub fn status(socket: &Path, jail: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let data = call(socket, &Request::Status { jail })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rampart {} (pid {}), up {}s, backend {}{}, {} active ban(s), RSS {} KiB",
        data["version"].as_str().unwrap_or("?"),
        num(&data["pid"]),
        num(&data["uptime_s"]),
        data["backend"].as_str().unwrap_or("?"),
        if data["dry_run"].as_bool() == Some(true) {
            " (dry run)"
        } else {
            ""
        },
        num(&data["active_bans"]),
        num(&data["rss_kib"]),
    );
    for j in data["jails"].as_array().into_iter().flatten() {
        println!(
            "jail {}: {}; lines {}, failures {}, bans {}, active {}, tracked {}, allowlisted {}, source errors {}",
            j["name"].as_str().unwrap_or("?"),
            j["source"].as_str().unwrap_or("?"),
            num(&j["lines"]),
            num(&j["failures"]),
            num(&j["bans"]),
            num(&j["active_bans"]),
            num(&j["tracked_offenders"]),
            num(&j["allowlisted"]),
            num(&j["source_errors"]),
        );
    }
    print_geo_status(&data["geo"]);
    Ok(ExitCode::SUCCESS)
}

/// The country policies of `rampart status`: one line per policy with its set sizes, then
/// its first contacts (notify mode).
fn print_geo_status(g: &Value) {
    if g.is_null() {
        return;
    }
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    println!(
        "geo: backend {}, {} source file(s), loaded {} ({} ms data, {} ms kernel)",
        g["backend"].as_str().unwrap_or("?"),
        g["sources"].as_array().map_or(0, Vec::len),
        g["loaded_at"].as_str().unwrap_or("?"),
        num(&g["load_ms"]),
        num(&g["apply_ms"]),
    );
    for p in g["policies"].as_array().into_iter().flatten() {
        let ports = list(&p["ports"]);
        println!(
            "geo policy {}: {} {} [{}]{} on {}; set {} IPv4 + {} IPv6 prefixes ({} IPv4 addresses)",
            p["name"].as_str().unwrap_or("?"),
            p["action"].as_str().unwrap_or("?"),
            p["mode"].as_str().unwrap_or("?"),
            list(&p["countries"]),
            if list(&p["blocks"]).is_empty() {
                String::new()
            } else {
                format!(" + blocks {}", list(&p["blocks"]))
            },
            if ports.is_empty() {
                "all ports".to_owned()
            } else {
                format!("{} {ports}", list(&p["protocols"]))
            },
            num(&p["set_v4"]),
            num(&p["set_v6"]),
            num(&p["addresses_v4"]),
        );
        for c in p["first_contacts"].as_array().into_iter().flatten() {
            println!(
                "  first contact from {}: {} (block {}) at {}, seen {} time(s)",
                c["country"].as_str().unwrap_or("??"),
                c["addr"].as_str().unwrap_or("?"),
                c["block"].as_str().unwrap_or("-"),
                c["at"].as_str().unwrap_or("?"),
                num(&c["seen"]),
            );
        }
    }
}

pub fn bans(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let data = call(socket, &Request::Bans)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = data.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no active bans");
        return Ok(ExitCode::SUCCESS);
    }
    // Why each ban was decided, and the country and registry block stored with it.
    println!(
        "{:<16} {:<40} {:>10} {:>5} {:<9} {:<7} {:<20} END",
        "JAIL", "ADDRESS", "REMAINING", "LEVEL", "REASON", "COUNTRY", "BLOCK"
    );
    for b in list {
        println!(
            "{:<16} {:<40} {:>9}s {:>5} {:<9} {:<7} {:<20} {}",
            b["jail"].as_str().unwrap_or("?"),
            b["net"].as_str().unwrap_or("?"),
            b["remaining_s"].as_i64().unwrap_or(0),
            num(&b["level"]),
            b["reason"]
                .as_str()
                .or_else(|| b["origin"].as_str())
                .unwrap_or("?"),
            b["country"].as_str().unwrap_or("-"),
            b["block"].as_str().unwrap_or("-").replace(' ', ","),
            b["end"].as_str().unwrap_or("?"),
        );
        if let Some(why) = b["reason_detail"].as_str() {
            println!("    why: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ban(
    socket: &Path,
    jail: String,
    addr: String,
    duration: Option<String>,
) -> anyhow::Result<ExitCode> {
    let data = call(
        socket,
        &Request::Ban {
            jail,
            addr,
            duration,
        },
    )?;
    println!(
        "banned {} in {} for {} (until {})",
        data["net"].as_str().unwrap_or("?"),
        data["jail"].as_str().unwrap_or("?"),
        data["duration"].as_str().unwrap_or("?"),
        data["end"].as_str().unwrap_or("?"),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn unban(socket: &Path, addr: String) -> anyhow::Result<ExitCode> {
    let data = call(socket, &Request::Unban { addr })?;
    for u in data["unbanned"].as_array().into_iter().flatten() {
        println!(
            "unbanned {} in {}",
            u["net"].as_str().unwrap_or("?"),
            u["jail"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn reload(socket: &Path) -> anyhow::Result<ExitCode> {
    let data = call(socket, &Request::Reload)?;
    println!("{}", data["message"].as_str().unwrap_or("reloaded"));
    Ok(ExitCode::SUCCESS)
}
