//! Watchers over the bans the jails decide: **recidive** (an offender banned `max_bans`
//! times within a window is banned again, much longer, in its own jail) and **block
//! escalation** (enough distinct banned addresses of one network block within a window ban
//! the whole block). Both are pure and synchronous like the detector: "now" is the start
//! time of the ban being observed, so replaying logs gives the same decisions as tailing
//! them.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rampart_core::{Ban, Failure, JailName, Offender, Timestamp};

use crate::policy::micros;
use crate::table::{Key, LruTable};
use crate::{AllowList, DetectError, Escalation, JailDetector, JailPolicy, Outcome};

/// The jails of an offender's most recent bans remembered for the recidive reason.
const RECENT: usize = 8;
/// Distinct jail names the recidive watcher tells apart in its reasons (a config has a
/// handful of jails; beyond this, further names are reported as the last one's slot).
const MAX_NAMES: usize = 255;

/// How the recidive jail decides.
#[derive(Clone, Debug)]
pub struct RecidivePolicy {
    /// The jail its bans are made in (`recidive`).
    pub jail: JailName,
    /// Bans in other jails that earn a recidive ban (at least 2).
    pub max_bans: u32,
    /// They must start within a span strictly shorter than this.
    pub window: Duration,
    /// How long a recidive ban lasts.
    pub ban_for: Duration,
    /// Longer recidive bans for offenders banned by recidive before.
    pub escalation: Option<Escalation>,
    /// Never banned (loopback and unspecified addresses never are).
    pub allow: AllowList,
    /// IPv6 offenders are grouped by this prefix.
    pub ipv6_prefix: u8,
    /// Most offenders tracked (LRU beyond).
    pub max_offenders: usize,
    /// Jails whose bans count; empty means every jail but recidive itself.
    pub jails: Vec<JailName>,
    /// Whether manual bans count too.
    pub count_manual: bool,
}

/// A recidive ban and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecidiveBan {
    /// The ban (`failures` is the number of bans counted, `first_failure` and
    /// `last_failure` the start of the first and last of them).
    pub ban: Ban,
    /// The jails of the bans counted (of the last eight at most), in time order.
    pub jails: Vec<JailName>,
}

/// An offender's most recent counted bans: (start in microseconds, jail index), oldest
/// first; `len` used entries.
#[derive(Clone, Copy)]
struct Recent {
    t: [i64; RECENT],
    j: [u8; RECENT],
    len: u8,
}

/// The recidive jail: a [`JailDetector`] fed with the start times of other jails' bans.
pub struct RecidiveWatcher {
    policy: RecidivePolicy,
    detector: JailDetector,
    /// Offender -> jails of its recent bans, for the reason.
    /// Bounded: at most `max_offenders` entries. Overflow policy: the least recently
    /// banned offender is evicted; only the jail list of its reason is lost (the counting
    /// lives in the detector, which evicts the same way).
    recent: LruTable<Recent>,
    hasher: RandomState,
    /// Jail names by index. Bounded by [`MAX_NAMES`]; further names share the last index.
    names: Vec<JailName>,
}

impl fmt::Debug for RecidiveWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecidiveWatcher")
            .field("policy", &self.policy)
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

