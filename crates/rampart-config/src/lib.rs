//! `rampart.toml`: the configuration schema, strictly parsed (unknown keys are errors),
//! validated and built into runtime jails. Shared by the offline commands (`replay`) and
//! the daemon, which is why it is its own crate rather than part of `rampart-daemon`.
//!
//! ```toml
//! [defaults]
//! timezone = "local"
//! allow = ["192.0.2.0/24"]
//!
//! [[jail]]
//! name = "sshd"
//! filter = "sshd"
//! logs = ["/var/log/auth.log"]
//! max_failures = 5
//! window = "10m"
//! ban_for = "10m"
//! [jail.escalation]
//! factor = 2.0
//! max = "1w"
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use rampart_core::{parse_duration, JailName, PortRange, Protocol, Scope};
use rampart_detect::{AllowList, Escalation, JailPolicy};
use rampart_f2b::F2bFilter;
use rampart_filter::time::Zone;
use rampart_filter::Filter;
use serde::Deserialize;
use toml::Spanned;

pub mod bans;
pub mod fail2ban;
pub mod geo;

/// The whole file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Settings every jail inherits.
    #[serde(default)]
    pub defaults: DefaultsConfig,
    /// How the daemon runs: state file, control socket, firewall backend.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// The jails.
    #[serde(default)]
    pub jail: Vec<Spanned<JailConfig>>,
    /// Country and registry policies.
    pub geo: Option<Spanned<geo::GeoConfig>>,
    /// Repeat offenders across jails.
    pub recidive: Option<Spanned<bans::RecidiveConfig>>,
    /// Block escalation.
    pub blocks: Option<Spanned<bans::BlocksConfig>>,
}

/// `[daemon]`: settings of `rampart run` (ignored by the offline commands).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// The SQLite state file (default `/var/lib/rampart/rampart.db`).
    pub state: Option<PathBuf>,
    /// The root-only control socket (default `/run/rampart/rampart.sock`).
    pub socket: Option<PathBuf>,
    /// The firewall backend: `"nftables"` (default), `"ipset"` (ipset + iptables) or
    /// `"log-only"` (decide and record, enforce nothing; `--dry-run` forces it).
    pub backend: Option<String>,
    /// Also drop banned sources on the forward hook (containers, routed traffic).
    pub forward: Option<bool>,
    /// The nftables table rampart owns (default `"rampart"`, family `inet`).
    pub table: Option<String>,
    /// How often the kernel sets are compared with the state file and repaired (default
    /// `"60s"`).
    pub reconcile_every: Option<String>,
    /// fail2ban's configuration directory, where `filter = "fail2ban:NAME"` jails find
    /// `filter.d` (default `/etc/fail2ban`).
    pub fail2ban_dir: Option<PathBuf>,
}

/// Which firewall the daemon drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// nftables through netlink (the default).
    Nftables,
    /// ipset sets with iptables/ip6tables rules.
    Ipset,
    /// Nothing is enforced; decisions are logged and stored.
    LogOnly,
}

/// The validated `[daemon]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// The SQLite state file.
    pub state: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// The firewall backend.
    pub backend: BackendKind,
    /// Also hook the forward path.
    pub forward: bool,
    /// The nftables table name.
    pub table: String,
    /// Reconcile period.
    pub reconcile_every: Duration,
    /// fail2ban's configuration directory (for `fail2ban:` filters).
    pub fail2ban_dir: PathBuf,
}

impl Daemon {
    /// Where the state file lives unless configured.
    pub const DEFAULT_STATE: &'static str = "/var/lib/rampart/rampart.db";
    /// Where the control socket lives unless configured.
    pub const DEFAULT_SOCKET: &'static str = "/run/rampart/rampart.sock";
    /// Where `fail2ban:` filters are read from unless configured.
    pub const DEFAULT_FAIL2BAN_DIR: &'static str = "/etc/fail2ban";
}

/// Where a jail reads its log lines from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The files in `logs` when one of them exists at start, else the journal (when
    /// `journal` is set).
    Auto,
    /// The files in `logs`.
    File,
    /// systemd's journal, filtered by `journal`.
    Journal,
}

