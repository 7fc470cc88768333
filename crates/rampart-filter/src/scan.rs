//! Running filters over the lines of one log source.
//!
//! Per line: one literal scan for all filters together (when every filter has a
//! prefilter), then each filter whose literals occur runs its own prefilter and pattern
//! choice; only if one says "candidate" is the timestamp parsed (once per line, shared by
//! all filters) and the filter's patterns run on the message. A line no filter can match
//! costs one Aho-Corasick scan however many filters read the source, and allocates nothing.
//!
//! ## Connections and attempts
//!
//! A pattern with a `conn` group names the connection its line belongs to (for sshd: host,
//! process and pid). Per filter the scanner keeps a bounded table of connections, each with
//! its address (from any line of it that has one), whether its current login attempt has
//! counted, whether anything of it has counted, and at most one *held* failure: a line
//! that may be a failure but is not counted yet (a failure without an address, or a
//! pattern with `attempt = "pending"`). The pattern's [`Attempt`] role decides:
//!
//! | role | the line |
//! |---|---|
//! | none | counts |
//! | `opens` | counts, and marks the attempt counted |
//! | `pending` | folded if the attempt counted; else held (replacing a held one of the same user; a held one of another user counts) |
//! | `closes` | folded if the attempt counted, else counts; ends the attempt |
//! | `ends` | counts the held failure if any; else counts itself if nothing of the connection counted, else folded |
//! | `succeeds` (note) | drops the held failure |
//!
//! A line that counts absorbs the held failure (one incident, counted once). A line that
//! supplies the address of a connection whose held failure lacked one counts that failure
//! (on a note) or absorbs it (on a failure). A held failure counted later is reported on
//! the later line, with that line's time (so failures stay in log order). A connection
//! not seen for [`CONNECTION_TTL_SECS`] of log time, or seen again from another address, starts
//! afresh (process ids are reused).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use rampart_core::Timestamp;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::compile::{Filter, PatternKind, Scratch, Verdict};
use crate::def::Attempt;
use crate::time::{Stamp, TimeParser};

/// How many connection ids a filter remembers for correlation. When full, the oldest entry
/// is forgotten (FIFO) and counted in [`FilterStats::conn_evictions`]. Attackers choose how
/// many connections they open; forgetting one errs toward counting more, never less: its
/// later lines count as a new connection's, and only its held failure is lost.
pub const MAX_CONNECTIONS: usize = 16_384;

/// A connection not seen for this long (log time) starts afresh: its process id may have
/// been reused. sshd's default `LoginGraceTime` is 2 minutes.
pub const CONNECTION_TTL_SECS: i64 = 600;

/// What happened to a line in one filter. `Failure` is the one that counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A failure with an address and a time.
    Failure,
    /// A failure pattern matched, but an ignore pattern vetoed it.
    Ignored,
    /// A failure pattern matched, but the line has no parsable time: counted, not used.
    NoTime,
    /// A pattern matched, but the `<HOST>` text is not an address.
    BadHost,
    /// A failure pattern matched without an address, and its connection id is unknown.
    Unattributed,
    /// A note pattern recorded a connection's address.
    Note,
    /// A failure line of an attempt (or a connection) that already counted: one attempt
    /// counts once.
    Folded,
    /// A failure line held until a later line of its connection decides (see the module
    /// docs): counted then, or dropped.
    Held,
}

/// One filter's verdict on one line, handed to the caller.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Index of the filter in the scanner.
    pub filter: usize,
    /// Index of the pattern in the filter.
    pub pattern: usize,
    /// What happened.
    pub kind: EventKind,
    /// The address (for `Failure` and `Note`).
    pub addr: Option<IpAddr>,
    /// The line's time (absent for `NoTime`).
    pub time: Option<Timestamp>,
    /// The `user` capture.
    pub user: Option<&'a [u8]>,
}

/// Counters of one filter on one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Lines that passed the prefilter.
    pub candidates: u64,
    /// Lines each pattern matched (whatever came of them: counted, folded, held, note).
    pub per_pattern: Vec<u64>,
    /// Failures emitted.
    pub failures: u64,
    /// Failure matches vetoed by an ignore pattern.
    pub ignored: u64,
    /// Failure matches on lines without a parsable time.
    pub no_time: u64,
    /// Matches whose `<HOST>` was not an address.
    pub bad_host: u64,
    /// Held failures without an address dropped before their connection named one.
    pub unattributed: u64,
    /// Failure lines folded into an attempt that already counted.
    pub folded: u64,
    /// Failure lines held for a later decision.
    pub held: u64,
    /// Held failures dropped by a success of their connection (or replaced by a newer one).
    pub forgiven: u64,
    /// Connection ids forgotten because the table was full.
    pub conn_evictions: u64,
}

