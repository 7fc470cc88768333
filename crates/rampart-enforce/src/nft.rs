//! The nftables backend: rampart's own `inet` table, two timeout sets per jail, and drop
//! rules in base chains on `input` (and `forward` when configured).
//!
//! Element changes (`ban`, `unban`) and reads (`list`) talk nf_tables netlink directly: one
//! batch is one kernel transaction, and its cost does not depend on other tables (the `nft`
//! 1.0.6 tool downloads every interval set of the ruleset before it adds one element).
//! `prepare` reads the table's sets, chains and rules over netlink and only runs
//! `nft -f -` when something differs from what the scopes ask for.
//!
//! Rules, per jail and per chain (the set names are described in [`crate::names`]):
//!
//! ```text
//! meta l4proto { tcp, udp } th dport { 22, 1000-2000 } ip saddr @j_<jail>_4 drop
//! meta l4proto { tcp, udp } th dport { 22, 1000-2000 } ip6 saddr & ffff:ffff:ffff:ffff:: @j_<jail>_6p64 drop
//! ```
//!
//! (without the `meta l4proto ... th dport ...` part when the scope has no ports). Every rule
//! carries the comment `rampart:<fingerprint>:<n>`, where the fingerprint covers the whole
//! desired ruleset; `prepare` compares comments to tell whether the rules are current.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rampart_core::{Backend, BackendError, Entry, JailName, Scope, Timestamp};
use serde::Deserialize;

use crate::names::{self, NftSetKind};
use crate::netlink::{self as nl, attrs, be32, be64, cstr, Batch, DumpEnd, MsgBuf, NfSocket};
use crate::process::Runner;
use crate::{check_scopes, validate_ident, EnforceError};

/// The `nft` tool, used by `prepare` only.
pub const NFT: &str = "/usr/sbin/nft";

const NAME: &str = "nftables";

/// Longest kernel timeout rampart asks for (3650 days); a longer ban is stored with this
/// timeout and the daemon's reconcile re-adds it before it runs out.
pub const NFT_MAX_TIMEOUT: Duration = Duration::from_secs(3650 * 86_400);

/// rampart's set for probing kernel behaviour; no rule refers to it.
const PROBE_SET: &str = "probe_refresh";

/// How long `nft -f` may run.
const NFT_TIMEOUT: Duration = Duration::from_secs(60);

/// Elements per netlink message are chosen so the element list attribute stays below this.
const ELEMENTS_BUDGET: usize = 60_000;

/// A dump the kernel flags as interrupted (the set changed meanwhile) is retried this often.
const DUMP_RETRIES: usize = 5;

// nf_tables attributes (linux/netfilter/nf_tables.h).
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_OBJECT: u32 = 0x40;
const NFT_SET_CONCAT: u32 = 0x80;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_DATA_VALUE: u16 = 1;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_USERDATA: u16 = 7;
/// `NFTNL_UDATA_RULE_COMMENT`: the comment TLV in a rule's user data.
const UDATA_RULE_COMMENT: u8 = 0;

const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_ACCEPT: u32 = 1;
/// `priority filter - 10`: before ordinary filter chains.
const CHAIN_PRIORITY: i32 = -10;

fn default_table() -> String {
    "rampart".to_owned()
}

/// Configuration of the nftables backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NftConfig {
    /// Name of rampart's own `inet` table (default `rampart`). rampart creates, rewrites and
    /// deletes objects only inside it.
    #[serde(default = "default_table")]
    pub table: String,
    /// Also drop banned sources in a base chain on the `forward` hook (containers, routed
    /// traffic).
    #[serde(default)]
    pub forward: bool,
    /// Work in the network namespace bound at this path (`/run/netns/NAME`) instead of the
    /// current one; for tests.
    #[serde(default)]
    pub netns: Option<PathBuf>,
}

impl Default for NftConfig {
    fn default() -> Self {
        Self {
            table: default_table(),
            forward: false,
            netns: None,
        }
    }
}

impl NftConfig {
    /// Validates the configuration and opens the netlink socket.
    pub fn build(self) -> Result<NftBackend, EnforceError> {
        validate_ident("table", &self.table)?;
        let runner = Runner::new(self.netns.as_deref(), NFT_TIMEOUT)?;
        let sock = NfSocket::open(self.netns.as_deref())?;
        Ok(NftBackend {
            table: self.table,
            forward: self.forward,
            runner,
            sock,
            jails: BTreeMap::new(),
            last_prepare_rewrote: false,
            refresh: None,
        })
    }
}

