//! fail2ban's jails: `jail.conf`, `jail.d/*.conf`, `jail.local`, `jail.d/*.local` (that
//! order, each with its `[INCLUDES]`, such as `paths-debian.conf`), `[DEFAULT]`
//! inheritance and `%(name)s` interpolation, read into [`JailDef`]s: the values rampart
//! can carry over, typed, plus a [`Warning`] for every setting it cannot.
//!
//! Only what a jail needs is interpolated: an option of a disabled jail (or one rampart
//! does not use) that fails to interpolate never stops the import.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::ini::{Config, OMap};
use crate::loader::{parse_spec, FilterSpec};
use crate::F2bError;

/// Where fail2ban's port names are resolved.
pub const SERVICES_PATH: &str = "/etc/services";

/// fail2ban's stock `bantime.formula` (the only formula rampart accepts: any other is a
/// Python expression).
pub const DEFAULT_FORMULA: &str = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor";

/// A setting rampart does not carry over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The jail (section) it belongs to.
    pub jail: String,
    /// The option (`ignorecommand`, `action`, `bantime.rndtime` ...).
    pub option: String,
    /// Why it is not carried over, or how it is approximated.
    pub message: String,
}

/// How long a ban lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanTime {
    /// Seconds.
    Secs(u64),
    /// `bantime = -1` (or any negative value): forever.
    Permanent,
}

/// The `bantime.increment` family.
#[derive(Debug, Clone, PartialEq)]
pub struct Increment {
    /// `bantime.factor` (default 1).
    pub factor: f64,
    /// `bantime.multipliers` (empty: the stock formula).
    pub multipliers: Vec<f64>,
    /// `bantime.maxtime` in seconds (`None`: no cap).
    pub maxtime: Option<u64>,
    /// `bantime.rndtime` in seconds.
    pub rndtime: Option<u64>,
    /// `bantime.overalljails`.
    pub overalljails: bool,
}

/// Where a jail's lines come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailBackend {
    /// `auto`, `polling`, `pyinotify`, `gamin`: the files in `logpath`.
    File,
    /// `systemd`: the journal, filtered by the filter's `journalmatch`.
    Journal,
}

/// The ports a ban drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// Every port (`0:65535`, an `*-allports` action).
    All,
    /// Inclusive ranges, sorted, merged duplicates removed.
    List(Vec<(u16, u16)>),
}

/// Which of rampart's firewall backends a jail's ban action corresponds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanBackend {
    /// `nftables*`, `iptables*` (except the ipset ones), `firewallcmd-*`.
    Nftables,
    /// `iptables-ipset*`, `*-ipset*`.
    Ipset,
}

/// One jail, as rampart can run it.
#[derive(Debug, Clone)]
pub struct JailDef {
    /// The section name.
    pub name: String,
    /// `enabled`.
    pub enabled: bool,
    /// The filter with its parameters (the jail's `[k=v]`, plus `logtype=journal` for the
    /// systemd backend and the jail-level filter options `maxlines`, `datepattern`,
    /// `journalmatch`, `usedns`).
    pub filter: FilterSpec,
    /// `logpath` globs (absolute), ` tail`/` head` removed.
    pub logpaths: Vec<String>,
    /// `backend`.
    pub backend: JailBackend,
    /// `maxretry`.
    pub maxretry: u32,
    /// `findtime` in seconds.
    pub findtime: u64,
    /// `bantime`.
    pub bantime: BanTime,
    /// `bantime.increment` and its family, when increment is on.
    pub increment: Option<Increment>,
    /// `ignoreip` addresses and networks (host names are warned about and left out).
    pub ignoreip: Vec<IpNet>,
    /// `port`, or all ports for an all-ports action.
    pub ports: Ports,
    /// `protocol` (`tcp`, `udp`, or `all`).
    pub protocol: String,
    /// The firewall backend of the first ban action, if any.
    pub ban_backend: Option<BanBackend>,
}

/// The jails of one fail2ban directory.
#[derive(Debug, Clone)]
pub struct JailSet {
    /// The directory.
    pub dir: PathBuf,
    /// The files read, in order (includes too).
    pub files: Vec<PathBuf>,
    /// The jails read (enabled ones only unless asked for all), in file order.
    pub jails: Vec<JailDef>,
    /// Jails left out on purpose (jails without a filter), with the reason.
    pub skipped: Vec<Warning>,
    /// Everything not carried over.
    pub warnings: Vec<Warning>,
    /// fail2ban's `recidive` jail, when it is read: it becomes rampart's `[recidive]`
    /// section (which counts the other jails' bans directly, not through a log).
    pub recidive: Option<RecidiveDef>,
}

