//! Recidive and block escalation in the daemon (and in `rampart replay`): every ban a
//! jail decides is shown to the `[recidive]` and `[blocks]` watchers, which may decide
//! bans of their own. Also the words of a ban's reason and its stored country and block.
//!
//! At start (and on reload) the watchers are seeded from the state file's ban history,
//! oldest first, so repeat offenders and busy blocks are recognised across restarts; a ban
//! the history earns that the state file does not hold yet (the section was just turned
//! on, or the daemon stopped between deciding and storing) is decided then.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use rampart_config::bans::{BLOCKS_JAIL, RECIDIVE_JAIL};
use rampart_config::Config;
use rampart_core::{format_duration, JailName, Timestamp};
use rampart_detect::{BlockOutcome, BlockWatcher, RecidiveWatcher};
use rampart_store::{BanDetails, BanRecord, Origin, Store, StoreError};

/// Running block bans kept. Overflow policy: a block ban decided while this many run is
/// still stored and logged but not enforced (counted in `unenforced`); block bans are
/// rare (each needs `min_addresses` address bans), so reaching this means an attack the
/// address bans already hold.
const MAX_BLOCK_BANS: usize = 65_536;

/// What a geo lookup says about an address: (country, registry block as CIDR text) and
/// the block's CIDRs for grouping.
pub trait Describe {
    /// Country code and registry block text of `ip`, when known.
    fn describe(&self, ip: IpAddr) -> (Option<String>, Option<String>);
    /// The registry block of `ip` as CIDRs (empty when unknown).
    fn allocation(&self, ip: IpAddr) -> Vec<IpNet>;
}

impl Describe for crate::geo::GeoRuntime {
    fn describe(&self, ip: IpAddr) -> (Option<String>, Option<String>) {
        crate::geo::GeoRuntime::describe(self, ip)
    }
    fn allocation(&self, ip: IpAddr) -> Vec<IpNet> {
        crate::geo::GeoRuntime::allocation(self, ip)
    }
}

impl Describe for Option<&rampart_geo::GeoDb> {
    fn describe(&self, ip: IpAddr) -> (Option<String>, Option<String>) {
        let Some(db) = self else {
            return (None, None);
        };
        let country = db.country(ip).map(|c| c.as_str().to_owned());
        let block = db.registry_block(ip).map(|b| {
            b.cidrs()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        });
        (country, block)
    }
    fn allocation(&self, ip: IpAddr) -> Vec<IpNet> {
        self.and_then(|db| db.registry_block(ip))
            .map(|b| b.cidrs())
            .unwrap_or_default()
    }
}

/// The details stored with a ban of `ip`: its country and block now, and `reason`.
pub fn details(geo: &impl Describe, ip: IpAddr, reason: String) -> Box<BanDetails> {
    let (country, block) = geo.describe(ip);
    Box::new(BanDetails {
        country,
        block,
        reason: Some(reason),
    })
}

/// A running block ban.
#[derive(Debug, Clone, Copy)]
pub struct BlockActive {
    /// When it started.
    pub start: Timestamp,
    /// When it ends.
    pub end: Timestamp,
}

/// A block that reached `min_addresses` but overlaps the allowlist or the host's own
/// addresses: not banned, for the log.
#[derive(Debug, Clone)]
pub struct Protected {
    /// The block.
    pub block: IpNet,
    /// Distinct addresses banned within the window.
    pub addresses: u32,
}

/// The recidive and block watchers and the running block bans.
#[derive(Debug, Default)]
pub struct Escalation {
    recidive: Option<RecidiveWatcher>,
    blocks: Option<BlockWatcher>,
    /// Running block bans. Bounded by [`MAX_BLOCK_BANS`] (overflow policy there).
    block_bans: BTreeMap<IpNet, BlockActive>,
    /// Recidive bans decided.
    pub recidive_bans: u64,
    /// Block bans decided.
    pub block_bans_decided: u64,
    /// Blocks not banned because they overlap the allowlist or own addresses.
    pub protected: u64,
    /// Block bans decided but not enforced because [`MAX_BLOCK_BANS`] were running.
    pub unenforced: u64,
}