/// A jail's sets, as the last `prepare` made them.
#[derive(Debug, Clone)]
struct JailSets {
    v4: String,
    v6: String,
    v6_prefix: u8,
}

/// Bans in nftables sets with per-element timeouts. Built by [`NftConfig::build`].
#[derive(Debug)]
pub struct NftBackend {
    table: String,
    forward: bool,
    runner: Runner,
    sock: NfSocket,
    /// Jails of the last successful `prepare` (bounded by the configuration).
    jails: BTreeMap<JailName, JailSets>,
    last_prepare_rewrote: bool,
    /// How bans refresh present elements; `None` until probed.
    refresh: Option<TimeoutRefresh>,
}

/// How a ban sets the timeout of an element that is already in a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutRefresh {
    /// A plain add updates the timeout (Linux 6.11 and later): one message per chunk.
    Update,
    /// The kernel keeps the old timeout on a plain add: each chunk is added (a no-op when
    /// present), deleted and added again with the new timeout, in the same transaction.
    Replace,
}

/// A set as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetInfo {
    pub(crate) flags: u32,
    pub(crate) key_len: u32,
}

/// A chain as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainInfo {
    hook: Option<(u32, i32)>,
    policy: Option<u32>,
    kind: String,
}

/// What rampart's table holds now (the jails' objects and the geo policies' alike).
#[derive(Debug, Default)]
pub(crate) struct TableState {
    pub(crate) sets: BTreeMap<String, SetInfo>,
    pub(crate) chains: BTreeMap<String, ChainInfo>,
    /// Rule comments per chain, in order (`""` for a rule without one).
    pub(crate) rules: BTreeMap<String, Vec<String>>,
}

/// One desired base chain.
#[derive(Debug)]
struct ChainSpec {
    name: &'static str,
    hook_name: &'static str,
    hook: u32,
}

/// A key of an element: the first 4 (IPv4) or all 16 (IPv6) bytes are used.
type Key = [u8; 16];

fn key_of(net: &IpNet) -> Key {
    let mut k = [0u8; 16];
    match net {
        IpNet::V4(n) => k[..4].copy_from_slice(&n.network().octets()),
        IpNet::V6(n) => k.copy_from_slice(&n.network().octets()),
    }
    k
}

/// The timeout of an entry at `now`, in kernel terms (`None` when already expired).
pub(crate) fn remaining(expires: Timestamp, now: Timestamp, cap: Duration) -> Option<Duration> {
    let left = expires.duration_since(now);
    if left.is_zero() {
        None
    } else {
        Some(left.min(cap))
    }
}

impl NftBackend {
    /// The table rampart owns.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether the last `prepare` had to run `nft` (`false`: everything was in place and it
    /// only read the table over netlink).
    pub fn last_prepare_rewrote(&self) -> bool {
        self.last_prepare_rewrote
    }

    fn chain_specs(&self) -> Vec<ChainSpec> {
        let mut v = vec![ChainSpec {
            name: "input",
            hook_name: "input",
            hook: NF_INET_LOCAL_IN,
        }];
        if self.forward {
            v.push(ChainSpec {
                name: "forward",
                hook_name: "forward",
                hook: NF_INET_FORWARD,
            });
        }
        v
    }

    fn read_state(&mut self) -> Result<TableState, EnforceError> {
        read_table_state(&mut self.sock, &self.table)
    }