impl RecidiveWatcher {
    /// A watcher for `policy`, after validating it.
    pub fn new(policy: RecidivePolicy) -> Result<Self, DetectError> {
        if policy.max_bans < 2 {
            return Err(DetectError::InvalidPolicy {
                jail: policy.jail.clone(),
                field: "max_bans",
                why: format!("must be at least 2, not {}", policy.max_bans),
            });
        }
        let detector = JailDetector::new(JailPolicy {
            jail: policy.jail.clone(),
            max_failures: policy.max_bans,
            window: policy.window,
            ban_for: policy.ban_for,
            escalation: policy.escalation.clone(),
            allow: policy.allow.clone(),
            ipv6_prefix: policy.ipv6_prefix,
            max_offenders: policy.max_offenders,
            // Jails decide independently, so their bans reach the watcher in no particular
            // order: any ban within the window is counted exactly.
            reorder_tolerance: policy.window,
        })
        .map_err(|e| match e {
            DetectError::InvalidPolicy { jail, field, why } => DetectError::InvalidPolicy {
                jail,
                field: if field == "max_failures" {
                    "max_bans"
                } else {
                    field
                },
                why,
            },
        })?;
        Ok(Self {
            recent: LruTable::new(policy.max_offenders),
            hasher: RandomState::new(),
            names: Vec::new(),
            detector,
            policy,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &RecidivePolicy {
        &self.policy
    }

    /// The detector doing the counting (for its statistics).
    pub fn detector(&self) -> &JailDetector {
        &self.detector
    }

    /// Whether a ban in `jail` (manual or not) counts: never recidive's own bans.
    pub fn counts(&self, jail: &JailName, manual: bool) -> bool {
        *jail != self.policy.jail
            && (!manual || self.policy.count_manual)
            && (self.policy.jails.is_empty() || self.policy.jails.contains(jail))
    }

    /// Observes a ban decided in `jail` of the offender of `addr`, starting at `start`.
    /// Returns the recidive ban it tips, if any. Bans that do not [count](Self::counts)
    /// are ignored.
    pub fn observe(
        &mut self,
        jail: &JailName,
        addr: IpAddr,
        start: Timestamp,
        manual: bool,
    ) -> Option<RecidiveBan> {
        if !self.counts(jail, manual) {
            return None;
        }
        let offender = Offender::from_addr(addr, self.policy.ipv6_prefix);
        let key = Key::of(offender, &self.hasher);
        let hash = self.recent.hash(key);
        let idx = self.name_index(jail);
        let t = start.as_micros();
        let slot = match self.recent.find(key, hash) {
            Some(s) => {
                self.recent.touch(s);
                s
            }
            None => {
                let empty = Recent {
                    t: [0; RECENT],
                    j: [0; RECENT],
                    len: 0,
                };
                self.recent.insert(key, hash, empty).0
            }
        };
        let r = self.recent.value_mut(slot);
        let len = usize::from(r.len);
        if len == RECENT {
            r.t.copy_within(1.., 0);
            r.j.copy_within(1.., 0);
            r.t[RECENT - 1] = t;
            r.j[RECENT - 1] = idx;
        } else {
            r.t[len] = t;
            r.j[len] = idx;
            r.len += 1;
        }
        match self.detector.record(Failure { addr, time: start }) {
            Outcome::Banned(ban) => {
                let r = *self.recent.value(slot);
                self.recent.remove(slot);
                let (lo, hi) = (ban.first_failure.as_micros(), ban.last_failure.as_micros());
                let mut counted: Vec<(i64, u8)> = (0..usize::from(r.len))
                    .map(|i| (r.t[i], r.j[i]))
                    .filter(|(t, _)| (lo..=hi).contains(t))
                    .collect();
                counted.sort_unstable();
                let mut jails: Vec<JailName> = Vec::new();
                for (_, j) in counted {
                    if let Some(name) = self.names.get(usize::from(j)) {
                        if !jails.contains(name) {
                            jails.push(name.clone());
                        }
                    }
                }
                Some(RecidiveBan { ban, jails })
            }
            _ => None,
        }
    }

    /// Tells the watcher that recidive itself banned `net` earlier (`bans` times, the last
    /// ending at `end`): later bans of it before `end` are not counted, and the next
    /// recidive ban escalates.
    pub fn seed_own_ban(&mut self, net: IpNet, bans: u32, end: Timestamp) {
        let offender = Offender::from_addr(net.addr(), self.policy.ipv6_prefix);
        self.detector.seed_history(offender, bans, end);
    }

    fn name_index(&mut self, jail: &JailName) -> u8 {
        if let Some(i) = self.names.iter().position(|n| n == jail) {
            return u8::try_from(i).unwrap_or(u8::MAX);
        }
        if self.names.len() < MAX_NAMES {
            self.names.push(jail.clone());
        }
        u8::try_from(self.names.len() - 1).unwrap_or(u8::MAX)
    }
}

/// How addresses are grouped into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockGroup {
    /// The registry allocation holding the address (from the geo data).
    Allocation,
    /// A fixed prefix (`ipv4_prefix`, `ipv6_prefix`).
    Prefix,
}

impl BlockGroup {
    /// `"allocation"` or `"prefix"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockGroup::Allocation => "allocation",
            BlockGroup::Prefix => "prefix",
        }
    }
}