/// `[defaults]`: values every jail inherits unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    /// Time zone of log timestamps that carry none (syslog): `"local"` (default), `"UTC"`,
    /// a fixed offset such as `"+01:00"`, or an IANA name such as `"Europe/Zurich"`.
    pub timezone: Option<String>,
    /// Addresses and CIDRs that are never banned, in every jail (added to each jail's own).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Failures needed for a ban (default 5).
    pub max_failures: Option<u32>,
    /// The sliding window the failures must fall in (default `"10m"`).
    pub window: Option<String>,
    /// How long a first ban lasts (default `"10m"`).
    pub ban_for: Option<String>,
    /// IPv6 offenders are grouped by this prefix length (default 64).
    pub ipv6_prefix: Option<u8>,
    /// Most offenders a jail tracks at once; the least recently seen is evicted (default
    /// 100,000).
    pub max_offenders: Option<usize>,
    /// How late (in log time) a failure may arrive and still be counted exactly (default
    /// `"1m"`).
    pub reorder_tolerance: Option<String>,
}

/// `[[jail]]`: one filter over some logs, with its counting and banning rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailConfig {
    /// The jail's name (letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// A built-in filter name (`rampart filter list`) or a path to a filter file, relative
    /// to this config file, optionally with parameter values: `"sshd[mode=aggressive]"`.
    /// Or a fail2ban filter from `[daemon] fail2ban_dir`: `"fail2ban:sshd[mode=aggressive]"`.
    pub filter: String,
    /// Parameter values for the filter (`mode = "aggressive"`, `agents = ["zgrab"]`), for
    /// values a spec cannot hold (commas, brackets). A parameter may not be set both here
    /// and in `filter`.
    #[serde(default)]
    pub filter_params: rampart_filter::ParamValues,
    /// Log files (globs allowed) this jail reads when run as a daemon.
    #[serde(default)]
    pub logs: Vec<String>,
    /// Failures needed for a ban.
    pub max_failures: Option<u32>,
    /// The sliding window the failures must fall in.
    pub window: Option<String>,
    /// How long a first ban lasts.
    pub ban_for: Option<String>,
    /// Addresses and CIDRs this jail never bans.
    #[serde(default)]
    pub allow: Vec<String>,
    /// IPv6 grouping prefix for this jail.
    pub ipv6_prefix: Option<u8>,
    /// Most offenders tracked by this jail.
    pub max_offenders: Option<usize>,
    /// How late a failure may arrive and still be counted exactly.
    pub reorder_tolerance: Option<String>,
    /// Longer bans for repeat offenders.
    pub escalation: Option<EscalationConfig>,
    /// `"auto"` (default), `"file"` or `"journal"`.
    pub source: Option<SourceKind>,
    /// journalctl match terms for the journal source, e.g. `["_SYSTEMD_UNIT=ssh.service",
    /// "+", "_COMM=sshd-session"]` (`+` separates alternatives).
    #[serde(default)]
    pub journal: Vec<String>,
    /// Destination ports a ban drops (`"22"`, `"6000-6010"`); empty or absent drops all
    /// traffic from the offender.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Protocol of `ports`: `"tcp"` (default), `"udp"` or `"both"`.
    pub protocol: Option<String>,
}

/// A port as written: a number or a `"first-last"` string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    /// `22`
    Number(u16),
    /// `"22"` or `"6000-6010"`
    Text(String),
}

/// `[jail.escalation]`: each repeat ban lasts `factor` times the previous one, up to `max`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Multiplier per earlier ban (at least 1; default 2).
    pub factor: Option<f64>,
    /// The longest a ban may become (default `"1w"`).
    pub max: Option<String>,
    /// Earlier bans are forgotten when the last one ended longer ago than this (default
    /// `"7d"`).
    pub forget_after: Option<String>,
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// The zone for zone-less timestamps.
    pub zone: Zone,
    /// The daemon's settings.
    pub daemon: Daemon,
    /// The jails, in file order.
    pub jails: Vec<Jail>,
    /// The `[geo]` section, if any.
    pub geo: Option<geo::Geo>,
    /// The `[recidive]` section, if any.
    pub recidive: Option<bans::Recidive>,
    /// The `[blocks]` section, if any.
    pub blocks: Option<bans::Blocks>,
}

