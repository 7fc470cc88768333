//! The ipset + iptables backend, for hosts whose firewall is iptables.
//!
//! Per jail an IPv4 `hash:ip` set and an IPv6 `hash:net family inet6` set, both created with
//! `timeout 0` (elements carry their own timeouts); names are described in
//! [`crate::names`]. Element changes go through one `ipset restore -exist` per call (add with
//! `-exist` refreshes the timeout; del with `-exist` ignores absent elements). ipset has no
//! transactions: the commands of one call are applied in order, and a call that fails half
//! way may have applied a prefix of them (retrying it is harmless).
//!
//! Matching lives in rampart's own chain (default `rampart`) of the `filter` table, for
//! iptables and ip6tables, jumped to from the first rule of `INPUT` (and `FORWARD` when
//! configured):
//!
//! ```text
//! -A rampart -p tcp -m set --match-set rampart4_sshd src -m multiport --dports 22,2222 -j DROP
//! -A rampart -m set --match-set rampart4_web src -j DROP
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use rampart_core::{Backend, BackendError, Entry, JailName, Protocol, Scope, Timestamp};
use serde::Deserialize;

use crate::nft::remaining;
use crate::process::Runner;
use crate::{check_scopes, names, validate_ident, EnforceError};

/// The `ipset` tool.
pub const IPSET: &str = "/usr/sbin/ipset";
/// The `iptables` tool.
pub const IPTABLES: &str = "/usr/sbin/iptables";
/// The `ip6tables` tool.
pub const IP6TABLES: &str = "/usr/sbin/ip6tables";
const IPTABLES_RESTORE: &str = "/usr/sbin/iptables-restore";
const IP6TABLES_RESTORE: &str = "/usr/sbin/ip6tables-restore";

/// Longest timeout ipset accepts (2,147,483 s, about 24.8 days); a longer ban is stored with
/// this timeout and the daemon's reconcile re-adds it before it runs out.
pub const IPSET_MAX_TIMEOUT: Duration = Duration::from_secs(2_147_483);

/// How long one tool run may take (a 1 M element restore takes a few seconds).
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// multiport takes at most 15 ports per rule; a range counts as two.
const MULTIPORT_SLOTS: usize = 15;

const NAME: &str = "ipset";

fn default_chain() -> String {
    "rampart".to_owned()
}

fn default_max_elements() -> u32 {
    1 << 20
}

/// Configuration of the ipset backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsetConfig {
    /// rampart's own chain in the `filter` table of iptables and ip6tables (default
    /// `rampart`). rampart rewrites its rules and adds one jump to it.
    #[serde(default = "default_chain")]
    pub chain: String,
    /// Also jump to the chain from `FORWARD` (containers, routed traffic).
    #[serde(default)]
    pub forward: bool,
    /// `maxelem` of each set, i.e. the most bans one jail holds per address family
    /// (default 1,048,576). Past it the kernel refuses further adds. Applies to sets when
    /// they are created; existing sets keep theirs.
    #[serde(default = "default_max_elements")]
    pub max_elements: u32,
    /// Work in the network namespace bound at this path (`/run/netns/NAME`), through
    /// `ip netns exec`; for tests.
    #[serde(default)]
    pub netns: Option<PathBuf>,
}

impl Default for IpsetConfig {
    fn default() -> Self {
        Self {
            chain: default_chain(),
            forward: false,
            max_elements: default_max_elements(),
            netns: None,
        }
    }
}

impl IpsetConfig {
    /// Validates the configuration. No tool runs until `prepare`.
    pub fn build(self) -> Result<IpsetBackend, EnforceError> {
        validate_ident("chain", &self.chain)?;
        // xtables chain names hold at most 28 bytes.
        if self.chain.len() > 28 || matches!(self.chain.as_str(), "INPUT" | "FORWARD" | "OUTPUT") {
            return Err(EnforceError::InvalidName {
                what: "chain",
                name: self.chain,
            });
        }
        if self.max_elements == 0 {
            return Err(EnforceError::InvalidName {
                what: "max_elements",
                name: "0".into(),
            });
        }
        Ok(IpsetBackend {
            runner: Runner::new(self.netns.as_deref(), TOOL_TIMEOUT)?,
            chain: self.chain,
            forward: self.forward,
            max_elements: self.max_elements,
            jails: BTreeMap::new(),
            last_prepare_rewrote: false,
        })
    }
}