    fn prepare_inner(&mut self, scopes: &[Scope]) -> Result<(), EnforceError> {
        check_scopes(scopes)?;
        let t = self.table.clone();
        let chains = self.chain_specs();

        // The desired sets and rules.
        let mut jails = BTreeMap::new();
        let mut want_sets: BTreeMap<String, u32> = BTreeMap::new();
        want_sets.insert(PROBE_SET.to_owned(), 4);
        let mut rule_texts: Vec<String> = Vec::new();
        for s in sorted(scopes) {
            let sets = JailSets {
                v4: names::nft_set_v4(&s.jail),
                v6: names::nft_set_v6(&s.jail, s.ipv6_prefix),
                v6_prefix: s.ipv6_prefix,
            };
            want_sets.insert(sets.v4.clone(), 4);
            want_sets.insert(sets.v6.clone(), 16);
            let ports = match_ports(s);
            rule_texts.push(format!("{ports}ip saddr @{} drop", sets.v4));
            let src = if s.ipv6_prefix == 128 {
                "ip6 saddr".to_owned()
            } else {
                let mask = u128::MAX << (128 - u32::from(s.ipv6_prefix));
                format!("ip6 saddr & {}", Ipv6Addr::from(mask))
            };
            rule_texts.push(format!("{ports}{src} @{} drop", sets.v6));
            jails.insert(s.jail.clone(), sets);
        }
        let mut fp_input = format!("{t}|{CHAIN_PRIORITY}|");
        for c in &chains {
            fp_input.push_str(c.name);
            fp_input.push('|');
        }
        for r in &rule_texts {
            fp_input.push_str(r);
            fp_input.push('\n');
        }
        let fp = names::fnv1a64(fp_input.as_bytes());
        let comments: Vec<String> = (0..rule_texts.len())
            .map(|i| format!("rampart:{fp:016x}:{i}"))
            .collect();

        let st = self.read_state()?;

        // Compare.
        let chain_ok = |c: &ChainSpec| {
            st.chains.get(c.name).is_some_and(|info| {
                info.hook == Some((c.hook, CHAIN_PRIORITY))
                    && info.policy == Some(NF_ACCEPT)
                    && info.kind == "filter"
            })
        };
        let set_ok = |name: &str, key_len: u32| {
            st.sets.get(name).is_some_and(|i| {
                i.key_len == key_len
                    && i.flags
                        & (NFT_SET_TIMEOUT
                            | NFT_SET_INTERVAL
                            | NFT_SET_MAP
                            | NFT_SET_OBJECT
                            | NFT_SET_CONCAT)
                        == NFT_SET_TIMEOUT
            })
        };
        let ours_unwanted: Vec<&str> = ["input", "forward"]
            .into_iter()
            .filter(|n| st.chains.contains_key(*n) && !chains.iter().any(|c| c.name == *n))
            .collect();
        let obsolete_sets: Vec<&String> = st
            .sets
            .keys()
            .filter(|n| names::parse_nft_set(n).is_some() && !want_sets.contains_key(*n))
            .collect();
        let bad_sets: Vec<&String> = want_sets
            .iter()
            .filter(|(n, len)| st.sets.contains_key(*n) && !set_ok(n, **len))
            .map(|(n, _)| n)
            .collect();
        let current = chains.iter().all(chain_ok)
            && ours_unwanted.is_empty()
            && obsolete_sets.is_empty()
            && want_sets.iter().all(|(n, len)| set_ok(n, *len))
            && chains.iter().all(|c| {
                st.rules
                    .get(c.name)
                    .map_or(comments.is_empty(), |r| *r == comments)
            });
        if current {
            self.jails = jails;
            self.last_prepare_rewrote = false;
            return Ok(());
        }

        // Rewrite: one nft transaction.
        let mut sc = String::new();
        let _ = writeln!(sc, "add table inet {t}");
        for c in &chains {
            if st.chains.contains_key(c.name) {
                let _ = writeln!(sc, "flush chain inet {t} {}", c.name);
                if !chain_ok(c) {
                    let _ = writeln!(sc, "delete chain inet {t} {}", c.name);
                }
            }
        }
        for name in &ours_unwanted {
            let _ = writeln!(sc, "flush chain inet {t} {name}");
            let _ = writeln!(sc, "delete chain inet {t} {name}");
        }
        for name in obsolete_sets.iter().chain(bad_sets.iter()) {
            let _ = writeln!(sc, "delete set inet {t} {name}");
        }
        for c in &chains {
            let _ = writeln!(
                sc,
                "add chain inet {t} {} {{ type filter hook {} priority {CHAIN_PRIORITY}; policy accept; }}",
                c.name, c.hook_name
            );
        }
        for (name, len) in &want_sets {
            let ty = if *len == 4 { "ipv4_addr" } else { "ipv6_addr" };
            let _ = writeln!(
                sc,
                "add set inet {t} {name} {{ type {ty}; flags timeout; }}"
            );
        }
        for c in &chains {
            for (text, comment) in rule_texts.iter().zip(&comments) {
                let _ = writeln!(
                    sc,
                    "add rule inet {t} {} {text} comment \"{comment}\"",
                    c.name
                );
            }
        }
        self.runner.run_ok(NFT, &["-f", "-"], sc.as_bytes())?;
        self.jails = jails;
        self.last_prepare_rewrote = true;
        Ok(())
    }