impl Config {
    /// What every jail's bans drop: the log jails', then recidive's (block bans are
    /// enforced as a country-policy-style set, not per jail).
    pub fn scopes(&self) -> Vec<Scope> {
        let mut out: Vec<Scope> = self.jails.iter().map(|j| j.scope.clone()).collect();
        if let Some(r) = &self.recidive {
            out.push(r.scope.clone());
        }
        out
    }

    /// Whether `jail` names a jail of this config: a log jail, `recidive` or `blocks`
    /// when those sections are present.
    pub fn has_jail(&self, jail: &str) -> bool {
        self.jails.iter().any(|j| j.policy.jail.as_str() == jail)
            || (self.recidive.is_some() && jail == bans::RECIDIVE_JAIL)
            || (self.blocks.is_some() && jail == bans::BLOCKS_JAIL)
    }
}

/// A jail's compiled filter: a native one, or a fail2ban `filter.d` filter.
#[derive(Debug, Clone)]
pub enum JailFilter {
    /// A built-in or native TOML filter.
    Native(Arc<Filter>),
    /// A fail2ban filter read from `filter.d` (`filter = "fail2ban:NAME[...]"`).
    Fail2ban(Arc<F2bFilter>),
}

impl JailFilter {
    /// The filter's name (`sshd`; `fail2ban:sshd` for a fail2ban filter).
    pub fn name(&self) -> String {
        match self {
            Self::Native(f) => f.name().to_owned(),
            Self::Fail2ban(f) => format!("fail2ban:{}", f.name()),
        }
    }

    /// The native filter, if it is one.
    pub fn native(&self) -> Option<&Arc<Filter>> {
        match self {
            Self::Native(f) => Some(f),
            Self::Fail2ban(_) => None,
        }
    }

    /// The fail2ban filter, if it is one.
    pub fn fail2ban(&self) -> Option<&Arc<F2bFilter>> {
        match self {
            Self::Native(_) => None,
            Self::Fail2ban(f) => Some(f),
        }
    }
}

/// A validated jail.
#[derive(Debug, Clone)]
pub struct Jail {
    /// Its counting and banning policy.
    pub policy: JailPolicy,
    /// Its compiled filter.
    pub filter: JailFilter,
    /// Its log paths (globs).
    pub logs: Vec<String>,
    /// Where its lines come from.
    pub source: SourceKind,
    /// journalctl match terms (validated: `FIELD=value` or `+`).
    pub journal: Vec<String>,
    /// What its bans drop.
    pub scope: Scope,
}