/// A jail's sets.
#[derive(Debug, Clone)]
struct JailSets {
    v4: String,
    v6: String,
    v6_prefix: u8,
}

/// Bans in ipsets matched from iptables/ip6tables. Built by [`IpsetConfig::build`].
#[derive(Debug)]
pub struct IpsetBackend {
    runner: Runner,
    chain: String,
    forward: bool,
    max_elements: u32,
    /// Jails of the last successful `prepare` (bounded by the configuration).
    jails: BTreeMap<JailName, JailSets>,
    last_prepare_rewrote: bool,
}

/// A set's header as `ipset list -t` shows it.
#[derive(Debug, Default, Clone)]
struct SetHeader {
    kind: String,
    header: String,
}

/// One address family's tools and state.
struct Family {
    iptables: &'static str,
    restore: &'static str,
    v6: bool,
}

const FAMILIES: [Family; 2] = [
    Family {
        iptables: IPTABLES,
        restore: IPTABLES_RESTORE,
        v6: false,
    },
    Family {
        iptables: IP6TABLES,
        restore: IP6TABLES_RESTORE,
        v6: true,
    },
];

impl IpsetBackend {
    /// Whether the last `prepare` had to change anything (`false`: it only read state).
    pub fn last_prepare_rewrote(&self) -> bool {
        self.last_prepare_rewrote
    }

    /// The set names of a jail of the last `prepare`: (IPv4, IPv6).
    pub fn set_names(&self, jail: &JailName) -> Option<(&str, &str)> {
        self.jails.get(jail).map(|s| (s.v4.as_str(), s.v6.as_str()))
    }

