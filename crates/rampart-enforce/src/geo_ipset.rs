//! Country policies with ipset `hash:net` sets and iptables/ip6tables rules, for hosts whose
//! firewall is iptables (the [`GeoEnforcer`] of the ipset backend).
//!
//! Sets (names fit ipset's 31 bytes; none starts like a jail's set, so the jails' `prepare`
//! leaves them alone): per policy `rgeo4_<policy>` / `rgeo6_<policy>` (`hash:net`), for
//! notify policies `rgeos4_<policy>` / `rgeos6_<policy>` (`hash:ip timeout 600 maxelem
//! 65536`), and the pass lists `rgeop4` / `rgeop6` (the jails' allowlists).
//!
//! Rules live in the chain `rampart-geo` of the `filter` table, jumped to from the first rule
//! of `INPUT`; `RETURN` lets a packet on to the jails' chain:
//!
//! ```text
//! -A rampart-geo -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
//! -A rampart-geo -i lo -j RETURN
//! -A rampart-geo -m addrtype --src-type LOCAL -j RETURN
//! -A rampart-geo -m set --match-set rgeop4 src -j RETURN
//! -A rampart-geo -p tcp -m multiport --dports 5060 -m set ! --match-set rgeo4_voip src -j DROP
//! ```
//!
//! Each rule carries a comment `rgeo:<fingerprint>:<n>`; the chain is rewritten (one
//! `iptables-restore --noflush` per family, atomic per table) only when they differ.
//!
//! **Atomic replace**: a set whose contents changed is rebuilt under a temporary name
//! (`rgeot4_<policy>`) by one `ipset restore`, then `swap`ped with the live set and the old
//! contents destroyed: the rule always points at a complete set.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::geo_nft::{
    check_plan, GeoAction, GeoApplied, GeoEnforcer, GeoPlan, SEEN_SET_SIZE, SEEN_TIMEOUT,
};
use crate::ipset::port_groups;
use crate::names;
use crate::process::Runner;
use crate::{EnforceError, IP6TABLES, IPSET, IPTABLES};

/// The iptables chain of the country policies.
pub const GEO_IPT_CHAIN: &str = "rampart-geo";
const IPTABLES_RESTORE: &str = "/usr/sbin/iptables-restore";
const IP6TABLES_RESTORE: &str = "/usr/sbin/ip6tables-restore";
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
const PASS_4: &str = "rgeop4";
const PASS_6: &str = "rgeop6";

/// Configuration of [`GeoIpset`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoIpsetConfig {
    /// Work in the network namespace bound at this path (tests).
    pub netns: Option<PathBuf>,
}

impl GeoIpsetConfig {
    /// Builds the backend.
    pub fn build(self) -> Result<GeoIpset, EnforceError> {
        Ok(GeoIpset {
            runner: Runner::new(self.netns.as_deref(), TOOL_TIMEOUT)?,
            loaded: HashMap::new(),
        })
    }
}

/// Country policies in ipsets (see the module documentation).
#[derive(Debug)]
pub struct GeoIpset {
    runner: Runner,
    /// Fingerprint of what this process last loaded into each set (bounded by the
    /// configured policies; entries of removed sets are dropped on apply).
    loaded: HashMap<String, u64>,
}

fn set4(p: &str) -> String {
    format!("rgeo4_{p}")
}
fn set6(p: &str) -> String {
    format!("rgeo6_{p}")
}
fn seen4(p: &str) -> String {
    format!("rgeos4_{p}")
}
fn seen6(p: &str) -> String {
    format!("rgeos6_{p}")
}
fn tmp_of(set: &str) -> String {
    // rgeo4_x -> rgeot4_x, rgeop4 -> rgeotp4
    format!("rgeot{}", &set[4..])
}
fn is_geo_ipset(name: &str) -> bool {
    name.starts_with("rgeo")
}

/// An element as ipset reads it (`hash:net` takes prefixes 1..=32 / 1..=128: a /0 is split
/// into its two halves).
fn elements(nets: &[IpNet]) -> Vec<String> {
    let mut out = Vec::with_capacity(nets.len());
    for n in nets {
        if n.prefix_len() == 0 {
            if let Ok(halves) = n.subnets(1) {
                out.extend(halves.map(|h| h.to_string()));
            }
        } else {
            out.push(n.trunc().to_string());
        }
    }
    out
}

struct Fam {
    iptables: &'static str,
    restore: &'static str,
    v6: bool,
}