impl fmt::Display for BlockGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the block-escalation jail decides.
#[derive(Clone, Debug)]
pub struct BlockPolicy {
    /// The jail its bans are made in (`blocks`).
    pub jail: JailName,
    /// Allocation (falling back to prefix) or prefix.
    pub group: BlockGroup,
    /// IPv4 prefix group length (`max_prefix_v4..=32`).
    pub ipv4_prefix: u8,
    /// IPv6 prefix group length (`max_prefix_v6..=128`).
    pub ipv6_prefix: u8,
    /// Distinct banned addresses of one block that ban the block (at least 2).
    pub min_addresses: u32,
    /// Their bans must start within a span strictly shorter than this.
    pub window: Duration,
    /// How long a block ban lasts.
    pub ban_for: Duration,
    /// Jails whose bans count; empty means every jail (never `recidive` nor this one).
    pub jails: Vec<JailName>,
    /// The largest IPv4 block banned (shortest prefix length, e.g. 16).
    pub max_prefix_v4: u8,
    /// The largest IPv6 block banned (e.g. 32).
    pub max_prefix_v6: u8,
    /// Blocks overlapping this list are never banned.
    pub allow: AllowList,
    /// Most blocks tracked at once.
    pub max_blocks: usize,
}

impl BlockPolicy {
    /// The block `addr` belongs to: with [`BlockGroup::Allocation`], the CIDR of
    /// `allocation` (the registry block's CIDRs) that holds the address, unless there is
    /// none or it is larger than `max_prefix`; otherwise the prefix group.
    pub fn block_of(&self, addr: IpAddr, allocation: &[IpNet]) -> (IpNet, BlockGroup) {
        let addr = addr.to_canonical();
        if self.group == BlockGroup::Allocation {
            let fits = allocation.iter().find(|n| {
                n.contains(&addr)
                    && n.prefix_len()
                        >= match n {
                            IpNet::V4(_) => self.max_prefix_v4,
                            IpNet::V6(_) => self.max_prefix_v6,
                        }
            });
            if let Some(n) = fits {
                return (n.trunc(), BlockGroup::Allocation);
            }
        }
        let net = match addr {
            IpAddr::V4(a) => Ipv4Net::new(a, self.ipv4_prefix.min(32))
                .map(|n| IpNet::V4(n.trunc()))
                .unwrap_or(IpNet::V4(Ipv4Net::from(a))),
            IpAddr::V6(a) => Ipv6Net::new(a, self.ipv6_prefix.min(128))
                .map(|n| IpNet::V6(n.trunc()))
                .unwrap_or(IpNet::V6(Ipv6Net::from(a))),
        };
        (net, BlockGroup::Prefix)
    }