    /// The set and key of an entry, checked against the jail's scope.
    fn target(&self, jail: &JailName, net: &IpNet) -> Result<(&str, Key), EnforceError> {
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
            IpNet::V4(n) if n.prefix_len() == 32 => Ok((sets.v4.as_str(), key_of(net))),
            IpNet::V4(_) => Err(bad("IPv4 bans are single addresses (/32)")),
            IpNet::V6(n) if n.prefix_len() == sets.v6_prefix => {
                Ok((sets.v6.as_str(), key_of(&IpNet::V6(n.trunc()))))
            }
            IpNet::V6(_) => Err(bad("IPv6 bans must have the jail's ipv6_prefix length")),
        }
    }

    fn ban_inner(&mut self, entries: &[Entry], now: Timestamp) -> Result<(), EnforceError> {
        // Last entry wins for duplicates: the call sets each element's expiry to its value.
        let mut per_set: BTreeMap<String, HashMap<Key, u64>> = BTreeMap::new();
        for e in entries {
            let (set, key) = self.target(&e.jail, &e.net)?;
            let Some(left) = remaining(e.expires, now, NFT_MAX_TIMEOUT) else {
                continue;
            };
            let ms = u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            match per_set.get_mut(set) {
                Some(m) => {
                    m.insert(key, ms);
                }
                None => {
                    per_set.insert(set.to_owned(), HashMap::from([(key, ms)]));
                }
            }
        }
        if per_set.is_empty() {
            return Ok(());
        }
        let refresh = self.timeout_refresh();
        let mut batch = Batch::new();
        for (set, elems) in &per_set {
            let elems: Vec<(Key, Option<u64>)> =
                elems.iter().map(|(k, t)| (*k, Some(*t))).collect();
            self.write_ban(&mut batch, set, &elems, refresh);
        }
        self.sock.commit(batch).map_err(|e| self.explain(e))
    }

    /// Writes the messages that add `elems` with their timeouts, or set the timeouts of
    /// those present.
    fn write_ban(
        &self,
        batch: &mut Batch,
        set: &str,
        elems: &[(Key, Option<u64>)],
        refresh: TimeoutRefresh,
    ) {
        let key_len = self.key_len(set);
        for chunk in elems.chunks(chunk_len(key_len, true)) {
            if refresh == TimeoutRefresh::Replace {
                // Add (a no-op when present) and delete, so the final add creates the element
                // afresh with its new timeout: all in the same transaction.
                self.write_elems(batch, nl::NFT_MSG_NEWSETELEM, set, key_len, chunk, "add");
                let keys: Vec<(Key, Option<u64>)> = chunk.iter().map(|(k, _)| (*k, None)).collect();
                self.write_elems(batch, nl::NFT_MSG_DELSETELEM, set, key_len, &keys, "delete");
            }
            self.write_elems(
                batch,
                nl::NFT_MSG_NEWSETELEM,
                set,
                key_len,
                chunk,
                "add with timeout",
            );
        }
    }

    /// How this kernel lets a ban refresh the timeout of a present element; probed once (on
    /// the first ban after a `prepare`), in rampart's own `probe_refresh` set.
    pub fn timeout_refresh(&mut self) -> TimeoutRefresh {
        if let Some(r) = self.refresh {
            return r;
        }
        match self.probe_refresh() {
            Ok(r) => {
                self.refresh = Some(r);
                r
            }
            // Not cached: the probe set may be missing until the next prepare.
            Err(_) => TimeoutRefresh::Replace,
        }
    }

    /// Uses `r` instead of probing (for tests, and for kernels where a probe is unwanted).
    pub fn force_timeout_refresh(&mut self, r: TimeoutRefresh) {
        self.refresh = Some(r);
    }

    /// Adds the probe element with a 2 s timeout, adds it again with 1 h, and reads which
    /// timeout it has; removes it again.
    fn probe_refresh(&mut self) -> Result<TimeoutRefresh, EnforceError> {
        // 192.0.2.0, the network address of TEST-NET-1: never a packet's source.
        let key: Key = [192, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut batch = Batch::new();
        self.write_ban(
            &mut batch,
            PROBE_SET,
            &[(key, Some(2_000))],
            TimeoutRefresh::Replace,
        );
        self.sock.commit(batch)?;
        let mut batch = Batch::new();
        self.write_ban(
            &mut batch,
            PROBE_SET,
            &[(key, Some(3_600_000))],
            TimeoutRefresh::Update,
        );
        self.sock.commit(batch)?;
        let table = self.table.clone();
        let mut expiration = None;
        self.sock.dump(
            nl::NFT_MSG_GETSETELEM,
            nl::NFPROTO_INET,
            "probe set elements",
            |m| {
                m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &table);
                m.attr_str(NFTA_SET_ELEM_LIST_SET, PROBE_SET);
            },
            |body| {
                for (ty, list) in attrs(body) {
                    if ty != NFTA_SET_ELEM_LIST_ELEMENTS {
                        continue;
                    }
                    for (_, elem) in attrs(list) {
                        for (aty, a) in attrs(elem) {
                            if aty == NFTA_SET_ELEM_EXPIRATION {
                                expiration = be64(a);
                            }
                        }
                    }
                }
                Ok(())
            },
        )?;
        let mut batch = Batch::new();
        let none = [(key, None)];
        self.write_elems(
            &mut batch,
            nl::NFT_MSG_NEWSETELEM,
            PROBE_SET,
            4,
            &none,
            "add",
        );
        self.write_elems(
            &mut batch,
            nl::NFT_MSG_DELSETELEM,
            PROBE_SET,
            4,
            &none,
            "delete",
        );
        self.sock.commit(batch)?;
        match expiration {
            Some(ms) if ms > 60_000 => Ok(TimeoutRefresh::Update),
            Some(_) => Ok(TimeoutRefresh::Replace),
            None => Err(EnforceError::Protocol(
                "the probe element was not listed".into(),
            )),
        }
    }

    fn unban_inner(&mut self, entries: &[(JailName, IpNet)]) -> Result<(), EnforceError> {
        let mut per_set: BTreeMap<String, HashSet<Key>> = BTreeMap::new();
        for (jail, net) in entries {
            let (set, key) = self.target(jail, net)?;
            per_set.entry(set.to_owned()).or_default().insert(key);
        }
        let mut batch = Batch::new();
        for (set, keys) in &per_set {
            let key_len = self.key_len(set);
            let elems: Vec<(Key, Option<u64>)> = keys.iter().map(|k| (*k, None)).collect();
            // Add (a no-op when present) then delete: absent entries are not an error.
            for chunk in elems.chunks(chunk_len(key_len, false)) {
                self.write_elems(
                    &mut batch,
                    nl::NFT_MSG_NEWSETELEM,
                    set,
                    key_len,
                    chunk,
                    "add",
                );
                self.write_elems(
                    &mut batch,
                    nl::NFT_MSG_DELSETELEM,
                    set,
                    key_len,
                    chunk,
                    "delete",
                );
            }
        }
        self.sock.commit(batch).map_err(|e| self.explain(e))
    }

    fn key_len(&self, set: &str) -> usize {
        match names::parse_nft_set(set) {
            Some(NftSetKind::V6(..)) => 16,
            // IPv4 jail sets and the probe set.
            _ => 4,
        }
    }

    fn write_elems(
        &self,
        batch: &mut Batch,
        msg: u16,
        set: &str,
        key_len: usize,
        elems: &[(Key, Option<u64>)],
        verb: &str,
    ) {
        let flags = if msg == nl::NFT_MSG_NEWSETELEM {
            nl::NLM_F_CREATE
        } else {
            0
        };
        let label = format!(
            "{verb} {} elements in set inet {} {set}",
            elems.len(),
            self.table
        );
        let m: &mut MsgBuf = batch.begin(msg, flags, nl::NFPROTO_INET, label);
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        let list = m.nest_begin(NFTA_SET_ELEM_LIST_ELEMENTS);
        for (key, timeout) in elems {
            let e = m.nest_begin(NFTA_LIST_ELEM);
            let k = m.nest_begin(NFTA_SET_ELEM_KEY);
            m.attr(NFTA_DATA_VALUE, &key[..key_len]);
            m.nest_end(k);
            if let Some(ms) = timeout {
                m.attr_be64(NFTA_SET_ELEM_TIMEOUT, *ms);
            }
            m.nest_end(e);
        }
        m.nest_end(list);
        batch.end();
    }

    /// Adds a hint to errors a missing table or set causes.
    fn explain(&self, e: EnforceError) -> EnforceError {
        match e {
            EnforceError::Rejected {
                first,
                errno,
                failed,
                messages,
            } if errno == rustix::io::Errno::NOENT => EnforceError::Rejected {
                first: format!("{first} (the table or set is missing: prepare recreates it)"),
                errno,
                failed,
                messages,
            },
            other => other,
        }
    }

    fn list_inner(&mut self, now: Timestamp) -> Result<Vec<Entry>, EnforceError> {
        let table = self.table.clone();
        let mut set_names: Vec<(String, NftSetKind)> = Vec::new();
        for _ in 0..DUMP_RETRIES {
            set_names.clear();
            let r = self.sock.dump(
                nl::NFT_MSG_GETSET,
                nl::NFPROTO_INET,
                "set list",
                |m| m.attr_str(NFTA_SET_TABLE, &table),
                |body| {
                    let (mut t, mut name) = ("", "");
                    for (ty, d) in attrs(body) {
                        match ty {
                            NFTA_SET_TABLE => t = cstr(d),
                            NFTA_SET_NAME => name = cstr(d),
                            _ => {}
                        }
                    }
                    if t == table {
                        if let Some(kind) = names::parse_nft_set(name) {
                            set_names.push((name.to_owned(), kind));
                        }
                    }
                    Ok(())
                },
            );
            if absent_is_empty(r)? == DumpEnd::Complete {
                break;
            }
        }
        let mut out = Vec::new();
        for (set, kind) in &set_names {
            // A dump comes in several parts, and each part re-walks the set's hash table
            // skipping what was sent. When the table is resized meanwhile (the kernel grows
            // it in the background after many adds) the walk order changes: some elements
            // come twice and as many are skipped, without NLM_F_DUMP_INTR. So a dump that
            // repeats an element is redone after a pause; the last attempt is deduplicated.
            for attempt in 0..DUMP_RETRIES {
                let mark = out.len();
                let r = self.sock.dump(
                    nl::NFT_MSG_GETSETELEM,
                    nl::NFPROTO_INET,
                    "set elements",
                    |m| {
                        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, &table);
                        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
                    },
                    |body| {
                        parse_elements(body, kind, now, &mut out);
                        Ok(())
                    },
                );
                let end = absent_is_empty(r)?;
                let mut seen = HashSet::with_capacity(out.len() - mark);
                let unique = out[mark..].iter().all(|e| seen.insert(e.net));
                let last = attempt + 1 == DUMP_RETRIES;
                if end == DumpEnd::Complete && unique {
                    break;
                }
                if last {
                    let mut seen = HashSet::new();
                    let tail = out.split_off(mark);
                    out.extend(tail.into_iter().filter(|e| seen.insert(e.net)));
                    break;
                }
                out.truncate(mark);
                std::thread::sleep(Duration::from_millis(20 << attempt));
            }
        }
        Ok(out)
    }
}