/// The counting and banning settings of fail2ban's `recidive` jail.
#[derive(Debug, Clone, PartialEq)]
pub struct RecidiveDef {
    /// `maxretry`: bans needed.
    pub maxretry: u32,
    /// `findtime` in seconds.
    pub findtime: u64,
    /// `bantime`.
    pub bantime: BanTime,
}

/// Options a jail reader understands; anything else in a jail's own section is either a
/// variable used through `%(name)s` or unknown (warned).
const JAIL_OPTIONS: &[&str] = &[
    "enabled",
    "filter",
    "logpath",
    "backend",
    "maxretry",
    "findtime",
    "bantime",
    "bantime.increment",
    "bantime.factor",
    "bantime.formula",
    "bantime.multipliers",
    "bantime.maxtime",
    "bantime.rndtime",
    "bantime.overalljails",
    "ignoreip",
    "ignoreself",
    "ignorecommand",
    "ignorecache",
    "port",
    "protocol",
    "banaction",
    "banaction_allports",
    "action",
    "chain",
    "usedns",
    "maxlines",
    "datepattern",
    "journalmatch",
    "prefregex",
    "failregex",
    "ignoreregex",
    "maxmatches",
    "logencoding",
    "logtimezone",
    "mode",
    "mta",
    "destemail",
    "sender",
    "sendername",
    "fail2ban_agent",
    "polltime",
];

/// Reads the jails under `dir` (`jail.conf` must exist). With `all`, disabled jails are
/// read too; otherwise only enabled ones. A jail that is read must be valid: an invalid
/// value is an error naming the jail and the option.
pub fn read_jails(dir: &Path, all: bool) -> Result<JailSet, F2bError> {
    let conf = dir.join("jail.conf");
    if !conf.is_file() {
        return Err(F2bError::Io {
            path: conf,
            message: "no such file (is fail2ban's configuration installed here?)".into(),
        });
    }
    let cfg = Config::read_component(dir, "jail")?.ok_or_else(|| F2bError::Io {
        path: dir.join("jail.conf"),
        message: "no jail files".into(),
    })?;
    let services = Services::load(Path::new(SERVICES_PATH));
    read_from(dir, &cfg, all, &services)
}

/// [`read_jails`] over an already merged configuration, with `services` for port names.
pub fn read_from(
    dir: &Path,
    cfg: &Config,
    all: bool,
    services: &Services,
) -> Result<JailSet, F2bError> {
    let mut set = JailSet {
        dir: dir.to_owned(),
        files: cfg.files.clone(),
        jails: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
        recidive: None,
    };
    for (name, _) in &cfg.sections {
        if name == "INCLUDES" || name == "Definition" || name.starts_with("KNOWN/") {
            continue;
        }
        let r = JailReader {
            cfg,
            name,
            services,
            warnings: Vec::new(),
        };
        r.read(all, &mut set)?;
    }
    Ok(set)
}

struct JailReader<'a> {
    cfg: &'a Config,
    name: &'a str,
    services: &'a Services,
    warnings: Vec<Warning>,
}