/// A configuration error. It names the file and, where known, the line and the key.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The config file.
    pub path: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.display().to_string(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates config text; `path` names it in errors and anchors relative
    /// filter paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError {
            path: p.clone(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        let err = |line: Option<usize>, message: String| ConfigError {
            path: p.clone(),
            line,
            message,
        };
        let d = &file.defaults;
        let zone = Zone::parse(d.timezone.as_deref().unwrap_or("local"))
            .map_err(|e| err(None, format!("defaults.timezone: {e}")))?;
        let global_allow =
            parse_nets(&d.allow).map_err(|m| err(None, format!("defaults.allow: {m}")))?;
        let dur = |v: &Option<String>,
                   default: &str,
                   key: &str,
                   line: Option<usize>|
         -> Result<Duration, ConfigError> {
            parse_duration(v.as_deref().unwrap_or(default))
                .map_err(|e| err(line, format!("{key}: {e}")))
        };
        let opt_dur = |v: &Option<String>,
                       default: Duration,
                       key: &str,
                       line: Option<usize>|
         -> Result<Duration, ConfigError> {
            match v {
                Some(_) => dur(v, "", key, line),
                None => Ok(default),
            }
        };
        // Validate the defaults themselves even when every jail overrides them.
        let def_window = opt_dur(
            &d.window,
            JailPolicy::DEFAULT_WINDOW,
            "defaults.window",
            None,
        )?;
        let def_ban = opt_dur(
            &d.ban_for,
            JailPolicy::DEFAULT_BAN_FOR,
            "defaults.ban_for",
            None,
        )?;
        let def_tol = opt_dur(
            &d.reorder_tolerance,
            JailPolicy::DEFAULT_REORDER_TOLERANCE,
            "defaults.reorder_tolerance",
            None,
        )?;
        let daemon = build_daemon(&file.daemon).map_err(|m| err(None, format!("daemon.{m}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut jails = Vec::new();
        let mut names = std::collections::HashSet::new();
        for spanned in &file.jail {
            let line = Some(line_of(text, spanned.span().start));
            let j = spanned.get_ref();
            let key = |k: &str| format!("jail {:?}: {k}", j.name);
            let name = JailName::new(&j.name).map_err(|e| err(line, format!("jail name: {e}")))?;
            if !names.insert(j.name.clone()) {
                return Err(err(line, format!("jail {:?} is defined twice", j.name)));
            }
            let filter = match j.filter.strip_prefix("fail2ban:") {
                Some(spec) => JailFilter::Fail2ban(Arc::new(
                    load_f2b_filter(
                        &daemon.fail2ban_dir,
                        spec,
                        &j.filter_params,
                        d.timezone.as_deref().unwrap_or("local"),
                    )
                    .map_err(|e| err(line, format!("{}: {e}", key("filter"))))?,
                )),
                None => JailFilter::Native(Arc::new(
                    load_filter(base, &j.filter, &j.filter_params)
                        .map_err(|e| err(line, format!("{}: {e}", key("filter"))))?,
                )),
            };
            let mut allow = global_allow.clone();
            allow.extend(
                parse_nets(&j.allow).map_err(|m| err(line, format!("{}: {m}", key("allow"))))?,
            );
            let window = opt_dur(&j.window, def_window, &key("window"), line)?;
            let ban_for = opt_dur(&j.ban_for, def_ban, &key("ban_for"), line)?;
            let reorder_tolerance = opt_dur(
                &j.reorder_tolerance,
                def_tol,
                &key("reorder_tolerance"),
                line,
            )?;
            let escalation = match &j.escalation {
                None => None,
                Some(e) => Some(Escalation {
                    factor: e.factor.unwrap_or(2.0),
                    max: dur(&e.max, "1w", &key("escalation.max"), line)?,
                    forget_after: dur(
                        &e.forget_after,
                        "7d",
                        &key("escalation.forget_after"),
                        line,
                    )?,
                }),
            };
            let policy = JailPolicy {
                jail: name,
                max_failures: j
                    .max_failures
                    .or(d.max_failures)
                    .unwrap_or(JailPolicy::DEFAULT_MAX_FAILURES),
                window,
                ban_for,
                escalation,
                allow: AllowList::new(allow),
                ipv6_prefix: j
                    .ipv6_prefix
                    .or(d.ipv6_prefix)
                    .unwrap_or(JailPolicy::DEFAULT_IPV6_PREFIX),
                max_offenders: j
                    .max_offenders
                    .or(d.max_offenders)
                    .unwrap_or(JailPolicy::DEFAULT_MAX_OFFENDERS),
                reorder_tolerance,
            };
            // Let the detector validate the numbers, so the rules live in one place.
            rampart_detect::JailDetector::new(policy.clone())
                .map_err(|e| err(line, format!("jail {:?}: {e}", j.name)))?;
            let ports =
                parse_ports(&j.ports).map_err(|m| err(line, format!("{}: {m}", key("ports"))))?;
            let protocols = match j.protocol.as_deref().unwrap_or("tcp") {
                "tcp" => vec![Protocol::Tcp],
                "udp" => vec![Protocol::Udp],
                "both" => vec![Protocol::Tcp, Protocol::Udp],
                other => {
                    return Err(err(
                        line,
                        format!(
                            "{}: {other:?} is not one of \"tcp\", \"udp\", \"both\"",
                            key("protocol")
                        ),
                    ))
                }
            };
            rampart_source::check_journal_matches(&j.journal)
                .map_err(|e| err(line, format!("{}: {e}", key("journal"))))?;
            let source = j.source.unwrap_or(SourceKind::Auto);
            if source == SourceKind::File && j.logs.is_empty() {
                return Err(err(
                    line,
                    format!("{}: source \"file\" needs `logs`", key("source")),
                ));
            }
            if source == SourceKind::Journal && j.journal.is_empty() {
                return Err(err(
                    line,
                    format!(
                        "{}: source \"journal\" needs `journal` match terms",
                        key("source")
                    ),
                ));
            }
            for pat in &j.logs {
                if !Path::new(pat).is_absolute() {
                    return Err(err(
                        line,
                        format!("{}: {pat:?} must be an absolute path", key("logs")),
                    ));
                }
            }
            let scope = Scope {
                jail: policy.jail.clone(),
                protocols,
                ports,
                ipv6_prefix: policy.ipv6_prefix,
            };
            jails.push(Jail {
                policy,
                filter,
                logs: j.logs.clone(),
                source,
                journal: j.journal.clone(),
                scope,
            });
        }
        if jails.is_empty() {
            return Err(err(None, "no [[jail]] is configured".into()));
        }
        let geo = geo::build(&file, text, &p, base, &jails)?;
        let (recidive, blocks) = bans::build(
            file.recidive.as_ref(),
            file.blocks.as_ref(),
            text,
            &p,
            &jails,
            d,
            &global_allow,
        )?;
        Ok(Self {
            path: path.to_owned(),
            zone,
            daemon,
            jails,
            geo,
            recidive,
            blocks,
        })
    }
}

fn load_filter(
    base: &Path,
    spec: &str,
    params: &rampart_filter::ParamValues,
) -> Result<Filter, rampart_filter::FilterError> {
    if spec.contains('/') && !Path::new(spec).is_absolute() {
        let joined = base.join(spec);
        return rampart_filter::load_with(&joined.to_string_lossy(), params);
    }
    rampart_filter::load_with(spec, params)
}

/// Loads a fail2ban filter: `spec` (`sshd[mode=aggressive]`) plus `params` (strings
/// only), with dates read in `timezone` (the `[defaults] timezone` text).
pub fn load_f2b_filter(
    dir: &Path,
    spec: &str,
    params: &rampart_filter::ParamValues,
    timezone: &str,
) -> Result<F2bFilter, String> {
    let mut parsed = rampart_f2b::loader::parse_spec(spec).map_err(|e| e.to_string())?;
    for (k, v) in params {
        let rampart_filter::ParamValue::One(v) = v else {
            return Err(format!(
                "parameter {k:?}: a fail2ban filter parameter is one string, not a list"
            ));
        };
        if parsed.params.contains(k) {
            return Err(format!(
                "parameter {k:?} is set both in the spec and in filter_params"
            ));
        }
        parsed.params.set(k, v);
    }
    let opts = rampart_f2b::LoadOptions {
        zone: f2b_zone(timezone)?,
        ..rampart_f2b::LoadOptions::default()
    };
    F2bFilter::load_spec(dir, &parsed, opts).map_err(|e| e.to_string())
}

/// `[defaults] timezone` as the fail2ban matcher takes it.
fn f2b_zone(text: &str) -> Result<rampart_f2b::DefaultZone, String> {
    use rampart_f2b::DefaultZone;
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" || t == "z" {
        return Ok(DefaultZone::Fixed(0));
    }
    if t.eq_ignore_ascii_case("local") {
        return Ok(DefaultZone::Local(jiff::tz::TimeZone::system()));
    }
    if t.starts_with(['+', '-']) || t.to_ascii_uppercase().starts_with("UTC") {
        let z = if t.starts_with(['+', '-']) {
            format!("UTC{t}")
        } else {
            t.to_ascii_uppercase()
        };
        return rampart_f2b::date::zone_offset(&z)
            .map(DefaultZone::Fixed)
            .ok_or_else(|| format!("timezone {t:?}: not an offset a fail2ban filter can use"));
    }
    jiff::tz::TimeZone::get(t)
        .map(DefaultZone::Local)
        .map_err(|e| format!("timezone {t:?}: {e}"))
}

/// Parses addresses and CIDRs (`192.0.2.1`, `198.51.100.0/24`, `2001:db8::/32`).
pub fn parse_nets(items: &[String]) -> Result<Vec<IpNet>, String> {
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or CIDR"))
        })
        .collect()
}