/// Elements per message so that the element list stays within one attribute.
fn chunk_len(key_len: usize, timeout: bool) -> usize {
    // LIST_ELEM nest (4) + KEY nest (4) + DATA_VALUE (4 + key) [+ TIMEOUT (4 + 8)].
    let per = 12 + key_len + if timeout { 12 } else { 0 };
    (ELEMENTS_BUDGET.min(nl::MAX_ATTR_LEN - 64) / per).max(1)
}

/// Scopes in jail order, so the rules and their fingerprint do not depend on input order.
fn sorted(scopes: &[Scope]) -> Vec<&Scope> {
    let mut v: Vec<&Scope> = scopes.iter().collect();
    v.sort_by(|a, b| a.jail.cmp(&b.jail));
    v
}

/// The `meta l4proto ... th dport ... ` prefix of a scope's rules (empty for all traffic).
fn match_ports(s: &Scope) -> String {
    if s.ports.is_empty() {
        return String::new();
    }
    let protos: BTreeSet<String> = s.protocols.iter().map(|p| p.to_string()).collect();
    let protos: Vec<String> = protos.into_iter().collect();
    let mut ports = s.ports.clone();
    ports.sort();
    ports.dedup();
    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    format!(
        "meta l4proto {{ {} }} th dport {{ {} }} ",
        protos.join(", "),
        ports.join(", ")
    )
}