    fn validate(&self) -> Result<(), DetectError> {
        let bad = |field: &'static str, why: String| {
            Err(DetectError::InvalidPolicy {
                jail: self.jail.clone(),
                field,
                why,
            })
        };
        if self.min_addresses < 2 {
            return bad("min_addresses", "must be at least 2".into());
        }
        if micros(self.window) < 1 {
            return bad("window", "must be at least 1 microsecond".into());
        }
        if micros(self.ban_for) < 1 {
            return bad("ban_for", "must be at least 1 microsecond".into());
        }
        if !(1..=32).contains(&self.max_prefix_v4) || !(1..=128).contains(&self.max_prefix_v6) {
            return bad(
                "max_prefix",
                "must be 1 to 32 for IPv4 and 1 to 128 for IPv6".into(),
            );
        }
        if !(self.max_prefix_v4..=32).contains(&self.ipv4_prefix) {
            return bad(
                "ipv4_prefix",
                format!(
                    "must be between max_prefix /{} and 32, not {}",
                    self.max_prefix_v4, self.ipv4_prefix
                ),
            );
        }
        if !(self.max_prefix_v6..=128).contains(&self.ipv6_prefix) {
            return bad(
                "ipv6_prefix",
                format!(
                    "must be between max_prefix /{} and 128, not {}",
                    self.max_prefix_v6, self.ipv6_prefix
                ),
            );
        }
        if self.max_blocks == 0 {
            return bad("max_blocks", "must be at least 1".into());
        }
        Ok(())
    }
}

/// A block ban and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockBan {
    /// The jail (`blocks`).
    pub jail: JailName,
    /// The banned block.
    pub block: IpNet,
    /// How the block was found (allocation, or the prefix fallback).
    pub group: BlockGroup,
    /// Distinct addresses banned within the window.
    pub addresses: u32,
    /// The address whose ban tipped it.
    pub addr: IpAddr,
    /// Start of the first counted address ban.
    pub first: Timestamp,
    /// Start of the last counted address ban.
    pub last: Timestamp,
    /// When the block ban starts (the tipping ban's start).
    pub start: Timestamp,
    /// When it ends.
    pub end: Timestamp,
}

/// What the block watcher made of one ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// The jail's bans do not count (or the address is loopback/unspecified).
    Ignored,
    /// Counted: `addresses` distinct addresses of `block` within one window so far.
    Counted {
        /// The block.
        block: IpNet,
        /// Distinct addresses within the window.
        addresses: u32,
    },
    /// Enough addresses, but the block overlaps the allowlist or the host's own
    /// addresses: not banned.
    Protected {
        /// The block.
        block: IpNet,
        /// How it was grouped.
        group: BlockGroup,
        /// Distinct addresses within the window.
        addresses: u32,
    },
    /// The block is banned until `until`: not counted.
    WhileBanned {
        /// The block.
        block: IpNet,
        /// When its ban ends.
        until: Timestamp,
    },
    /// Ban the block.
    Banned(BlockBan),
}

/// Counters of a block watcher.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Bans observed that counted.
    pub counted: u64,
    /// Blocks that reached `min_addresses` but overlap the allowlist or own addresses.
    pub protected: u64,
    /// Block bans decided.
    pub bans: u64,
    /// Blocks evicted from the full table.
    pub evictions: u64,
}

/// One tracked block.
#[derive(Clone, Debug, Default)]
struct BlockEntry {
    /// (address, latest ban start in microseconds), one per distinct address.
    addrs: Vec<(IpAddr, i64)>,
    /// End of the block's ban (microseconds), 0 when not banned.
    until: i64,
    /// Latest ban start seen.
    newest: i64,
}

/// The block-escalation jail.
#[derive(Debug)]
pub struct BlockWatcher {
    policy: BlockPolicy,
    builtin: AllowList,
    window_us: i64,
    /// Distinct addresses kept per block: twice `min_addresses`.
    per_block: usize,
    /// Block -> its recently banned addresses and its own ban.
    /// Bounded: at most `max_blocks` entries, each with at most `per_block` addresses.
    /// Overflow policy: when full, entries with nothing left in the window and no running
    /// ban are dropped first; if none is, the block seen longest ago is evicted (counted in
    /// `stats.evictions`; its partial count is lost; a running block ban stays in the
    /// firewall). Within a block, beyond `per_block` addresses the oldest is dropped.
    blocks: HashMap<IpNet, BlockEntry>,
    stats: BlockStats,
}