impl Escalation {
    /// The watchers of `config` (none when neither section is present).
    pub fn new(config: &Config) -> Result<Self, String> {
        let recidive = match &config.recidive {
            Some(r) => Some(RecidiveWatcher::new(r.policy.clone()).map_err(|e| e.to_string())?),
            None => None,
        };
        let blocks = match &config.blocks {
            Some(b) => Some(BlockWatcher::new(b.policy.clone()).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Self {
            recidive,
            blocks,
            ..Self::default()
        })
    }

    /// Whether either watcher is on.
    pub fn is_on(&self) -> bool {
        self.recidive.is_some() || self.blocks.is_some()
    }

    /// How far back the watchers need the ban history: their windows, and their own bans'
    /// lengths (a running ban, escalation memory).
    pub fn memory(&self) -> Duration {
        let r = self.recidive.as_ref().map_or(Duration::ZERO, |w| {
            let p = w.policy();
            let esc = p
                .escalation
                .as_ref()
                .map_or(Duration::ZERO, |e| e.forget_after + e.max);
            p.window.max(p.ban_for).max(esc)
        });
        let b = self.blocks.as_ref().map_or(Duration::ZERO, |w| {
            let p = w.policy();
            p.window.max(p.ban_for)
        });
        r.max(b)
    }

    /// Seeds the watchers from the state file and returns the bans the history earns that
    /// the state file does not hold (ending after `now`).
    pub fn seed(
        &mut self,
        store: &Store,
        geo: &impl Describe,
        protected: &impl Fn(IpNet) -> bool,
        now: Timestamp,
    ) -> Result<Vec<BanRecord>, StoreError> {
        if !self.is_on() {
            return Ok(Vec::new());
        }
        let rows = store.bans_since(now.saturating_sub(self.memory()))?;
        let mut pending: HashMap<(bool, IpNet), BanRecord> = HashMap::new();
        let mut own_counts: HashMap<IpNet, u32> = HashMap::new();
        for r in rows {
            match r.jail.as_str() {
                RECIDIVE_JAIL => {
                    if let Some(w) = &mut self.recidive {
                        let n = own_counts.entry(r.net).or_insert(0);
                        *n += 1;
                        w.seed_own_ban(r.net, *n, r.end);
                        if pending
                            .get(&(true, r.net))
                            .is_some_and(|p| p.start <= r.start)
                        {
                            pending.remove(&(true, r.net));
                        }
                    }
                }
                BLOCKS_JAIL => {
                    if let Some(w) = &mut self.blocks {
                        w.seed_ban(r.net, r.end);
                        if r.end > now {
                            self.block_bans.insert(
                                r.net,
                                BlockActive {
                                    start: r.start,
                                    end: r.end,
                                },
                            );
                        }
                        if pending
                            .get(&(false, r.net))
                            .is_some_and(|p| p.start <= r.start)
                        {
                            pending.remove(&(false, r.net));
                        }
                    }
                }
                _ => {
                    for b in self
                        .observe(
                            &r.jail,
                            r.addr,
                            r.start,
                            r.origin == Origin::Manual,
                            geo,
                            protected,
                        )
                        .0
                    {
                        pending.insert((b.jail.as_str() == RECIDIVE_JAIL, b.net), b);
                    }
                }
            }
        }
        let mut out: Vec<BanRecord> = pending.into_values().filter(|b| b.end > now).collect();
        out.sort_by_key(|b| b.start);
        // The counters count decisions: what the history re-derived is not one, what it
        // owes is.
        self.recidive_bans = out
            .iter()
            .filter(|b| b.jail.as_str() == RECIDIVE_JAIL)
            .count() as u64;
        self.block_bans_decided = out.len() as u64 - self.recidive_bans;
        self.protected = 0;
        Ok(out)
    }

    /// Shows the watchers one ban (in `jail`, of `addr`, from `start`) and returns the
    /// bans they decide, with details, and the blocks the allowlist protected.
    pub fn observe(
        &mut self,
        jail: &JailName,
        addr: IpAddr,
        start: Timestamp,
        manual: bool,
        geo: &impl Describe,
        protected: &impl Fn(IpNet) -> bool,
    ) -> (Vec<BanRecord>, Vec<Protected>) {
        let mut out = Vec::new();
        let mut prot = Vec::new();
        if jail.as_str() == RECIDIVE_JAIL || jail.as_str() == BLOCKS_JAIL {
            return (out, prot);
        }
        if let Some(w) = &mut self.recidive {
            if let Some(r) = w.observe(jail, addr, start, manual) {
                self.recidive_bans += 1;
                let names: Vec<&str> = r.jails.iter().map(JailName::as_str).collect();
                let reason = format!(
                    "recidive: {} bans within {} in {}",
                    r.ban.failures,
                    format_duration(w.policy().window),
                    names.join(", ")
                );
                let mut rec = BanRecord::from(&r.ban);
                rec.details = Some(details(geo, r.ban.addr, reason));
                out.push(rec);
            }
        }
        if let Some(w) = &mut self.blocks {
            if !manual {
                let alloc = geo.allocation(addr);
                match w.observe(jail, addr, &alloc, start, protected) {
                    BlockOutcome::Banned(b) => {
                        self.block_bans_decided += 1;
                        let reason = format!(
                            "block: {} addresses within {}, {} {}",
                            b.addresses,
                            format_duration(w.policy().window),
                            b.group,
                            b.block
                        );
                        out.push(BanRecord {
                            jail: b.jail.clone(),
                            net: b.block,
                            addr: b.addr,
                            start: b.start,
                            end: b.end,
                            failures: b.addresses,
                            level: 0,
                            origin: Origin::Detected,
                            details: Some(details(geo, b.addr, reason)),
                        });
                    }
                    BlockOutcome::Protected {
                        block, addresses, ..
                    } => {
                        self.protected += 1;
                        prot.push(Protected { block, addresses });
                    }
                    _ => {}
                }
            }
        }
        (out, prot)
    }

    /// Records a decided block ban as running; `false` when the bound is reached (not
    /// enforced).
    pub fn start_block_ban(&mut self, r: &BanRecord) -> bool {
        if self.block_bans.len() >= MAX_BLOCK_BANS && !self.block_bans.contains_key(&r.net) {
            self.unenforced += 1;
            return false;
        }
        self.block_bans.insert(
            r.net,
            BlockActive {
                start: r.start,
                end: r.end,
            },
        );
        true
    }

    /// Drops block bans that ended by `now`; whether any did.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        let before = self.block_bans.len();
        self.block_bans.retain(|_, b| b.end > now);
        before != self.block_bans.len()
    }

