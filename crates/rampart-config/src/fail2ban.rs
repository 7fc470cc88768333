//! fail2ban's jails as a native `rampart.toml`: what `rampart import fail2ban` prints and
//! what `rampart run --fail2ban DIR` runs (the same text, parsed in memory).
//!
//! Mapping: `maxretry` -> `max_failures`, `findtime` -> `window`, `bantime` -> `ban_for`
//! (`-1` -> 365 days, warned), `bantime.increment` -> `[jail.escalation]`, `ignoreip` ->
//! `allow`, `port`/`protocol` -> `ports`/`protocol`, `logpath` -> `logs`, `backend =
//! systemd` -> `source = "journal"` with the filter's `journalmatch` as `journal`, the
//! filter -> `filter = "fail2ban:NAME"` with its parameters in `[jail.filter_params]`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_core::format_duration;
use rampart_f2b::jail::{read_jails, BanBackend, BanTime, JailBackend, JailDef, Ports, Warning};

use crate::{Config, ConfigError};

/// What a permanent fail2ban ban (`bantime = -1`) becomes: rampart's bans always carry a
/// kernel timeout.
pub const PERMANENT_BAN: Duration = Duration::from_secs(365 * 86_400);
/// The escalation cap used when `bantime.maxtime` is unset (fail2ban has no cap).
pub const DEFAULT_MAX: Duration = Duration::from_secs(52 * 604_800);

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Import {
    /// The fail2ban directory read.
    pub dir: PathBuf,
    /// The native configuration (TOML).
    pub toml: String,
    /// The jails converted, in order.
    pub jails: Vec<String>,
    /// Jails left out on purpose (`recidive`, jails without a filter).
    pub skipped: Vec<Warning>,
    /// Settings not carried over, or approximated.
    pub warnings: Vec<Warning>,
}

fn cerr(dir: &Path, message: String) -> ConfigError {
    ConfigError {
        path: dir.display().to_string(),
        line: None,
        message,
    }
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn dur(secs: u64) -> String {
    format_duration(Duration::from_secs(secs))
}

/// Reads the jails under `dir` (only enabled ones unless `all`) and writes them as a native
/// configuration. Each jail's fail2ban filter is loaded (so an import that succeeds is one
/// that runs) and, for the systemd backend, gives the journal match terms.
pub fn import(dir: &Path, all: bool) -> Result<Import, ConfigError> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let set = read_jails(&dir, all).map_err(|e| cerr(&dir, e.to_string()))?;
    let mut warnings = set.warnings.clone();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# rampart configuration imported from fail2ban's {} by `rampart import fail2ban`.",
        dir.display()
    );
    let _ = writeln!(
        out,
        "# Settings that were not carried over are listed on stderr (`--json` for a report)."
    );
    for s in &set.skipped {
        let _ = writeln!(
            out,
            "# Not imported: [{}] ({}): {}",
            s.jail, s.option, s.message
        );
    }
    let ipset = set
        .jails
        .iter()
        .filter(|j| j.ban_backend == Some(BanBackend::Ipset))
        .count();
    let nft = set
        .jails
        .iter()
        .filter(|j| j.ban_backend == Some(BanBackend::Nftables))
        .count();
    let backend = if ipset > 0 && nft == 0 {
        "ipset"
    } else {
        "nftables"
    };
    if ipset > 0 && nft > 0 {
        warnings.push(Warning {
            jail: "DEFAULT".into(),
            option: "banaction".into(),
            message: format!("{ipset} jail(s) use ipset actions and {nft} nftables/iptables ones; rampart has one backend per daemon: nftables"),
        });
    }
    let _ = writeln!(out, "\n[daemon]");
    let _ = writeln!(out, "backend = {}", q(backend));
    let _ = writeln!(out, "fail2ban_dir = {}", q(&dir.to_string_lossy()));
    let mut names = Vec::new();
    for j in &set.jails {
        write_jail(&mut out, &dir, j, &mut warnings)?;
        names.push(j.name.clone());
    }
    if let Some(r) = &set.recidive {
        write_recidive(&mut out, r, &mut warnings);
    }
    Ok(Import {
        dir,
        toml: out,
        jails: names,
        skipped: set.skipped,
        warnings,
    })
}

