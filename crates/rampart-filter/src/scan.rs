//! Running filters over the lines of one log source.
//!
//! Per line: each filter's literal prefilter on the raw line; only if one says "candidate"
//! is the timestamp parsed (once per line, shared by all filters) and the filter's
//! `RegexSet` run on the message. Non-candidate lines cost one Aho-Corasick scan per filter
//! and allocate nothing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use rampart_core::Timestamp;

use crate::compile::{Filter, PatternKind, Scratch, Verdict};
use crate::time::{Stamp, TimeParser};

/// How many connection ids a filter remembers for correlation. When full, the oldest entry
/// is forgotten (FIFO) and counted in [`FilterStats::conn_evictions`].
pub const MAX_CONNECTIONS: usize = 16_384;

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
    /// Failures per pattern (notes count in their pattern's slot too).
    pub per_pattern: Vec<u64>,
    /// Failures emitted.
    pub failures: u64,
    /// Failure matches vetoed by an ignore pattern.
    pub ignored: u64,
    /// Failure matches on lines without a parsable time.
    pub no_time: u64,
    /// Matches whose `<HOST>` was not an address.
    pub bad_host: u64,
    /// Failures without an address whose connection was unknown.
    pub unattributed: u64,
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

/// Bounded map from connection id to address (FIFO eviction).
#[derive(Debug, Default)]
struct Connections {
    map: HashMap<Box<[u8]>, IpAddr>,
    order: VecDeque<Box<[u8]>>,
}

impl Connections {
    /// Records an address; returns true when an old entry had to be evicted.
    fn remember(&mut self, conn: &[u8], addr: IpAddr) -> bool {
        if let Some(a) = self.map.get_mut(conn) {
            *a = addr;
            return false;
        }
        let mut evicted = false;
        if self.map.len() >= MAX_CONNECTIONS {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
                evicted = true;
            }
        }
        let key: Box<[u8]> = conn.into();
        self.order.push_back(key.clone());
        self.map.insert(key, addr);
        evicted
    }

    fn lookup(&self, conn: &[u8]) -> Option<IpAddr> {
        self.map.get(conn).copied()
    }
}

/// Runs a set of filters over the lines of one source.
#[derive(Debug)]
pub struct Scanner {
    time: TimeParser,
    slots: Vec<Slot>,
    stats: ScanStats,
    time_every_line: bool,
}

impl Scanner {
    /// A scanner for one source. With `time_every_line` the timestamp of every line is
    /// parsed (for reports on the log itself); otherwise only candidate lines pay for it.
    pub fn new(filters: Vec<Arc<Filter>>, time: TimeParser, time_every_line: bool) -> Self {
        let slots = filters
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
        Self {
            time,
            slots,
            stats: ScanStats::default(),
            time_every_line,
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
        let mut stamp: Option<Option<Stamp>> = None;
        if self.time_every_line {
            stamp = Some(parse_time(&mut self.time, &mut self.stats, line));
        }
        for (fi, slot) in self.slots.iter_mut().enumerate() {
            let Some(candidates) = slot.filter.candidates(line) else {
                continue;
            };
            slot.stats.candidates += 1;
            let st = match stamp {
                Some(s) => s,
                None => {
                    let s = parse_time(&mut self.time, &mut self.stats, line);
                    stamp = Some(s);
                    s
                }
            };
            let msg = match st {
                Some(s) => &line[s.message_start.min(line.len())..],
                None => line,
            };
            let time = st.map(|s| s.time);
            let verdict = slot
                .filter
                .match_candidates(&mut slot.scratch, msg, candidates);
            if let Some(event) = judge(slot, fi, verdict, time) {
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
        for (fi, slot) in self.slots.iter_mut().enumerate() {
            let Some(candidates) = slot.filter.candidates(message) else {
                continue;
            };
            slot.stats.candidates += 1;
            let verdict = slot
                .filter
                .match_candidates(&mut slot.scratch, message, candidates);
            if let Some(event) = judge(slot, fi, verdict, Some(time)) {
                emit(event);
            }
        }
    }
}

/// Turns a filter's verdict into an event, keeping the slot's counters and connection
/// table; `None` when nothing matched.
fn judge<'a>(
    slot: &mut Slot,
    fi: usize,
    verdict: Verdict<'a>,
    time: Option<Timestamp>,
) -> Option<Event<'a>> {
    let (pattern, kind, addr, user) = match verdict {
        Verdict::NoMatch => return None,
        Verdict::Ignored { pattern } => {
            slot.stats.ignored += 1;
            (pattern, EventKind::Ignored, None, None)
        }
        Verdict::BadHost { pattern } => {
            slot.stats.bad_host += 1;
            (pattern, EventKind::BadHost, None, None)
        }
        Verdict::Hit(hit) => {
            let mut addr = hit.addr;
            if let (Some(conn), Some(a)) = (hit.conn, hit.addr) {
                if slot.conns.remember(conn, a) {
                    slot.stats.conn_evictions += 1;
                }
            }
            if addr.is_none() {
                addr = hit.conn.and_then(|c| slot.conns.lookup(c));
            }
            let kind = match (hit.kind, addr, time) {
                (PatternKind::Note, _, _) => EventKind::Note,
                (PatternKind::Failure, None, _) => {
                    slot.stats.unattributed += 1;
                    EventKind::Unattributed
                }
                (PatternKind::Failure, Some(_), None) => {
                    slot.stats.no_time += 1;
                    EventKind::NoTime
                }
                (PatternKind::Failure, Some(_), Some(_)) => {
                    slot.stats.failures += 1;
                    slot.stats.per_pattern[hit.pattern] += 1;
                    EventKind::Failure
                }
            };
            if kind == EventKind::Note {
                slot.stats.per_pattern[hit.pattern] += 1;
            }
            (hit.pattern, kind, addr, hit.user)
        }
    };
    Some(Event {
        filter: fi,
        pattern,
        kind,
        addr,
        time,
        user,
    })
}

fn parse_time(time: &mut TimeParser, stats: &mut ScanStats, line: &[u8]) -> Option<Stamp> {
    let s = time.parse(line);
    match s {
        Some(_) => stats.timed += 1,
        None => stats.no_timestamp += 1,
    }
    s
}