const FAMS: [Fam; 2] = [
    Fam {
        iptables: IPTABLES,
        restore: IPTABLES_RESTORE,
        v6: false,
    },
    Fam {
        iptables: IP6TABLES,
        restore: IP6TABLES_RESTORE,
        v6: true,
    },
];

/// The desired rules of one family (without the comments), in order.
fn rule_texts(plan: &GeoPlan, v6: bool) -> Vec<String> {
    let pass = if v6 { PASS_6 } else { PASS_4 };
    let mut v = vec![
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN".to_owned(),
        "-i lo -j RETURN".to_owned(),
        "-m addrtype --src-type LOCAL -j RETURN".to_owned(),
        format!("-m set --match-set {pass} src -j RETURN"),
    ];
    if v6 {
        v.push("-s fe80::/10 -j RETURN".to_owned());
    }
    let mut rules: Vec<_> = plan.rules.iter().collect();
    rules.sort_by(|a, b| a.name.cmp(&b.name));
    for r in rules {
        let set = if v6 { set6(&r.name) } else { set4(&r.name) };
        let neg = match r.action {
            GeoAction::Allow => "! ",
            GeoAction::Deny => "",
        };
        let target = if r.notify {
            let seen = if v6 { seen6(&r.name) } else { seen4(&r.name) };
            format!("-j SET --add-set {seen} src")
        } else {
            "-j DROP".to_owned()
        };
        let m = format!("-m set {neg}--match-set {set} src {target}");
        if r.ports.is_empty() {
            v.push(m);
            continue;
        }
        let mut protos = r.protocols.clone();
        protos.sort();
        protos.dedup();
        let mut ports = r.ports.clone();
        ports.sort();
        ports.dedup();
        for p in &protos {
            for g in port_groups(&ports) {
                v.push(format!("-p {p} -m multiport --dports {g} {m}"));
            }
        }
    }
    v
}