impl JailReader<'_> {
    fn err(&self, option: &str, message: impl Into<String>) -> F2bError {
        F2bError::Jail {
            jail: self.name.to_owned(),
            option: option.to_owned(),
            message: message.into(),
        }
    }

    fn warn(&mut self, option: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            jail: self.name.to_owned(),
            option: option.to_owned(),
            message: message.into(),
        });
    }

    fn vars() -> OMap {
        let mut v = OMap::new();
        v.set("fail2ban_version", "1.0.2");
        v
    }

    /// The interpolated value (`None` when unset), errors naming the option.
    fn get(&self, option: &str) -> Result<Option<String>, F2bError> {
        self.cfg
            .get(self.name, option, &Self::vars())
            .map_err(|m| self.err(option, m))
    }

    fn raw(&self, option: &str) -> Option<&str> {
        self.cfg.raw(self.name, option)
    }

    fn get_bool(&self, option: &str, default: bool) -> Result<bool, F2bError> {
        match self.get(option)? {
            None => Ok(default),
            Some(v) => parse_bool(&v)
                .ok_or_else(|| self.err(option, format!("{v:?} is not a boolean (true/false)"))),
        }
    }

    fn get_secs(&self, option: &str, default: i64) -> Result<i64, F2bError> {
        match self.get(option)? {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Ok(default),
            Some(v) => parse_time(&v).map_err(|m| self.err(option, m)),
        }
    }

    /// `maxretry`, `findtime` (seconds) and `bantime`.
    fn read_counting(&self) -> Result<(u32, u64, BanTime), F2bError> {
        let maxretry = match self.get("maxretry")? {
            None => 5,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| self.err("maxretry", format!("{v:?} is not a positive integer")))?,
        };
        let findtime = self.get_secs("findtime", 600)?;
        if findtime <= 0 {
            return Err(self.err("findtime", "must be positive"));
        }
        let bantime = match self.get_secs("bantime", 600)? {
            n if n < 0 => BanTime::Permanent,
            0 => return Err(self.err("bantime", "must not be zero")),
            n => BanTime::Secs(n as u64),
        };
        Ok((maxretry, findtime as u64, bantime))
    }

    fn read(mut self, all: bool, set: &mut JailSet) -> Result<(), F2bError> {
        let enabled = self.get_bool("enabled", false)?;
        if !enabled && !all {
            return Ok(());
        }
        let filter_text = self.get("filter")?.unwrap_or_default();
        let filter_text = filter_text.trim();
        if filter_text.is_empty() {
            set.skipped.push(Warning {
                jail: self.name.to_owned(),
                option: "filter".into(),
                message: "the jail has no filter (fail2ban uses such jails for manual bans); not imported".into(),
            });
            return Ok(());
        }
        let mut filter = parse_spec(filter_text).map_err(|e| self.err("filter", e.to_string()))?;
        if filter.name == "recidive" || self.name == "recidive" {
            let (maxretry, findtime, bantime) = self.read_counting()?;
            self.warn(
                "logpath",
                "fail2ban's recidive reads the bans in fail2ban.log; rampart's [recidive] counts the other jails' bans as they are decided (and its own history at start), so logpath, filter and action are not used",
            );
            set.warnings.append(&mut self.warnings);
            set.recidive = Some(RecidiveDef {
                maxretry,
                findtime,
                bantime,
            });
            return Ok(());
        }
        // backend
        let backend_text = self.get("backend")?.unwrap_or_else(|| "auto".into());
        let backend_spec =
            parse_spec(backend_text.trim()).map_err(|e| self.err("backend", e.to_string()))?;
        let backend = match backend_spec.name.as_str() {
            "auto" | "polling" | "pyinotify" | "gamin" => JailBackend::File,
            "systemd" => JailBackend::Journal,
            other => {
                return Err(self.err(
                    "backend",
                    format!("{other:?} is not one of auto, polling, pyinotify, gamin, systemd"),
                ))
            }
        };
        for (k, v) in backend_spec.params.iter() {
            self.warn(
                "backend",
                format!("systemd argument {k}={v:?} is not carried over: rampart reads the system journal with journalctl"),
            );
        }
        if backend == JailBackend::Journal && !filter.params.contains("logtype") {
            // fail2ban's applyAutoOptions: journal lines have no syslog prefix.
            filter.params.set("logtype", "journal");
        }
        // Filter options a jail may override.
        for o in ["maxlines", "datepattern", "journalmatch"] {
            if let Some(v) = self.get(o)? {
                if !v.trim().is_empty() && !filter.params.contains(o) {
                    filter.params.set(o, &v);
                }
            }
        }
        if let Some(v) = self.get("usedns")? {
            let v = v.trim().to_lowercase();
            match v.as_str() {
                "warn" => {}
                "yes" | "no" | "raw" => {
                    if !filter.params.contains("usedns") {
                        filter.params.set("usedns", &v);
                    }
                    if v == "yes" {
                        self.warn("usedns", "host names are never resolved by rampart: a failure that names a host instead of an address is not counted");
                    }
                }
                _ => {
                    return Err(
                        self.err("usedns", format!("{v:?} is not one of yes, warn, no, raw"))
                    )
                }
            }
        }
        for o in ["prefregex", "failregex", "ignoreregex"] {
            if self.cfg.section(self.name).is_some_and(|s| s.contains(o)) {
                self.warn(
                    o,
                    "a jail-level regex is not carried over; put it in a filter.d/*.local file",
                );
            }
        }
        if let Some(tz) = self.get("logtimezone")? {
            if !tz.trim().is_empty() {
                self.warn(
                    "logtimezone",
                    format!(
                        "{:?} is not carried over per jail; set [defaults] timezone",
                        tz.trim()
                    ),
                );
            }
        }
        // logpath
        let mut logpaths = Vec::new();
        if backend == JailBackend::File {
            let lp = self.get("logpath")?.unwrap_or_default();
            for line in lp.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
                let path = line
                    .strip_suffix(" tail")
                    .or_else(|| line.strip_suffix(" head"))
                    .unwrap_or(line)
                    .trim_end();
                if line.ends_with(" head") {
                    self.warn("logpath", format!("{path}: ` head` (read from the start on first use) is not carried over; rampart starts where its checkpoint says, else one window back"));
                }
                if !Path::new(path).is_absolute() {
                    return Err(self.err("logpath", format!("{path:?} is not an absolute path")));
                }
                logpaths.push(path.to_owned());
            }
            if logpaths.is_empty() {
                return Err(self.err(
                    "logpath",
                    "no log file for a file backend (set logpath, or backend = systemd)",
                ));
            }
        }
        // counting and banning
        let (maxretry, findtime, bantime) = self.read_counting()?;
        let increment = self.read_increment()?;
        let ignoreip = self.read_ignoreip()?;
        if !self.get_bool("ignoreself", true)? {
            self.warn("ignoreself", "false is not carried over: rampart never bans the host's own addresses or loopback");
        }
        for o in ["ignorecommand", "ignorecache"] {
            if let Some(v) = self.get(o).ok().flatten() {
                if !v.trim().is_empty() {
                    self.warn(o, format!("{:?} is not carried over: rampart runs no shell commands; list the addresses in `allow`", v.trim()));
                }
            }
        }
        if let Some(v) = self.raw("maxmatches") {
            if v.trim() != "%(maxretry)s" {
                self.warn(
                    "maxmatches",
                    "not carried over: it only limits the log lines fail2ban keeps for its actions",
                );
            }
        }
        if let Some(v) = self.get("logencoding").ok().flatten() {
            let v = v.trim().to_lowercase();
            if v != "auto" && v != "utf-8" && v != "utf8" {
                self.warn(
                    "logencoding",
                    format!(
                        "{v:?} is not carried over: rampart reads lines as bytes and decodes UTF-8"
                    ),
                );
            }
        }
        let protocol = self
            .get("protocol")?
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "tcp".into());
        if !matches!(protocol.as_str(), "tcp" | "udp" | "all") {
            return Err(self.err(
                "protocol",
                format!("{protocol:?} is not one of tcp, udp, all"),
            ));
        }
        let (ports, protocol, ban_backend) = self.read_actions(&protocol)?;
        self.unknown_options();
        set.jails.push(JailDef {
            name: self.name.to_owned(),
            enabled,
            filter,
            logpaths,
            backend,
            maxretry,
            findtime,
            bantime,
            increment,
            ignoreip,
            ports,
            protocol,
            ban_backend,
        });
        set.warnings.append(&mut self.warnings);
        Ok(())
    }

    fn read_increment(&mut self) -> Result<Option<Increment>, F2bError> {
        if !self.get_bool("bantime.increment", false)? {
            for o in [
                "bantime.factor",
                "bantime.formula",
                "bantime.multipliers",
                "bantime.maxtime",
                "bantime.rndtime",
                "bantime.overalljails",
            ] {
                if self
                    .get(o)
                    .ok()
                    .flatten()
                    .is_some_and(|v| !v.trim().is_empty())
                {
                    self.warn(o, "ignored: bantime.increment is off (as fail2ban does)");
                }
            }
            return Ok(None);
        }
        if let Some(f) = self.get("bantime.formula")? {
            let norm = |s: &str| s.split_whitespace().collect::<String>();
            if !f.trim().is_empty() && norm(&f) != norm(DEFAULT_FORMULA) {
                return Err(self.err(
                    "bantime.formula",
                    format!("{:?} is a Python expression; rampart only accepts fail2ban's stock formula ({DEFAULT_FORMULA}) or bantime.multipliers", f.trim()),
                ));
            }
        }
        let factor = match self.get("bantime.factor")? {
            None => 1.0,
            Some(v) if v.trim().is_empty() => 1.0,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f > 0.0)
                .ok_or_else(|| {
                    self.err(
                        "bantime.factor",
                        format!(
                            "{v:?} is not a positive number (a Python expression is not accepted)"
                        ),
                    )
                })?,
        };
        let multipliers = match self.get("bantime.multipliers")? {
            None => Vec::new(),
            Some(v) => v
                .split_whitespace()
                .map(|m| {
                    m.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        .ok_or_else(|| {
                            self.err("bantime.multipliers", format!("{m:?} is not a number"))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let opt_secs = |me: &Self, o: &str| -> Result<Option<u64>, F2bError> {
            match me.get(o)? {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => {
                    let n = parse_time(&v).map_err(|m| me.err(o, m))?;
                    if n <= 0 {
                        return Err(me.err(o, "must be positive"));
                    }
                    Ok(Some(n as u64))
                }
            }
        };
        let maxtime = opt_secs(self, "bantime.maxtime")?;
        let rndtime = opt_secs(self, "bantime.rndtime")?;
        let overalljails = self.get_bool("bantime.overalljails", false)?;
        if rndtime.is_some() {
            self.warn(
                "bantime.rndtime",
                "not carried over: rampart adds no random time to bans",
            );
        }
        if overalljails {
            self.warn(
                "bantime.overalljails",
                "not carried over: rampart's escalation counts the bans of each jail separately",
            );
        }
        Ok(Some(Increment {
            factor,
            multipliers,
            maxtime,
            rndtime,
            overalljails,
        }))
    }

    fn read_ignoreip(&mut self) -> Result<Vec<IpNet>, F2bError> {
        let v = self.get("ignoreip")?.unwrap_or_default();
        let mut out = Vec::new();
        for item in v
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            if let Some(net) = parse_net(item) {
                out.push(net);
            } else if item.starts_with("file:") {
                self.warn("ignoreip", format!("{item:?}: address files are not carried over; list the addresses in `allow`"));
            } else if item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && item.chars().any(|c| c.is_ascii_alphabetic())
            {
                self.warn("ignoreip", format!("{item:?} is a host name: rampart resolves no names; list its addresses in `allow`"));
            } else {
                return Err(self.err(
                    "ignoreip",
                    format!("{item:?} is not an address, network or host name"),
                ));
            }
        }
        Ok(out)
    }

    /// The ban actions: ports, protocol, the firewall kind, and warnings for everything
    /// else. Several firewall actions (fail2ban's per-protocol `[name=x-tcp]`/`[name=x-udp]`
    /// pairs) are merged: the union of their ports, on the union of their protocols.
    fn read_actions(
        &mut self,
        protocol: &str,
    ) -> Result<(Ports, String, Option<BanBackend>), F2bError> {
        let p = self.get("port")?.unwrap_or_default();
        let jail_ports =
            parse_ports(&p, protocol, self.services).map_err(|m| self.err("port", m))?;
        let actions = match self.get("action") {
            Ok(a) => a.unwrap_or_default(),
            Err(e) => {
                self.warn("action", format!("not carried over: {e}"));
                return Ok((jail_ports, protocol.to_owned(), None));
            }
        };
        let mut ban = None;
        // (ports, protocol) of each firewall action.
        let mut fw: Vec<(Ports, String)> = Vec::new();
        for line in split_actions(&actions) {
            let spec = match parse_action(&line) {
                Ok(s) => s,
                Err(e) => {
                    self.warn("action", format!("{line:?} is not carried over: {e}"));
                    continue;
                }
            };
            let n = spec.name.as_str();
            let kind = if n.contains("ipset")
                && (n.starts_with("iptables")
                    || n.starts_with("firewallcmd")
                    || n.starts_with("shorewall"))
            {
                Some(BanBackend::Ipset)
            } else if n.starts_with("nftables")
                || n.starts_with("iptables")
                || n.starts_with("firewallcmd")
                || n == "ufw"
                || n.starts_with("shorewall")
            {
                Some(BanBackend::Nftables)
            } else {
                None
            };
            match kind {
                Some(k) => {
                    if ban.is_some_and(|b| b != k) {
                        self.warn("action", format!("{n}: rampart has one firewall backend; this jail's bans go to the first action's"));
                    }
                    ban.get_or_insert(k);
                    let proto = spec
                        .params
                        .get("protocol")
                        .map(|p| p.trim().to_lowercase())
                        .filter(|p| matches!(p.as_str(), "tcp" | "udp" | "all"))
                        .unwrap_or_else(|| protocol.to_owned());
                    let allports = n.contains("allports")
                        || spec.params.get("type").is_some_and(|t| t.trim() == "allports");
                    let ports = if allports {
                        Ports::All
                    } else if let Some(p) = spec.params.get("port") {
                        parse_ports(p, &proto, self.services)
                            .map_err(|m| self.err("action", format!("{n}: port: {m}")))?
                    } else {
                        jail_ports.clone()
                    };
                    fw.push((ports, proto));
                    if let Some(c) = spec.params.get("chain") {
                        let c = c.trim();
                        if !c.is_empty() && c != "<known/chain>" && c != "INPUT" && c != "input" {
                            self.warn("chain", format!("{c:?} is not carried over: rampart drops on the input hook (set [daemon] forward = true for forwarded traffic)"));
                        }
                    }
                    if n.ends_with("-log") || n.contains("xt_recent") || n.contains("rich-logging") {
                        self.warn("action", format!("{n}: carried over as a plain ban (no packet logging)"));
                    }
                    for (k, v) in spec.params.iter() {
                        if matches!(k, "blocktype" | "returntype") {
                            self.warn("action", format!("{n}: {k}={v:?} is not carried over: rampart drops banned packets"));
                        }
                    }
                }
                None if n == "dummy" => {}
                None => self.warn(
                    "action",
                    format!("{n} is not carried over: rampart runs no fail2ban actions (mail, reporting, cloud APIs); it bans in its own firewall set and alerts through its notifiers"),
                ),
            }
        }
        if fw.is_empty() {
            self.warn("action", "no firewall action in this jail: rampart will still ban its offenders in its own set");
            if protocol == "all" && jail_ports != Ports::All {
                self.warn(
                    "protocol",
                    "\"all\" with ports is carried over as tcp and udp",
                );
            }
            return Ok((jail_ports, protocol.to_owned(), ban));
        }
        let mut protos: Vec<&str> = fw.iter().map(|(_, p)| p.as_str()).collect();
        protos.sort_unstable();
        protos.dedup();
        let proto = if protos.len() == 1 { protos[0] } else { "all" }.to_owned();
        let mut ports = Ports::List(Vec::new());
        for (p, _) in &fw {
            ports = match (ports, p) {
                (Ports::All, _) | (_, Ports::All) => Ports::All,
                (Ports::List(mut a), Ports::List(b)) => {
                    a.extend(b.iter().copied());
                    a.sort_unstable();
                    a.dedup();
                    Ports::List(a)
                }
            };
        }
        if fw.len() > 1 && fw.iter().any(|(p, _)| *p != fw[0].0) {
            self.warn("port", "the firewall actions drop different ports per protocol; rampart drops the union of their ports on each of their protocols");
        }
        if protos.contains(&"all") && ports != Ports::All {
            self.warn(
                "protocol",
                "\"all\" with ports is carried over as tcp and udp",
            );
        }
        Ok((ports, proto, ban))
    }

    /// Warns about options in the jail's own section that are neither jail options nor
    /// variables other values refer to.
    fn unknown_options(&mut self) {
        let Some(sec) = self.cfg.section(self.name) else {
            return;
        };
        let mut raws: Vec<&str> = sec.iter().map(|(_, v)| v).collect();
        raws.extend(self.cfg.defaults.iter().map(|(_, v)| v));
        let mut unknown = Vec::new();
        for (k, _) in sec.iter() {
            if JAIL_OPTIONS.contains(&k) || k.starts_with("action_") || k == "__name__" {
                continue;
            }
            let reference = format!("%({k})s");
            if raws.iter().any(|v| v.contains(&reference)) {
                continue;
            }
            unknown.push(k.to_owned());
        }
        for k in unknown {
            self.warn(&k, "not a jail option rampart knows, and no other option refers to it; not carried over");
        }
    }
}

/// Splits an `action` value into one text per action: at newlines outside brackets and
/// quotes (an action's options may continue on the next lines).
fn split_actions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quote) = (0usize, None::<char>);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if depth > 0 => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '\n') if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(if c == '\n' { ' ' } else { c });
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Parses `name[k=v, ...][k2=v2]`: fail2ban merges consecutive option groups (later ones
/// win), as `%(action_)s[name=x-tcp, protocol="tcp"]` produces.
fn parse_action(text: &str) -> Result<FilterSpec, F2bError> {
    let Some(open) = text.find('[') else {
        return parse_spec(text);
    };
    let name = &text[..open];
    let mut spec = parse_spec(name)?;
    let mut rest = &text[open..];
    while !rest.is_empty() {
        // Find the end of this `[...]` group, skipping quoted text.
        let mut quote = None::<char>;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, ']') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return parse_spec(text);
        };
        let group = parse_spec(&format!("{name}{}", &rest[..=end]))?;
        for (k, v) in group.params.iter() {
            spec.params.set(k, v);
        }
        rest = rest[end + 1..].trim_start();
        if !rest.is_empty() && !rest.starts_with('[') {
            return parse_spec(text);
        }
    }
    Ok(spec)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// An address or a network (`192.0.2.1`, `198.51.100.0/24`, `127.0.0.1/8`: host bits