    fn read_sets(&self) -> Result<BTreeMap<String, SetHeader>, EnforceError> {
        let out = self.runner.run_ok(IPSET, &["list", "-t"], b"")?;
        let mut sets = BTreeMap::new();
        let mut name: Option<String> = None;
        let mut cur = SetHeader::default();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(n) = line.strip_prefix("Name: ") {
                if let Some(prev) = name.take() {
                    sets.insert(prev, std::mem::take(&mut cur));
                }
                name = Some(n.trim().to_owned());
            } else if let Some(t) = line.strip_prefix("Type: ") {
                cur.kind = t.trim().to_owned();
            } else if let Some(h) = line.strip_prefix("Header: ") {
                cur.header = format!(" {} ", h.trim());
            }
        }
        if let Some(prev) = name {
            sets.insert(prev, cur);
        }
        Ok(sets)
    }

    /// The desired rules of rampart's chain for one family, in `iptables -S` form.
    fn rules(&self, scopes: &[&Scope], v6: bool) -> Vec<String> {
        let mut out = Vec::new();
        for s in scopes {
            let sets = jail_sets(s);
            let set = if v6 { &sets.v6 } else { &sets.v4 };
            if s.ports.is_empty() {
                out.push(format!(
                    "-A {} -m set --match-set {set} src -j DROP",
                    self.chain
                ));
                continue;
            }
            let mut protos: Vec<Protocol> = s.protocols.clone();
            protos.sort();
            protos.dedup();
            let mut ports = s.ports.clone();
            ports.sort();
            ports.dedup();
            for p in &protos {
                for group in port_groups(&ports) {
                    out.push(format!(
                        "-A {} -p {p} -m set --match-set {set} src -m multiport --dports {group} -j DROP",
                        self.chain
                    ));
                }
            }
        }
        out
    }

    fn prepare_inner(&mut self, scopes: &[Scope]) -> Result<(), EnforceError> {
        check_scopes(scopes)?;
        let mut scopes: Vec<&Scope> = scopes.iter().collect();
        scopes.sort_by(|a, b| a.jail.cmp(&b.jail));
        let mut jails = BTreeMap::new();
        let mut owner: HashMap<String, JailName> = HashMap::new();
        for s in &scopes {
            let sets = jail_sets(s);
            for name in [&sets.v4, &sets.v6] {
                if let Some(first) = owner.insert(name.clone(), s.jail.clone()) {
                    return Err(EnforceError::SetNameCollision {
                        first,
                        second: s.jail.clone(),
                        set: name.clone(),
                    });
                }
            }
            jails.insert(s.jail.clone(), sets);
        }

        let existing = self.read_sets()?;
        let set_ok = |name: &str, v6: bool| {
            existing.get(name).is_some_and(|h| {
                let (kind, family) = if v6 {
                    ("hash:net", " family inet6 ")
                } else {
                    ("hash:ip", " family inet ")
                };
                h.kind == kind && h.header.contains(family) && h.header.contains(" timeout ")
            })
        };
        let mut destroy: Vec<String> = existing
            .keys()
            .filter(|n| names::is_rampart_ipset(n) && !owner.contains_key(*n))
            .cloned()
            .collect();
        let mut create: Vec<(String, bool)> = Vec::new();
        for sets in jails.values() {
            for (name, v6) in [(&sets.v4, false), (&sets.v6, true)] {
                if !set_ok(name, v6) {
                    if existing.contains_key(name) {
                        destroy.push(name.clone());
                    }
                    create.push((name.clone(), v6));
                }
            }
        }

        // What each family's filter table holds now.
        let jump_from: Vec<&str> = if self.forward {
            vec!["INPUT", "FORWARD"]
        } else {
            vec!["INPUT"]
        };
        let mut plans = Vec::new();
        for fam in &FAMILIES {
            let out = self.runner.run_ok(fam.iptables, &["-w", "-S"], b"")?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let chain_decl = format!("-N {}", self.chain);
            let prefix = format!("-A {} ", self.chain);
            let has_chain = text.lines().any(|l| l == chain_decl);
            let have: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
            let want = self.rules(&scopes, fam.v6);
            let jumps: Vec<(&str, usize)> = ["INPUT", "FORWARD"]
                .iter()
                .map(|c| {
                    let j = format!("-A {c} -j {}", self.chain);
                    (*c, text.lines().filter(|l| *l == j).count())
                })
                .collect();
            plans.push((has_chain, have == want, want, jumps));
        }
        let rules_ok = plans.iter().all(|(has, same, _, jumps)| {
            *has && *same
                && jumps.iter().all(|(c, n)| {
                    let wanted = jump_from.contains(c);
                    (*n == 1 && wanted) || (*n == 0 && !wanted)
                })
        });
        if destroy.is_empty() && create.is_empty() && rules_ok {
            self.jails = jails;
            self.last_prepare_rewrote = false;
            return Ok(());
        }
        self.last_prepare_rewrote = true;

        // Sets first: rules can only name sets that exist, and a set can only be destroyed
        // when no rule names it, so rampart's chains are emptied first if any set goes.
        if !destroy.is_empty() {
            for (fam, (has_chain, ..)) in FAMILIES.iter().zip(&plans) {
                if *has_chain {
                    self.runner
                        .run_ok(fam.iptables, &["-w", "-F", &self.chain], b"")?;
                }
            }
        }
        let mut script = String::new();
        for name in &destroy {
            let _ = writeln!(script, "destroy {name}");
        }
        for (name, v6) in &create {
            let (kind, family) = if *v6 {
                ("hash:net", "inet6")
            } else {
                ("hash:ip", "inet")
            };
            let _ = writeln!(
                script,
                "create {name} {kind} family {family} timeout 0 maxelem {}",
                self.max_elements
            );
        }
        if !script.is_empty() {
            self.runner
                .run_ok(IPSET, &["restore", "-exist"], script.as_bytes())?;
        }
        // Each family: one iptables-restore (atomic per table) that declares (and so
        // empties) rampart's chain, fills it, and fixes the jumps.
        for (fam, (_, _, want, jumps)) in FAMILIES.iter().zip(&plans) {
            let mut r = String::from("*filter\n");
            let _ = writeln!(r, ":{} - [0:0]", self.chain);
            for line in want {
                let _ = writeln!(r, "{line}");
            }
            for (c, n) in jumps {
                let wanted = jump_from.contains(c);
                let keep = usize::from(wanted);
                for _ in keep..*n {
                    let _ = writeln!(r, "-D {c} -j {}", self.chain);
                }
                if wanted && *n == 0 {
                    let _ = writeln!(r, "-I {c} 1 -j {}", self.chain);
                }
            }
            r.push_str("COMMIT\n");
            self.runner
                .run_ok(fam.restore, &["-w", "--noflush"], r.as_bytes())?;
        }
        self.jails = jails;
        Ok(())
    }

    fn target(&self, jail: &JailName, net: &IpNet) -> Result<(&str, IpNet), EnforceError> {
        let sets = self
            .jails
            .get(jail)
            .ok_or_else(|| EnforceError::UnknownJail(jail.clone()))?;
        let bad = |why| EnforceError::BadEntry {
            jail: jail.clone(),
            net: *net,
            why,
        };
        match net {
            IpNet::V4(n) if n.prefix_len() == 32 => Ok((sets.v4.as_str(), *net)),
            IpNet::V4(_) => Err(bad("IPv4 bans are single addresses (/32)")),
            IpNet::V6(n) if n.prefix_len() == sets.v6_prefix => {
                Ok((sets.v6.as_str(), IpNet::V6(n.trunc())))
            }
            IpNet::V6(_) => Err(bad("IPv6 bans must have the jail's ipv6_prefix length")),
        }
    }

    fn ban_inner(&mut self, entries: &[Entry], now: Timestamp) -> Result<(), EnforceError> {
        // Last entry wins for duplicates.
        let mut elems: HashMap<(&str, IpNet), u64> = HashMap::with_capacity(entries.len());
        for e in entries {
            let (set, net) = self.target(&e.jail, &e.net)?;
            let Some(left) = remaining(e.expires, now, IPSET_MAX_TIMEOUT) else {
                continue;
            };
            // Whole seconds, rounded up (0 would mean "forever").
            let secs = left.as_micros().div_ceil(1_000_000).max(1);
            elems.insert((set, net), u64::try_from(secs).unwrap_or(u64::MAX));
        }
        if elems.is_empty() {
            return Ok(());
        }
        let mut script = String::with_capacity(elems.len() * 48);
        for ((set, net), secs) in &elems {
            let _ = writeln!(script, "add {set} {} timeout {secs}", element(net));
        }
        self.runner
            .run_ok(IPSET, &["restore", "-exist"], script.as_bytes())?;
        Ok(())
    }

    fn unban_inner(&mut self, entries: &[(JailName, IpNet)]) -> Result<(), EnforceError> {
        let mut script = String::new();
        for (jail, net) in entries {
            let (set, net) = self.target(jail, net)?;
            let _ = writeln!(script, "del {set} {}", element(&net));
        }
        if script.is_empty() {
            return Ok(());
        }
        self.runner
            .run_ok(IPSET, &["restore", "-exist"], script.as_bytes())?;
        Ok(())
    }

    fn list_inner(&mut self, now: Timestamp) -> Result<Vec<Entry>, EnforceError> {
        let mut out = Vec::new();
        for (jail, sets) in &self.jails {
            for (set, v6) in [(&sets.v4, false), (&sets.v6, true)] {
                let argv_line = self.runner.argv(IPSET, &["save", set]).join(" ");
                let res = self.runner.run(IPSET, &["save", set], b"")?;
                if !res.status.success() {
                    let err = String::from_utf8_lossy(&res.stderr);
                    if err.contains("does not exist") {
                        continue; // lost (destroyed by hand): the daemon's reconcile sees it
                    }
                    return Err(EnforceError::Failed {
                        argv: argv_line,
                        status: res.status,
                        stderr: err.trim().to_owned(),
                    });
                }
                for line in String::from_utf8_lossy(&res.stdout).lines() {
                    let mut f = line.split_ascii_whitespace();
                    if f.next() != Some("add") {
                        continue;
                    }
                    let parse_err = || EnforceError::Parse {
                        argv: argv_line.clone(),
                        line: line.to_owned(),
                    };
                    let (Some(_name), Some(elem)) = (f.next(), f.next()) else {
                        return Err(parse_err());
                    };
                    let net: IpNet = if let Ok(n) = elem.parse::<IpNet>() {
                        n
                    } else {
                        match elem.parse::<IpAddr>().map_err(|_| parse_err())? {
                            IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
                            IpAddr::V6(a) => IpNet::V6(ipnet::Ipv6Net::from(a)),
                        }
                    };
                    if net.addr().is_ipv6() != v6 {
                        return Err(parse_err());
                    }
                    let mut timeout: Option<u64> = None;
                    while let Some(k) = f.next() {
                        if k == "timeout" {
                            timeout = f.next().and_then(|t| t.parse().ok());
                        }
                    }
                    let expires = match timeout {
                        Some(0) | None => Timestamp::from_micros(i64::MAX),
                        Some(s) => now.saturating_add(Duration::from_secs(s)),
                    };
                    out.push(Entry {
                        jail: jail.clone(),
                        net,
                        expires,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn jail_sets(s: &Scope) -> JailSets {
    JailSets {
        v4: names::ipset_v4(&s.jail),
        v6: names::ipset_v6(&s.jail),
        v6_prefix: s.ipv6_prefix,
    }
}

/// An element as ipset reads it: a bare address for /32 and /128, else `addr/len`.
fn element(net: &IpNet) -> String {
    match net {
        IpNet::V4(n) if n.prefix_len() == 32 => n.addr().to_string(),
        IpNet::V6(n) if n.prefix_len() == 128 => n.addr().to_string(),
        n => n.to_string(),
    }
}

/// Ports in multiport syntax (`22,1000:2000`), split into groups of at most 15 slots.
pub(crate) fn port_groups(ports: &[rampart_core::PortRange]) -> Vec<String> {
    let mut groups = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut slots = 0;
    for p in ports {
        let (text, need) = if p.first == p.last {
            (p.first.to_string(), 1)
        } else {
            (format!("{}:{}", p.first, p.last), 2)
        };
        if slots + need > MULTIPORT_SLOTS {
            groups.push(cur.join(","));
            cur.clear();
            slots = 0;
        }
        cur.push(text);
        slots += need;
    }
    if !cur.is_empty() {
        groups.push(cur.join(","));
    }
    groups
}

impl Backend for IpsetBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prepare(&mut self, scopes: &[Scope]) -> Result<(), BackendError> {
        self.prepare_inner(scopes)
            .map_err(|e| e.into_backend(NAME, "prepare"))
    }

    fn ban(&mut self, entries: &[Entry], now: Timestamp) -> Result<(), BackendError> {
        self.ban_inner(entries, now)
            .map_err(|e| e.into_backend(NAME, "ban"))
    }

    fn unban(&mut self, entries: &[(JailName, IpNet)]) -> Result<(), BackendError> {
        self.unban_inner(entries)
            .map_err(|e| e.into_backend(NAME, "unban"))
    }

    fn list(&mut self, now: Timestamp) -> Result<Vec<Entry>, BackendError> {
        self.list_inner(now)
            .map_err(|e| e.into_backend(NAME, "list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::PortRange;

    fn pr(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    #[test]
    fn multiport_groups_respect_the_15_slot_limit() {
        assert_eq!(
            port_groups(&[pr(22, 22), pr(1000, 2000)]),
            vec!["22,1000:2000"]
        );
        let many: Vec<PortRange> = (1..=20).map(|p| pr(p, p)).collect();
        let g = port_groups(&many);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].split(',').count(), 15);
        let ranges: Vec<PortRange> = (0..8).map(|i| pr(i * 10, i * 10 + 5)).collect();
        let g = port_groups(&ranges);
        assert_eq!(g.len(), 2, "8 ranges need 16 slots");
    }

    #[test]
    fn elements_are_bare_addresses_or_prefixes() {
        assert_eq!(element(&"192.0.2.2/32".parse().unwrap()), "192.0.2.2");
        assert_eq!(element(&"2001:db8::/64".parse().unwrap()), "2001:db8::/64");
        assert_eq!(element(&"2001:db8::5/128".parse().unwrap()), "2001:db8::5");
    }

    #[test]
    fn config_rejects_unsafe_chain_names() {
        for bad in ["INPUT", "a b", "x;y", &"c".repeat(29)] {
            let cfg = IpsetConfig {
                chain: bad.to_owned(),
                ..IpsetConfig::default()
            };
            assert!(cfg.build().is_err(), "{bad}");
        }
    }
}