fn build_daemon(d: &DaemonConfig) -> Result<Daemon, String> {
    let backend = match d.backend.as_deref().unwrap_or("nftables") {
        "nftables" => BackendKind::Nftables,
        "ipset" => BackendKind::Ipset,
        "log-only" => BackendKind::LogOnly,
        other => {
            return Err(format!(
                "backend: {other:?} is not one of \"nftables\", \"ipset\", \"log-only\""
            ))
        }
    };
    let table = d.table.clone().unwrap_or_else(|| "rampart".into());
    let table_ok = !table.is_empty()
        && table.len() <= 32
        && table.as_bytes()[0].is_ascii_alphabetic()
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !table_ok {
        return Err(format!(
            "table: {table:?} must be 1 to 32 letters, digits or '_', starting with a letter"
        ));
    }
    let reconcile_every = parse_duration(d.reconcile_every.as_deref().unwrap_or("60s"))
        .map_err(|e| format!("reconcile_every: {e}"))?;
    if reconcile_every < Duration::from_secs(1) {
        return Err("reconcile_every: must be at least 1s".into());
    }
    for (key, p) in [
        ("state", &d.state),
        ("socket", &d.socket),
        ("fail2ban_dir", &d.fail2ban_dir),
    ] {
        if let Some(p) = p {
            if !p.is_absolute() {
                return Err(format!("{key}: {} must be an absolute path", p.display()));
            }
        }
    }
    Ok(Daemon {
        state: d
            .state
            .clone()
            .unwrap_or_else(|| PathBuf::from(Daemon::DEFAULT_STATE)),
        socket: d
            .socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(Daemon::DEFAULT_SOCKET)),
        backend,
        forward: d.forward.unwrap_or(false),
        table,
        reconcile_every,
        fail2ban_dir: d
            .fail2ban_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(Daemon::DEFAULT_FAIL2BAN_DIR)),
    })
}