/// Reads the sets, chains and rule comments of `table` (a consistent dump: retried while
/// the kernel reports that the table changed during it). A missing table reads as empty.
pub(crate) fn read_table_state(
    sock: &mut NfSocket,
    table: &str,
) -> Result<TableState, EnforceError> {
    let mut st = TableState::default();
    for _ in 0..DUMP_RETRIES {
        st = TableState::default();
        let mut done = true;
        let sets = &mut st.sets;
        let r = sock.dump(
            nl::NFT_MSG_GETSET,
            nl::NFPROTO_INET,
            "set list",
            |m| m.attr_str(NFTA_SET_TABLE, table),
            |body| {
                let (mut t, mut name, mut flags, mut key_len) = ("", "", 0, 0);
                for (ty, d) in attrs(body) {
                    match ty {
                        NFTA_SET_TABLE => t = cstr(d),
                        NFTA_SET_NAME => name = cstr(d),
                        NFTA_SET_FLAGS => flags = be32(d).unwrap_or(0),
                        NFTA_SET_KEY_LEN => key_len = be32(d).unwrap_or(0),
                        _ => {}
                    }
                }
                if t == table {
                    sets.insert(name.to_owned(), SetInfo { flags, key_len });
                }
                Ok(())
            },
        );
        done &= absent_is_empty(r)? == DumpEnd::Complete;
        let chains = &mut st.chains;
        let r = sock.dump(
            nl::NFT_MSG_GETCHAIN,
            nl::NFPROTO_INET,
            "chain list",
            |m| m.attr_str(NFTA_CHAIN_TABLE, table),
            |body| {
                let (mut t, mut name) = ("", "");
                let mut info = ChainInfo {
                    hook: None,
                    policy: None,
                    kind: String::new(),
                };
                for (ty, d) in attrs(body) {
                    match ty {
                        NFTA_CHAIN_TABLE => t = cstr(d),
                        NFTA_CHAIN_NAME => name = cstr(d),
                        NFTA_CHAIN_POLICY => info.policy = be32(d),
                        NFTA_CHAIN_TYPE => info.kind = cstr(d).to_owned(),
                        NFTA_CHAIN_HOOK => {
                            let (mut num, mut prio) = (None, None);
                            for (hty, hd) in attrs(d) {
                                match hty {
                                    NFTA_HOOK_HOOKNUM => num = be32(hd),
                                    NFTA_HOOK_PRIORITY => prio = be32(hd),
                                    _ => {}
                                }
                            }
                            if let (Some(n), Some(p)) = (num, prio) {
                                info.hook = Some((n, p as i32));
                            }
                        }
                        _ => {}
                    }
                }
                if t == table {
                    chains.insert(name.to_owned(), info);
                }
                Ok(())
            },
        );
        done &= absent_is_empty(r)? == DumpEnd::Complete;
        let rules = &mut st.rules;
        let r = sock.dump(
            nl::NFT_MSG_GETRULE,
            nl::NFPROTO_INET,
            "rule list",
            |m| m.attr_str(NFTA_RULE_TABLE, table),
            |body| {
                let (mut t, mut chain, mut comment) = ("", "", String::new());
                for (ty, d) in attrs(body) {
                    match ty {
                        NFTA_RULE_TABLE => t = cstr(d),
                        NFTA_RULE_CHAIN => chain = cstr(d),
                        NFTA_RULE_USERDATA => comment = rule_comment(d),
                        _ => {}
                    }
                }
                if t == table {
                    rules.entry(chain.to_owned()).or_default().push(comment);
                }
                Ok(())
            },
        );
        done &= absent_is_empty(r)? == DumpEnd::Complete;
        if done {
            return Ok(st);
        }
    }
    Ok(st)
}