    /// The running block bans.
    pub fn block_bans(&self) -> &BTreeMap<IpNet, BlockActive> {
        &self.block_bans
    }

    /// The running blocks, for the kernel set.
    pub fn block_nets(&self) -> Vec<IpNet> {
        self.block_bans.keys().copied().collect()
    }

    /// Lifts the running block bans that `target` names (equal, inside or containing);
    /// returns them.
    pub fn lift_blocks(&mut self, target: IpNet) -> Vec<IpNet> {
        let hits: Vec<IpNet> = self
            .block_bans
            .keys()
            .filter(|b| b.contains(&target.addr()) || target.contains(*b))
            .copied()
            .collect();
        for b in &hits {
            self.block_bans.remove(b);
            if let Some(w) = &mut self.blocks {
                w.lift(*b);
            }
        }
        hits
    }

    /// Status numbers.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "recidive": self.recidive.as_ref().map(|w| serde_json::json!({
                "bans": self.recidive_bans,
                "tracked_offenders": w.detector().tracked(),
            })),
            "blocks": self.blocks.as_ref().map(|w| serde_json::json!({
                "bans": self.block_bans_decided,
                "active": self.block_bans.len(),
                "tracked_blocks": w.tracked(),
                "protected": self.protected,
                "unenforced": self.unenforced,
                "evictions": w.stats().evictions,
            })),
        })
    }
}
