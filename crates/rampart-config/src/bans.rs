//! `[recidive]` and `[blocks]`: jails fed by the bans of the other jails.
//!
//! ```toml
//! [recidive]
//! max_bans = 3        # bans in other jails ...
//! window = "1d"       # ... within this span
//! ban_for = "1w"
//! jails = ["sshd", "postfix"]   # default: every jail
//!
//! [blocks]
//! group = "allocation"          # or "prefix"
//! min_addresses = 5
//! window = "1h"
//! ban_for = "1d"
//! max_prefix = { ipv4 = 16, ipv6 = 32 }
//! ```

use std::time::Duration;

use rampart_core::{parse_duration, JailName, Protocol, Scope};
use rampart_detect::{
    AllowList, BlockGroup, BlockPolicy, BlockWatcher, Escalation, JailPolicy, RecidivePolicy,
    RecidiveWatcher,
};
use serde::Deserialize;
use toml::Spanned;

use crate::{parse_ports, ConfigError, EscalationConfig, Jail, PortSpec};

/// The jail name of recidive bans.
pub const RECIDIVE_JAIL: &str = "recidive";
/// The jail name of block bans.
pub const BLOCKS_JAIL: &str = "blocks";

/// `[recidive]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecidiveConfig {
    /// Bans in other jails that earn a recidive ban (default 3, at least 2).
    pub max_bans: Option<u32>,
    /// They must start within this span (default `"1d"`).
    pub window: Option<String>,
    /// How long a recidive ban lasts (default `"1w"`).
    pub ban_for: Option<String>,
    /// Longer bans for offenders recidive banned before.
    pub escalation: Option<EscalationConfig>,
    /// Jails whose bans count (default: all).
    #[serde(default)]
    pub jails: Vec<String>,
    /// Whether manual bans (`rampart ban`) count too (default false).
    pub count_manual: Option<bool>,
    /// Destination ports a recidive ban drops (default: all traffic).
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Protocol of `ports`: `"tcp"` (default), `"udp"` or `"both"`.
    pub protocol: Option<String>,
}

/// `[blocks]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlocksConfig {
    /// `"allocation"` (default: the registry allocation from `[geo]` data, else the prefix)
    /// or `"prefix"`.
    pub group: Option<String>,
    /// IPv4 prefix group (default 24).
    pub ipv4_prefix: Option<u8>,
    /// IPv6 prefix group (default 48).
    pub ipv6_prefix: Option<u8>,
    /// Distinct banned addresses of one block that ban it (default 5).
    pub min_addresses: Option<u32>,
    /// They must be banned within this span (default `"1h"`).
    pub window: Option<String>,
    /// How long a block ban lasts (default `"1d"`).
    pub ban_for: Option<String>,
    /// Jails whose bans count (default: all).
    #[serde(default)]
    pub jails: Vec<String>,
    /// The largest blocks banned (shortest prefix lengths): `{ ipv4 = 16, ipv6 = 32 }`
    /// (default). Larger allocations fall back to the prefix group.
    pub max_prefix: Option<MaxPrefixConfig>,
}

/// `[blocks.max_prefix]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefixConfig {
    /// IPv4: the shortest prefix length banned (default 16).
    pub ipv4: Option<u8>,
    /// IPv6: the shortest prefix length banned (default 32).
    pub ipv6: Option<u8>,
}

/// The validated `[recidive]` section.
#[derive(Debug, Clone)]
pub struct Recidive {
    /// The watcher's policy.
    pub policy: RecidivePolicy,
    /// What its bans drop.
    pub scope: Scope,
}

/// The validated `[blocks]` section.
#[derive(Debug, Clone)]
pub struct Blocks {
    /// The watcher's policy.
    pub policy: BlockPolicy,
}

fn jail_list(items: &[String], jails: &[Jail], key: &str) -> Result<Vec<JailName>, String> {
    let mut out = Vec::new();
    for n in items {
        let Some(j) = jails.iter().find(|j| j.policy.jail.as_str() == n) else {
            return Err(format!("{key}: no jail named {n:?}"));
        };
        out.push(j.policy.jail.clone());
    }
    Ok(out)
}

fn dur(v: &Option<String>, default: &str, key: &str) -> Result<Duration, String> {
    parse_duration(v.as_deref().unwrap_or(default)).map_err(|e| format!("{key}: {e}"))
}