/// Parses port specs (`22`, `"22"`, `"6000-6010"`) into ranges.
pub fn parse_ports(items: &[PortSpec]) -> Result<Vec<PortRange>, String> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let range = match item {
            PortSpec::Number(0) => return Err("port 0 is not a port".into()),
            PortSpec::Number(n) => PortRange {
                first: *n,
                last: *n,
            },
            PortSpec::Text(t) => {
                let bad = || format!("{t:?} is not a port or a range like \"6000-6010\"");
                let num = |s: &str| s.trim().parse::<u16>().ok().filter(|&n| n > 0);
                match t.split_once('-') {
                    None => {
                        let n = num(t).ok_or_else(bad)?;
                        PortRange { first: n, last: n }
                    }
                    Some((a, b)) => {
                        let (a, b) = (num(a).ok_or_else(bad)?, num(b).ok_or_else(bad)?);
                        if a > b {
                            return Err(bad());
                        }
                        PortRange { first: a, last: b }
                    }
                }
            }
        };
        out.push(range);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(jail: &str) -> Result<Config, ConfigError> {
        Config::parse(
            Path::new("/etc/rampart/test.toml"),
            &format!("[defaults]\ntimezone = \"UTC\"\n\n[[jail]]\nname = \"j\"\n{jail}"),
        )
    }

    fn ids(c: &Config) -> Vec<String> {
        c.jails[0]
            .filter
            .native()
            .unwrap()
            .patterns()
            .iter()
            .map(|p| p.id.clone())
            .collect()
    }

    #[test]
    fn a_filter_spec_sets_parameters() {
        let normal = parse("filter = \"sshd\"\n").unwrap();
        let aggressive = parse("filter = \"sshd[mode=aggressive]\"\n").unwrap();
        assert!(!ids(&normal).contains(&"no-identification".to_owned()));
        assert!(ids(&aggressive).contains(&"no-identification".to_owned()));
        assert_eq!(
            aggressive.jails[0].filter.native().unwrap().spec(),
            "sshd[mode=aggressive]"
        );
    }

    #[test]
    fn filter_params_set_parameters_too() {
        let c = parse("filter = \"sshd\"\n[jail.filter_params]\nmode = \"ddos\"\n").unwrap();
        assert!(!ids(&c).contains(&"failed-auth".to_owned()));
        assert_eq!(
            c.jails[0].filter.native().unwrap().spec(),
            "sshd[mode=ddos]"
        );
    }

    #[test]
    fn unknown_or_doubly_set_parameters_are_errors_naming_the_jail() {
        let e = parse("filter = \"sshd[mood=aggressive]\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test.toml:4") && e.contains("filter") && e.contains("\"mood\""),
            "{e}"
        );
        let e = parse("filter = \"sshd[mode=normal]\"\n[jail.filter_params]\nmode = \"ddos\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("both"), "{e}");
        let e = parse("filter = \"sshd\"\n[jail.filter_params]\nmode = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"loud\"") && e.contains("normal"), "{e}");
    }
}