/// Counters of one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Lines scanned.
    pub lines: u64,
    /// Lines whose time was looked for and not found.
    pub no_timestamp: u64,
    /// Lines whose time was parsed.
    pub timed: u64,
}

#[derive(Debug)]
struct Slot {
    filter: Arc<Filter>,
    scratch: Scratch,
    conns: Connections,
    stats: FilterStats,
}

/// A failure not counted yet.
#[derive(Clone, Copy, Debug)]
struct Held {
    pattern: usize,
    addr: Option<IpAddr>,
    /// A hash of the `user` capture, to tell two users' attempts apart.
    user: Option<u64>,
}

/// What a filter knows about one connection.
#[derive(Clone, Copy, Debug, Default)]
struct Conn {
    addr: Option<IpAddr>,
    held: Option<Held>,
    /// The current attempt has counted.
    attempt_counted: bool,
    /// Something of this connection has counted.
    any_counted: bool,
    /// Log time of its last line (seconds), if known.
    seen: Option<i64>,
}

/// Bounded map from connection id to its state (FIFO eviction). Keyed by a seeded hash of
/// the id (one hash per line; the map itself does not hash again), with the id kept beside
/// the state: two ids with one hash are told apart, and the later one is treated as a new
/// connection (as if the other had been evicted). Connection ids are not the remote
/// party's to choose (host, program, process id), and the seed is random per table, so a
/// fast multiply-mix hash does here what SipHash did at a quarter of the cost.
#[derive(Debug)]
struct Connections {
    seed: u64,
    map: HashMap<u64, (ConnKey, Conn), BuildHasherDefault<PreHashed>>,
    order: VecDeque<u64>,
}

/// A connection id as stored: inline when short (sshd's `host sshd[pid]:` is), so that
/// checking it costs no pointer chase and a new connection no allocation.
#[derive(Debug)]
enum ConnKey {
    Short { len: u8, bytes: [u8; 30] },
    Long(Box<[u8]>),
}

impl ConnKey {
    fn new(id: &[u8]) -> Self {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= 30 => {
                let mut bytes = [0u8; 30];
                bytes[..id.len()].copy_from_slice(id);
                Self::Short { len, bytes }
            }
            _ => Self::Long(id.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Short { len, bytes } => &bytes[..usize::from(*len)],
            Self::Long(b) => b,
        }
    }
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            seed: std::hash::RandomState::new().hash_one(0x5eed_u64),
            map: HashMap::default(),
            order: VecDeque::new(),
        }
    }
}

