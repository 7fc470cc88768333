//! One jail's detector: allowlist, exact sliding windows, bans and escalation.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use rampart_core::{Ban, Failure, Offender, Timestamp};

use crate::policy::micros;
use crate::table::{Key, LruTable};
use crate::times::{SpillPool, Times};
use crate::{AllowList, DetectError, JailPolicy};

/// What the detector made of one failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted; no ban yet. `failures` is the most failures of this offender, this one
    /// included, that lie within one span shorter than the window (for logs in order: the
    /// failures within the window ending now).
    Counted {
        /// Failures that would count toward a ban together with this one.
        failures: u32,
    },
    /// This failure completed `max_failures` within the window: ban.
    Banned(Ban),
    /// The address is allowlisted (or loopback or unspecified): ignored.
    Allowlisted,
    /// The offender is banned until `until`: not counted.
    WhileBanned {
        /// When the ban ends.
        until: Timestamp,
    },
    /// Older than the offender's newest failure by more than `reorder_tolerance`: not counted.
    TooLate,
}

/// Counters of what a detector has done since it was made.
///
/// `failures = counted + allowlisted + while_banned + too_late`; `counted` includes the
/// failures that tipped a ban.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct DetectorStats {
    /// Failures recorded.
    pub failures: u64,
    /// Failures counted in a window (including those that tipped a ban).
    pub counted: u64,
    /// Failures ignored because the address is allowlisted.
    pub allowlisted: u64,
    /// Failures ignored because the offender was banned at that time.
    pub while_banned: u64,
    /// Failures ignored because they arrived too late to be counted exactly.
    pub too_late: u64,
    /// Bans decided.
    pub bans: u64,
    /// Offenders evicted from the full window table (their partial counts were lost).
    pub evictions: u64,
    /// Offenders evicted from the full ban-history table (their escalation was forgotten).
    pub history_evictions: u64,
}

/// What is remembered of an offender's bans.
#[derive(Clone, Copy, Debug)]
struct History {
    /// Earlier bans still remembered (at least 1).
    bans: u32,
    /// When the last of them ends, in microseconds.
    last_end: i64,
}

/// The offender a failure is about, looked up once per failure.
struct Subject {
    offender: Offender,
    /// The failure's address, IPv4-mapped IPv6 turned into IPv4.
    addr: IpAddr,
    key: Key,
    hash: u64,
}

/// One jail's memory of failures and bans. See the crate documentation for the rules.
pub struct JailDetector {
    policy: JailPolicy,
    /// Loopback and unspecified addresses.
    builtin: AllowList,
    window_us: i64,
    tolerance_us: i64,
    ban_for_us: i64,
    /// `(factor, max, forget_after)` in microseconds, when escalation is on.
    escalation: Option<(f64, i64, i64)>,
    /// Offender -> remembered failure times (the sliding windows).
    /// Bounded: at most `max_offenders` entries. Overflow policy: inserting a new offender
    /// into a full table evicts the least recently recorded offender (counted in
    /// `stats.evictions`), which forgets its partial count. An attacker rotating through
    /// addresses can thus only erase counts that are older than all of its own.
    windows: LruTable<Times>,
    /// Spill vectors of `windows` entries whose times do not fit inline; at most one per
    /// entry of `windows`, so bounded by it.
    spills: SpillPool,
    /// Offender -> ban count and last ban end (escalation memory and active bans).
    /// Bounded: at most `max_offenders` entries. Overflow policy: a new entry in a full table
    /// evicts the least recently used one (looked up by a failure, banned or seeded; counted
    /// in `stats.history_evictions`): its escalation level is forgotten and, if its ban was
    /// still running, its later failures are counted again (the firewall keeps the ban).
    history: LruTable<History>,
    /// The per-detector SipHash key of both tables' keys (see `table`).
    hasher: RandomState,
    /// One offender's times during `record`, reused so the steady state does not allocate.
    scratch: Vec<i64>,
    stats: DetectorStats,
}

