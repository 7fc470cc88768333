//! Country policies in the kernel: the shared plan types ([`GeoPlan`], [`GeoRule`], the
//! [`GeoEnforcer`] trait) and the nftables implementation ([`GeoNft`]).
//!
//! Every policy is one IPv4 and one IPv6 **interval** set in rampart's `inet` table
//! (`g_<policy>_4`, `g_<policy>_6`), shared by all its ports; the port is matched in the
//! rule, never in a concatenated set (per-packet cost, geo.md §4.3). The rules live in their
//! own base chain `geo_input` (hook input, priority -20), so the jails' `prepare` never
//! touches them and geo never touches the jails' chains:
//!
//! ```text
//! ct state established,related accept
//! iif "lo" accept
//! fib saddr type local accept
//! ip saddr @geo_pass_4 accept
//! ip6 saddr @geo_pass_6 accept
//! ip6 saddr { ::, fe80::/10 } accept
//! meta l4proto { tcp } th dport { 5060 } ip saddr != @g_voip_4 drop      # allow, enforce
//! meta l4proto { tcp } th dport { 5060 } ip6 saddr != @g_voip_6 drop
//! ip saddr @g_global_4 drop                                              # deny, all ports
//! meta l4proto { tcp } th dport { 22 } ip saddr != @g_ssh_4 add @g_ssh_s4 { ip saddr }  # notify
//! ```
//!
//! An `accept` here ends only this chain: the jails' chain still sees the packet, so a
//! banned address stays banned on an allowed port.
//!
//! **Loading.** The chain and empty sets are made by `nft -f -` (small scripts, no
//! elements). Elements go over nf_tables netlink: for every set whose contents changed, one
//! `flush` plus the new elements in chunks, all sets in **one transaction**, so a policy is
//! never absent or half loaded. Only then are the rules rewritten (again one `nft -f`
//! transaction, and only when they differ), and sets no policy uses are deleted in it.
//! The `nft` tool never sees an element list (geo.md §0 item 5).
//!
//! **Notify.** A notify policy's rule adds the source address to a dynamic set
//! (`g_<policy>_s4`/`_s6`: `size 65536`, `timeout 10m`; when full, new addresses are not
//! recorded until old ones time out) instead of dropping; [`GeoEnforcer::seen`] reads these
//! sets over netlink and deletes exactly the elements it read.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use rampart_core::{PortRange, Protocol};

use crate::names;
use crate::netlink::{self as nl, attrs, Batch, NfSocket};
use crate::nft::absent_is_empty;
use crate::process::Runner;
use crate::{validate_ident, EnforceError};

/// The base chain of the country policies in rampart's table.
pub const GEO_CHAIN: &str = "geo_input";
/// Priority of [`GEO_CHAIN`]: before the jails' chains (`-10`).
const GEO_PRIORITY: i32 = -20;
/// Longest policy name: ipset names (`rgeos4_<name>`) must stay within 31 bytes.
pub const GEO_NAME_MAX: usize = 16;
/// Addresses one notify set keeps before it stops recording (until elements time out).
pub const SEEN_SET_SIZE: u32 = 65_536;
/// How long a notify set keeps an address it recorded.
pub const SEEN_TIMEOUT: Duration = Duration::from_secs(600);

const NFT_TIMEOUT: Duration = Duration::from_secs(120);
const PASS_4: &str = "geo_pass_4";
const PASS_6: &str = "geo_pass_6";
/// Elements per netlink message are chosen so the element list stays below this.
const ELEMENTS_BUDGET: usize = 60_000;

// nf_tables attributes (linux/netfilter/nf_tables.h).
const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;

/// What a policy does with the addresses its set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeoAction {
    /// Only the set may reach the ports: drop sources **not** in the set.
    Allow,
    /// The set may not reach the ports: drop sources in the set.
    Deny,
}

/// One compiled country policy, as the kernel will hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoRule {
    /// The policy's name (`[a-z0-9_]`, at most [`GEO_NAME_MAX`] bytes, starting with a
    /// letter); it names the sets.
    pub name: String,
    /// Allow-list or deny-list.
    pub action: GeoAction,
    /// `true`: record the first contact of unexpected sources instead of dropping them.
    pub notify: bool,
    /// Protocols of `ports` (unused when `ports` is empty).
    pub protocols: Vec<Protocol>,
    /// Destination ports the policy guards; empty: all traffic.
    pub ports: Vec<PortRange>,
    /// The IPv4 set (minimal, sorted, not overlapping).
    pub v4: Vec<Ipv4Net>,
    /// The IPv6 set.
    pub v6: Vec<Ipv6Net>,
}