/// A seeded hash of a connection id: eight bytes at a time, multiplied and mixed, with a
/// final avalanche so that both the high bits (the map's tags) and the low bits (its
/// buckets) depend on every byte.
fn conn_hash(seed: u64, id: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (id.len() as u64).wrapping_mul(K);
    let mut words = id.chunks_exact(8);
    let word = |c: &[u8]| u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
    for c in &mut words {
        h = (h ^ word(c)).wrapping_mul(K).rotate_left(31);
    }
    let rest = words.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

/// A hasher for keys that are hashes already.
#[derive(Debug, Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Connections {
    /// Forgets up to two of the oldest connections if they have been idle for longer than
    /// [`CONNECTION_TTL_SECS`] at log time `now` (their next line would start afresh
    /// anyway). Called once per new connection, so the table holds about the connections
    /// of the last TTL rather than filling up to its bound, and stays small enough to be
    /// in the CPU's caches.
    fn expire(&mut self, now: i64) {
        for _ in 0..2 {
            let Some(&old) = self.order.front() else {
                return;
            };
            match self.map.get(&old) {
                None => {}
                Some((_, c)) if c.seen.is_some_and(|seen| now - seen > CONNECTION_TTL_SECS) => {
                    self.map.remove(&old);
                }
                Some(_) => return,
            }
            self.order.pop_front();
        }
    }

    /// The state of `conn`, created (and aged) as needed; the flag says an old entry had
    /// to be evicted to make room.
    fn entry(&mut self, conn: &[u8], now: Option<i64>) -> (&mut Conn, bool) {
        let h = conn_hash(self.seed, conn);
        let mut evicted = false;
        let fresh = match self.map.get(&h) {
            Some((key, _)) => key.as_bytes() != conn,
            None => true,
        };
        if fresh {
            if let Some(now) = now {
                self.expire(now);
            }
            if !self.map.contains_key(&h) && self.map.len() >= MAX_CONNECTIONS {
                // The order queue may hold keys already gone; pop until one is removed.
                while let Some(old) = self.order.pop_front() {
                    if self.map.remove(&old).is_some() {
                        evicted = true;
                        break;
                    }
                }
            }
            if self
                .map
                .insert(h, (ConnKey::new(conn), Conn::default()))
                .is_none()
            {
                self.order.push_back(h);
            }
        }
        let (_, state) = self
            .map
            .get_mut(&h)
            .expect("the entry was inserted above if it was missing");
        if let (Some(now), Some(seen)) = (now, state.seen) {
            if now - seen > CONNECTION_TTL_SECS {
                *state = Conn::default();
            }
        }
        if now.is_some() {
            state.seen = now;
        }
        (state, evicted)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Runs a set of filters over the lines of one source.
#[derive(Debug)]
pub struct Scanner {
    time: TimeParser,
    slots: Vec<Slot>,
    stats: ScanStats,
    time_every_line: bool,
    /// The literals of all filters in one automaton, when there are several filters and
    /// each has a prefilter.
    combined: Option<Combined>,
}

/// Most literals of all filters of a source for the combined scan (Aho-Corasick's packed
/// SIMD searcher handles up to 64).
const MAX_COMBINED_LITERALS: usize = 64;

/// One literal scan for several filters: whose literals occur in a line? Searching
/// leftmost-longest and restarting one byte after each hit's start finds a literal at every
/// position where one starts; the only literals that can hide are shorter ones starting at
/// the same position, which are prefixes of the one reported, so each literal's owner mask
/// includes the owners of its prefixes.
#[derive(Debug)]
struct Combined {
    finder: AhoCorasick,
    /// Per literal: the bits of the filters that own it or one of its prefixes.
    owners: Vec<u64>,
    /// Every filter's bit.
    all: u64,
}

impl Combined {
    /// Built when there are 2 to 64 filters and every one has a prefilter.
    fn new(filters: &[Arc<Filter>]) -> Option<Self> {
        if filters.len() < 2 || filters.len() > 64 {
            return None;
        }
        let mut lits: Vec<(&[u8], u64)> = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            if !f.has_prefilter() {
                return None;
            }
            for p in f.patterns() {
                for l in p.literals.as_ref()? {
                    lits.push((l, 1u64 << i));
                }
            }
        }
        // Beyond this many literals Aho-Corasick loses its SIMD search, and one scan per
        // filter (each with its own SIMD prefilter) is faster.
        if lits.len() > MAX_COMBINED_LITERALS {
            return None;
        }
        let owners = lits
            .iter()
            .map(|(l, _)| {
                lits.iter()
                    .filter(|(q, _)| l.starts_with(q))
                    .fold(0u64, |m, (_, o)| m | o)
            })
            .collect();
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(lits.iter().map(|(l, _)| l))
            .ok()?;
        let all = if filters.len() == 64 {
            u64::MAX
        } else {
            (1u64 << filters.len()) - 1
        };
        Some(Self {
            finder,
            owners,
            all,
        })
    }

    /// The filters one of whose literals occurs in `line` (a superset of those that can
    /// match it).
    #[inline]
    fn filters(&self, line: &[u8]) -> u64 {
        let mut mask = 0u64;
        let mut at = 0;
        while at < line.len() && mask != self.all {
            let input = aho_corasick::Input::new(line).span(at..line.len());
            let Some(m) = self.finder.find(input) else {
                break;
            };
            mask |= self.owners[m.pattern().as_usize()];
            at = m.start() + 1;
        }
        mask
    }
}

impl Scanner {
    /// A scanner for one source. With `time_every_line` the timestamp of every line is
    /// parsed (for reports on the log itself); otherwise only candidate lines pay for it.
    pub fn new(filters: Vec<Arc<Filter>>, time: TimeParser, time_every_line: bool) -> Self {
        let slots: Vec<Slot> = filters
            .into_iter()
            .map(|filter| Slot {
                scratch: filter.scratch(),
                stats: FilterStats {
                    per_pattern: vec![0; filter.patterns().len()],
                    ..FilterStats::default()
                },
                conns: Connections::default(),
                filter,
            })
            .collect();
        let filters: Vec<Arc<Filter>> = slots_filters(&slots);
        Self {
            time,
            slots,
            stats: ScanStats::default(),
            time_every_line,
            combined: Combined::new(&filters),
        }
    }

    /// The source's counters.
    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// A filter's counters.
    pub fn filter_stats(&self, filter: usize) -> &FilterStats {
        &self.slots[filter].stats
    }

    /// The filters, in the order given.
    pub fn filter(&self, filter: usize) -> &Arc<Filter> {
        &self.slots[filter].filter
    }

    /// Moves "now" forward for year inference of syslog timestamps (a daemon calls this per
    /// batch).
    pub fn set_now(&mut self, now: Timestamp) {
        self.time.set_now(now);
    }

    /// The timestamp parser (to ask which format it detected).
    pub fn time_parser(&self) -> &TimeParser {
        &self.time
    }

    /// Scans one line (without its newline) and reports each filter's verdict to `emit`.
    /// Returns the line's time if it was parsed.
    pub fn scan<'a>(
        &mut self,
        line: &'a [u8],
        mut emit: impl FnMut(Event<'a>),
    ) -> Option<Timestamp> {
        self.stats.lines += 1;
        // The line's time, parsed at most once; counted in the stats when every line's is
        // wanted, else once some filter finds the line a candidate.
        let mut stamp: Option<Option<Stamp>> = None;
        let mut counted = false;
        if self.time_every_line {
            stamp = Some(parse_time(&mut self.time, &mut self.stats, line));
            counted = true;
        }
        let which = match &self.combined {
            Some(c) => c.filters(line),
            None => u64::MAX,
        };
        if which == 0 {
            return stamp.flatten().map(|s| s.time);
        }
        for (fi, slot) in self.slots.iter_mut().enumerate() {
            if fi < 64 && which & (1u64 << fi) == 0 {
                continue;
            }
            // A filter with a shared prefix needs the message to say whether the line is
            // a candidate; the others decide from the literals of the raw line first.
            let candidates = if slot.filter.has_dispatch() {
                if !slot.filter.passes_gate(line) {
                    continue;
                }
                None
            } else {
                match slot.filter.candidates(line) {
                    Some(c) => Some(c),
                    None => continue,
                }
            };
            let st = *stamp.get_or_insert_with(|| self.time.parse(line));
            let msg = match st {
                Some(s) => &line[s.message_start.min(line.len())..],
                None => line,
            };
            let verdict = match candidates {
                Some(c) => slot.filter.match_candidates(&mut slot.scratch, msg, c),
                None => match slot.filter.match_dispatch_gated(&mut slot.scratch, msg) {
                    Some(v) => v,
                    None => continue,
                },
            };
            slot.stats.candidates += 1;
            if !counted {
                count_time(&mut self.stats, st);
                counted = true;
            }
            if let Some(event) = judge(slot, fi, verdict, st.map(|s| s.time)) {
                emit(event);
            }
        }
        stamp.flatten().map(|s| s.time)
    }

    /// Scans a message whose time is already known (a journal entry): no timestamp is
    /// parsed; `message` is matched from its start (for syslog-style filters, pass
    /// `"host ident[pid]: text"`).
    pub fn scan_message<'a>(
        &mut self,
        message: &'a [u8],
        time: Timestamp,
        mut emit: impl FnMut(Event<'a>),
    ) {
        self.stats.lines += 1;
        self.stats.timed += 1;
        let which = match &self.combined {
            Some(c) => c.filters(message),
            None => u64::MAX,
        };
        for (fi, slot) in self.slots.iter_mut().enumerate() {
            if fi < 64 && which & (1u64 << fi) == 0 {
                continue;
            }
            let verdict = if slot.filter.has_dispatch() {
                match slot.filter.match_dispatch(&mut slot.scratch, message) {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                let Some(candidates) = slot.filter.candidates(message) else {
                    continue;
                };
                slot.filter
                    .match_candidates(&mut slot.scratch, message, candidates)
            };
            slot.stats.candidates += 1;
            if let Some(event) = judge(slot, fi, verdict, Some(time)) {
                emit(event);
            }
        }
    }
}

/// What a line does, before the address check.
#[derive(Clone, Copy, Debug)]
enum Step {
    Count,
    Note,
    Fold,
    Hold,
    /// Count the held failure on this line.
    Release(Held),
}

/// Turns a filter's verdict into an event, keeping the slot's counters and connection
/// table; `None` when nothing matched.
fn judge<'a>(
    slot: &mut Slot,
    fi: usize,
    verdict: Verdict<'a>,
    time: Option<Timestamp>,
) -> Option<Event<'a>> {
    let hit = match verdict {
        Verdict::NoMatch => return None,
        Verdict::Ignored { pattern } => {
            slot.stats.ignored += 1;
            return Some(event(fi, pattern, EventKind::Ignored, None, time, None));
        }
        Verdict::BadHost { pattern } => {
            slot.stats.bad_host += 1;
            return Some(event(fi, pattern, EventKind::BadHost, None, time, None));
        }
        Verdict::Hit(hit) => hit,
    };
    let stats = &mut slot.stats;
    let Some(conn) = hit.conn else {
        // No connection: the line stands alone.
        let kind = match (hit.kind, hit.addr) {
            (PatternKind::Note, _) => EventKind::Note,
            (PatternKind::Failure, None) => {
                stats.unattributed += 1;
                EventKind::Unattributed
            }
            (PatternKind::Failure, Some(_)) => counted(stats, time),
        };
        stats.per_pattern[hit.pattern] += 1;
        return Some(event(fi, hit.pattern, kind, hit.addr, time, hit.user));
    };
    stats.per_pattern[hit.pattern] += 1;
    let role = slot.filter.patterns()[hit.pattern].attempt;
    let secs = time.map(|t| t.as_secs());
    let (st, evicted) = slot.conns.entry(conn, secs);
    if evicted {
        stats.conn_evictions += 1;
    }
    if let (Some(new), Some(old)) = (hit.addr, st.addr) {
        if new != old {
            // Another client on a reused id: a new connection.
            *st = Conn {
                seen: secs,
                ..Conn::default()
            };
        }
    }
    let supplies_addr = hit.addr.is_some() && st.addr.is_none();
    if hit.addr.is_some() {
        st.addr = hit.addr;
    }
    let addr = hit.addr.or(st.addr);
    let step = match (hit.kind, role) {
        (PatternKind::Note, Some(Attempt::Succeeds)) => {
            if st.held.take().is_some() {
                stats.forgiven += 1;
            }
            st.attempt_counted = false;
            Step::Note
        }
        (PatternKind::Note, Some(Attempt::Ends)) => {
            st.attempt_counted = false;
            match st.held.take() {
                Some(h) => Step::Release(h),
                None => Step::Note,
            }
        }
        (PatternKind::Note, _) => match st.held {
            Some(h) if h.addr.is_none() && supplies_addr => {
                st.held = None;
                Step::Release(h)
            }
            _ => Step::Note,
        },
        (PatternKind::Failure, None | Some(Attempt::Succeeds)) => Step::Count,
        (PatternKind::Failure, Some(Attempt::Opens)) => {
            st.attempt_counted = true;
            Step::Count
        }
        (PatternKind::Failure, Some(Attempt::Pending)) => {
            if st.attempt_counted {
                Step::Fold
            } else {
                Step::Hold
            }
        }
        (PatternKind::Failure, Some(Attempt::Closes)) => {
            let s = if st.attempt_counted {
                st.held = None;
                Step::Fold
            } else {
                Step::Count
            };
            st.attempt_counted = false;
            s
        }
        (PatternKind::Failure, Some(Attempt::Ends)) => {
            st.attempt_counted = false;
            match st.held.take() {
                Some(h) => Step::Release(h),
                None if st.any_counted => Step::Fold,
                None => Step::Count,
            }
        }
    };
    // The event is about this line's own match, or about an earlier held failure (whose
    // user capture is gone with its line).
    let (pattern, kind, addr, own) = match step {
        Step::Note => (hit.pattern, EventKind::Note, addr, true),
        Step::Fold => {
            stats.folded += 1;
            (hit.pattern, EventKind::Folded, addr, true)
        }
        Step::Hold | Step::Count if matches!(step, Step::Hold) || addr.is_none() => {
            // Held for a later decision, or (no address yet) until a line of the
            // connection names the address.
            let h = Held {
                pattern: hit.pattern,
                addr,
                user: hit.user.map(user_hash),
            };
            match hold(st, stats, h) {
                Some(old) => {
                    st.any_counted = true;
                    (old.pattern, counted(stats, time), old.addr, false)
                }
                None => (hit.pattern, EventKind::Held, addr, true),
            }
        }
        Step::Count | Step::Hold => {
            st.held = None;
            st.any_counted = true;
            (hit.pattern, counted(stats, time), addr, true)
        }
        Step::Release(h) => match h.addr.or(addr) {
            Some(a) => {
                st.any_counted = true;
                (h.pattern, counted(stats, time), Some(a), false)
            }
            None => {
                st.held = Some(h);
                (hit.pattern, EventKind::Note, None, true)
            }
        },
    };
    let user = if own { hit.user } else { None };
    Some(event(fi, pattern, kind, addr, time, user))
}

