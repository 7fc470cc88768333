//! The engine: one thread that owns every jail's matcher and detector, the state file and
//! the backend. Sources feed it batches through one bounded queue; the control socket and
//! the signal thread feed it through the same queue, so nothing here needs a lock.
//!
//! Order of work for a batch: match -> count -> persist the bans (and the lagged source
//! checkpoint) in one transaction -> apply the bans to the kernel in one transaction.
//!
//! Checkpoints lag by the jail's window: the position persisted for a source is where it
//! stood `window + reorder_tolerance` ago. After a restart (or a reload) the source resumes
//! there, and re-reading that stretch rebuilds the failure counts exactly as they were,
//! while bans already decided are recognised from the state file (the detector is seeded
//! with them, so their failures count as "while banned"). So no failure is counted twice
//! and none written while the daemon was down is missed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rampart_config::{Config, Jail, JailFilter, SourceKind};
use rampart_core::{
    format_duration, parse_duration, Backend, Ban, Clock, Entry, Failure, JailName, Offender,
    Scope, SystemClock, Timestamp,
};
use rampart_detect::{JailDetector, Outcome};
use rampart_f2b::F2bFilter;
use rampart_filter::time::TimeParser;
use rampart_filter::{EventKind, Scanner};
use rampart_source::{
    Checkpoint, FileSource, FileSourceConfig, JournalEntry, JournalSource, JournalSourceConfig,
    JournalStart, LineBatch, SourceError,
};
use rampart_store::{BanRecord, Batch, Lift, Origin, Store};
use serde_json::json;

use crate::active::{Active, ActiveBans};
use crate::control::{Call, Request, Response};
use crate::host::OwnAddrs;
use crate::log::RateLimit;
use crate::{error, info, warn};

/// Lines per batch a file source hands over.
const BATCH_LINES: usize = 2048;
/// Journal entries per batch.
const BATCH_ENTRIES: usize = 2048;
/// Checkpoint marks kept per jail (one per second at most; older ones are dropped first).
const MAX_MARKS: usize = 4096;
/// How often the engine wakes up with nothing to do.
const TICK: Duration = Duration::from_millis(500);

/// What reaches the engine.
#[derive(Debug)]
pub enum Event {
    /// Lines from a jail's file source, and where the source stands after them.
    Lines {
        /// Jail index in the current generation.
        jail: usize,
        /// The generation of the jail set (bumped by reload).
        gen: u64,
        /// The lines.
        batch: LineBatch,
        /// The source's checkpoints after these lines.
        checkpoints: Vec<Checkpoint>,
    },
    /// Entries from a jail's journal source.
    Journal {
        /// Jail index.
        jail: usize,
        /// Generation.
        gen: u64,
        /// The entries.
        entries: Vec<JournalEntry>,
        /// The cursor after them.
        cursor: Option<String>,
    },
    /// A source stopped with an error (the jail keeps its state; the reconcile restarts it).
    SourceFailed {
        /// Jail index.
        jail: usize,
        /// Generation.
        gen: u64,
        /// What went wrong.
        message: String,
    },
    /// A control request.
    Control(Call),
    /// A signal number (SIGHUP reloads; SIGTERM and SIGINT stop).
    Signal(i32),
}

#[derive(Debug, Default, Clone)]
struct JailCounters {
    lines: u64,
    failures: u64,
    stale: u64,
    own: u64,
    bans: u64,
    source_errors: u64,
}

/// A jail's matcher: the native scanner, or a fail2ban filter with its per-source state
/// (date detector, `maxlines` buffer, multi-line cache).
#[derive(Debug)]
enum Matcher {
    Native(Box<Scanner>),
    Fail2ban(Arc<F2bFilter>, Box<rampart_f2b::State>),
}

impl Matcher {
    fn new(j: &Jail, zone: &rampart_filter::time::Zone, now: Timestamp) -> Self {
        match &j.filter {
            JailFilter::Native(f) => Matcher::Native(Box::new(Scanner::new(
                vec![Arc::clone(f)],
                TimeParser::new(f.timestamp(), zone.clone(), now),
                false,
            ))),
            JailFilter::Fail2ban(f) => Matcher::Fail2ban(Arc::clone(f), Box::new(f.new_state())),
        }
    }

    /// One file line: pushes its failures (address, log time).
    fn line(&mut self, line: &[u8], now: Timestamp, found: &mut Vec<(IpAddr, Timestamp)>) {
        match self {
            Matcher::Native(s) => {
                s.scan(line, |e| {
                    if e.kind == EventKind::Failure {
                        if let (Some(a), Some(t)) = (e.addr, e.time) {
                            found.push((a, t));
                        }
                    }
                });
            }
            Matcher::Fail2ban(f, st) => {
                for x in f.process_line(st, line, now.as_secs()) {
                    if let (Some(a), Some(t)) = (x.addr(), x.time) {
                        found.push((a, t));
                    }
                }
            }
        }
    }