/// A fail2ban `bantime` in seconds; `-1` (permanent) becomes [`PERMANENT_BAN`], with a
/// warning.
fn ban_secs(bantime: BanTime, warn: &mut impl FnMut(&str, String)) -> u64 {
    match bantime {
        BanTime::Secs(s) => s,
        BanTime::Permanent => {
            warn(
                "bantime",
                format!(
                    "-1 (permanent) becomes {}: rampart's bans always carry a kernel timeout",
                    format_duration(PERMANENT_BAN)
                ),
            );
            PERMANENT_BAN.as_secs()
        }
    }
}

/// fail2ban's `recidive` jail as rampart's `[recidive]` section: `maxretry` bans (of any
/// jail) within `findtime` earn a ban of `bantime` on all ports.
fn write_recidive(
    out: &mut String,
    r: &rampart_f2b::jail::RecidiveDef,
    warnings: &mut Vec<Warning>,
) {
    let mut warn = |option: &str, message: String| {
        warnings.push(Warning {
            jail: "recidive".into(),
            option: option.to_owned(),
            message,
        })
    };
    let max_bans = if r.maxretry < 2 {
        warn(
            "maxretry",
            format!(
                "{} becomes 2: a recidive ban needs at least two bans",
                r.maxretry
            ),
        );
        2
    } else {
        r.maxretry
    };
    let ban_secs = ban_secs(r.bantime, &mut warn);
    let _ = writeln!(out, "\n[recidive]");
    let _ = writeln!(out, "max_bans = {max_bans}");
    let _ = writeln!(out, "window = {}", q(&dur(r.findtime)));
    let _ = writeln!(out, "ban_for = {}", q(&dur(ban_secs)));
}

fn write_jail(
    out: &mut String,
    dir: &Path,
    j: &JailDef,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    let jerr = |m: String| cerr(dir, format!("jail [{}]: {m}", j.name));
    let mut warn = |option: &str, message: String| {
        warnings.push(Warning {
            jail: j.name.clone(),
            option: option.to_owned(),
            message,
        })
    };
    let _ = writeln!(out, "\n[[jail]]");
    let _ = writeln!(out, "name = {}", q(&j.name));
    let _ = writeln!(
        out,
        "filter = {}",
        q(&format!("fail2ban:{}", j.filter.name))
    );
    // Loaded here so that an import that succeeds is one that runs.
    let filter =
        rampart_f2b::F2bFilter::load_spec(dir, &j.filter, rampart_f2b::LoadOptions::default())
            .map_err(|e| jerr(format!("filter: {e}")))?;
    match j.backend {
        JailBackend::File => {
            let _ = writeln!(out, "source = \"file\"");
            let logs: Vec<String> = j.logpaths.iter().map(|l| q(l)).collect();
            let _ = writeln!(out, "logs = [{}]", logs.join(", "));
        }
        JailBackend::Journal => {
            let mut terms: Vec<String> = Vec::new();
            for line in filter.journalmatch() {
                if !terms.is_empty() {
                    terms.push("+".into());
                }
                terms.extend(line.iter().cloned());
            }
            if terms.is_empty() {
                return Err(jerr(format!(
                    "backend systemd: filter {:?} has no journalmatch (set journalmatch in the jail)",
                    j.filter.name
                )));
            }
            let _ = writeln!(out, "source = \"journal\"");
            let terms: Vec<String> = terms.iter().map(|t| q(t)).collect();
            let _ = writeln!(out, "journal = [{}]", terms.join(", "));
        }
    }
    let _ = writeln!(out, "max_failures = {}", j.maxretry);
    let _ = writeln!(out, "window = {}", q(&dur(j.findtime)));
    let ban_secs = ban_secs(j.bantime, &mut warn);
    let _ = writeln!(out, "ban_for = {}", q(&dur(ban_secs)));
    if !j.ignoreip.is_empty() {
        let allow: Vec<String> = j.ignoreip.iter().map(|n| q(&n.to_string())).collect();
        let _ = writeln!(out, "allow = [{}]", allow.join(", "));
    }
    if let Ports::List(ranges) = &j.ports {
        let ports: Vec<String> = ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    q(&a.to_string())
                } else {
                    q(&format!("{a}-{b}"))
                }
            })
            .collect();
        let _ = writeln!(out, "ports = [{}]", ports.join(", "));
        let proto = match j.protocol.as_str() {
            "udp" => "udp",
            "all" => "both",
            _ => "tcp",
        };
        let _ = writeln!(out, "protocol = {}", q(proto));
    }
    if !j.filter.params.is_empty() {
        let _ = writeln!(out, "[jail.filter_params]");
        for (k, v) in j.filter.params.iter() {
            let key = if k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                k.to_owned()
            } else {
                q(k)
            };
            let _ = writeln!(out, "{key} = {}", q(v));
        }
    }
    if let (Some(inc), BanTime::Secs(bantime)) = (&j.increment, j.bantime) {
        let (factor, top) = if inc.multipliers.is_empty() {
            // fail2ban: bantime * factor * 2^n for the (n+1)-th ban; rampart: bantime * F^n.
            let f = 2.0 * inc.factor;
            if inc.factor != 1.0 {
                warn("bantime.factor", format!("{}: fail2ban's formula gives bantime*factor*2^n, rampart's escalation bantime*F^n; F = 2*factor = {f} matches the second ban and grows faster after", inc.factor));
            }
            (f, None)
        } else {
            let m = &inc.multipliers;
            let first = m.iter().copied().find(|&x| x > 0.0).unwrap_or(1.0);
            let last = m.last().copied().unwrap_or(1.0).max(first);
            let f = if m.len() > 1 {
                (last / first).powf(1.0 / (m.len() - 1) as f64)
            } else {
                1.0
            };
            let f = (f * 100.0).round() / 100.0;
            warn("bantime.multipliers", format!("{:?} approximated by a constant factor {f} per ban (the geometric mean step), capped at bantime*factor*{last}", m));
            (f, Some((bantime as f64 * inc.factor * last) as u64))
        };
        let mut max = match (inc.maxtime, top) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => {
                warn(
                    "bantime.maxtime",
                    format!(
                        "unset: fail2ban does not cap the ban time; rampart's escalation is capped at {}",
                        format_duration(DEFAULT_MAX)
                    ),
                );
                DEFAULT_MAX.as_secs()
            }
        };
        max = max.max(bantime);
        let _ = writeln!(out, "[jail.escalation]");
        let _ = writeln!(out, "factor = {:?}", factor.max(1.0));
        let _ = writeln!(out, "max = {}", q(&dur(max)));
    }
    Ok(())
}