/// Holds a failure on its connection. An earlier held failure of another user (both
/// known, the earlier with an address) is returned to be counted on this line: two users
/// mean two attempts. Otherwise it is replaced (the same attempt logged again).
fn hold(st: &mut Conn, stats: &mut FilterStats, h: Held) -> Option<Held> {
    stats.held += 1;
    let old = st.held.replace(h)?;
    match (old.user, h.user, old.addr) {
        (Some(a), Some(b), Some(_)) if a != b => return Some(old),
        (_, _, None) => stats.unattributed += 1,
        _ => stats.forgiven += 1,
    }
    None
}

/// A cheap hash of a user name (FNV-1a); equal names give equal hashes.
fn user_hash(user: &[u8]) -> u64 {
    user.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Counts a failure (or a line without a time).
fn counted(stats: &mut FilterStats, time: Option<Timestamp>) -> EventKind {
    match time {
        None => {
            stats.no_time += 1;
            EventKind::NoTime
        }
        Some(_) => {
            stats.failures += 1;
            EventKind::Failure
        }
    }
}

fn event<'a>(
    filter: usize,
    pattern: usize,
    kind: EventKind,
    addr: Option<IpAddr>,
    time: Option<Timestamp>,
    user: Option<&'a [u8]>,
) -> Event<'a> {
    Event {
        filter,
        pattern,
        kind,
        addr,
        time,
        user,
    }
}