/// Everything the country policies need in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoPlan {
    /// The policies (names unique).
    pub rules: Vec<GeoRule>,
    /// Sources that always pass every policy (the jails' allowlists).
    pub pass: Vec<ipnet::IpNet>,
}

/// What one [`GeoEnforcer::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoApplied {
    /// Sets whose contents were replaced (name, elements sent); unchanged sets are skipped.
    pub loaded: Vec<(String, usize)>,
    /// Whether the rules were rewritten.
    pub rules_rewritten: bool,
    /// Wall time of the element transaction.
    pub load_time: Duration,
}

/// A kernel backend for country policies.
pub trait GeoEnforcer: std::fmt::Debug + Send {
    /// The backend's name (`nftables`, `ipset`, `log-only`).
    fn name(&self) -> &'static str;
    /// Makes the kernel hold exactly `plan`: sets replaced atomically, rules rewritten only
    /// when they differ, objects of removed policies deleted.
    fn apply(&mut self, plan: &GeoPlan) -> Result<GeoApplied, EnforceError>;
    /// Sources recorded by notify policies since the last call: (policy, address).
    fn seen(&mut self) -> Result<Vec<(String, IpAddr)>, EnforceError>;
    /// Removes every country-policy object.
    fn remove(&mut self) -> Result<(), EnforceError>;
}

/// Checks a policy name: `[a-z][a-z0-9_]*`, at most [`GEO_NAME_MAX`] bytes.
pub fn check_policy_name(name: &str) -> Result<(), EnforceError> {
    let ok = !name.is_empty()
        && name.len() <= GEO_NAME_MAX
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EnforceError::InvalidName {
            what: "geo policy",
            name: name.to_owned(),
        })
    }
}

pub(crate) fn check_plan(plan: &GeoPlan) -> Result<(), EnforceError> {
    let mut seen = std::collections::BTreeSet::new();
    for r in &plan.rules {
        check_policy_name(&r.name)?;
        if !seen.insert(&r.name) {
            return Err(EnforceError::InvalidName {
                what: "geo policy (twice)",
                name: r.name.clone(),
            });
        }
        if !r.ports.is_empty() && r.protocols.is_empty() {
            return Err(EnforceError::InvalidName {
                what: "geo policy without protocol",
                name: r.name.clone(),
            });
        }
    }
    Ok(())
}

/// Merges sorted or unsorted CIDRs into sorted, disjoint, non-adjacent inclusive ranges.
pub(crate) fn ranges_v4(nets: &[Ipv4Net]) -> Vec<(u32, u32)> {
    let mut r: Vec<(u32, u32)> = nets
        .iter()
        .map(|n| (u32::from(n.network()), u32::from(n.broadcast())))
        .collect();
    merge(&mut r);
    r
}

/// IPv6 counterpart of [`ranges_v4`].
pub(crate) fn ranges_v6(nets: &[Ipv6Net]) -> Vec<(u128, u128)> {
    let mut r: Vec<(u128, u128)> = nets
        .iter()
        .map(|n| (u128::from(n.network()), u128::from(n.broadcast())))
        .collect();
    merge(&mut r);
    r
}

fn merge<T: Ord + Copy + num_like::One>(r: &mut Vec<(T, T)>) {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for &(s, e) in r.iter() {
        match out.last_mut() {
            Some(last) if last.1 >= s || last.1.succ() == Some(s) => {
                if e > last.1 {
                    last.1 = e;
                }
            }
            _ => out.push((s, e)),
        }
    }
    *r = out;
}

mod num_like {
    /// `x + 1` without overflow.
    pub trait One: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl One for u32 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl One for u128 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
}

/// A set's wanted contents as interval keys: (start key, optional end key = last + 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Contents {
    V4(Vec<(u32, u32)>),
    V6(Vec<(u128, u128)>),
}

impl Contents {
    fn key_len(&self) -> usize {
        match self {
            Contents::V4(_) => 4,
            Contents::V6(_) => 16,
        }
    }

    fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }

    /// Elements in kernel form: (key bytes, is interval end).
    fn elements(&self) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        match self {
            Contents::V4(r) => {
                out.reserve(r.len() * 2);
                for &(s, e) in r {
                    out.push((s.to_be_bytes().to_vec(), false));
                    if let Some(end) = e.checked_add(1) {
                        out.push((end.to_be_bytes().to_vec(), true));
                    }
                }
            }
            Contents::V6(r) => {
                out.reserve(r.len() * 2);
                for &(s, e) in r {
                    out.push((s.to_be_bytes().to_vec(), false));
                    if let Some(end) = e.checked_add(1) {
                        out.push((end.to_be_bytes().to_vec(), true));
                    }
                }
            }
        }
        out
    }
}

/// Configuration of [`GeoNft`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoNftConfig {
    /// rampart's `inet` table (the same as the jails').
    pub table: String,
    /// Work in the network namespace bound at this path (tests).
    pub netns: Option<PathBuf>,
}

impl GeoNftConfig {
    /// Validates the table name and opens the netlink socket.
    pub fn build(self) -> Result<GeoNft, EnforceError> {
        validate_ident("table", &self.table)?;
        Ok(GeoNft {
            runner: Runner::new(self.netns.as_deref(), NFT_TIMEOUT)?,
            sock: NfSocket::open(self.netns.as_deref())?,
            table: self.table,
            loaded: HashMap::new(),
        })
    }
}

/// Country policies in nftables (see the module documentation).
#[derive(Debug)]
pub struct GeoNft {
    table: String,
    runner: Runner,
    sock: NfSocket,
    /// Fingerprint of what this process last loaded into each set (bounded by the
    /// configured policies: entries of removed sets are dropped on apply).
    loaded: HashMap<String, u64>,
}

/// What the table holds now (geo objects only).
#[derive(Debug, Default)]
struct GeoState {
    /// name -> (flags, key_len)
    sets: BTreeMap<String, (u32, u32)>,
    chain: bool,
    comments: Vec<String>,
}

/// A desired set.
#[derive(Debug)]
struct SetSpec {
    name: String,
    decl: String,
    flags: u32,
    key_len: u32,
}

fn set_v4(name: &str) -> String {
    format!("g_{name}_4")
}
fn set_v6(name: &str) -> String {
    format!("g_{name}_6")
}
fn seen_v4(name: &str) -> String {
    format!("g_{name}_s4")
}
fn seen_v6(name: &str) -> String {
    format!("g_{name}_s6")
}

/// Whether a set name is one of the geo sets (never a jail's: those start with `j_`).
fn is_geo_set(name: &str) -> bool {
    name.starts_with("g_") || name == PASS_4 || name == PASS_6
}

/// The `meta l4proto ... th dport ... ` prefix of a rule (empty for all traffic).
pub(crate) fn match_ports(protocols: &[Protocol], ports: &[PortRange]) -> String {
    if ports.is_empty() {
        return String::new();
    }
    let mut protos: Vec<String> = protocols.iter().map(|p| p.to_string()).collect();
    protos.sort();
    protos.dedup();
    let mut ports = ports.to_vec();
    ports.sort();
    ports.dedup();
    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    format!(
        "meta l4proto {{ {} }} th dport {{ {} }} ",
        protos.join(", "),
        ports.join(", ")
    )
}

/// The desired rule texts of [`GEO_CHAIN`], in order.
pub(crate) fn rule_texts(plan: &GeoPlan) -> Vec<String> {
    let mut v = vec![
        "ct state established,related accept".to_owned(),
        "iif \"lo\" accept".to_owned(),
        "fib saddr type local accept".to_owned(),
        format!("ip saddr @{PASS_4} accept"),
        format!("ip6 saddr @{PASS_6} accept"),
        "ip6 saddr { ::, fe80::/10 } accept".to_owned(),
    ];
    let mut rules: Vec<&GeoRule> = plan.rules.iter().collect();
    rules.sort_by(|a, b| a.name.cmp(&b.name));
    for r in rules {
        let ports = match_ports(&r.protocols, &r.ports);
        let neg = match r.action {
            GeoAction::Allow => "!= ",
            GeoAction::Deny => "",
        };
        for (fam, set, seen) in [
            ("ip", set_v4(&r.name), seen_v4(&r.name)),
            ("ip6", set_v6(&r.name), seen_v6(&r.name)),
        ] {
            let verdict = if r.notify {
                format!("add @{seen} {{ {fam} saddr }}")
            } else {
                "drop".to_owned()
            };
            v.push(format!("{ports}{fam} saddr {neg}@{set} {verdict}"));
        }
    }
    v
}