/// cleared).
fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

/// fail2ban's time values (`MyTime.str2seconds`, without its `eval`): `600`, `-1`,
/// `10m`, `1h 30m`, `1d12h`, `1hour+30min`, `2.5h`; units s, m (mm, min), h, d, w, mo
/// (month = 30.4375 days), y (365.25 days) and their long forms. Returns seconds
/// (negative means permanent).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let bad = |why: &str| {
        format!("{s:?} is not a fail2ban time ({why}); use e.g. 600, 10m, 1h30m, 1d, -1")
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r.trim_start()),
        None => (false, s),
    };
    let b = body.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    let mut terms = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'+' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i == start {
            return Err(bad("a number must come first"));
        }
        let n: f64 = body[start..i].parse().map_err(|_| bad("bad number"))?;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = body[ustart..i].to_lowercase();
        let mult = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "mm" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            "mo" | "mon" | "month" | "months" => 2_629_800.0,
            "y" | "year" | "years" => 31_557_600.0,
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        total += n * mult;
        terms += 1;
    }
    if terms == 0 {
        return Err(bad("empty"));
    }
    if total > 10_000.0 * 31_557_600.0 {
        return Err(bad("too large"));
    }
    let secs = total.round() as i64;
    Ok(if neg { -secs } else { secs })
}