impl fmt::Debug for JailDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JailDetector")
            .field("policy", &self.policy)
            .field("tracked", &self.tracked())
            .field("remembered", &self.remembered())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl JailDetector {
    /// A detector for `policy`, after validating it.
    pub fn new(policy: JailPolicy) -> Result<Self, DetectError> {
        policy.validate()?;
        // One SipHash key for both tables, so each failure's offender is hashed once.
        let hasher = RandomState::new();
        let escalation = policy
            .escalation
            .as_ref()
            .map(|e| (e.factor, micros(e.max), micros(e.forget_after)));
        Ok(Self {
            builtin: AllowList::builtin(),
            window_us: micros(policy.window),
            tolerance_us: micros(policy.reorder_tolerance),
            ban_for_us: micros(policy.ban_for),
            escalation,
            windows: LruTable::new(policy.max_offenders),
            spills: SpillPool::default(),
            history: LruTable::new(policy.max_offenders),
            hasher,
            scratch: Vec::new(),
            stats: DetectorStats::default(),
            policy,
        })
    }

    /// Records one failure and says what it led to.
    pub fn record(&mut self, failure: Failure) -> Outcome {
        self.stats.failures += 1;
        let addr = failure.addr.to_canonical();
        let offender = Offender::from_addr(addr, self.policy.ipv6_prefix);
        if self.is_allowlisted_offender(offender) {
            self.stats.allowlisted += 1;
            return Outcome::Allowlisted;
        }
        let t = failure.time.as_micros();
        let key = Key::of(offender, &self.hasher);
        let who = Subject {
            offender,
            addr,
            key,
            hash: self.windows.hash(key),
        };
        let hash = who.hash;

        let hist = self.history.find(key, hash);
        if let Some(h) = hist {
            self.history.touch(h);
            let until = self.history.value(h).last_end;
            if t < until {
                self.stats.while_banned += 1;
                return Outcome::WhileBanned {
                    until: Timestamp::from_micros(until),
                };
            }
        }

        let slot = self.windows.find(key, hash);
        self.scratch.clear();
        let mut old = None;
        if let Some(s) = slot {
            self.windows.touch(s);
            let times = *self.windows.value(s);
            if i128::from(t)
                < i128::from(times.newest(&self.spills)) - i128::from(self.tolerance_us)
            {
                self.stats.too_late += 1;
                return Outcome::TooLate;
            }
            times.load(&self.spills, &mut self.scratch);
            old = Some(times);
        }
        let pos = self.scratch.partition_point(|&x| x <= t);
        self.scratch.insert(pos, t);
        let (count, first) = densest_span_with(&self.scratch, pos, self.window_us);
        self.stats.counted += 1;
        let failures = u32::try_from(count).unwrap_or(u32::MAX);

        if failures >= self.policy.max_failures {
            if let Some(s) = slot {
                self.windows.remove(s).release(&mut self.spills);
            }
            return Outcome::Banned(self.ban(&who, hist, t, first..first + count));
        }

        // Forget what no future counted failure can share a window with: a future failure
        // is at least `newest - tolerance`, and a window is shorter than `window`.
        let newest = self.scratch[self.scratch.len() - 1];
        let cutoff =
            i128::from(newest) - i128::from(self.window_us) - i128::from(self.tolerance_us);
        let keep = self.scratch.partition_point(|&x| i128::from(x) <= cutoff);
        let times = Times::store(old, &self.scratch[keep..], &mut self.spills);
        match slot {
            Some(s) => *self.windows.value_mut(s) = times,
            None => {
                if let (_, Some(evicted)) = self.windows.insert(key, hash, times) {
                    evicted.release(&mut self.spills);
                    self.stats.evictions += 1;
                }
            }
        }
        Outcome::Counted { failures }
    }

    /// Decides the ban tipped at `t` by the failures `self.scratch[tipping]`, and remembers
    /// it in the history (`hist` is the offender's history slot, if it has one).
    fn ban(&mut self, who: &Subject, hist: Option<u32>, t: i64, tipping: Range<usize>) -> Ban {
        let level = match hist {
            Some(h) => {
                let past = *self.history.value(h);
                let forgotten = self.escalation.is_some_and(|(_, _, forget_after)| {
                    i128::from(t) > i128::from(past.last_end) + i128::from(forget_after)
                });
                if forgotten {
                    0
                } else {
                    past.bans
                }
            }
            None => 0,
        };
        let end = t.saturating_add(self.ban_micros(level));
        let remembered = History {
            bans: level.saturating_add(1),
            last_end: end,
        };
        match hist {
            Some(h) => *self.history.value_mut(h) = remembered,
            None => {
                if let (_, Some(_)) = self.history.insert(who.key, who.hash, remembered) {
                    self.stats.history_evictions += 1;
                }
            }
        }
        self.stats.bans += 1;
        Ban {
            jail: self.policy.jail.clone(),
            offender: who.offender,
            addr: who.addr,
            failures: u32::try_from(tipping.len()).unwrap_or(u32::MAX),
            first_failure: Timestamp::from_micros(self.scratch[tipping.start]),
            last_failure: Timestamp::from_micros(self.scratch[tipping.end - 1]),
            start: Timestamp::from_micros(t),
            end: Timestamp::from_micros(end),
            level,
        }
    }

    /// The ban duration at escalation `level`, in microseconds.
    fn ban_micros(&self, level: u32) -> i64 {
        let base = self.ban_for_us;
        match self.escalation {
            None => base,
            Some((factor, max, _)) => {
                let exp = i32::try_from(level).unwrap_or(i32::MAX);
                // Float-to-int casts saturate (infinity becomes i64::MAX), so no overflow.
                let scaled = (base as f64 * factor.powi(exp)) as i64;
                scaled.min(max).max(base)
            }
        }
    }

    /// What the detector has done so far.
    pub fn stats(&self) -> &DetectorStats {
        &self.stats
    }

    /// The policy the detector applies.
    pub fn policy(&self) -> &JailPolicy {
        &self.policy
    }

    /// Offenders currently in the window table (those with counted failures and no ban since).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    /// Offenders currently in the ban-history table.
    pub fn remembered(&self) -> usize {
        self.history.len()
    }

    /// Offenders whose timestamps did not fit the inline storage and use a spill vector.
    pub fn spilled(&self) -> usize {
        self.spills.in_use()
    }

    /// Bytes of heap memory the detector's tables hold now (not counting the policy's
    /// allowlist).
    pub fn heap_bytes(&self) -> usize {
        self.windows.heap_bytes()
            + self.history.heap_bytes()
            + self.spills.heap_bytes()
            + self.scratch.capacity() * size_of::<i64>()
    }

    /// Whether failures from `addr` are ignored: loopback, unspecified, or allowlisted, or
    /// (for IPv6) any address of its offender prefix allowlisted.
    pub fn is_allowlisted(&self, addr: IpAddr) -> bool {
        self.is_allowlisted_offender(Offender::from_addr(addr, self.policy.ipv6_prefix))
    }

    fn is_allowlisted_offender(&self, offender: Offender) -> bool {
        let net = offender.net();
        self.builtin.overlaps(net) || self.policy.allow.overlaps(net)
    }

    /// Tells the detector that `offender` has had `bans` earlier bans in this jail, the last
    /// ending at `last_ban_end` (the store calls this at start-up). It replaces what was
    /// remembered; `bans == 0` forgets the offender's history. If `last_ban_end` is later
    /// than a failure's time, that failure is [`Outcome::WhileBanned`]. An IPv6 offender
    /// grouped under a different prefix is regrouped by its network address. Seeding
    /// counts as a use of the history table, so seed the oldest history first when it may
    /// not all fit.
    pub fn seed_history(&mut self, offender: Offender, bans: u32, last_ban_end: Timestamp) {
        let offender = Offender::from_addr(offender.net().addr(), self.policy.ipv6_prefix);
        let key = Key::of(offender, &self.hasher);
        let hash = self.history.hash(key);
        let found = self.history.find(key, hash);
        if bans == 0 {
            if let Some(h) = found {
                self.history.remove(h);
            }
            return;
        }
        let remembered = History {
            bans,
            last_end: last_ban_end.as_micros(),
        };
        match found {
            Some(h) => {
                self.history.touch(h);
                *self.history.value_mut(h) = remembered;
            }
            None => {
                if let (_, Some(_)) = self.history.insert(key, hash, remembered) {
                    self.stats.history_evictions += 1;
                }
            }
        }
    }
}

/// In sorted `ts`, the span shorter than `window` that holds the most timestamps including
/// `ts[at]`: returns how many it holds and the index of its first (the earliest such span
/// when several hold as many).
fn densest_span_with(ts: &[i64], at: usize, window: i64) -> (usize, usize) {
    let t = i128::from(ts[at]);
    let window = i128::from(window);
    let within = |a: i64, b: i64| i128::from(b) - i128::from(a) < window;
    // Spans start at a timestamp `ts[j] <= t` with `t - ts[j] < window`.
    let lo = ts[..at].partition_point(|&x| t - i128::from(x) >= window);
    let mut best = (0, at);
    let mut hi = at + 1;
    for j in lo..=at {
        while hi < ts.len() && within(ts[j], ts[hi]) {
            hi += 1;
        }
        if hi - j > best.0 {
            best = (hi - j, j);
        }
    }
    best
}

#[cfg(test)]
mod tests;