impl GeoIpset {
    fn existing_sets(&self) -> Result<BTreeMap<String, String>, EnforceError> {
        let out = self.runner.run_ok(IPSET, &["list", "-n"], b"")?;
        let mut sets = BTreeMap::new();
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            let name = name.trim();
            if is_geo_ipset(name) {
                let h = self.runner.run_ok(IPSET, &["list", "-t", name], b"")?;
                let text = String::from_utf8_lossy(&h.stdout);
                let kind = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Type: "))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                sets.insert(name.to_owned(), kind);
            }
        }
        Ok(sets)
    }

    /// The comments of the rules in the geo chain of one family (`None`: no chain) and
    /// how many jumps to it INPUT has.
    fn chain_state(&self, fam: &Fam) -> Result<(Option<Vec<String>>, usize), EnforceError> {
        let out = self.runner.run_ok(fam.iptables, &["-w", "-S"], b"")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let decl = format!("-N {GEO_IPT_CHAIN}");
        let prefix = format!("-A {GEO_IPT_CHAIN} ");
        let jump = format!("-A INPUT -j {GEO_IPT_CHAIN}");
        let jumps = text.lines().filter(|l| *l == jump).count();
        if !text.lines().any(|l| l == decl) {
            return Ok((None, jumps));
        }
        let comments = text
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| {
                l.split_once("--comment ")
                    .map(|(_, c)| {
                        c.split_ascii_whitespace()
                            .next()
                            .unwrap_or("")
                            .trim_matches('"')
                            .to_owned()
                    })
                    .unwrap_or_default()
            })
            .collect();
        Ok((Some(comments), jumps))
    }

    fn apply_inner(&mut self, plan: &GeoPlan) -> Result<GeoApplied, EnforceError> {
        check_plan(plan)?;
        let existing = self.existing_sets()?;
        // Desired sets: (name, v6, contents (None: a notify set)).
        let mut want: Vec<(String, bool, Option<Vec<String>>)> = Vec::new();
        let pass4: Vec<IpNet> = plan
            .pass
            .iter()
            .filter(|n| n.addr().is_ipv4())
            .copied()
            .collect();
        let pass6: Vec<IpNet> = plan
            .pass
            .iter()
            .filter(|n| n.addr().is_ipv6())
            .copied()
            .collect();
        want.push((
            PASS_4.to_owned(),
            false,
            Some(elements(&ipnet::IpNet::aggregate(&pass4))),
        ));
        want.push((
            PASS_6.to_owned(),
            true,
            Some(elements(&ipnet::IpNet::aggregate(&pass6))),
        ));
        for r in &plan.rules {
            let v4: Vec<IpNet> = r.v4.iter().map(|n| IpNet::V4(*n)).collect();
            let v6: Vec<IpNet> = r.v6.iter().map(|n| IpNet::V6(*n)).collect();
            want.push((set4(&r.name), false, Some(elements(&v4))));
            want.push((set6(&r.name), true, Some(elements(&v6))));
            if r.notify {
                want.push((seen4(&r.name), false, None));
                want.push((seen6(&r.name), true, None));
            }
        }

        // 1. Sets: create missing ones, replace changed contents by swap.
        let mut script = String::new();
        let mut applied = GeoApplied::default();
        let mut fps = Vec::new();
        for (name, v6, contents) in &want {
            let family = if *v6 { "inet6" } else { "inet" };
            match contents {
                None => {
                    let ok = existing.get(name).is_some_and(|k| k == "hash:ip");
                    if !ok {
                        let _ = writeln!(
                            script,
                            "create {name} hash:ip family {family} timeout {} maxelem {SEEN_SET_SIZE}",
                            SEEN_TIMEOUT.as_secs()
                        );
                    }
                }
                Some(elems) => {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    elems.hash(&mut h);
                    let fp = h.finish();
                    let present = existing.get(name).is_some_and(|k| k == "hash:net");
                    if present && self.loaded.get(name) == Some(&fp) {
                        continue;
                    }
                    let maxelem = (elems.len() * 2).max(65_536);
                    let hashsize = (elems.len() / 4).clamp(1024, 1 << 20).next_power_of_two();
                    let target = if present { tmp_of(name) } else { name.clone() };
                    if present {
                        let _ = writeln!(script, "destroy {target}");
                    }
                    let _ = writeln!(
                        script,
                        "create {target} hash:net family {family} hashsize {hashsize} maxelem {maxelem}"
                    );
                    for e in elems {
                        let _ = writeln!(script, "add {target} {e}");
                    }
                    if present {
                        let _ = writeln!(script, "swap {target} {name}");
                        let _ = writeln!(script, "destroy {target}");
                    }
                    applied.loaded.push((name.clone(), elems.len()));
                    fps.push((name.clone(), fp));
                }
            }
        }
        // A wrong-typed leftover (or a temporary set of a crashed run) is destroyed first;
        // ignore errors of "destroy" for temporary names that do not exist.
        let t0 = Instant::now();
        if !script.is_empty() {
            // `-exist` makes "destroy" of an absent temporary set and "create" of a present
            // one harmless.
            if let Err(e) = self
                .runner
                .run_ok(IPSET, &["restore", "-exist"], script.as_bytes())
            {
                self.loaded.clear();
                return Err(e);
            }
        }
        applied.load_time = t0.elapsed();
        for (n, fp) in fps {
            self.loaded.insert(n, fp);
        }

        // 2. Rules per family.
        for fam in &FAMS {
            let texts = rule_texts(plan, fam.v6);
            let fp = names::fnv1a64(texts.join("\n").as_bytes());
            let comments: Vec<String> = (0..texts.len())
                .map(|i| format!("rgeo:{fp:016x}:{i}"))
                .collect();
            let (have, jumps) = self.chain_state(fam)?;
            if have.as_ref() == Some(&comments) && jumps == 1 {
                continue;
            }
            let mut r = String::from("*filter\n");
            let _ = writeln!(r, ":{GEO_IPT_CHAIN} - [0:0]");
            for (t, c) in texts.iter().zip(&comments) {
                let _ = writeln!(r, "-A {GEO_IPT_CHAIN} {t} -m comment --comment {c}");
            }
            for _ in 1..jumps.max(1) {
                let _ = writeln!(r, "-D INPUT -j {GEO_IPT_CHAIN}");
            }
            if jumps == 0 {
                let _ = writeln!(r, "-I INPUT 1 -j {GEO_IPT_CHAIN}");
            }
            r.push_str("COMMIT\n");
            self.runner
                .run_ok(fam.restore, &["-w", "--noflush"], r.as_bytes())?;
            applied.rules_rewritten = true;
        }

        // 3. Sets no policy uses (no rule names them any more).
        let mut script = String::new();
        for name in existing.keys() {
            if !want.iter().any(|(n, ..)| n == name) {
                let _ = writeln!(script, "destroy {name}");
                self.loaded.remove(name);
            }
        }
        if !script.is_empty() {
            self.runner
                .run_ok(IPSET, &["restore", "-exist"], script.as_bytes())?;
        }
        self.loaded.retain(|n, _| want.iter().any(|(w, ..)| w == n));
        Ok(applied)
    }

    fn seen_inner(&mut self) -> Result<Vec<(String, IpAddr)>, EnforceError> {
        let names = self.runner.run_ok(IPSET, &["list", "-n"], b"")?;
        let mut out = Vec::new();
        let mut del = String::new();
        for name in String::from_utf8_lossy(&names.stdout).lines() {
            let name = name.trim();
            let Some(policy) = name
                .strip_prefix("rgeos4_")
                .or_else(|| name.strip_prefix("rgeos6_"))
            else {
                continue;
            };
            let res = self.runner.run_ok(IPSET, &["save", name], b"")?;
            for line in String::from_utf8_lossy(&res.stdout).lines() {
                let mut f = line.split_ascii_whitespace();
                if f.next() != Some("add") {
                    continue;
                }
                let (Some(_), Some(elem)) = (f.next(), f.next()) else {
                    continue;
                };
                if let Ok(ip) = elem.parse::<IpAddr>() {
                    out.push((policy.to_owned(), ip));
                    let _ = writeln!(del, "del {name} {ip}");
                }
            }
        }
        if !del.is_empty() {
            self.runner
                .run_ok(IPSET, &["restore", "-exist"], del.as_bytes())?;
        }
        Ok(out)
    }

    fn remove_inner(&mut self) -> Result<(), EnforceError> {
        for fam in &FAMS {
            let (have, jumps) = self.chain_state(fam)?;
            if have.is_none() && jumps == 0 {
                continue;
            }
            let mut r = String::from("*filter\n");
            for _ in 0..jumps {
                let _ = writeln!(r, "-D INPUT -j {GEO_IPT_CHAIN}");
            }
            if have.is_some() {
                let _ = writeln!(r, "-F {GEO_IPT_CHAIN}");
                let _ = writeln!(r, "-X {GEO_IPT_CHAIN}");
            }
            r.push_str("COMMIT\n");
            self.runner
                .run_ok(fam.restore, &["-w", "--noflush"], r.as_bytes())?;
        }
        let mut script = String::new();
        for name in self.existing_sets()?.keys() {
            let _ = writeln!(script, "destroy {name}");
        }
        if !script.is_empty() {
            self.runner
                .run_ok(IPSET, &["restore", "-exist"], script.as_bytes())?;
        }
        self.loaded.clear();
        Ok(())
    }
}