/// Port names from `/etc/services`: name and aliases -> (port, protocol).
#[derive(Debug, Clone, Default)]
pub struct Services {
    map: HashMap<(String, String), u16>,
}

/// Most service entries read (the Debian file has about 350).
const MAX_SERVICES: usize = 100_000;

impl Services {
    /// Reads a services file; a missing or unreadable file gives an empty table (port
    /// names then fail with a message naming the file).
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .map(|t| Self::parse(&t))
            .unwrap_or_default()
    }

    /// Parses `name port/proto [aliases...] [# comment]` lines.
    pub fn parse(text: &str) -> Self {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pp)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                // Bounded: the first entries win, the rest of an oversized file is ignored.
                if map.len() >= MAX_SERVICES {
                    break;
                }
                map.entry((n.to_lowercase(), proto.to_lowercase()))
                    .or_insert(port);
            }
        }
        Self { map }
    }

    /// The port of `name` for `proto` (`all`: tcp, then udp).
    pub fn port(&self, name: &str, proto: &str) -> Option<u16> {
        let n = name.to_lowercase();
        let get = |p: &str| self.map.get(&(n.clone(), p.to_owned())).copied();
        match proto {
            "udp" => get("udp"),
            "tcp" => get("tcp"),
            _ => get("tcp").or_else(|| get("udp")),
        }
    }
}