impl BlockWatcher {
    /// A watcher for `policy`, after validating it.
    pub fn new(policy: BlockPolicy) -> Result<Self, DetectError> {
        policy.validate()?;
        Ok(Self {
            builtin: AllowList::builtin(),
            window_us: micros(policy.window),
            per_block: usize::try_from(policy.min_addresses)
                .unwrap_or(usize::MAX)
                .saturating_mul(2),
            blocks: HashMap::new(),
            stats: BlockStats::default(),
            policy,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &BlockPolicy {
        &self.policy
    }

    /// Counters so far.
    pub fn stats(&self) -> &BlockStats {
        &self.stats
    }

    /// Blocks tracked now.
    pub fn tracked(&self) -> usize {
        self.blocks.len()
    }

    /// Whether bans of `jail` count (never this watcher's own jail).
    pub fn counts(&self, jail: &JailName) -> bool {
        *jail != self.policy.jail
            && (self.policy.jails.is_empty() || self.policy.jails.contains(jail))
    }

    /// Observes a ban of `addr` decided in `jail` at `start`. `allocation` is the
    /// registry block of the address as CIDRs (empty when unknown); `protected` says
    /// whether a block overlaps the host's own addresses.
    pub fn observe(
        &mut self,
        jail: &JailName,
        addr: IpAddr,
        allocation: &[IpNet],
        start: Timestamp,
        protected: impl Fn(IpNet) -> bool,
    ) -> BlockOutcome {
        let addr = addr.to_canonical();
        if !self.counts(jail) || self.builtin.contains(addr) {
            return BlockOutcome::Ignored;
        }
        let (block, group) = self.policy.block_of(addr, allocation);
        let t = start.as_micros();
        if !self.blocks.contains_key(&block) {
            self.make_room(t);
        }
        let entry = self.blocks.entry(block).or_default();
        if t < entry.until {
            return BlockOutcome::WhileBanned {
                block,
                until: Timestamp::from_micros(entry.until),
            };
        }
        self.stats.counted += 1;
        match entry.addrs.iter_mut().find(|(a, _)| *a == addr) {
            Some(e) => e.1 = e.1.max(t),
            None => entry.addrs.push((addr, t)),
        }
        entry.newest = entry.newest.max(t);
        // Forget what can no longer share a window with a future ban: bans may arrive up to
        // one window out of order.
        let cutoff = i128::from(entry.newest) - 2 * i128::from(self.window_us);
        entry.addrs.retain(|(_, x)| i128::from(*x) > cutoff);
        entry.addrs.sort_unstable_by_key(|(_, x)| *x);
        if entry.addrs.len() > self.per_block {
            let extra = entry.addrs.len() - self.per_block;
            entry.addrs.drain(..extra);
        }
        // The densest span shorter than the window that holds this ban.
        let times: Vec<i64> = entry.addrs.iter().map(|(_, x)| *x).collect();
        let Some(at) = entry.addrs.iter().position(|(a, _)| *a == addr) else {
            return BlockOutcome::Counted {
                block,
                addresses: 0,
            };
        };
        let (count, first) = densest(&times, at, self.window_us);
        let addresses = u32::try_from(count).unwrap_or(u32::MAX);
        if addresses < self.policy.min_addresses {
            return BlockOutcome::Counted { block, addresses };
        }
        if self.builtin.overlaps(block) || self.policy.allow.overlaps(block) || protected(block) {
            self.stats.protected += 1;
            return BlockOutcome::Protected {
                block,
                group,
                addresses,
            };
        }
        let end = t.saturating_add(micros(self.policy.ban_for));
        let ban = BlockBan {
            jail: self.policy.jail.clone(),
            block,
            group,
            addresses,
            addr,
            first: Timestamp::from_micros(times[first]),
            last: Timestamp::from_micros(times[first + count - 1]),
            start,
            end: Timestamp::from_micros(end),
        };
        entry.addrs.clear();
        entry.until = end;
        self.stats.bans += 1;
        BlockOutcome::Banned(ban)
    }

    /// Tells the watcher that `block` is banned until `end` (at start-up, from the store).
    pub fn seed_ban(&mut self, block: IpNet, end: Timestamp) {
        if !self.blocks.contains_key(&block) {
            self.make_room(end.as_micros());
        }
        let e = self.blocks.entry(block.trunc()).or_default();
        e.until = e.until.max(end.as_micros());
    }

    /// Forgets the ban of `block` (a manual unban): its addresses count again.
    pub fn lift(&mut self, block: IpNet) {
        if let Some(e) = self.blocks.get_mut(&block.trunc()) {
            e.until = 0;
        }
    }

    /// Makes room for one more block when the table is full (see the overflow policy).
    fn make_room(&mut self, now: i64) {
        if self.blocks.len() < self.policy.max_blocks {
            return;
        }
        let stale = i128::from(now) - 2 * i128::from(self.window_us);
        self.blocks
            .retain(|_, e| i128::from(e.newest) > stale || e.until > now);
        if self.blocks.len() >= self.policy.max_blocks {
            let oldest = self
                .blocks
                .iter()
                .min_by_key(|(_, e)| e.newest.max(e.until))
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.blocks.remove(&k);
                self.stats.evictions += 1;
            }
        }
    }
}

/// In sorted `ts`, the span shorter than `window` holding the most timestamps including
/// `ts[at]`: (how many, index of its first).
fn densest(ts: &[i64], at: usize, window: i64) -> (usize, usize) {
    let t = i128::from(ts[at]);
    let w = i128::from(window);
    let lo = ts[..at].partition_point(|&x| t - i128::from(x) >= w);
    let mut best = (0, at);
    let mut hi = at + 1;
    for j in lo..=at {
        while hi < ts.len() && i128::from(ts[hi]) - i128::from(ts[j]) < w {
            hi += 1;
        }
        if hi - j > best.0 {
            best = (hi - j, j);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn name(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + secs)
    }

    fn recidive() -> RecidiveWatcher {
        RecidiveWatcher::new(RecidivePolicy {
            jail: name("recidive"),
            max_bans: 3,
            window: Duration::from_secs(86_400),
            ban_for: Duration::from_secs(604_800),
            escalation: None,
            allow: AllowList::new([net("203.0.113.0/28")]),
            ipv6_prefix: 64,
            max_offenders: 1000,
            jails: Vec::new(),
            count_manual: false,
        })
        .unwrap()
    }

    #[test]
    fn recidive_bans_after_max_bans_within_the_window_and_names_the_jails() {
        let mut w = recidive();
        let a = ip("192.0.2.7");
        assert_eq!(w.observe(&name("sshd"), a, at(0), false), None);
        assert_eq!(w.observe(&name("postfix"), a, at(3600), false), None);
        let r = w.observe(&name("sshd"), a, at(7200), false).unwrap();
        assert_eq!(r.ban.jail.as_str(), "recidive");
        assert_eq!(r.ban.failures, 3);
        assert_eq!(r.ban.start, at(7200));
        assert_eq!(r.ban.end, at(7200 + 604_800));
        assert_eq!(r.jails, vec![name("sshd"), name("postfix")]);
        // While the recidive ban runs, more bans of it do not count.
        for i in 1..5 {
            assert_eq!(w.observe(&name("sshd"), a, at(7200 + i * 60), false), None);
        }
    }

    #[test]
    fn recidive_counts_only_bans_within_the_window_even_out_of_order() {
        let mut w = recidive();
        let a = ip("198.51.100.9");
        assert_eq!(w.observe(&name("sshd"), a, at(0), false), None);
        assert_eq!(w.observe(&name("sshd"), a, at(86_400), false), None);
        // Exactly one window after the first: the first is out.
        assert_eq!(w.observe(&name("web"), a, at(86_400 + 100), false), None);
        let late = w.observe(&name("mail"), a, at(50_000), false).unwrap();
        assert_eq!(late.ban.failures, 3);
        assert_eq!(late.jails, vec![name("mail"), name("sshd"), name("web")]);
    }

    #[test]
    fn recidive_ignores_its_own_bans_manual_bans_allowlisted_and_other_jails() {
        let mut w = recidive();
        let a = ip("192.0.2.8");
        for i in 0..5 {
            assert_eq!(w.observe(&name("recidive"), a, at(i), false), None);
            assert_eq!(w.observe(&name("sshd"), a, at(10 + i), true), None);
        }
        for i in 0..5 {
            assert_eq!(
                w.observe(&name("sshd"), ip("203.0.113.3"), at(i), false),
                None
            );
        }
        let mut only = RecidivePolicy {
            jails: vec![name("sshd")],
            count_manual: true,
            ..recidive().policy().clone()
        };
        only.max_bans = 2;
        let mut w = RecidiveWatcher::new(only).unwrap();
        assert_eq!(w.observe(&name("web"), a, at(0), false), None);
        assert_eq!(w.observe(&name("web"), a, at(1), false), None);
        assert_eq!(w.observe(&name("sshd"), a, at(2), true), None);
        assert!(w.observe(&name("sshd"), a, at(3), false).is_some());
    }

    #[test]
    fn a_seeded_recidive_ban_escalates_and_blocks_counting() {
        let mut p = recidive().policy().clone();
        p.escalation = Some(Escalation {
            factor: 2.0,
            max: Duration::from_secs(4 * 604_800),
            forget_after: Duration::from_secs(30 * 86_400),
        });
        let mut w = RecidiveWatcher::new(p).unwrap();
        let a = ip("192.0.2.9");
        w.seed_own_ban(net("192.0.2.9/32"), 1, at(1000));
        assert_eq!(w.observe(&name("sshd"), a, at(10), false), None);
        assert_eq!(w.observe(&name("sshd"), a, at(20), false), None);
        assert_eq!(w.observe(&name("sshd"), a, at(30), false), None);
        w.observe(&name("sshd"), a, at(2000), false);
        w.observe(&name("sshd"), a, at(2001), false);
        let r = w.observe(&name("sshd"), a, at(2002), false).unwrap();
        assert_eq!(r.ban.level, 1);
        assert_eq!(r.ban.end, at(2002 + 2 * 604_800));
    }

    fn blocks(group: BlockGroup) -> BlockWatcher {
        BlockWatcher::new(BlockPolicy {
            jail: name("blocks"),
            group,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            min_addresses: 5,
            window: Duration::from_secs(3600),
            ban_for: Duration::from_secs(86_400),
            jails: Vec::new(),
            max_prefix_v4: 16,
            max_prefix_v6: 32,
            allow: AllowList::new([net("198.51.100.200/32")]),
            max_blocks: 100,
        })
        .unwrap()
    }

    #[test]
    fn five_distinct_addresses_of_one_prefix_within_the_window_ban_the_block() {
        let mut w = blocks(BlockGroup::Prefix);
        let j = name("sshd");
        let none = |_: IpNet| false;
        // The same address again is not a new address.
        for _ in 0..3 {
            let o = w.observe(&j, ip("192.0.2.1"), &[], at(0), none);
            assert!(
                matches!(o, BlockOutcome::Counted { addresses: 1, .. }),
                "{o:?}"
            );
        }
        for i in 2..5 {
            let o = w.observe(&j, ip(&format!("192.0.2.{i}")), &[], at(i * 60), none);
            assert_eq!(
                o,
                BlockOutcome::Counted {
                    block: net("192.0.2.0/24"),
                    addresses: u32::try_from(i).unwrap()
                }
            );
        }
        // Another /24 does not add up.
        let o = w.observe(&j, ip("192.0.3.9"), &[], at(300), none);
        assert!(matches!(o, BlockOutcome::Counted { addresses: 1, .. }));
        let BlockOutcome::Banned(b) = w.observe(&j, ip("192.0.2.5"), &[], at(400), none) else {
            panic!("no block ban");
        };
        assert_eq!(b.block, net("192.0.2.0/24"));
        assert_eq!(b.group, BlockGroup::Prefix);
        assert_eq!(b.addresses, 5);
        assert_eq!(b.end, at(400 + 86_400));
        assert!(matches!(
            w.observe(&j, ip("192.0.2.77"), &[], at(500), none),
            BlockOutcome::WhileBanned { .. }
        ));
    }

    #[test]
    fn addresses_spread_over_more_than_the_window_do_not_ban() {
        let mut w = blocks(BlockGroup::Prefix);
        let j = name("sshd");
        for i in 0..10i64 {
            let o = w.observe(
                &j,
                ip(&format!("198.51.100.{}", i + 1)),
                &[],
                at(i * 900),
                |_| false,
            );
            // 900 s apart, a 3600 s window holds 4 of them at most.
            assert!(
                matches!(o, BlockOutcome::Counted { addresses, .. } if addresses <= 4),
                "{o:?}"
            );
        }
    }

    #[test]
    fn the_allowlist_and_own_addresses_win_over_a_block_ban() {
        let mut w = blocks(BlockGroup::Prefix);
        let j = name("sshd");
        let mut last = BlockOutcome::Ignored;
        for i in 1..=6 {
            last = w.observe(&j, ip(&format!("198.51.100.{i}")), &[], at(i), |_| false);
        }
        assert!(
            matches!(last, BlockOutcome::Protected { addresses: 6, .. }),
            "{last:?}"
        );
        let own = net("203.0.113.50/32");
        for i in 1..=6 {
            last = w.observe(&j, ip(&format!("203.0.113.{i}")), &[], at(i), |b| {
                b.contains(&own.addr())
            });
        }
        assert!(matches!(last, BlockOutcome::Protected { .. }), "{last:?}");
        assert_eq!(w.stats().protected, 4);
        assert_eq!(w.stats().bans, 0);
    }

    #[test]
    fn allocations_group_addresses_unless_larger_than_max_prefix() {
        let w = blocks(BlockGroup::Allocation);
        let a = ip("1.0.16.5");
        assert_eq!(
            w.policy().block_of(a, &[net("1.0.16.0/20")]),
            (net("1.0.16.0/20"), BlockGroup::Allocation)
        );
        // A /13 allocation is larger than /16: the /24 prefix group.
        assert_eq!(
            w.policy()
                .block_of(ip("180.152.1.2"), &[net("180.152.0.0/13")]),
            (net("180.152.1.0/24"), BlockGroup::Prefix)
        );
        // No allocation known: the prefix group.
        assert_eq!(
            w.policy().block_of(ip("2001:db8:1:2::3"), &[]),
            (net("2001:db8:1::/48"), BlockGroup::Prefix)
        );
        // A non-aligned range given as several CIDRs: the one holding the address.
        assert_eq!(
            w.policy()
                .block_of(
                    ip("31.41.242.9"),
                    &[net("31.41.240.0/23"), net("31.41.242.0/24")]
                )
                .0,
            net("31.41.242.0/24")
        );
    }

    #[test]
    fn the_block_table_is_bounded() {
        let mut p = blocks(BlockGroup::Prefix).policy().clone();
        p.max_blocks = 3;
        let mut w = BlockWatcher::new(p).unwrap();
        for i in 0..10 {
            w.observe(
                &name("sshd"),
                ip(&format!("192.0.{i}.1")),
                &[],
                at(i64::from(i)),
                |_| false,
            );
            assert!(w.tracked() <= 3);
        }
        assert_eq!(w.stats().evictions, 7);
    }

    #[test]
    fn invalid_block_policies_name_the_field() {
        let mut p = blocks(BlockGroup::Prefix).policy().clone();
        p.ipv4_prefix = 8;
        assert_eq!(BlockWatcher::new(p).unwrap_err().field(), "ipv4_prefix");
        let mut p = blocks(BlockGroup::Prefix).policy().clone();
        p.min_addresses = 1;
        assert_eq!(BlockWatcher::new(p).unwrap_err().field(), "min_addresses");
        let mut p = recidive().policy().clone();
        p.max_bans = 1;
        assert_eq!(RecidiveWatcher::new(p).unwrap_err().field(), "max_bans");
    }
}