/// Builds `[recidive]` and `[blocks]` (each `None` when absent).
pub(crate) fn build(
    recidive: Option<&Spanned<RecidiveConfig>>,
    blocks: Option<&Spanned<BlocksConfig>>,
    text: &str,
    path: &str,
    jails: &[Jail],
    defaults: &crate::DefaultsConfig,
    global_allow: &[ipnet::IpNet],
) -> Result<(Option<Recidive>, Option<Blocks>), ConfigError> {
    let err = |span: std::ops::Range<usize>, message: String| ConfigError {
        path: path.to_owned(),
        line: Some(crate::line_of(text, span.start)),
        message,
    };
    for reserved in [
        (RECIDIVE_JAIL, recidive.is_some()),
        (BLOCKS_JAIL, blocks.is_some()),
    ] {
        if let (name, true) = reserved {
            if jails.iter().any(|j| j.policy.jail.as_str() == name) {
                return Err(ConfigError {
                    path: path.to_owned(),
                    line: None,
                    message: format!(
                        "jail {name:?}: the name is taken by the [{name}] section; rename the jail"
                    ),
                });
            }
        }
    }
    let r = match recidive {
        None => None,
        Some(s) => Some(
            build_recidive(s.get_ref(), jails, defaults, global_allow)
                .map_err(|m| err(s.span(), format!("recidive.{m}")))?,
        ),
    };
    let b = match blocks {
        None => None,
        Some(s) => Some(
            build_blocks(s.get_ref(), jails, defaults, global_allow)
                .map_err(|m| err(s.span(), format!("blocks.{m}")))?,
        ),
    };
    Ok((r, b))
}

fn build_recidive(
    c: &RecidiveConfig,
    jails: &[Jail],
    d: &crate::DefaultsConfig,
    allow: &[ipnet::IpNet],
) -> Result<Recidive, String> {
    let jail = JailName::new(RECIDIVE_JAIL).map_err(|e| e.to_string())?;
    let escalation = match &c.escalation {
        None => None,
        Some(e) => Some(Escalation {
            factor: e.factor.unwrap_or(2.0),
            max: dur(&e.max, "4w", "escalation.max")?,
            forget_after: dur(&e.forget_after, "30d", "escalation.forget_after")?,
        }),
    };
    let policy = RecidivePolicy {
        jail: jail.clone(),
        max_bans: c.max_bans.unwrap_or(3),
        window: dur(&c.window, "1d", "window")?,
        ban_for: dur(&c.ban_for, "1w", "ban_for")?,
        escalation,
        allow: AllowList::new(allow.iter().copied()),
        ipv6_prefix: d.ipv6_prefix.unwrap_or(JailPolicy::DEFAULT_IPV6_PREFIX),
        max_offenders: d.max_offenders.unwrap_or(JailPolicy::DEFAULT_MAX_OFFENDERS),
        jails: jail_list(&c.jails, jails, "jails")?,
        count_manual: c.count_manual.unwrap_or(false),
    };
    RecidiveWatcher::new(policy.clone()).map_err(|e| format!("{}: {e}", e.field()))?;
    let ports = parse_ports(&c.ports).map_err(|m| format!("ports: {m}"))?;
    let protocols = protocols(c.protocol.as_deref())?;
    Ok(Recidive {
        scope: Scope {
            jail,
            protocols,
            ports,
            ipv6_prefix: policy.ipv6_prefix,
        },
        policy,
    })
}

fn protocols(p: Option<&str>) -> Result<Vec<Protocol>, String> {
    Ok(match p.unwrap_or("tcp") {
        "tcp" => vec![Protocol::Tcp],
        "udp" => vec![Protocol::Udp],
        "both" => vec![Protocol::Tcp, Protocol::Udp],
        other => {
            return Err(format!(
                "protocol: {other:?} is not one of \"tcp\", \"udp\", \"both\""
            ))
        }
    })
}