/// Parses a jail's `port`: `ssh`, `http,https`, `22`, `0:65535`, `6000:6010`,
/// `6000-6010`, separated by commas or spaces. A range covering 1-65535 means all ports.
pub fn parse_ports(text: &str, proto: &str, services: &Services) -> Result<Ports, String> {
    let one = |s: &str| -> Result<u16, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u16>() {
            return Ok(n);
        }
        services.port(s, proto).ok_or_else(|| {
            format!("{s:?} is neither a port number nor a {proto} service in {SERVICES_PATH}")
        })
    };
    let mut out: Vec<(u16, u16)> = Vec::new();
    for item in text
        .trim()
        .trim_matches('"')
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        // `a:b` (iptables), or `a-b` between numbers (service names contain '-').
        let range = item.split_once(':').or_else(|| {
            item.split_once('-')
                .filter(|(a, b)| a.trim().parse::<u16>().is_ok() && b.trim().parse::<u16>().is_ok())
        });
        let (a, b) = match range {
            Some((a, b)) => (one(a)?, one(b)?),
            None => {
                let p = one(item)?;
                (p, p)
            }
        };
        if a > b {
            return Err(format!("{item:?}: the range is backwards"));
        }
        if a <= 1 && b == 65535 {
            return Ok(Ports::All);
        }
        if b == 0 {
            return Err(format!("{item:?}: port 0 is not a port"));
        }
        out.push((a.max(1), b));
    }
    if out.is_empty() {
        return Ok(Ports::All);
    }
    out.sort_unstable();
    out.dedup();
    Ok(Ports::List(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_times_parse_with_units_and_sums() {
        assert_eq!(parse_time("600").unwrap(), 600);
        assert_eq!(parse_time("10m").unwrap(), 600);
        assert_eq!(parse_time("1h").unwrap(), 3600);
        assert_eq!(parse_time("1d 2h").unwrap(), 93_600);
        assert_eq!(parse_time("1d12h").unwrap(), 129_600);
        assert_eq!(parse_time("1hour+30min").unwrap(), 5400);
        assert_eq!(parse_time("2.5h").unwrap(), 9000);
        assert_eq!(parse_time("1w").unwrap(), 604_800);
        assert_eq!(parse_time("1mo").unwrap(), 2_629_800);
        assert_eq!(parse_time("1y").unwrap(), 31_557_600);
        assert_eq!(parse_time("-1").unwrap(), -1);
        let e = parse_time("10 parsecs").unwrap_err();
        assert!(e.contains("parsecs"), "{e}");
        assert!(parse_time("ban.Time*2").is_err());
        assert!(parse_time("").is_err());
    }

    #[test]
    fn actions_split_and_merge_option_groups() {
        let v = split_actions("iptables-multiport[port=\"53\", protocol=\"tcp\"][name=x-udp, protocol=\"udp\"]\nmail[a=1,\n  b=2]\n");
        assert_eq!(v.len(), 2, "{v:?}");
        let a = parse_action(&v[0]).unwrap();
        assert_eq!(a.name, "iptables-multiport");
        assert_eq!(a.params.get("protocol"), Some("udp"));
        assert_eq!(a.params.get("port"), Some("53"));
        assert_eq!(a.params.get("name"), Some("x-udp"));
        let b = parse_action(&v[1]).unwrap();
        assert_eq!((b.name.as_str(), b.params.get("b")), ("mail", Some("2")));
    }

    #[test]
    fn ports_resolve_names_ranges_and_all() {
        let s = Services::parse(
            "ssh 22/tcp\nhttp 80/tcp www # web\nhttps 443/tcp\nhttps 443/udp\ndns 53/udp domain\n",
        );
        assert_eq!(
            parse_ports("ssh", "tcp", &s).unwrap(),
            Ports::List(vec![(22, 22)])
        );
        assert_eq!(
            parse_ports("http,https", "tcp", &s).unwrap(),
            Ports::List(vec![(80, 80), (443, 443)])
        );
        assert_eq!(
            parse_ports("www", "tcp", &s).unwrap(),
            Ports::List(vec![(80, 80)])
        );
        assert_eq!(parse_ports("0:65535", "tcp", &s).unwrap(), Ports::All);
        assert_eq!(parse_ports("1:65535", "tcp", &s).unwrap(), Ports::All);
        assert_eq!(
            parse_ports("6000:6010, 22", "tcp", &s).unwrap(),
            Ports::List(vec![(22, 22), (6000, 6010)])
        );
        assert_eq!(
            parse_ports("domain", "udp", &s).unwrap(),
            Ports::List(vec![(53, 53)])
        );
        assert!(parse_ports("domain", "tcp", &s)
            .unwrap_err()
            .contains("domain"));
        assert!(parse_ports("10:5", "tcp", &s).is_err());
    }
}