impl GeoEnforcer for GeoIpset {
    fn name(&self) -> &'static str {
        "ipset"
    }
    fn apply(&mut self, plan: &GeoPlan) -> Result<GeoApplied, EnforceError> {
        self.apply_inner(plan)
    }
    fn seen(&mut self) -> Result<Vec<(String, IpAddr)>, EnforceError> {
        self.seen_inner()
    }
    fn remove(&mut self) -> Result<(), EnforceError> {
        self.remove_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo_nft::GeoRule;
    use rampart_core::{PortRange, Protocol};

    #[test]
    fn ipset_names_fit_31_bytes_and_never_look_like_a_jails() {
        let long = "abcdefghijklmnop";
        for n in [set4(long), seen6(long), tmp_of(&set4(long)), tmp_of(PASS_4)] {
            assert!(n.len() <= 31, "{n}");
            assert!(!names::is_rampart_ipset(&n), "{n}");
        }
        assert_eq!(tmp_of("rgeo4_voip"), "rgeot4_voip");
    }

    #[test]
    fn a_whole_family_prefix_becomes_two_halves() {
        let e = elements(&[
            "0.0.0.0/0".parse().unwrap(),
            "192.0.2.0/24".parse().unwrap(),
        ]);
        assert_eq!(e, vec!["0.0.0.0/1", "128.0.0.0/1", "192.0.2.0/24"]);
    }

    #[test]
    fn rules_match_ports_per_protocol_and_negate_allow_sets() {
        let plan = GeoPlan {
            rules: vec![GeoRule {
                name: "voip".into(),
                action: GeoAction::Allow,
                notify: false,
                protocols: vec![Protocol::Udp, Protocol::Tcp],
                ports: vec![PortRange {
                    first: 5060,
                    last: 5061,
                }],
                v4: vec![],
                v6: vec![],
            }],
            pass: vec![],
        };
        let t = rule_texts(&plan, false);
        assert!(t.contains(
            &"-p tcp -m multiport --dports 5060:5061 -m set ! --match-set rgeo4_voip src -j DROP"
                .to_owned()
        ));
        assert!(t.contains(
            &"-p udp -m multiport --dports 5060:5061 -m set ! --match-set rgeo4_voip src -j DROP"
                .to_owned()
        ));
    }
}
