//! `[geo]`: country and registry policies.
//!
//! ```toml
//! [geo]
//! sources = ["/var/lib/rampart/geo"]   # files, or directories holding `geo update`'s cache
//! precedence = "registry-first"        # "as-given" (default) | "registry-first" | "geolocation-first"
//! resolve = "first"                    # default rule for sources that disagree: first | any | all
//! deny_countries = ["KP"]              # global deny list, every port
//! deny_blocks = ["203.0.113.0/24"]
//!
//! [[geo.policy]]
//! name = "voip"
//! ports = ["5060-5061"]
//! protocol = "udp"
//! allow_countries = ["DE", "AT"]
//! mode = "notify"                      # "enforce" (default) | "notify"
//!
//! [[geo.policy]]
//! name = "ssh"
//! jail = "sshd"                        # the jail's ports and protocol
//! allow_countries = ["CH"]
//! widen = "registry"                   # grow the set to whole RIR allocations
//! ```
//!
//! Errors name the file, the line of the `[geo]` table or `[[geo.policy]]` entry, and the
//! key. Country codes must be ISO 3166-1 alpha-2 codes (or `EU`, `AP`, `XK`, which the
//! sources use).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use rampart_core::{JailName, PortRange, Protocol};
use rampart_geo::{CountryCode, PolicyMode, Precedence, Resolve};
use serde::Deserialize;
use toml::Spanned;

use crate::{parse_nets, parse_ports, ConfigError, Jail, PortSpec};

/// The name of the policy built from the global deny lists.
pub const GLOBAL_POLICY: &str = "global";
/// Longest policy name (it names kernel sets; ipset allows 31 bytes).
pub const MAX_POLICY_NAME: usize = 16;
/// Most policies (each costs two kernel sets and a few rules).
pub const MAX_POLICIES: usize = 64;

/// `[geo]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// Data files (RIR delegated files, prefix lists, `.mmdb`, CSV ranges; gzip or not) or
    /// directories (the current files `rampart geo update` keeps there), in precedence
    /// order; relative paths are relative to the config file. Default: the update cache
    /// `/var/lib/rampart/geo`.
    #[serde(default)]
    pub sources: Vec<String>,
    /// How sources are ordered: `"as-given"` (default), `"registry-first"` or
    /// `"geolocation-first"`.
    pub precedence: Option<String>,
    /// How set building reads sources that disagree, unless a policy says otherwise:
    /// `"first"` (default), `"any"` or `"all"`.
    pub resolve: Option<String>,
    /// Default `mode` of the policies: `"enforce"` (default) or `"notify"`.
    pub mode: Option<String>,
    /// Countries dropped on every port.
    #[serde(default)]
    pub deny_countries: Vec<String>,
    /// Blocks (CIDRs) dropped on every port.
    #[serde(default)]
    pub deny_blocks: Vec<String>,
    /// Per-port or per-jail policies.
    #[serde(default)]
    pub policy: Vec<Spanned<GeoPolicyConfig>>,
}

/// `[[geo.policy]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPolicyConfig {
    /// The policy's name: `[a-z][a-z0-9_]*`, at most 16 bytes (it names kernel sets).
    pub name: String,
    /// Destination ports (`22`, `"6000-6010"`); with neither `ports` nor `jail`, the policy
    /// guards all traffic.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Protocol of `ports`: `"tcp"` (default), `"udp"` or `"both"`.
    pub protocol: Option<String>,
    /// Guard the ports (and protocol) of this jail instead of `ports`.
    pub jail: Option<String>,
    /// Only these countries may connect.
    pub allow_countries: Option<Vec<String>>,
    /// These countries may not connect.
    pub deny_countries: Option<Vec<String>>,
    /// Blocks treated as if they were in the listed countries.
    #[serde(default)]
    pub also: Vec<String>,
    /// Blocks taken out of the set whatever their country.
    #[serde(default)]
    pub except: Vec<String>,
    /// `"first"`, `"any"` or `"all"` (default: `[geo] resolve`).
    pub resolve: Option<String>,
    /// `"enforce"` or `"notify"` (default: `[geo] mode`).
    pub mode: Option<String>,
    /// `"none"` (default) or `"registry"`: grow the set to the whole RIR allocations its
    /// ranges touch.
    pub widen: Option<String>,
}