impl Config {
    /// Runs fail2ban's enabled jails from `dir`: the [`import`]ed configuration, with the
    /// `[daemon]`, `[defaults]` and `[geo]` sections of `base` (a rampart config without
    /// jails) when given, which win over the imported `[daemon]` settings.
    pub fn from_fail2ban(dir: &Path, base: Option<&Path>) -> Result<(Self, Import), ConfigError> {
        let imp = import(dir, false)?;
        if imp.jails.is_empty() {
            return Err(cerr(dir, "no enabled fail2ban jail to run".into()));
        }
        let mut table: toml::Table = toml::from_str(&imp.toml)
            .map_err(|e| cerr(dir, format!("imported configuration: {e}")))?;
        let name = match base {
            None => format!("<fail2ban {}>", imp.dir.display()),
            Some(b) => {
                let text = std::fs::read_to_string(b).map_err(|e| ConfigError {
                    path: b.display().to_string(),
                    line: None,
                    message: format!("cannot read: {e}"),
                })?;
                let mut bt: toml::Table = toml::from_str(&text).map_err(|e| ConfigError {
                    path: b.display().to_string(),
                    line: None,
                    message: e.message().to_owned(),
                })?;
                if bt.contains_key("jail") {
                    return Err(ConfigError {
                        path: b.display().to_string(),
                        line: None,
                        message: "with --fail2ban the jails come from fail2ban: this file may only hold [daemon], [defaults] and [geo]".into(),
                    });
                }
                if let Some(toml::Value::Table(d)) = bt.remove("daemon") {
                    if let Some(toml::Value::Table(gen)) = table.get_mut("daemon") {
                        for (k, v) in d {
                            gen.insert(k, v);
                        }
                    }
                }
                for (k, v) in bt {
                    table.insert(k, v);
                }
                format!("{} + <fail2ban {}>", b.display(), imp.dir.display())
            }
        };
        let text = toml::to_string(&table)
            .map_err(|e| cerr(dir, format!("imported configuration: {e}")))?;
        let cfg = Config::parse(Path::new(&name), &text)?;
        Ok((cfg, imp))
    }
}