/// Treats "no such table" as an empty dump.
pub(crate) fn absent_is_empty(r: Result<DumpEnd, EnforceError>) -> Result<DumpEnd, EnforceError> {
    match r {
        Err(EnforceError::Rejected { errno, .. }) if errno == rustix::io::Errno::NOENT => {
            Ok(DumpEnd::Complete)
        }
        other => other,
    }
}

/// The comment in a rule's user data (TLVs of `type u8, len u8, value`).
pub(crate) fn rule_comment(mut d: &[u8]) -> String {
    while d.len() >= 2 {
        let (ty, len) = (d[0], usize::from(d[1]));
        let Some(value) = d.get(2..2 + len) else {
            break;
        };
        if ty == UDATA_RULE_COMMENT {
            return cstr(value).to_owned();
        }
        d = &d[2 + len..];
    }
    String::new()
}

/// Appends the elements of one GETSETELEM reply to `out`.
fn parse_elements(body: &[u8], kind: &NftSetKind, now: Timestamp, out: &mut Vec<Entry>) {
    for (ty, list) in attrs(body) {
        if ty != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for (ety, elem) in attrs(list) {
            if ety != NFTA_LIST_ELEM {
                continue;
            }
            let mut key: Option<&[u8]> = None;
            let mut expiration: Option<u64> = None;
            for (aty, a) in attrs(elem) {
                match aty {
                    NFTA_SET_ELEM_KEY => {
                        key = attrs(a)
                            .find(|(t, _)| *t == NFTA_DATA_VALUE)
                            .map(|(_, v)| v);
                    }
                    NFTA_SET_ELEM_EXPIRATION => expiration = be64(a),
                    _ => {}
                }
            }
            let Some(key) = key else { continue };
            let (jail, net) = match kind {
                NftSetKind::V4(j) => {
                    let Ok(b) = <[u8; 4]>::try_from(key) else {
                        continue;
                    };
                    (j, IpNet::V4(Ipv4Net::from(std::net::Ipv4Addr::from(b))))
                }
                NftSetKind::V6(j, p) => {
                    let Ok(b) = <[u8; 16]>::try_from(key) else {
                        continue;
                    };
                    let Ok(n) = Ipv6Net::new(Ipv6Addr::from(b), *p) else {
                        continue;
                    };
                    (j, IpNet::V6(n))
                }
            };
            let expires = match expiration {
                Some(ms) => now.saturating_add(Duration::from_millis(ms)),
                // An element without a timeout (added by hand) never expires.
                None => Timestamp::from_micros(i64::MAX),
            };
            out.push(Entry {
                jail: jail.clone(),
                net,
                expires,
            });
        }
    }
}