fn slots_filters(slots: &[Slot]) -> Vec<Arc<Filter>> {
    slots.iter().map(|s| Arc::clone(&s.filter)).collect()
}

fn parse_time(time: &mut TimeParser, stats: &mut ScanStats, line: &[u8]) -> Option<Stamp> {
    let s = time.parse(line);
    count_time(stats, s);
    s
}

fn count_time(stats: &mut ScanStats, s: Option<Stamp>) {
    match s {
        Some(_) => stats.timed += 1,
        None => stats.no_timestamp += 1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::{FormatChoice, Zone};

    const ATTEMPTS: &str = r#"
prefix = '^(?P<conn>c\d+): '
[[failure]]
id = "invalid"
attempt = "opens"
regex = 'invalid (?P<user>\S+) from <HOST>$'
[[failure]]
id = "pam"
attempt = "pending"
regex = 'pam failure rhost=<HOST>$'
[[failure]]
id = "failed"
attempt = "closes"
regex = 'failed (?P<user>\S+) from <HOST>$'
[[failure]]
id = "closed"
attempt = "ends"
regex = 'closed <HOST> \[preauth\]$'
[[failure]]
id = "toomany"
attempt = "ends"
regex = 'too many$'
[[failure]]
id = "plain"
regex = 'plain <HOST>$'
[[note]]
id = "accepted"
attempt = "succeeds"
regex = 'accepted (?P<user>\S+) from <HOST>$'
[[note]]
id = "gone"
attempt = "ends"
regex = 'gone <HOST>$'
"#;

    fn scanner() -> Scanner {
        let f = Arc::new(Filter::from_toml("t", "t.toml", ATTEMPTS).unwrap());
        let now = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        Scanner::new(
            vec![f],
            TimeParser::new(FormatChoice::Auto, Zone::utc(), now),
            false,
        )
    }

    /// Runs `lines` (each "MM:SS text", on 2026-11-21 at 01:MM:SS) and returns per line the
    /// event kind, pattern id and address.
    fn run(sc: &mut Scanner, lines: &[&str]) -> Vec<(EventKind, String, Option<IpAddr>)> {
        let mut out = Vec::new();
        for l in lines {
            let (t, text) = l.split_once(' ').unwrap();
            let line = format!("2026-11-21T01:{t}Z {text}");
            let mut got = None;
            sc.scan(line.as_bytes(), |e| {
                got = Some((e.kind, sc_id(e.pattern), e.addr));
            });
            out.push(got.expect("every test line matches"));
        }
        out
    }

    fn sc_id(i: usize) -> String {
        [
            "invalid", "pam", "failed", "closed", "toomany", "plain", "accepted", "gone",
        ][i]
            .to_owned()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn kinds(v: &[(EventKind, String, Option<IpAddr>)]) -> Vec<EventKind> {
        v.iter().map(|e| e.0).collect()
    }

    use EventKind::{Failure, Folded, Held, Note};

    #[test]
    fn a_failed_password_and_its_pam_line_count_once() {
        let mut sc = scanner();
        let got = run(
            &mut sc,
            &[
                "00:00 c1: pam failure rhost=198.51.100.1",
                "00:01 c1: failed root from 198.51.100.1",
                "00:02 c1: pam failure rhost=198.51.100.1",
                "00:03 c1: failed root from 198.51.100.1",
                "00:04 c1: closed 198.51.100.1 [preauth]",
            ],
        );
        assert_eq!(kinds(&got), [Held, Failure, Held, Failure, Folded]);
        assert_eq!(sc.filter_stats(0).failures, 2);
    }

    #[test]
    fn an_invalid_user_counts_once_for_its_first_attempt() {
        let mut sc = scanner();
        let got = run(
            &mut sc,
            &[
                "00:00 c2: invalid admin from 198.51.100.2",
                "00:01 c2: pam failure rhost=198.51.100.2",
                "00:02 c2: failed admin from 198.51.100.2",
                "00:03 c2: failed admin from 198.51.100.2",
                "00:04 c2: closed 198.51.100.2 [preauth]",
            ],
        );
        assert_eq!(kinds(&got), [Failure, Folded, Folded, Failure, Folded]);
    }

    #[test]
    fn a_success_forgives_a_held_failure_and_an_end_counts_it() {
        let mut sc = scanner();
        let got = run(
            &mut sc,
            &[
                "00:00 c3: pam failure rhost=198.51.100.3",
                "00:01 c3: accepted alice from 198.51.100.3",
                "00:02 c3: gone 198.51.100.3",
                "00:03 c4: pam failure rhost=198.51.100.4",
                "00:04 c4: gone 198.51.100.4",
            ],
        );
        assert_eq!(kinds(&got), [Held, Note, Note, Held, Failure]);
        assert_eq!(
            got[4].1, "pam",
            "the held failure is reported as what it was"
        );
        assert_eq!(got[4].2, ip("198.51.100.4"));
        assert_eq!(sc.filter_stats(0).forgiven, 1);
    }

    #[test]
    fn held_failures_of_two_users_are_two_attempts() {
        const USERS: &str = r#"
prefix = '^(?P<conn>c\d+): '
[[failure]]
id = "pam"
attempt = "pending"
regex = 'pam failure user=(?P<user>\S+) rhost=<HOST>$'
"#;
        let f = Arc::new(Filter::from_toml("t", "t.toml", USERS).unwrap());
        let now = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        let mut sc = Scanner::new(
            vec![f],
            TimeParser::new(FormatChoice::Auto, Zone::utc(), now),
            false,
        );
        let mut got = Vec::new();
        for line in [
            "2026-11-21T01:00:00Z c9: pam failure user=root rhost=198.51.100.9",
            "2026-11-21T01:00:01Z c9: pam failure user=root rhost=198.51.100.9",
            "2026-11-21T01:00:02Z c9: pam failure user=admin rhost=198.51.100.9",
        ] {
            sc.scan(line.as_bytes(), |e| got.push(e.kind));
        }
        assert_eq!(got, [Held, Held, Failure]);
        assert_eq!(
            sc.filter_stats(0).forgiven,
            1,
            "the repeat of root's attempt"
        );
    }

    #[test]
    fn an_end_line_counts_alone_once_per_connection() {
        let mut sc = scanner();
        let got = run(
            &mut sc,
            &[
                "00:00 c5: closed 198.51.100.5 [preauth]",
                "00:01 c5: closed 198.51.100.5 [preauth]",
                "00:02 c6: plain 198.51.100.6",
                "00:03 c6: plain 198.51.100.6",
            ],
        );
        assert_eq!(kinds(&got), [Failure, Folded, Failure, Failure]);
    }

    #[test]
    fn a_failure_without_address_waits_for_its_connection_to_name_one() {
        let mut sc = scanner();
        let got = run(
            &mut sc,
            &["00:00 c7: too many", "00:01 c7: gone 198.51.100.7"],
        );
        assert_eq!(got[0], (Held, "toomany".into(), None));
        assert_eq!(got[1], (Failure, "toomany".into(), ip("198.51.100.7")));
    }

    #[test]
    fn a_stale_or_reused_connection_starts_afresh() {
        let mut sc = scanner();
        let got = run(
            &mut sc,
            &[
                "00:00 c8: failed root from 198.51.100.8",
                "00:01 c8: closed 198.51.100.8 [preauth]",
                // 11 minutes later: a new connection with the same id.
                "11:02 c8: closed 198.51.100.8 [preauth]",
                // Another address on the same id: a new connection.
                "11:03 c8: closed 203.0.113.8 [preauth]",
            ],
        );
        assert_eq!(kinds(&got), [Failure, Folded, Failure, Failure]);
    }

    #[test]
    fn one_scan_for_several_filters_gives_each_filter_its_own_verdicts() {
        use crate::builtin::BUILTINS;
        let now = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        let names = ["sshd", "vsftpd", "proftpd"];
        let filters: Vec<Arc<Filter>> = names
            .iter()
            .map(|n| Arc::new(crate::load(n).unwrap()))
            .collect();
        let mut together = Scanner::new(
            filters.clone(),
            TimeParser::new(FormatChoice::Auto, Zone::utc(), now),
            false,
        );
        assert!(
            together.combined.is_some(),
            "few literals: one combined scan"
        );
        let mut alone: Vec<Scanner> = filters
            .iter()
            .map(|f| {
                Scanner::new(
                    vec![Arc::clone(f)],
                    TimeParser::new(FormatChoice::Auto, Zone::utc(), now),
                    false,
                )
            })
            .collect();
        let corpus: String = BUILTINS
            .iter()
            .filter(|b| names.contains(&b.name))
            .map(|b| b.corpus)
            .collect();
        let mut n = 0;
        for line in corpus
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let mut got = Vec::new();
            together.scan(line.as_bytes(), |e| got.push((e.filter, e.kind, e.addr)));
            let mut want = Vec::new();
            for (i, sc) in alone.iter_mut().enumerate() {
                sc.scan(line.as_bytes(), |e| want.push((i, e.kind, e.addr)));
            }
            assert_eq!(got, want, "{line}");
            n += got.len();
        }
        assert!(n > 50, "the corpora exercise the filters ({n} events)");
    }

    #[test]
    fn connection_hashes_spread_sequential_ids_and_depend_on_the_seed() {
        let ids: Vec<String> = (0..100_000)
            .map(|pid| format!("web1 sshd-session[{pid}]:"))
            .collect();
        let hashes: std::collections::HashSet<u64> =
            ids.iter().map(|id| conn_hash(7, id.as_bytes())).collect();
        assert_eq!(hashes.len(), ids.len(), "64-bit collisions among 100k ids");
        // Low bits pick the bucket, the top 7 bits the tag: both must spread.
        for (shift, bits) in [(0u32, 12u32), (57, 7)] {
            let mut counts = vec![0u32; 1 << bits];
            for h in &hashes {
                counts[((h >> shift) & ((1 << bits) - 1)) as usize] += 1;
            }
            let mean = ids.len() as f64 / counts.len() as f64;
            let max = f64::from(*counts.iter().max().unwrap());
            assert!(
                max < mean * 1.6 + 10.0,
                "bits {shift}..: max {max}, mean {mean}"
            );
        }
        assert_ne!(
            conn_hash(7, b"web1 sshd[1]:"),
            conn_hash(8, b"web1 sshd[1]:")
        );
        assert_ne!(conn_hash(7, b""), conn_hash(7, b"\0"));
    }

    /// Connections idle for longer than the TTL leave the table as new ones come (two per
    /// new one), instead of filling it up to its bound; what a later line of theirs does
    /// is unchanged (it starts afresh either way).
    #[test]
    fn idle_connections_leave_the_table() {
        let mut sc = scanner();
        for i in 0..100 {
            let line = format!("2026-11-21T01:00:00Z c{i}: pam failure rhost=198.51.100.9");
            sc.scan(line.as_bytes(), |_| {});
        }
        assert_eq!(sc.slots[0].conns.len(), 100);
        // Ten minutes later the first ones are still within the TTL.
        let line = "2026-11-21T01:10:00Z c1000: pam failure rhost=198.51.100.9";
        sc.scan(line.as_bytes(), |_| {});
        assert_eq!(sc.slots[0].conns.len(), 101);
        for i in 1..=60 {
            let line = format!(
                "2026-11-21T01:10:01Z c{}: pam failure rhost=198.51.100.9",
                1000 + i
            );
            sc.scan(line.as_bytes(), |_| {});
        }
        // 61 new ones, the 100 idle ones gone (two per new one).
        assert_eq!(sc.slots[0].conns.len(), 61);
        assert_eq!(sc.filter_stats(0).conn_evictions, 0);
        // A forgotten connection's end line counts itself, as it would have after its
        // state aged out; a live one's releases its held pam failure.
        let got = run(
            &mut sc,
            &[
                "10:02 c5: closed 198.51.100.9 [preauth]",
                "10:02 c1007: closed 198.51.100.9 [preauth]",
            ],
        );
        assert_eq!(got[0].1, "closed");
        assert_eq!(got[1].1, "pam");
    }

    #[test]
    fn the_connection_table_is_bounded_and_forgets_the_oldest() {
        let mut sc = scanner();
        for i in 0..=MAX_CONNECTIONS {
            let line = format!("2026-11-21T01:00:00Z c{i}: pam failure rhost=198.51.100.9");
            sc.scan(line.as_bytes(), |_| {});
        }
        assert_eq!(sc.filter_stats(0).conn_evictions, 1);
        // c0 was forgotten: its end line counts itself (as a fresh connection) rather than
        // the held pam failure; the newest connection still had its held failure.
        let last = format!("00:01 c{MAX_CONNECTIONS}: closed 198.51.100.9 [preauth]");
        let got = run(
            &mut sc,
            &["00:01 c0: closed 198.51.100.9 [preauth]", last.as_str()],
        );
        assert_eq!(got[0].1, "closed");
        assert_eq!(got[1].1, "pam");
        assert!(sc.slots[0].conns.len() <= MAX_CONNECTIONS);
    }
}