/// How a policy widens its set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoWiden {
    /// Exactly the compiled set.
    None,
    /// Every delegated RIR block the set touches, whole.
    Registry,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoPolicy {
    /// Its name.
    pub name: String,
    /// Allow-list or deny-list.
    pub mode: PolicyMode,
    /// The countries.
    pub countries: Vec<CountryCode>,
    /// Extra blocks treated as the listed countries.
    pub also: Vec<IpNet>,
    /// Blocks never in the set.
    pub except: Vec<IpNet>,
    /// How disagreeing sources are read.
    pub resolve: Resolve,
    /// Record first contacts instead of dropping.
    pub notify: bool,
    /// Widening.
    pub widen: GeoWiden,
    /// Protocols of `ports`.
    pub protocols: Vec<Protocol>,
    /// Guarded ports; empty: all traffic.
    pub ports: Vec<PortRange>,
    /// The jail whose ports these are, if taken from a jail.
    pub jail: Option<JailName>,
    /// The line of its `[[geo.policy]]` (or of `[geo]` for the global deny list).
    pub line: usize,
}

/// The validated `[geo]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geo {
    /// Data files and directories, in precedence order (absolute).
    pub sources: Vec<PathBuf>,
    /// How sources are ordered.
    pub precedence: Precedence,
    /// The policies; the global deny list (if any) is the policy named `global`.
    pub policies: Vec<GeoPolicy>,
    /// Sources every policy lets through: `defaults.allow` and every jail's `allow`.
    pub pass: Vec<IpNet>,
}

/// ISO 3166-1 alpha-2, plus `EU` and `AP` (RIR files) and `XK` (geolocation databases).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW EU AP XK";

/// Whether `code` (upper case) is a country code the policies accept.
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