impl Backend for NftBackend {
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
    use rampart_core::{PortRange, Protocol};

    fn scope(ports: Vec<PortRange>, protocols: Vec<Protocol>) -> Scope {
        Scope {
            jail: JailName::new("sshd").unwrap(),
            protocols,
            ports,
            ipv6_prefix: 64,
        }
    }

    #[test]
    fn port_match_lists_protocols_and_ranges_once() {
        let s = scope(
            vec![
                PortRange {
                    first: 2222,
                    last: 2222,
                },
                PortRange {
                    first: 22,
                    last: 22,
                },
                PortRange {
                    first: 1000,
                    last: 2000,
                },
                PortRange {
                    first: 22,
                    last: 22,
                },
            ],
            vec![Protocol::Udp, Protocol::Tcp, Protocol::Tcp],
        );
        assert_eq!(
            match_ports(&s),
            "meta l4proto { tcp, udp } th dport { 22, 1000-2000, 2222 } "
        );
        assert_eq!(match_ports(&scope(vec![], vec![Protocol::Tcp])), "");
    }

    #[test]
    fn element_chunks_stay_inside_one_attribute() {
        for (len, t) in [(4, true), (16, true), (4, false), (16, false)] {
            let per = 12 + len + if t { 12 } else { 0 };
            assert!(chunk_len(len, t) * per + 64 < usize::from(u16::MAX));
        }
    }

    #[test]
    fn rule_comment_is_read_from_user_data_tlvs() {
        let mut d = vec![1u8, 2, 9, 9, UDATA_RULE_COMMENT, 6];
        d.extend_from_slice(b"hello\0");
        assert_eq!(rule_comment(&d), "hello");
        assert_eq!(rule_comment(&[0, 9, 1]), "");
    }

    #[test]
    fn remaining_time_skips_expired_and_caps_long_bans() {
        let now = Timestamp::from_secs(1000);
        assert_eq!(
            remaining(Timestamp::from_secs(999), now, NFT_MAX_TIMEOUT),
            None
        );
        assert_eq!(remaining(now, now, NFT_MAX_TIMEOUT), None);
        assert_eq!(
            remaining(Timestamp::from_secs(1002), now, NFT_MAX_TIMEOUT),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            remaining(Timestamp::from_micros(i64::MAX), now, NFT_MAX_TIMEOUT),
            Some(NFT_MAX_TIMEOUT)
        );
    }
}