impl GeoNft {
    /// The table the policies live in.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn read_state(&mut self) -> Result<GeoState, EnforceError> {
        let mut t = crate::nft::read_table_state(&mut self.sock, &self.table)?;
        Ok(GeoState {
            sets: t
                .sets
                .into_iter()
                .filter(|(name, _)| is_geo_set(name))
                .map(|(name, i)| (name, (i.flags, i.key_len)))
                .collect(),
            chain: t.chains.contains_key(GEO_CHAIN),
            comments: t.rules.remove(GEO_CHAIN).unwrap_or_default(),
        })
    }

    fn wanted_sets(plan: &GeoPlan) -> Vec<SetSpec> {
        let interval = |name: String, v6: bool| SetSpec {
            decl: format!(
                "{{ type {}; flags interval; }}",
                if v6 { "ipv6_addr" } else { "ipv4_addr" }
            ),
            name,
            flags: NFT_SET_INTERVAL,
            key_len: if v6 { 16 } else { 4 },
        };
        let mut v = vec![
            interval(PASS_4.to_owned(), false),
            interval(PASS_6.to_owned(), true),
        ];
        for r in &plan.rules {
            v.push(interval(set_v4(&r.name), false));
            v.push(interval(set_v6(&r.name), true));
            if r.notify {
                for (name, v6) in [(seen_v4(&r.name), false), (seen_v6(&r.name), true)] {
                    v.push(SetSpec {
                        decl: format!(
                            "{{ type {}; size {SEEN_SET_SIZE}; flags dynamic,timeout; timeout {}s; }}",
                            if v6 { "ipv6_addr" } else { "ipv4_addr" },
                            SEEN_TIMEOUT.as_secs()
                        ),
                        name,
                        flags: NFT_SET_TIMEOUT | NFT_SET_EVAL,
                        key_len: if v6 { 16 } else { 4 },
                    });
                }
            }
        }
        v
    }

    fn apply_inner(&mut self, plan: &GeoPlan) -> Result<GeoApplied, EnforceError> {
        check_plan(plan)?;
        let t = self.table.clone();
        let st = self.read_state()?;
        let want = Self::wanted_sets(plan);
        const CHECKED: u32 = NFT_SET_INTERVAL | NFT_SET_TIMEOUT | NFT_SET_EVAL;
        let ok = |s: &SetSpec| {
            st.sets
                .get(&s.name)
                .is_some_and(|(f, k)| f & CHECKED == s.flags && *k == s.key_len)
        };
        let texts = rule_texts(plan);
        let fp = names::fnv1a64(format!("{t}|{GEO_PRIORITY}|{}", texts.join("\n")).as_bytes());
        let comments: Vec<String> = (0..texts.len())
            .map(|i| format!("rampart-geo:{fp:016x}:{i}"))
            .collect();

        // 1. Chain and sets (no elements, no rule change unless a set has the wrong type).
        let bad: Vec<&SetSpec> = want
            .iter()
            .filter(|s| st.sets.contains_key(&s.name) && !ok(s))
            .collect();
        let missing: Vec<&SetSpec> = want.iter().filter(|s| !ok(s)).collect();
        let mut rules_flushed = false;
        if !st.chain || !missing.is_empty() {
            let mut sc = String::new();
            let _ = writeln!(sc, "add table inet {t}");
            if !bad.is_empty() && st.chain {
                // A set of the wrong type can only go when no rule names it.
                let _ = writeln!(sc, "flush chain inet {t} {GEO_CHAIN}");
                rules_flushed = true;
            }
            for s in &bad {
                let _ = writeln!(sc, "delete set inet {t} {}", s.name);
            }
            let _ = writeln!(
                sc,
                "add chain inet {t} {GEO_CHAIN} {{ type filter hook input priority {GEO_PRIORITY}; policy accept; }}"
            );
            for s in &missing {
                let _ = writeln!(sc, "add set inet {t} {} {}", s.name, s.decl);
                self.loaded.remove(&s.name);
            }
            self.runner
                .run_ok(crate::NFT, &["-f", "-"], sc.as_bytes())?;
        }

        // 2. Elements: one transaction for every set that changed.
        let mut contents: Vec<(String, Contents)> = vec![
            (PASS_4.to_owned(), Contents::V4(pass_v4(&plan.pass))),
            (PASS_6.to_owned(), Contents::V6(pass_v6(&plan.pass))),
        ];
        for r in &plan.rules {
            contents.push((set_v4(&r.name), Contents::V4(ranges_v4(&r.v4))));
            contents.push((set_v6(&r.name), Contents::V6(ranges_v6(&r.v6))));
        }
        let mut batch = Batch::new();
        let mut applied = GeoApplied::default();
        let mut fingerprints = Vec::new();
        for (set, c) in &contents {
            let fp = c.fingerprint();
            if self.loaded.get(set) == Some(&fp) {
                continue;
            }
            let elems = c.elements();
            self.write_flush(&mut batch, set);
            for chunk in elems.chunks(chunk_len(c.key_len())) {
                self.write_interval_elems(&mut batch, set, c.key_len(), chunk);
            }
            applied.loaded.push((set.clone(), elems.len()));
            fingerprints.push((set.clone(), fp));
        }
        let t0 = Instant::now();
        if !applied.loaded.is_empty() {
            if let Err(e) = self.sock.commit(batch) {
                // Nothing of the transaction was applied; the next apply loads everything.
                self.loaded.clear();
                return Err(e);
            }
        }
        applied.load_time = t0.elapsed();
        for (set, fp) in fingerprints {
            self.loaded.insert(set, fp);
        }

        // 3. Rules (and sets no policy uses), in one nft transaction.
        let obsolete: Vec<&String> = st
            .sets
            .keys()
            .filter(|n| !want.iter().any(|w| &w.name == *n))
            .collect();
        let rules_current = !rules_flushed && st.comments == comments;
        if !rules_current || !obsolete.is_empty() {
            let mut sc = String::new();
            if !rules_current {
                let _ = writeln!(sc, "flush chain inet {t} {GEO_CHAIN}");
                for (text, comment) in texts.iter().zip(&comments) {
                    let _ = writeln!(
                        sc,
                        "add rule inet {t} {GEO_CHAIN} {text} comment \"{comment}\""
                    );
                }
            }
            for n in &obsolete {
                let _ = writeln!(sc, "delete set inet {t} {n}");
                self.loaded.remove(n.as_str());
            }
            self.runner
                .run_ok(crate::NFT, &["-f", "-"], sc.as_bytes())?;
            applied.rules_rewritten = !rules_current;
        }
        self.loaded.retain(|n, _| want.iter().any(|w| &w.name == n));
        Ok(applied)
    }

    fn write_flush(&self, batch: &mut Batch, set: &str) {
        let m = batch.begin(
            nl::NFT_MSG_DELSETELEM,
            0,
            nl::NFPROTO_INET,
            format!("flush set inet {} {set}", self.table),
        );
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        batch.end();
    }

    fn write_interval_elems(
        &self,
        batch: &mut Batch,
        set: &str,
        key_len: usize,
        elems: &[(Vec<u8>, bool)],
    ) {
        let m = batch.begin(
            nl::NFT_MSG_NEWSETELEM,
            nl::NLM_F_CREATE,
            nl::NFPROTO_INET,
            format!(
                "add {} elements to set inet {} {set}",
                elems.len(),
                self.table
            ),
        );
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        let list = m.nest_begin(NFTA_SET_ELEM_LIST_ELEMENTS);
        for (key, end) in elems {
            let e = m.nest_begin(NFTA_LIST_ELEM);
            let k = m.nest_begin(NFTA_SET_ELEM_KEY);
            m.attr(NFTA_DATA_VALUE, &key[..key_len]);
            m.nest_end(k);
            if *end {
                m.attr(
                    NFTA_SET_ELEM_FLAGS,
                    &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
                );
            }
            m.nest_end(e);
        }
        m.nest_end(list);
        batch.end();
    }

    fn write_delete_keys(&self, batch: &mut Batch, set: &str, keys: &[Vec<u8>]) {
        let m = batch.begin(
            nl::NFT_MSG_DELSETELEM,
            0,
            nl::NFPROTO_INET,
            format!(
                "delete {} elements from set inet {} {set}",
                keys.len(),
                self.table
            ),
        );
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        let list = m.nest_begin(NFTA_SET_ELEM_LIST_ELEMENTS);
        for key in keys {
            let e = m.nest_begin(NFTA_LIST_ELEM);
            let k = m.nest_begin(NFTA_SET_ELEM_KEY);
            m.attr(NFTA_DATA_VALUE, key);
            m.nest_end(k);
            m.nest_end(e);
        }
        m.nest_end(list);
        batch.end();
    }

    fn seen_inner(&mut self) -> Result<Vec<(String, IpAddr)>, EnforceError> {
        let st = self.read_state()?;
        let table = self.table.clone();
        let mut out = Vec::new();
        let mut batch = Batch::new();
        for set in st.sets.keys() {
            let Some(rest) = set.strip_prefix("g_") else {
                continue;
            };
            let (policy, v6) = if let Some(p) = rest.strip_suffix("_s4") {
                (p, false)
            } else if let Some(p) = rest.strip_suffix("_s6") {
                (p, true)
            } else {
                continue;
            };
            let mut keys: Vec<Vec<u8>> = Vec::new();
            let r = self.sock.dump(
                nl::NFT_MSG_GETSETELEM,
                nl::NFPROTO_INET,
                "notify set elements",
                |m| {
                    m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &table);
                    m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
                },
                |body| {
                    for (ty, list) in attrs(body) {
                        if ty != NFTA_SET_ELEM_LIST_ELEMENTS {
                            continue;
                        }
                        for (_, elem) in attrs(list) {
                            for (aty, a) in attrs(elem) {
                                if aty == NFTA_SET_ELEM_KEY {
                                    if let Some((_, v)) =
                                        attrs(a).find(|(t, _)| *t == NFTA_DATA_VALUE)
                                    {
                                        keys.push(v.to_vec());
                                    }
                                }
                            }
                        }
                    }
                    Ok(())
                },
            );
            absent_is_empty(r)?;
            keys.sort();
            keys.dedup();
            for k in &keys {
                let ip = if v6 {
                    <[u8; 16]>::try_from(k.as_slice())
                        .ok()
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
                } else {
                    <[u8; 4]>::try_from(k.as_slice())
                        .ok()
                        .map(|b| IpAddr::V4(Ipv4Addr::from(b)))
                };
                if let Some(ip) = ip {
                    out.push((policy.to_owned(), ip));
                }
            }
            let key_len = if v6 { 16 } else { 4 };
            for chunk in keys.chunks(chunk_len(key_len)) {
                self.write_delete_keys(&mut batch, set, chunk);
            }
        }
        // Elements that timed out meanwhile make the delete fail with ENOENT: the read
        // addresses are reported anyway and the rest expire by themselves.
        match self.sock.commit(batch) {
            Ok(()) | Err(EnforceError::Rejected { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }

    fn remove_inner(&mut self) -> Result<(), EnforceError> {
        let st = self.read_state()?;
        if !st.chain && st.sets.is_empty() {
            return Ok(());
        }
        let t = &self.table;
        let mut sc = String::new();
        if st.chain {
            let _ = writeln!(sc, "flush chain inet {t} {GEO_CHAIN}");
            let _ = writeln!(sc, "delete chain inet {t} {GEO_CHAIN}");
        }
        for n in st.sets.keys() {
            let _ = writeln!(sc, "delete set inet {t} {n}");
        }
        self.runner
            .run_ok(crate::NFT, &["-f", "-"], sc.as_bytes())?;
        self.loaded.clear();
        Ok(())
    }
}

impl GeoEnforcer for GeoNft {
    fn name(&self) -> &'static str {
        "nftables"
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

/// A [`GeoEnforcer`] that enforces nothing (`--dry-run`, the log-only backend): it keeps
/// the last plan so the daemon can report it.
#[derive(Debug, Default)]
pub struct GeoLogOnly {
    /// The last plan applied.
    pub last: Option<GeoPlan>,
}

impl GeoEnforcer for GeoLogOnly {
    fn name(&self) -> &'static str {
        "log-only"
    }
    fn apply(&mut self, plan: &GeoPlan) -> Result<GeoApplied, EnforceError> {
        check_plan(plan)?;
        self.last = Some(plan.clone());
        Ok(GeoApplied::default())
    }
    fn seen(&mut self) -> Result<Vec<(String, IpAddr)>, EnforceError> {
        Ok(Vec::new())
    }
    fn remove(&mut self) -> Result<(), EnforceError> {
        self.last = None;
        Ok(())
    }
}

fn pass_v4(pass: &[ipnet::IpNet]) -> Vec<(u32, u32)> {
    let v: Vec<Ipv4Net> = pass
        .iter()
        .filter_map(|n| match n {
            ipnet::IpNet::V4(n) => Some(n.trunc()),
            ipnet::IpNet::V6(_) => None,
        })
        .collect();
    ranges_v4(&v)
}

fn pass_v6(pass: &[ipnet::IpNet]) -> Vec<(u128, u128)> {
    let v: Vec<Ipv6Net> = pass
        .iter()
        .filter_map(|n| match n {
            ipnet::IpNet::V6(n) => Some(n.trunc()),
            ipnet::IpNet::V4(_) => None,
        })
        .collect();
    ranges_v6(&v)
}

/// Interval elements per message so the element list stays within one attribute:
/// LIST_ELEM nest (4) + KEY nest (4) + DATA_VALUE (4 + key) + FLAGS (8).
fn chunk_len(key_len: usize) -> usize {
    let per = 20 + key_len;
    (ELEMENTS_BUDGET.min(nl::MAX_ATTR_LEN - 64) / per).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn adjacent_and_overlapping_cidrs_merge_into_ranges() {
        let r = ranges_v4(&[
            n4("10.0.1.0/24"),
            n4("10.0.0.0/24"),
            n4("10.0.0.128/25"),
            n4("10.0.3.0/24"),
            n4("255.255.255.255/32"),
        ]);
        assert_eq!(
            r,
            vec![
                (
                    u32::from(Ipv4Addr::new(10, 0, 0, 0)),
                    u32::from(Ipv4Addr::new(10, 0, 1, 255))
                ),
                (
                    u32::from(Ipv4Addr::new(10, 0, 3, 0)),
                    u32::from(Ipv4Addr::new(10, 0, 3, 255))
                ),
                (u32::MAX, u32::MAX),
            ]
        );
    }

    #[test]
    fn interval_elements_end_one_past_the_range_except_at_the_top() {
        let c = Contents::V4(vec![(10, 20), (u32::MAX - 1, u32::MAX)]);
        let e = c.elements();
        assert_eq!(
            e,
            vec![
                (10u32.to_be_bytes().to_vec(), false),
                (21u32.to_be_bytes().to_vec(), true),
                ((u32::MAX - 1).to_be_bytes().to_vec(), false),
            ]
        );
    }

    #[test]
    fn allow_rules_negate_the_set_and_notify_rules_record_instead_of_dropping() {
        let plan = GeoPlan {
            rules: vec![
                GeoRule {
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
                },
                GeoRule {
                    name: "global".into(),
                    action: GeoAction::Deny,
                    notify: true,
                    protocols: vec![],
                    ports: vec![],
                    v4: vec![],
                    v6: vec![],
                },
            ],
            pass: vec![],
        };
        let t = rule_texts(&plan);
        assert!(t.contains(&"ip saddr @g_global_4 add @g_global_s4 { ip saddr }".to_owned()));
        assert!(t.contains(
            &"meta l4proto { tcp, udp } th dport { 5060-5061 } ip6 saddr != @g_voip_6 drop"
                .to_owned()
        ));
        assert_eq!(t[0], "ct state established,related accept");
    }

    #[test]
    fn policy_names_fit_every_backend() {
        for good in ["voip", "a", "web_2", "abcdefghijklmnop"] {
            assert!(check_policy_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Voip", "2web", "a-b", "abcdefghijklmnopq", "a b"] {
            assert!(check_policy_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_stay_inside_one_attribute() {
        for len in [4, 16] {
            assert!(chunk_len(len) * (20 + len) + 64 < usize::from(u16::MAX));
        }
    }
}