fn countries(items: &[String]) -> Result<Vec<CountryCode>, String> {
    let mut out = Vec::with_capacity(items.len());
    for s in items {
        let up = s.trim().to_ascii_uppercase();
        match CountryCode::parse(&up) {
            Some(c) if is_country_code(&up) => out.push(c),
            _ => return Err(format!("{s:?} is not an ISO 3166-1 alpha-2 country code")),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn resolve(s: Option<&str>, default: Resolve) -> Result<Resolve, String> {
    match s {
        None => Ok(default),
        Some("first") => Ok(Resolve::First),
        Some("any") => Ok(Resolve::Any),
        Some("all") => Ok(Resolve::All),
        Some(o) => Err(format!("{o:?} is not one of \"first\", \"any\", \"all\"")),
    }
}

fn notify(s: Option<&str>, default: bool) -> Result<bool, String> {
    match s {
        None => Ok(default),
        Some("enforce") => Ok(false),
        Some("notify") => Ok(true),
        Some(o) => Err(format!("{o:?} is not one of \"enforce\", \"notify\"")),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_POLICY_NAME
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: use 1 to {MAX_POLICY_NAME} lower-case letters, digits or '_', starting with a letter"
        ))
    }
}

/// Validates `[geo]` (`geo` as parsed, with its span) against the jails.
pub(crate) fn build(
    file: &crate::ConfigFile,
    text: &str,
    path: &str,
    base: &Path,
    jails: &[Jail],
) -> Result<Option<Geo>, ConfigError> {
    let Some(spanned) = file.geo.as_ref() else {
        return Ok(None);
    };
    let g = spanned.get_ref();
    let geo_line = crate::line_of(text, spanned.span().start);
    let err = |line: usize, message: String| ConfigError {
        path: path.to_owned(),
        line: Some(line),
        message,
    };
    let sources: Vec<PathBuf> = if g.sources.is_empty() {
        vec![PathBuf::from("/var/lib/rampart/geo")]
    } else {
        g.sources
            .iter()
            .map(|s| {
                let p = Path::new(s);
                if p.is_absolute() {
                    p.to_owned()
                } else {
                    base.join(p)
                }
            })
            .collect()
    };
    let precedence = match g.precedence.as_deref() {
        None | Some("as-given") => Precedence::AsGiven,
        Some("registry-first") => Precedence::RegistryFirst,
        Some("geolocation-first") => Precedence::GeolocationFirst,
        Some(o) => {
            return Err(err(
                geo_line,
                format!(
                    "geo.precedence: {o:?} is not one of \"as-given\", \"registry-first\", \"geolocation-first\""
                ),
            ))
        }
    };
    let def_resolve = resolve(g.resolve.as_deref(), Resolve::First)
        .map_err(|m| err(geo_line, format!("geo.resolve: {m}")))?;
    let def_notify =
        notify(g.mode.as_deref(), false).map_err(|m| err(geo_line, format!("geo.mode: {m}")))?;
    let mut policies = Vec::new();
    let deny_c = countries(&g.deny_countries)
        .map_err(|m| err(geo_line, format!("geo.deny_countries: {m}")))?;
    let deny_b =
        parse_nets(&g.deny_blocks).map_err(|m| err(geo_line, format!("geo.deny_blocks: {m}")))?;
    if !deny_c.is_empty() || !deny_b.is_empty() {
        policies.push(GeoPolicy {
            name: GLOBAL_POLICY.to_owned(),
            mode: PolicyMode::Deny,
            countries: deny_c,
            also: deny_b,
            except: Vec::new(),
            resolve: def_resolve,
            notify: def_notify,
            widen: GeoWiden::None,
            protocols: Vec::new(),
            ports: Vec::new(),
            jail: None,
            line: geo_line,
        });
    }
    let mut names: BTreeSet<String> = policies.iter().map(|p| p.name.clone()).collect();
    for sp in &g.policy {
        let line = crate::line_of(text, sp.span().start);
        let p = sp.get_ref();
        let key = |k: &str| format!("geo.policy {:?}: {k}", p.name);
        check_name(&p.name).map_err(|m| err(line, format!("geo.policy name: {m}")))?;
        if p.name == GLOBAL_POLICY {
            return Err(err(
                line,
                format!("geo.policy name: {GLOBAL_POLICY:?} is reserved for geo.deny_countries and geo.deny_blocks"),
            ));
        }
        if p.name == crate::bans::BLOCKS_JAIL {
            return Err(err(
                line,
                format!(
                    "geo.policy name: {:?} is reserved for the block bans of [blocks]",
                    crate::bans::BLOCKS_JAIL
                ),
            ));
        }
        if !names.insert(p.name.clone()) {
            return Err(err(
                line,
                format!("geo.policy {:?} is defined twice", p.name),
            ));
        }
        let (mode, list, which) = match (&p.allow_countries, &p.deny_countries) {
            (Some(a), None) => (PolicyMode::Allow, a, "allow_countries"),
            (None, Some(d)) => (PolicyMode::Deny, d, "deny_countries"),
            _ => {
                return Err(err(
                    line,
                    format!(
                        "{}: give exactly one of allow_countries and deny_countries",
                        key("countries")
                    ),
                ))
            }
        };
        let countries = countries(list).map_err(|m| err(line, format!("{}: {m}", key(which))))?;
        let also = parse_nets(&p.also).map_err(|m| err(line, format!("{}: {m}", key("also"))))?;
        let except =
            parse_nets(&p.except).map_err(|m| err(line, format!("{}: {m}", key("except"))))?;
        if countries.is_empty() && also.is_empty() && mode == PolicyMode::Deny {
            return Err(err(
                line,
                format!("{}: lists no country and no block", key(which)),
            ));
        }
        let resolve = resolve(p.resolve.as_deref(), def_resolve)
            .map_err(|m| err(line, format!("{}: {m}", key("resolve"))))?;
        let notify = notify(p.mode.as_deref(), def_notify)
            .map_err(|m| err(line, format!("{}: {m}", key("mode"))))?;
        let widen = match p.widen.as_deref() {
            None | Some("none") => GeoWiden::None,
            Some("registry") => GeoWiden::Registry,
            Some(o) => {
                return Err(err(
                    line,
                    format!(
                        "{}: {o:?} is not one of \"none\", \"registry\"",
                        key("widen")
                    ),
                ))
            }
        };
        let (protocols, ports, jail) = match &p.jail {
            Some(j) => {
                if !p.ports.is_empty() || p.protocol.is_some() {
                    return Err(err(
                        line,
                        format!("{}: give either jail or ports/protocol", key("jail")),
                    ));
                }
                let Some(jail) = jails.iter().find(|x| x.policy.jail.as_str() == j) else {
                    return Err(err(line, format!("{}: no jail named {j:?}", key("jail"))));
                };
                (
                    jail.scope.protocols.clone(),
                    jail.scope.ports.clone(),
                    Some(jail.policy.jail.clone()),
                )
            }
            None => {
                let ports = parse_ports(&p.ports)
                    .map_err(|m| err(line, format!("{}: {m}", key("ports"))))?;
                let protocols = match p.protocol.as_deref().unwrap_or("tcp") {
                    "tcp" => vec![Protocol::Tcp],
                    "udp" => vec![Protocol::Udp],
                    "both" => vec![Protocol::Tcp, Protocol::Udp],
                    o => {
                        return Err(err(
                            line,
                            format!(
                                "{}: {o:?} is not one of \"tcp\", \"udp\", \"both\"",
                                key("protocol")
                            ),
                        ))
                    }
                };
                (protocols, ports, None)
            }
        };
        policies.push(GeoPolicy {
            name: p.name.clone(),
            mode,
            countries,
            also,
            except,
            resolve,
            notify,
            widen,
            protocols,
            ports,
            jail,
            line,
        });
    }
    if policies.len() > MAX_POLICIES {
        return Err(err(
            geo_line,
            format!("geo: {} policies; at most {MAX_POLICIES}", policies.len()),
        ));
    }
    // The allowlists were validated with their jails.
    let mut pass = parse_nets(&file.defaults.allow).unwrap_or_default();
    for j in &file.jail {
        pass.extend(parse_nets(&j.get_ref().allow).unwrap_or_default());
    }
    pass.sort();
    pass.dedup();
    Ok(Some(Geo {
        sources,
        precedence,
        policies,
        pass,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const HEAD: &str =
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nports = [22, 2222]\nallow = [\"192.0.2.9\"]\n";

    fn parse(geo: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/rampart/r.toml"), &format!("{HEAD}{geo}"))
    }

    #[test]
    fn the_iso_list_has_every_assigned_code_once() {
        let codes: Vec<&str> = COUNTRIES.split(' ').collect();
        assert_eq!(codes.len(), 249 + 3);
        let set: BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(set.len(), codes.len());
        assert!(is_country_code("CN") && is_country_code("EU") && !is_country_code("ZZ"));
        assert!(!is_country_code("UK") && !is_country_code("XX"));
    }

    #[test]
    fn policies_take_ports_or_a_jails_scope_and_the_global_lists_become_a_policy() {
        let c = parse(
            r#"
[geo]
sources = ["data/apnic.gz", "/var/lib/rampart/geo"]
precedence = "registry-first"
deny_countries = ["kp"]
deny_blocks = ["203.0.113.0/24"]

[[geo.policy]]
name = "voip"
ports = ["5060-5061"]
protocol = "both"
allow_countries = ["DE", "at"]
mode = "notify"
resolve = "all"

[[geo.policy]]
name = "ssh"
jail = "sshd"
deny_countries = ["CN"]
widen = "registry"
"#,
        )
        .unwrap();
        let g = c.geo.unwrap();
        assert_eq!(
            g.sources,
            vec![
                PathBuf::from("/etc/rampart/data/apnic.gz"),
                PathBuf::from("/var/lib/rampart/geo")
            ]
        );
        assert_eq!(g.precedence, Precedence::RegistryFirst);
        assert_eq!(g.pass, vec!["192.0.2.9/32".parse::<IpNet>().unwrap()]);
        assert_eq!(g.policies.len(), 3);
        let global = &g.policies[0];
        assert_eq!(global.name, "global");
        assert_eq!(global.mode, PolicyMode::Deny);
        assert_eq!(global.countries, vec![CountryCode::parse("KP").unwrap()]);
        assert!(global.ports.is_empty());
        let voip = &g.policies[1];
        assert_eq!(voip.mode, PolicyMode::Allow);
        assert!(voip.notify);
        assert_eq!(voip.resolve, Resolve::All);
        assert_eq!(voip.protocols, vec![Protocol::Tcp, Protocol::Udp]);
        assert_eq!(
            voip.ports,
            vec![PortRange {
                first: 5060,
                last: 5061
            }]
        );
        assert_eq!(voip.line, 13);
        let ssh = &g.policies[2];
        assert_eq!(ssh.jail.as_ref().map(|j| j.as_str()), Some("sshd"));
        assert_eq!(ssh.ports.len(), 2);
        assert_eq!(ssh.widen, GeoWiden::Registry);
        assert!(parse("").unwrap().geo.is_none());
        let d = parse("[geo]\n").unwrap().geo.unwrap();
        assert_eq!(d.sources, vec![PathBuf::from("/var/lib/rampart/geo")]);
    }

    #[test]
    fn bad_geo_config_names_file_line_and_key() {
        let cases = [
            ("[geo]\n[[geo.policy]]\nname = \"x\"\nallow_countries = [\"QQ\"]\n", 7, "allow_countries: \"QQ\" is not an ISO"),
            ("[geo]\ndeny_countries = [\"UK\"]\n", 6, "geo.deny_countries"),
            ("[geo]\n[[geo.policy]]\nname = \"x\"\nallow_countries = [\"DE\"]\ndeny_countries = [\"CN\"]\n", 7, "exactly one of"),
            ("[geo]\n[[geo.policy]]\nname = \"x\"\njail = \"web\"\nallow_countries = [\"DE\"]\n", 7, "no jail named \"web\""),
            ("[geo]\n[[geo.policy]]\nname = \"Bad-Name\"\nallow_countries = [\"DE\"]\n", 7, "geo.policy name"),
            ("[geo]\n[[geo.policy]]\nname = \"global\"\nallow_countries = [\"DE\"]\n", 7, "reserved"),
            ("[geo]\n[[geo.policy]]\nname = \"x\"\nallow_countries = [\"DE\"]\nmode = \"loud\"\n", 7, "mode"),
            ("[geo]\n[[geo.policy]]\nname = \"x\"\nallow_countries = [\"DE\"]\nports = [\"99999\"]\n", 7, "ports"),
            ("[geo]\n[[geo.policy]]\nname = \"x\"\nallow_countries = [\"DE\"]\n[[geo.policy]]\nname = \"x\"\nallow_countries = [\"DE\"]\n", 10, "defined twice"),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.path, "/etc/rampart/r.toml", "{text}");
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
        let e = parse("[geo]\ncountries = [\"DE\"]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        assert_eq!(e.line, Some(7));
    }
}