    /// One journal entry presented as `host ident[pid]: message`, timed by the journal.
    fn entry(
        &mut self,
        line: &[u8],
        time: Timestamp,
        now: Timestamp,
        found: &mut Vec<(IpAddr, Timestamp)>,
    ) {
        match self {
            Matcher::Native(s) => {
                s.scan_message(line, time, |ev| {
                    if ev.kind == EventKind::Failure {
                        if let (Some(a), Some(t)) = (ev.addr, ev.time) {
                            found.push((a, t));
                        }
                    }
                });
            }
            Matcher::Fail2ban(f, st) => {
                let text = String::from_utf8_lossy(line);
                for x in f.process_entry(st, &text, time, now.as_secs()) {
                    if let (true, Some(a), Some(t)) = (x.is_failure(), x.addr(), x.time) {
                        found.push((a, t));
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
struct JailRt {
    jail: Jail,
    matcher: Matcher,
    detector: JailDetector,
    input: Input,
    /// (wall time after a batch, checkpoint text then); oldest first.
    marks: VecDeque<(Timestamp, String)>,
    /// The checkpoint text last persisted (or loaded at start).
    saved: Option<String>,
    /// The lagged checkpoint chosen but not yet persisted.
    pending: Option<String>,
    counters: JailCounters,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Files(Vec<String>),
    Journal(Vec<String>),
    None,
}

impl Input {
    fn key(&self, jail: &JailName) -> String {
        match self {
            Input::Files(_) | Input::None => format!("file:{jail}"),
            Input::Journal(_) => format!("journal:{jail}"),
        }
    }
    fn describe(&self) -> String {
        match self {
            Input::Files(p) => format!("files {}", p.join(", ")),
            Input::Journal(t) => format!("journal {}", t.join(" ")),
            Input::None => "none".into(),
        }
    }
}

/// Counters of the whole daemon.
#[derive(Debug, Default, Clone)]
struct Counters {
    store_errors: u64,
    backend_errors: u64,
    reconcile_repairs: u64,
    reconciles: u64,
    restored: u64,
}

/// Settings the engine needs beyond the config file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file (reloaded from here).
    pub config_path: Option<PathBuf>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// Extra args for the journal source (tests: a journal file).
    pub journal_file: Option<PathBuf>,
    /// `--fail2ban DIR`: the jails are fail2ban's (re-imported on reload).
    pub fail2ban: Option<PathBuf>,
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    config: Config,
    store: Store,
    backend: Box<dyn Backend>,
    tx: SyncSender<Event>,
    jails: Vec<JailRt>,
    gen: u64,
    active: ActiveBans,
    own: OwnAddrs,
    counters: Counters,
    started: Instant,
    next_reconcile: Instant,
    needs_reconcile: bool,
    last_commit: Timestamp,
    next_prune: Instant,
    ban_log: RateLimit,
    err_log: RateLimit,
    stopping: bool,
    geo: crate::geo::GeoRuntime,
    /// `[recidive]` and `[blocks]`: watchers of the decided bans, running block bans.
    esc: crate::escalate::Escalation,
    /// The kernel's block set failed to update: retried every tick until it succeeds.
    blocks_dirty: bool,
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// How far back a jail's ban history matters: escalation memory, or at least as long as
/// a ban plus the re-read window.
fn history_memory(j: &Jail) -> Duration {
    j.policy
        .escalation
        .as_ref()
        .map(|e| e.forget_after + e.max)
        .unwrap_or(Duration::ZERO)
        .max(j.policy.ban_for + lag(j))
}

fn lag(j: &Jail) -> Duration {
    j.policy.window + j.policy.reorder_tolerance
}

impl Engine {
    /// Builds the engine: prepares the firewall, re-applies unexpired bans in one batch and
    /// seeds escalation history, all before any source starts.
    pub fn new(
        settings: Settings,
        config: Config,
        store: Store,
        mut backend: Box<dyn Backend>,
        tx: SyncSender<Event>,
    ) -> Result<Self, crate::DaemonError> {
        let scopes: Vec<Scope> = config.scopes();
        backend.prepare(&scopes)?;
        let geo = crate::geo::make_enforcer(&config.daemon, settings.dry_run)
            .and_then(|g| crate::geo::GeoRuntime::start(config.geo.as_ref(), g))
            .map_err(crate::DaemonError::Setup)?;
        let reconcile_every = config.daemon.reconcile_every;
        let mut engine = Self {
            settings,
            config,
            store,
            backend,
            tx,
            jails: Vec::new(),
            gen: 0,
            active: ActiveBans::default(),
            own: OwnAddrs::read(),
            counters: Counters::default(),
            started: Instant::now(),
            next_reconcile: Instant::now() + reconcile_every,
            needs_reconcile: false,
            last_commit: Timestamp::from_micros(0),
            next_prune: Instant::now() + Duration::from_secs(60),
            ban_log: RateLimit::new(600),
            err_log: RateLimit::new(20),
            stopping: false,
            geo,
            esc: crate::escalate::Escalation::default(),
            blocks_dirty: false,
        };
        engine.restore()?;
        engine.build_jails()?;
        engine.start_escalation()?;
        Ok(engine)
    }

    /// Loads unexpired bans from the state file and applies them in one batch.
    fn restore(&mut self) -> Result<(), crate::DaemonError> {
        let t0 = Instant::now();
        let now = now();
        let records = self.store.active_bans(now)?;
        let mut entries = Vec::with_capacity(records.len());
        let mut orphans = Vec::new();
        self.active.reserve(records.len());
        for r in records {
            if !self.config.has_jail(r.jail.as_str()) {
                orphans.push(Lift {
                    jail: Some(r.jail.clone()),
                    net: r.net,
                    at: now,
                    reason: "jail no longer configured".into(),
                });
                continue;
            }
            if r.jail.as_str() == rampart_config::bans::BLOCKS_JAIL {
                // Block bans live in the country-policy chain: see `start_escalation`.
                continue;
            }
            entries.push(Entry {
                jail: r.jail.clone(),
                net: r.net,
                expires: r.end,
            });
            self.active.insert(
                &r.jail,
                r.net,
                Active {
                    end: r.end,
                    level: r.level,
                },
            );
        }
        if !orphans.is_empty() {
            self.store.commit(&Batch {
                bans: Vec::new(),
                lifts: orphans,
                checkpoints: Vec::new(),
            })?;
        }
        self.backend.ban(&entries, now)?;
        self.counters.restored = entries.len() as u64;
        info!(
            bans = entries.len(),
            ms = t0.elapsed().as_millis(),
            backend = self.backend.name();
            "Re-applied unexpired bans."
        );
        Ok(())
    }

    /// Builds the `[recidive]` and `[blocks]` watchers, seeds them from the state file,
    /// decides what the history earns and is not stored yet, and loads the running block
    /// bans into the kernel.
    fn start_escalation(&mut self) -> Result<(), crate::DaemonError> {
        let now = now();
        self.esc =
            crate::escalate::Escalation::new(&self.config).map_err(crate::DaemonError::Setup)?;
        let own = &self.own;
        let protected = |n: IpNet| own.overlaps(n);
        let owed = self.esc.seed(&self.store, &self.geo, &protected, now)?;
        if !owed.is_empty() {
            info!(bans = owed.len(); "The ban history earns recidive or block bans not stored yet; deciding them.");
            self.decide_records(owed, now);
        }
        self.sync_blocks(now);
        Ok(())
    }

    /// Makes the kernel's block set hold exactly the running block bans.
    fn sync_blocks(&mut self, now: Timestamp) {
        match self.geo.set_blocks(&self.esc.block_nets()) {
            Ok(()) => self.blocks_dirty = false,
            Err(e) => {
                self.blocks_dirty = true;
                self.counters.backend_errors += 1;
                if self.err_log.allow(now).0 {
                    error!(error = %e; "Could not apply block bans; retrying.");
                }
            }
        }
    }

    /// Builds the jails' matchers and detectors for the current config (a new generation),
    /// seeded from the state file; sources are not started.
    fn build_jails(&mut self) -> Result<(), crate::DaemonError> {
        let now = now();
        self.gen += 1;
        let stored: HashMap<String, String> = self.store.checkpoints()?.into_iter().collect();
        // One read of the history for all jails (it scans the whole ban table).
        let longest = self
            .config
            .jails
            .iter()
            .map(history_memory)
            .max()
            .unwrap_or(Duration::ZERO);
        let mut history: HashMap<JailName, Vec<rampart_store::HistoryRow>> = HashMap::new();
        for row in self.store.history(now.saturating_sub(longest))? {
            history.entry(row.jail.clone()).or_default().push(row);
        }
        let mut jails = Vec::with_capacity(self.config.jails.len());
        for j in &self.config.jails {
            let mut detector = JailDetector::new(j.policy.clone())
                .map_err(|e| crate::DaemonError::Setup(e.to_string()))?;
            let since = now.saturating_sub(history_memory(j));
            let mut rows: Vec<_> = history
                .remove(&j.policy.jail)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.last_end >= since)
                .collect();
            // Oldest first, so that if the history table is full the newest stay.
            rows.sort_by_key(|r| r.last_end);
            for r in rows {
                let offender = Offender::from_addr(r.net.addr(), j.policy.ipv6_prefix);
                detector.seed_history(offender, r.bans, r.last_end);
            }
            let input = pick_input(j);
            let saved = stored.get(&input.key(&j.policy.jail)).cloned();
            jails.push(JailRt {
                jail: j.clone(),
                matcher: Matcher::new(j, &self.config.zone, now),
                detector,
                input,
                marks: VecDeque::new(),
                saved,
                pending: None,
                counters: JailCounters::default(),
                stop: Arc::new(AtomicBool::new(false)),
                thread: None,
            });
        }
        self.jails = jails;
        Ok(())
    }

    /// Starts every jail's source thread.
    pub fn start_sources(&mut self) -> Result<(), crate::DaemonError> {
        let now = now();
        for idx in 0..self.jails.len() {
            self.start_source(idx, now)?;
        }
        Ok(())
    }

    fn start_source(&mut self, idx: usize, now: Timestamp) -> Result<(), crate::DaemonError> {
        let gen = self.gen;
        let tx = self.tx.clone();
        let j = &mut self.jails[idx];
        let stop = Arc::new(AtomicBool::new(false));
        j.stop = Arc::clone(&stop);
        let name = j.jail.policy.jail.clone();
        let thread = match &j.input {
            Input::None => None,
            Input::Files(patterns) => {
                let checkpoints: Vec<Checkpoint> = match &j.saved {
                    Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
                        warn!(jail = %name, error = %e; "Ignoring an unreadable checkpoint.");
                        Vec::new()
                    }),
                    None => Vec::new(),
                };
                let config = FileSourceConfig {
                    patterns: patterns.clone(),
                    ..FileSourceConfig::default()
                };
                let source = FileSource::new(config, checkpoints)?;
                if j.saved.is_none() {
                    // First start: persist where reading begins, so a restart before the
                    // first lagged checkpoint replays from here instead of guessing again.
                    let start = source.checkpoints();
                    if !start.is_empty() {
                        j.pending = serde_json::to_string(&start).ok();
                    }
                }
                Some(spawn_pump(
                    &name,
                    FilePull {
                        source,
                        batch: LineBatch::default(),
                    },
                    tx,
                    stop,
                    idx,
                    gen,
                )?)
            }
            Input::Journal(terms) => {
                let since = now.saturating_sub(lag(&j.jail));
                let config = JournalSourceConfig {
                    matches: terms.clone(),
                    file: self.settings.journal_file.clone(),
                    directory: None,
                };
                let start = match j.saved.clone().filter(|c| !c.is_empty()) {
                    Some(cursor) => JournalStart::AfterCursor(cursor),
                    None => JournalStart::Since(since),
                };
                let source = JournalSource::new(config, start)?;
                Some(spawn_pump(
                    &name,
                    JournalPull {
                        source,
                        entries: Vec::new(),
                    },
                    tx,
                    stop,
                    idx,
                    gen,
                )?)
            }
        };
        let j = &mut self.jails[idx];
        j.thread = thread;
        info!(jail = %j.jail.policy.jail, source = %j.input.describe(); "Jail started.");
        Ok(())
    }

    /// Runs until SIGTERM/SIGINT.
    pub fn run(&mut self, rx: &Receiver<Event>) {
        let mut next_tick = Instant::now() + TICK;
        while !self.stopping {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(ev) => self.handle(ev, rx),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + TICK;
            }
        }
    }

    fn handle(&mut self, ev: Event, rx: &Receiver<Event>) {
        match ev {
            Event::Lines {
                jail,
                gen,
                batch,
                checkpoints,
            } => {
                if gen == self.gen {
                    self.on_lines(jail, &batch, &checkpoints);
                }
            }
            Event::Journal {
                jail,
                gen,
                entries,
                cursor,
            } => {
                if gen == self.gen {
                    self.on_journal(jail, &entries, cursor);
                }
            }
            Event::SourceFailed { jail, gen, message } => {
                if gen == self.gen {
                    if let Some(j) = self.jails.get_mut(jail) {
                        j.counters.source_errors += 1;
                        let name = j.jail.policy.jail.clone();
                        if self.err_log.allow(now()).0 {
                            warn!(jail = %name, error = %message; "Log source failed; retrying.");
                        }
                    }
                }
            }
            Event::Control(call) => {
                let resp = self.control(call.request, rx);
                let _ = call.reply.try_send(resp);
            }
            Event::Signal(sig) => match sig {
                signal_hook::consts::SIGHUP => match self.reload(rx) {
                    Ok(msg) => info!(; "{msg}"),
                    Err(msg) => {
                        error!(error = %msg; "Reload refused; the old configuration keeps running.")
                    }
                },
                _ => {
                    info!(signal = sig; "Stopping.");
                    self.stopping = true;
                }
            },
        }
    }

    fn on_lines(&mut self, idx: usize, batch: &LineBatch, checkpoints: &[Checkpoint]) {
        let now = now();
        let Some(j) = self.jails.get_mut(idx) else {
            return;
        };
        if let Matcher::Native(s) = &mut j.matcher {
            s.set_now(now);
        }
        let mut found: Vec<(IpAddr, Timestamp)> = Vec::new();
        for (_path, line) in batch.iter() {
            j.counters.lines += 1;
            j.matcher.line(line, now, &mut found);
        }
        // Serialised only when a mark is taken (at most once a second), not per batch.
        self.after_batch(idx, &found, now, || serde_json::to_string(checkpoints).ok());
    }

    fn on_journal(&mut self, idx: usize, entries: &[JournalEntry], cursor: Option<String>) {
        let now = now();
        let Some(j) = self.jails.get_mut(idx) else {
            return;
        };
        let mut found: Vec<(IpAddr, Timestamp)> = Vec::new();
        let mut line = Vec::with_capacity(512);
        for e in entries {
            j.counters.lines += 1;
            // Present the entry the way syslog writes it, so syslog-style filters match.
            line.clear();
            line.extend_from_slice(e.hostname.as_deref().unwrap_or("localhost").as_bytes());
            line.push(b' ');
            line.extend_from_slice(e.identifier.as_deref().unwrap_or("unknown").as_bytes());
            let _ = write!(line, "[{}]: ", e.pid.unwrap_or(0));
            line.extend_from_slice(&e.message);
            j.matcher.entry(&line, e.realtime, now, &mut found);
        }
        self.after_batch(idx, &found, now, || cursor.filter(|c| !c.is_empty()));
    }

    /// Counts the failures of a batch, then persists and applies the bans they lead to.
    fn after_batch(
        &mut self,
        idx: usize,
        found: &[(IpAddr, Timestamp)],
        now: Timestamp,
        checkpoint: impl FnOnce() -> Option<String>,
    ) {
        let own = &self.own;
        let j = &mut self.jails[idx];
        let oldest = now.saturating_sub(lag(&j.jail));
        let mut bans = Vec::new();
        for &(addr, time) in found {
            j.counters.failures += 1;
            let net = Offender::from_addr(addr, j.jail.policy.ipv6_prefix).net();
            if own.overlaps(net) {
                // Loopback, one of ours, or a prefix that holds one of ours: never banned.
                j.counters.own += 1;
                continue;
            }
            if time < oldest {
                // Older than the window (first start, or a long outage): history, not a
                // reason to ban now.
                j.counters.stale += 1;
                continue;
            }
            if let Outcome::Banned(ban) = j.detector.record(Failure { addr, time }) {
                j.counters.bans += 1;
                bans.push(ban);
            }
        }
        // Checkpoint marks: at most one per second; the one persisted lags by the window.
        let due = j
            .marks
            .back()
            .is_none_or(|(t, _)| now.as_micros() - t.as_micros() >= 1_000_000);
        if let Some(text) = due.then(checkpoint).flatten() {
            if j.marks.len() >= MAX_MARKS {
                j.marks.pop_front();
            }
            j.marks.push_back((now, text));
        }
        select_lagged(j, now);
        if !bans.is_empty() {
            self.decide(bans, now);
        }
    }

    /// Persists then applies detected bans, and what the recidive and block watchers
    /// decide from them.
    fn decide(&mut self, bans: Vec<Ban>, now: Timestamp) {
        let mut records: Vec<BanRecord> = Vec::with_capacity(bans.len());
        for b in &bans {
            let mut r = BanRecord::from(b);
            r.details = Some(crate::escalate::details(
                &self.geo,
                b.addr,
                "detected".into(),
            ));
            records.push(r);
        }
        self.decide_records(records, now);
    }

    /// Shows `records` to the watchers, then persists all of them and what the watchers
    /// add in one transaction, then applies them.
    fn decide_records(&mut self, mut records: Vec<BanRecord>, now: Timestamp) {
        if self.esc.is_on() {
            let own = &self.own;
            let protected = |n: IpNet| own.overlaps(n);
            let mut extra = Vec::new();
            for r in &records {
                let (more, prot) = self.esc.observe(
                    &r.jail,
                    r.addr,
                    r.start,
                    r.origin == Origin::Manual,
                    &self.geo,
                    &protected,
                );
                extra.extend(more);
                for p in prot {
                    warn!(block = %p.block, addresses = p.addresses;
                        "Block not banned: it overlaps the allowlist or this host's addresses.");
                }
            }
            records.extend(extra);
        }
        let checkpoints = self.take_pending();
        if let Err(e) = self.store.commit(&Batch {
            bans: records.clone(),
            lifts: Vec::new(),
            checkpoints,
        }) {
            // Enforce anyway: an unpersisted ban still protects the host; the error is loud.
            self.counters.store_errors += 1;
            if self.err_log.allow(now).0 {
                error!(error = %e; "Could not persist bans; enforcing them anyway.");
            }
        } else {
            self.last_commit = now;
        }
        let is_block = |r: &BanRecord| r.jail.as_str() == rampart_config::bans::BLOCKS_JAIL;
        let entries: Vec<Entry> = records
            .iter()
            .filter(|r| r.end > now && !is_block(r))
            .map(|r| Entry {
                jail: r.jail.clone(),
                net: r.net,
                expires: r.end,
            })
            .collect();
        self.apply(&entries, now);
        let mut blocks_changed = false;
        for r in &records {
            if r.end > now {
                if is_block(r) {
                    blocks_changed |= self.esc.start_block_ban(r);
                } else {
                    self.active.insert(
                        &r.jail,
                        r.net,
                        Active {
                            end: r.end,
                            level: r.level,
                        },
                    );
                }
            }
            let (log, suppressed) = self.ban_log.allow(now);
            if suppressed > 0 {
                info!(suppressed = suppressed; "Ban messages were rate-limited.");
            }
            if log {
                let d = r.details.as_deref();
                info!(
                    jail = %r.jail,
                    ip = %r.net,
                    country = %d.and_then(|d| d.country.as_deref()).unwrap_or("-"),
                    block = %d.and_then(|d| d.block.as_deref()).unwrap_or("-").replace(' ', ","),
                    reason = %r.reason_kind(),
                    failures = r.failures,
                    level = r.level,
                    until = %r.end;
                    "Banned offender."
                );
                if let Some(why) = r.reason_detail() {
                    info!(jail = %r.jail, ip = %r.net; "Why: {why}.");
                }
            }
        }
        if blocks_changed {
            self.sync_blocks(now);
        }
    }

    fn apply(&mut self, entries: &[Entry], now: Timestamp) {
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.backend.ban(entries, now) {
            self.counters.backend_errors += 1;
            self.needs_reconcile = true;
            if self.err_log.allow(now).0 {
                error!(error = %e; "Could not apply bans; the reconcile retries.");
            }
        }
    }

    /// Persists the pending lagged checkpoints on their own (no decision to go with them).
    fn persist_checkpoints(&mut self, now: Timestamp, when: &str) {
        let checkpoints = self.take_pending();
        if checkpoints.is_empty() {
            return;
        }
        let batch = Batch {
            checkpoints,
            ..Batch::default()
        };
        match self.store.commit(&batch) {
            Ok(()) => self.last_commit = now,
            Err(e) => {
                self.counters.store_errors += 1;
                if self.err_log.allow(now).0 {
                    error!(error = %e, when = when; "Could not persist source checkpoints.");
                }
            }
        }
    }

    fn take_pending(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for j in &mut self.jails {
            if let Some(text) = j.pending.take() {
                out.push((j.input.key(&j.jail.policy.jail), text.clone()));
                j.saved = Some(text);
            }
        }
        out
    }

    fn tick(&mut self) {
        let now = now();
        let suppressed = self.ban_log.flush(now);
        if suppressed > 0 {
            info!(suppressed = suppressed; "Ban messages were rate-limited in the last minute.");
        }
        for j in &mut self.jails {
            select_lagged(j, now);
        }
        if self.jails.iter().any(|j| j.pending.is_some())
            && now.as_micros() - self.last_commit.as_micros() >= 1_000_000
        {
            self.persist_checkpoints(now, "tick");
        }
        self.active.retain(|_, _, a| a.end > now);
        if self.esc.expire(now) || self.blocks_dirty {
            self.sync_blocks(now);
        }
        self.geo.tick();
        if self.needs_reconcile || Instant::now() >= self.next_reconcile {
            self.reconcile(now);
        }
        if Instant::now() >= self.next_prune {
            self.next_prune = Instant::now() + Duration::from_secs(3600);
            let keep = self
                .config
                .jails
                .iter()
                .map(history_memory)
                .max()
                .unwrap_or(Duration::ZERO)
                .max(self.esc.memory())
                + Duration::from_secs(86_400);
            if let Err(e) = self.store.prune(now.saturating_sub(keep)) {
                warn!(error = %e; "Could not prune old bans from the state file.");
            }
        }
        // A source thread that died (it never should) is restarted here.
        for idx in 0..self.jails.len() {
            let dead = self.jails[idx]
                .thread
                .as_ref()
                .is_some_and(|t| t.is_finished());
            if dead && !self.stopping {
                warn!(jail = %self.jails[idx].jail.policy.jail; "Source thread ended; restarting it.");
                if let Err(e) = self.start_source(idx, now) {
                    self.jails[idx].counters.source_errors += 1;
                    if self.err_log.allow(now).0 {
                        error!(error = %e; "Could not restart a log source.");
                    }
                }
            }
        }
    }

    /// Makes the kernel sets match the active bans: recreates rampart's table and sets if
    /// they are gone, re-adds missing bans, removes bans nobody decided.
    fn reconcile(&mut self, now: Timestamp) {
        self.next_reconcile = Instant::now() + self.config.daemon.reconcile_every;
        self.needs_reconcile = false;
        self.counters.reconciles += 1;
        self.own = OwnAddrs::read();
        let scopes: Vec<Scope> = self.config.scopes();
        let listed = self
            .backend
            .prepare(&scopes)
            .and_then(|()| self.backend.list(now));
        let kernel = match listed {
            Ok(k) => k,
            Err(e) => {
                self.counters.backend_errors += 1;
                self.needs_reconcile = true;
                if self.err_log.allow(now).0 {
                    error!(error = %e; "Reconcile failed; retrying.");
                }
                return;
            }
        };
        let held: HashSet<(JailName, IpNet)> =
            kernel.into_iter().map(|e| (e.jail, e.net)).collect();
        let margin = Timestamp::from_micros(now.as_micros() + 1_000_000);
        let missing: Vec<Entry> = self
            .active
            .iter()
            .filter(|(jail, net, a)| a.end > margin && !held.contains(&((*jail).clone(), *net)))
            .map(|(jail, net, a)| Entry {
                jail: jail.clone(),
                net,
                expires: a.end,
            })
            .collect();
        let extra: Vec<(JailName, IpNet)> = held
            .into_iter()
            .filter(|(j, n)| !self.active.contains(j, *n))
            .collect();
        if !missing.is_empty() {
            self.counters.reconcile_repairs += missing.len() as u64;
            warn!(missing = missing.len(); "Kernel sets lacked active bans; restoring them.");
            self.apply(&missing, now);
        }
        if !extra.is_empty() {
            info!(extra = extra.len(); "Removing kernel bans the state file does not hold.");
            if let Err(e) = self.backend.unban(&extra) {
                self.counters.backend_errors += 1;
                error!(error = %e; "Could not remove stray bans.");
            }
        }
    }

    fn control(&mut self, req: Request, rx: &Receiver<Event>) -> Response {
        match req {
            Request::Status { jail } => self.status(jail.as_deref()),
            Request::Bans => self.bans(),
            Request::Ban {
                jail,
                addr,
                duration,
            } => match self.manual_ban(&jail, &addr, duration.as_deref()) {
                Ok(v) => Response::ok(v),
                Err(m) => Response::err(m),
            },
            Request::Unban { addr } => match self.manual_unban(&addr) {
                Ok(v) => Response::ok(v),
                Err(m) => Response::err(m),
            },
            Request::Reload => match self.reload(rx) {
                Ok(m) => {
                    info!(; "{m}");
                    Response::ok(json!({ "message": m }))
                }
                Err(m) => {
                    error!(error = %m; "Reload refused; the old configuration keeps running.");
                    Response::err(m)
                }
            },
        }
    }

    fn status(&self, only: Option<&str>) -> Response {
        if let Some(name) = only {
            if !self
                .jails
                .iter()
                .any(|j| j.jail.policy.jail.as_str() == name)
            {
                return Response::err(format!("no jail named {name:?}"));
            }
        }
        let jails: Vec<_> = self
            .jails
            .iter()
            .filter(|j| only.is_none_or(|n| n == j.jail.policy.jail.as_str()))
            .map(|j| {
                let name = &j.jail.policy.jail;
                let active = self.active.iter().filter(|(jn, _, _)| *jn == name).count();
                let d = j.detector.stats();
                json!({
                    "name": name.as_str(),
                    "source": j.input.describe(),
                    "lines": j.counters.lines,
                    "failures": j.counters.failures,
                    "stale_failures": j.counters.stale,
                    "own_address_failures": j.counters.own,
                    "allowlisted": d.allowlisted,
                    "while_banned": d.while_banned,
                    "bans": j.counters.bans,
                    "active_bans": active,
                    "tracked_offenders": j.detector.tracked(),
                    "detector_bytes": j.detector.heap_bytes(),
                    "source_errors": j.counters.source_errors,
                    "ports": j.jail.scope.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        Response::ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_s": self.started.elapsed().as_secs(),
            "config": self.settings.config_path.as_ref().map(|p| p.display().to_string()),
            "backend": self.backend.name(),
            "dry_run": self.settings.dry_run,
            "state": self.config.daemon.state.display().to_string(),
            "active_bans": self.active.len(),
            "restored_at_start": self.counters.restored,
            "reconciles": self.counters.reconciles,
            "reconcile_repairs": self.counters.reconcile_repairs,
            "store_errors": self.counters.store_errors,
            "backend_errors": self.counters.backend_errors,
            "rss_kib": rss_kib(),
            // Entries, padding and control bytes of the active-ban map (hashbrown layout).
            "active_map_bytes": self.active.heap_bytes(),
            "jails": jails,
            "geo": self.geo.status_json(),
            "escalation": self.esc.status_json(),
        }))
    }

    /// The active bans as the state file holds them, with the reason, country and block
    /// stored at decision time (rows from before schema version 2 have none: their country
    /// and block are looked up now when geo data is loaded).
    fn bans(&self) -> Response {
        let now = now();
        let records = match self.store.active_bans_with_details(now) {
            Ok(r) => r,
            Err(e) => return Response::err(format!("could not read the bans: {e}")),
        };
        let items: Vec<_> = records
            .iter()
            .filter(|r| self.config.has_jail(r.jail.as_str()))
            .map(|r| {
                let d = r.details.as_deref();
                let (mut country, mut block) = (
                    d.and_then(|d| d.country.clone()),
                    d.and_then(|d| d.block.clone()),
                );
                if d.is_none() && self.geo.has_data() {
                    (country, block) = self.geo.describe(r.addr);
                }
                json!({
                    "jail": r.jail.as_str(),
                    "net": r.net.to_string(),
                    "addr": r.addr.to_string(),
                    "start": r.start.to_string(),
                    "end": r.end.to_string(),
                    "remaining_s": (r.end.as_micros() - now.as_micros()) / 1_000_000,
                    "level": r.level,
                    "failures": r.failures,
                    "origin": r.origin.as_str(),
                    "reason": r.reason_kind(),
                    "reason_detail": r.reason_detail(),
                    "country": country,
                    "block": block,
                })
            })
            .collect();
        Response::ok(json!(items))
    }

    fn manual_ban(
        &mut self,
        jail: &str,
        addr: &str,
        duration: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let now = now();
        let Some(idx) = self
            .jails
            .iter()
            .position(|j| j.jail.policy.jail.as_str() == jail)
        else {
            return Err(format!("no jail named {jail:?}"));
        };
        let policy = self.jails[idx].jail.policy.clone();
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let ip = ip.to_canonical();
        let offender = Offender::from_addr(ip, policy.ipv6_prefix);
        if self.own.overlaps(offender.net()) {
            return Err(format!(
                "refused: {} is loopback or holds one of this host's own addresses",
                offender.net()
            ));
        }
        if policy.allow.overlaps(offender.net()) {
            return Err(format!(
                "refused: {} is allowlisted in jail {jail} (the allowlist always wins)",
                offender.net()
            ));
        }
        let for_ = match duration {
            Some(d) => parse_duration(d).map_err(|e| e.to_string())?,
            None => policy.ban_for,
        };
        if for_.is_zero() {
            return Err("the duration must be more than zero".into());
        }
        let end = now.saturating_add(for_);
        let level = self
            .active
            .get(&policy.jail, offender.net())
            .map(|a| a.level)
            .unwrap_or(0);
        let record = BanRecord {
            jail: policy.jail.clone(),
            net: offender.net(),
            addr: ip,
            start: now,
            end,
            failures: 0,
            level,
            origin: Origin::Manual,
            details: Some(crate::escalate::details(&self.geo, ip, "manual".into())),
        };
        self.store
            .commit(&Batch {
                bans: vec![record],
                lifts: Vec::new(),
                checkpoints: Vec::new(),
            })
            .map_err(|e| format!("could not persist the ban: {e}"))?;
        self.backend
            .ban(
                &[Entry {
                    jail: policy.jail.clone(),
                    net: offender.net(),
                    expires: end,
                }],
                now,
            )
            .map_err(|e| format!("persisted, but the firewall refused it: {e}"))?;
        self.active
            .insert(&policy.jail, offender.net(), Active { end, level });
        self.jails[idx]
            .detector
            .seed_history(offender, level + 1, end);
        info!(jail = %policy.jail, ip = %offender.net(), until = %end; "Banned offender by hand.");
        if self.esc.is_on() {
            // With `count_manual`, a manual ban counts toward recidive.
            let own = &self.own;
            let protected = |n: IpNet| own.overlaps(n);
            let (more, _) = self
                .esc
                .observe(&policy.jail, ip, now, true, &self.geo, &protected);
            if !more.is_empty() {
                self.decide_records(more, now);
            }
        }
        Ok(json!({
            "jail": policy.jail.as_str(),
            "net": offender.net().to_string(),
            "end": end.to_string(),
            "duration": format_duration(for_),
        }))
    }

    fn manual_unban(&mut self, addr: &str) -> Result<serde_json::Value, String> {
        let now = now();
        let target: IpNet = addr
            .trim()
            .parse::<IpNet>()
            .or_else(|_| {
                addr.trim()
                    .parse::<IpAddr>()
                    .map(|a| IpNet::from(a.to_canonical()))
            })
            .map_err(|_| format!("{addr:?} is not an IP address or network"))?;
        let hits: Vec<(JailName, IpNet, u32)> = self
            .active
            .iter()
            .filter(|(_, net, _)| net.contains(&target.addr()) || target.contains(net))
            .map(|(j, n, a)| (j.clone(), n, a.level))
            .collect();
        let blocks = self.esc.lift_blocks(target);
        if !blocks.is_empty() {
            let lifts: Vec<Lift> = blocks
                .iter()
                .filter_map(|n| {
                    Some(Lift {
                        jail: Some(JailName::new(rampart_config::bans::BLOCKS_JAIL).ok()?),
                        net: *n,
                        at: now,
                        reason: "unbanned by hand".into(),
                    })
                })
                .collect();
            self.store
                .commit(&Batch {
                    lifts,
                    ..Batch::default()
                })
                .map_err(|e| format!("could not persist the unban: {e}"))?;
            self.sync_blocks(now);
            info!(ip = %target, blocks = blocks.len(); "Block bans lifted by hand.");
        }
        if hits.is_empty() {
            if !blocks.is_empty() {
                return Ok(json!({
                    "unbanned": blocks.iter().map(|n| json!({"jail": rampart_config::bans::BLOCKS_JAIL, "net": n.to_string()})).collect::<Vec<_>>(),
                }));
            }
            return Err(format!("{target} is not banned in any jail"));
        }
        let lifts: Vec<Lift> = hits
            .iter()
            .map(|(j, n, _)| Lift {
                jail: Some(j.clone()),
                net: *n,
                at: now,
                reason: "unbanned by hand".into(),
            })
            .collect();
        self.store
            .commit(&Batch {
                bans: Vec::new(),
                lifts,
                checkpoints: Vec::new(),
            })
            .map_err(|e| format!("could not persist the unban: {e}"))?;
        let keys: Vec<(JailName, IpNet)> = hits.iter().map(|(j, n, _)| (j.clone(), *n)).collect();
        for (j, n) in &keys {
            self.active.remove(j, *n);
        }
        for (jail, net, level) in &hits {
            if let Some(j) = self.jails.iter_mut().find(|j| &j.jail.policy.jail == jail) {
                let offender = Offender::from_addr(net.addr(), j.jail.policy.ipv6_prefix);
                // End the remembered ban a second early: log times have whole seconds, and
                // a failure logged in the second of the unban must count again.
                j.detector.seed_history(
                    offender,
                    level + 1,
                    now.saturating_sub(Duration::from_secs(1)),
                );
            }
        }
        self.backend
            .unban(&keys)
            .map_err(|e| format!("lifted in the state file, but the firewall refused: {e}"))?;
        info!(ip = %target, jails = keys.len(); "Unbanned by hand.");
        Ok(json!({
            "unbanned": keys.iter().map(|(j, n)| json!({"jail": j.as_str(), "net": n.to_string()})).collect::<Vec<_>>(),
        }))
    }

    /// Re-reads the config file; an invalid one changes nothing.
    fn reload(&mut self, rx: &Receiver<Event>) -> Result<String, String> {
        let new = match &self.settings.fail2ban {
            Some(dir) => {
                crate::load_config_from(self.settings.config_path.as_deref(), Some(dir))
                    .map_err(|e| e.to_string())?
                    .0
            }
            None => {
                let Some(path) = self.settings.config_path.clone() else {
                    return Err(
                        "running on the built-in default config; there is no file to reload".into(),
                    );
                };
                Config::load(&path).map_err(|e| e.to_string())?
            }
        };
        if new.daemon != self.config.daemon {
            return Err(
                "the [daemon] section changed; restart rampart to apply it (nothing was reloaded)"
                    .into(),
            );
        }
        // Country policies first: data and sets are built completely before the kernel is
        // touched, so a bad [geo] leaves everything as it was.
        let geo_msg = self.geo.reload(new.geo.as_ref())?;
        info!(; "{geo_msg}");
        let scopes: Vec<Scope> = new.scopes();
        self.backend
            .prepare(&scopes)
            .map_err(|e| format!("the firewall refused the new jails: {e}"))?;
        // Stop the old sources, draining the queue so none stays blocked on a full one.
        self.stop_sources(rx);
        let now = now();
        self.persist_checkpoints(now, "reload");
        let mut gone: Vec<(JailName, IpNet)> = self
            .active
            .iter()
            .filter(|(j, _, _)| !new.has_jail(j.as_str()))
            .map(|(j, n, _)| (j.clone(), n))
            .collect();
        if new.blocks.is_none() {
            if let Ok(blocks) = JailName::new(rampart_config::bans::BLOCKS_JAIL) {
                gone.extend(
                    self.esc
                        .block_nets()
                        .into_iter()
                        .map(|n| (blocks.clone(), n)),
                );
            }
        }
        if !gone.is_empty() {
            let lifts = gone
                .iter()
                .map(|(j, n)| Lift {
                    jail: Some(j.clone()),
                    net: *n,
                    at: now,
                    reason: "jail removed by reload".into(),
                })
                .collect();
            let _ = self.store.commit(&Batch {
                bans: Vec::new(),
                lifts,
                checkpoints: Vec::new(),
            });
            for (j, n) in &gone {
                self.active.remove(j, *n);
            }
        }
        self.config = new;
        self.build_jails().map_err(|e| e.to_string())?;
        self.start_escalation().map_err(|e| e.to_string())?;
        self.reconcile(now);
        self.start_sources().map_err(|e| e.to_string())?;
        Ok(format!(
            "Reloaded {}: {} jail(s).",
            self.config.path.display(),
            self.jails.len()
        ))
    }

    fn stop_sources(&mut self, rx: &Receiver<Event>) {
        for j in &self.jails {
            j.stop.store(true, Ordering::Relaxed);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let running = self
                .jails
                .iter()
                .any(|j| j.thread.as_ref().is_some_and(|t| !t.is_finished()));
            if !running || Instant::now() > deadline {
                break;
            }
            // Events of this generation are still processed, so nothing read is lost.
            if let Ok(ev) = rx.recv_timeout(Duration::from_millis(20)) {
                match ev {
                    Event::Control(call) => {
                        let _ = call
                            .reply
                            .try_send(Response::err("busy reloading; try again"));
                    }
                    Event::Signal(_) => {}
                    other => self.handle(other, rx),
                }
            }
        }
        for j in &mut self.jails {
            if let Some(t) = j.thread.take() {
                if t.is_finished() {
                    let _ = t.join();
                }
            }
        }
    }

    /// Stops the sources and persists where they stand (lagged, as always).
    pub fn shutdown(&mut self, rx: &Receiver<Event>) {
        self.stopping = true;
        self.stop_sources(rx);
        self.persist_checkpoints(now(), "shutdown");
        info!(active = self.active.len(); "Stopped; bans stay in the kernel until they expire.");
    }
}

/// One log source as its thread sees it: hand over what is there, or wait for more.
trait Pull: Send + 'static {
    /// The next batch as an event, `None` when nothing is waiting.
    fn pull(&mut self, jail: usize, gen: u64) -> Result<Option<Event>, SourceError>;
    /// Blocks until the source may have more (or a short timeout).
    fn wait(&mut self);
    /// Called while the queue is full: keep noticing rotations without reading lines.
    fn keep_watching(&mut self) {}
}

#[derive(Debug)]
struct FilePull {
    source: FileSource,
    batch: LineBatch,
}

impl Pull for FilePull {
    fn pull(&mut self, jail: usize, gen: u64) -> Result<Option<Event>, SourceError> {
        if self.source.read(&mut self.batch, BATCH_LINES)? == 0 {
            return Ok(None);
        }
        Ok(Some(Event::Lines {
            jail,
            gen,
            batch: std::mem::take(&mut self.batch),
            checkpoints: self.source.checkpoints(),
        }))
    }
    fn wait(&mut self) {
        self.source.wait(TICK);
    }
    fn keep_watching(&mut self) {
        let _ = self.source.read(&mut self.batch, 0);
    }
}

#[derive(Debug)]
struct JournalPull {
    source: JournalSource,
    entries: Vec<JournalEntry>,
}

impl Pull for JournalPull {
    fn pull(&mut self, jail: usize, gen: u64) -> Result<Option<Event>, SourceError> {
        if self.source.read(&mut self.entries, BATCH_ENTRIES)? == 0 {
            return Ok(None);
        }
        Ok(Some(Event::Journal {
            jail,
            gen,
            entries: std::mem::take(&mut self.entries),
            cursor: self.source.cursor(),
        }))
    }
    fn wait(&mut self) {
        self.source.wait(TICK);
    }
}

/// Runs a source on its own thread until `stop`: batches go to the engine's queue. While
/// the queue is full the thread waits (back-pressure: no line is dropped) but keeps the
/// source watching its files, so rotations in the meantime are seen.
fn spawn_pump(
    name: &JailName,
    mut src: impl Pull,
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    jail: usize,
    gen: u64,
) -> Result<JoinHandle<()>, crate::DaemonError> {
    std::thread::Builder::new()
        .name(format!("src-{name}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match src.pull(jail, gen) {
                    Ok(None) => src.wait(),
                    Ok(Some(mut ev)) => loop {
                        match tx.try_send(ev) {
                            Ok(()) => break,
                            Err(TrySendError::Disconnected(_)) => return,
                            Err(TrySendError::Full(back)) => {
                                ev = back;
                                src.keep_watching();
                                std::thread::sleep(Duration::from_millis(2));
                            }
                        }
                    },
                    Err(e) => {
                        let message = e.to_string();
                        if tx.send(Event::SourceFailed { jail, gen, message }).is_err() {
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })
        .map_err(|e| crate::DaemonError::Setup(e.to_string()))
}

/// Picks the newest mark old enough (by the jail's lag) as the checkpoint to persist.
fn select_lagged(j: &mut JailRt, now: Timestamp) {
    let horizon = now.saturating_sub(lag(&j.jail)).as_micros();
    let mut chosen = None;
    while j
        .marks
        .front()
        .is_some_and(|(t, _)| t.as_micros() <= horizon)
    {
        chosen = j.marks.pop_front().map(|(_, c)| c);
    }
    if let Some(c) = chosen {
        if j.saved.as_ref() != Some(&c) {
            j.pending = Some(c);
        }
    }
}

fn pick_input(j: &Jail) -> Input {
    let files = || Input::Files(j.logs.clone());
    let journal = || Input::Journal(j.journal.clone());
    match j.source {
        SourceKind::File => files(),
        SourceKind::Journal => journal(),
        SourceKind::Auto => {
            let any_file = j.logs.iter().any(|p| glob_has_match(p));
            if any_file || (j.journal.is_empty() && !j.logs.is_empty()) {
                files()
            } else if !j.journal.is_empty() {
                journal()
            } else {
                Input::None
            }
        }
    }
}

/// Whether a path pattern names an existing file now (a plain path, or a glob in its last
/// component).
fn glob_has_match(pattern: &str) -> bool {
    rampart_source::matching_files(pattern).is_ok_and(|v| !v.is_empty())
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail_from(text: &str) -> Jail {
        let config = Config::parse(std::path::Path::new("/tmp/t.toml"), text).unwrap();
        config.jails.into_iter().next().unwrap()
    }

    #[test]
    fn a_fail2ban_filter_matches_file_lines_and_journal_entries() {
        assert!(
            std::path::Path::new("/etc/fail2ban/filter.d/sshd.conf").is_file(),
            "/etc/fail2ban/filter.d/sshd.conf is missing: install the Debian package `fail2ban`"
        );
        let zone = rampart_filter::time::Zone::parse("UTC").unwrap();
        let now = Timestamp::parse_rfc3339("2026-03-01T10:00:30Z").unwrap();
        let file = jail_from(
            "[defaults]\ntimezone = \"UTC\"\n[[jail]]\nname = \"s\"\nfilter = \"fail2ban:sshd\"\nlogs = [\"/x/auth.log\"]\n",
        );
        let mut m = Matcher::new(&file, &zone, now);
        let mut found = Vec::new();
        m.line(
            b"Mar  1 10:00:01 host sshd[7]: Failed password for root from 203.0.113.5 port 4000 ssh2",
            now,
            &mut found,
        );
        m.line(b"Mar  1 10:00:02 host sshd[7]: Accepted password for root from 192.0.2.1 port 4001 ssh2", now, &mut found);
        let t = Timestamp::parse_rfc3339("2026-03-01T10:00:01Z").unwrap();
        assert_eq!(found, [("203.0.113.5".parse().unwrap(), t)]);

        let journal = jail_from(
            "[[jail]]\nname = \"s\"\nfilter = \"fail2ban:sshd\"\nsource = \"journal\"\njournal = [\"_COMM=sshd\"]\n[jail.filter_params]\nlogtype = \"journal\"\n",
        );
        let mut m = Matcher::new(&journal, &zone, now);
        let mut found = Vec::new();
        let at = Timestamp::parse_rfc3339("2026-03-01T10:00:05Z").unwrap();
        m.entry(
            b"host sshd[7]: Failed password for invalid user bob from 2001:db8::7 port 4000 ssh2",
            at,
            now,
            &mut found,
        );
        assert_eq!(found, [("2001:db8::7".parse().unwrap(), at)]);
    }

    #[test]
    fn the_builtin_config_protects_sshd_from_the_journal_when_there_is_no_auth_log() {
        // Without --config: /etc/rampart/rampart.toml if present, else the built-in text.
        let (config, _path) = crate::load_config(None).unwrap();
        let builtin =
            Config::parse(std::path::Path::new("builtin"), crate::BUILTIN_CONFIG).unwrap();
        let sshd = &builtin.jails[0];
        assert_eq!(sshd.policy.jail.as_str(), "sshd");
        assert!(!config.jails.is_empty());
        let missing = jail_from(
            "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"/nonexistent/auth.log\"]\njournal = [\"_COMM=sshd\"]\n",
        );
        assert_eq!(
            pick_input(&missing),
            Input::Journal(vec!["_COMM=sshd".into()])
        );
        let dir = std::env::temp_dir().join(format!("rampart-pick-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("auth.log");
        std::fs::write(&log, "").unwrap();
        let present = jail_from(&format!(
            "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"{}\", \"/nonexistent/secure\"]\njournal = [\"_COMM=sshd\"]\n",
            log.display()
        ));
        assert!(matches!(pick_input(&present), Input::Files(_)));
        let glob = jail_from(&format!(
            "[[jail]]\nname = \"web\"\nfilter = \"web-scan\"\nlogs = [\"{}/*.log\"]\njournal = [\"_COMM=nginx\"]\n",
            dir.display()
        ));
        assert!(matches!(pick_input(&glob), Input::Files(_)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_persisted_checkpoint_lags_by_the_window() {
        let jail = jail_from(
            "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nlogs = [\"/x/auth.log\"]\nwindow = \"10m\"\nreorder_tolerance = \"1m\"\n",
        );
        let matcher = Matcher::new(
            &jail,
            &rampart_filter::time::Zone::parse("UTC").unwrap(),
            Timestamp::from_micros(0),
        );
        let mut j = JailRt {
            detector: JailDetector::new(jail.policy.clone()).unwrap(),
            jail,
            matcher,
            input: Input::Files(vec![]),
            marks: VecDeque::new(),
            saved: Some("start".into()),
            pending: None,
            counters: JailCounters::default(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        let min = |m: i64| Timestamp::from_micros(1_800_000_000_000_000 + m * 60_000_000);
        for m in 0..20 {
            j.marks.push_back((min(m), format!("cp{m}")));
        }
        // At minute 10 nothing is 11 minutes old yet.
        select_lagged(&mut j, min(10));
        assert_eq!(j.pending, None);
        // At minute 15 the newest mark at least 11 minutes old is minute 4's.
        select_lagged(&mut j, min(15));
        assert_eq!(j.pending.as_deref(), Some("cp4"));
        assert_eq!(j.marks.front().map(|m| m.1.as_str()), Some("cp5"));
    }
}