fn build_blocks(
    c: &BlocksConfig,
    jails: &[Jail],
    d: &crate::DefaultsConfig,
    allow: &[ipnet::IpNet],
) -> Result<Blocks, String> {
    let group = match c.group.as_deref().unwrap_or("allocation") {
        "allocation" => BlockGroup::Allocation,
        "prefix" => BlockGroup::Prefix,
        other => {
            return Err(format!(
                "group: {other:?} is not one of \"allocation\", \"prefix\""
            ))
        }
    };
    let max4 = c.max_prefix.as_ref().and_then(|m| m.ipv4).unwrap_or(16);
    let max6 = c.max_prefix.as_ref().and_then(|m| m.ipv6).unwrap_or(32);
    let policy = BlockPolicy {
        jail: JailName::new(BLOCKS_JAIL).map_err(|e| e.to_string())?,
        group,
        ipv4_prefix: c.ipv4_prefix.unwrap_or(24),
        ipv6_prefix: c.ipv6_prefix.unwrap_or(48),
        min_addresses: c.min_addresses.unwrap_or(5),
        window: dur(&c.window, "1h", "window")?,
        ban_for: dur(&c.ban_for, "1d", "ban_for")?,
        jails: jail_list(&c.jails, jails, "jails")?,
        max_prefix_v4: max4,
        max_prefix_v6: max6,
        allow: AllowList::new(allow.iter().copied()),
        max_blocks: d.max_offenders.unwrap_or(JailPolicy::DEFAULT_MAX_OFFENDERS),
    };
    BlockWatcher::new(policy.clone()).map_err(|e| format!("{}: {e}", e.field()))?;
    Ok(Blocks { policy })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use crate::Config;

    const JAILS: &str = "[defaults]\ntimezone = \"UTC\"\n\n[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\n\n[[jail]]\nname = \"web\"\nfilter = \"web-scan\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("/etc/rampart/t.toml"), &format!("{JAILS}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn absent_sections_are_off_and_present_ones_take_the_defaults() {
        let c = parse("").unwrap();
        assert!(c.recidive.is_none() && c.blocks.is_none());
        let c = parse("[recidive]\n[blocks]\n").unwrap();
        let r = c.recidive.unwrap();
        assert_eq!(r.policy.max_bans, 3);
        assert_eq!(r.policy.window.as_secs(), 86_400);
        assert_eq!(r.policy.ban_for.as_secs(), 604_800);
        assert!(r.policy.jails.is_empty() && !r.policy.count_manual);
        assert!(r.scope.ports.is_empty());
        let b = c.blocks.unwrap().policy;
        assert_eq!(b.group, rampart_detect::BlockGroup::Allocation);
        assert_eq!((b.ipv4_prefix, b.ipv6_prefix), (24, 48));
        assert_eq!((b.max_prefix_v4, b.max_prefix_v6), (16, 32));
        assert_eq!(b.min_addresses, 5);
        assert_eq!(b.window.as_secs(), 3600);
        assert_eq!(b.ban_for.as_secs(), 86_400);
        assert_eq!(c.jails.len(), 2);
    }

    #[test]
    fn settings_are_read() {
        let c = parse(
            "[recidive]\nmax_bans = 4\nwindow = \"2d\"\nban_for = \"4w\"\njails = [\"sshd\"]\ncount_manual = true\nports = [22]\n[recidive.escalation]\nfactor = 3.0\n\n[blocks]\ngroup = \"prefix\"\nipv4_prefix = 20\nmax_prefix = { ipv4 = 20, ipv6 = 40 }\nmin_addresses = 3\njails = [\"web\"]\n",
        )
        .unwrap();
        let r = c.recidive.unwrap();
        assert_eq!(r.policy.max_bans, 4);
        assert_eq!(r.policy.jails[0].as_str(), "sshd");
        assert!(r.policy.count_manual);
        assert_eq!(r.policy.escalation.unwrap().factor, 3.0);
        assert_eq!(r.scope.ports.len(), 1);
        let b = c.blocks.unwrap().policy;
        assert_eq!(b.group, rampart_detect::BlockGroup::Prefix);
        assert_eq!(
            (b.ipv4_prefix, b.max_prefix_v4, b.max_prefix_v6),
            (20, 20, 40)
        );
        assert_eq!(b.min_addresses, 3);
    }

    #[test]
    fn errors_name_the_key() {
        for (text, want) in [
            ("[recidive]\nmax_ban = 3\n", "max_ban"),
            ("[blocks]\nmin_address = 3\n", "min_address"),
            ("[recidive]\nmax_bans = 1\n", "recidive.max_bans"),
            ("[recidive]\nwindow = \"soon\"\n", "recidive.window"),
            ("[recidive]\njails = [\"ftp\"]\n", "recidive.jails"),
            ("[recidive]\nprotocol = \"icmp\"\n", "recidive.protocol"),
            ("[blocks]\ngroup = \"asn\"\n", "blocks.group"),
            ("[blocks]\nipv4_prefix = 8\n", "blocks.ipv4_prefix"),
            (
                "[blocks]\nmax_prefix = { ipv4 = 99 }\n",
                "blocks.max_prefix",
            ),
            ("[blocks]\nmax_prefix = { v4 = 16 }\n", "v4"),
            ("[blocks]\nban_for = \"-1h\"\n", "blocks.ban_for"),
            ("[blocks]\nmin_addresses = 1\n", "blocks.min_addresses"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want) && e.contains("t.toml:"), "{text}: {e}");
        }
        let e = Config::parse(
            Path::new("/etc/rampart/t.toml"),
            "[[jail]]\nname = \"recidive\"\nfilter = \"sshd\"\n[recidive]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"recidive\"") && e.contains("rename"), "{e}");
    }
}
