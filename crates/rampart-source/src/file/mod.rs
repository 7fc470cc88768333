//! [`FileSource`]: tails files, follows rotation, resumes from checkpoints.

mod read;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use serde::{Deserialize, Deserializer, Serialize};

use crate::fingerprint::{Fingerprint, FINGERPRINT_BYTES};
use crate::glob::{is_compressed, Pattern};
use crate::{LineBatch, SourceError, DEFAULT_MAX_LINE};

use read::{read_lines, Chunk, ReadOutcome};

/// How long a file that was renamed away or deleted stays open after its last new line, so
/// that lines its writer appends to the old descriptor are still read.
pub const ROTATE_GRACE: Duration = Duration::from_secs(5);

/// Most files (current and draining) a source keeps open. Overflow policy: a newly matched
/// file beyond the limit is not opened (counted in [`FileSourceStats::files_over_limit`]);
/// it is tried again at every rescan, so it is picked up once others close.
const MAX_FILES: usize = 512;

/// Most draining files per path. Overflow policy: a draining file of that path is closed
/// early (counted in [`FileSourceStats::closed_early`]): one already read to its end if
/// there is one, else the one that stopped being current first. Only a path rotated this
/// many times within [`ROTATE_GRACE`] gets there.
const MAX_DRAINING_PER_PATH: usize = 4;

/// Longest line the configuration may ask for.
const MAX_LINE_LIMIT: usize = 16 * 1024 * 1024;

/// `[source.files]`-style configuration of a [`FileSource`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Absolute paths of the files to tail. Any component may be a glob with `*`, `?` and
    /// `[...]` (e.g. `/var/log/nginx/*access.log`); files matching a glob later are picked up
    /// from their start. Globs skip compressed files (`.gz`, `.xz`, ...).
    pub patterns: Vec<String>,
    /// How often the patterns are re-expanded and every file is checked even without an
    /// inotify event (the only way changes are noticed where inotify does not work, e.g. on
    /// network filesystems). Default `"1s"`.
    #[serde(default = "default_poll_interval", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// Bytes read from the end of a file seen for the first time without a checkpoint
    /// (aligned forward to the next line start). Default 1 MiB.
    #[serde(default = "default_first_read_limit")]
    pub first_read_limit: u64,
    /// Longest line kept, in bytes; longer lines are counted and skipped. Default 64 KiB.
    #[serde(default = "default_max_line")]
    pub max_line: usize,
    /// Use inotify to notice changes at once (default `true`). With `false`, or where
    /// inotify is unavailable, changes are noticed every `poll_interval`.
    #[serde(default = "default_true")]
    pub inotify: bool,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_first_read_limit() -> u64 {
    1024 * 1024
}
fn default_max_line() -> usize {
    DEFAULT_MAX_LINE
}
fn default_true() -> bool {
    true
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    rampart_core::parse_duration(&text).map_err(serde::de::Error::custom)
}

impl Default for FileSourceConfig {
    fn default() -> Self {
        Self {
            patterns: Vec::new(),
            poll_interval: default_poll_interval(),
            first_read_limit: default_first_read_limit(),
            max_line: default_max_line(),
            inotify: true,
        }
    }
}

impl FileSourceConfig {
    /// The defaults, tailing `patterns`.
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        Self {
            patterns: patterns.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// Where reading stopped in one configured path, to resume there after a restart. The
/// daemon stores it (as JSON) per path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The configured path (what a pattern matched), not a rotated name.
    pub path: PathBuf,
    /// Identity of the file the offset belongs to.
    pub fingerprint: Fingerprint,
    /// Byte offset just after the last line handed out.
    pub offset: u64,
    /// Device of the file when the checkpoint was taken (a tie-breaker only: inode numbers
    /// are reused).
    pub dev: u64,
    /// Inode of the file when the checkpoint was taken (a tie-breaker only).
    pub ino: u64,
    /// Older files of this path still being read when the checkpoint was taken (renamed or
    /// deleted, within [`ROTATE_GRACE`]), oldest first. On restart each is looked for next to
    /// the path and read to its end before the current file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotated: Vec<RotatedPosition>,
}

/// The position in a rotated-away file, part of a [`Checkpoint`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatedPosition {
    /// Identity of the file.
    pub fingerprint: Fingerprint,
    /// Byte offset just after the last line handed out.
    pub offset: u64,
    /// Device, as a tie-breaker.
    pub dev: u64,
    /// Inode, as a tie-breaker.
    pub ino: u64,
}

/// Counters of a [`FileSource`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSourceStats {
    /// Files open now (current and draining).
    pub files: usize,
    /// Lines handed out.
    pub lines: u64,
    /// Bytes read from files.
    pub bytes: u64,
    /// Lines longer than `max_line`, skipped.
    pub too_long: u64,
    /// Times a path came to name a new file (rename + create, delete + recreate).
    pub rotations: u64,
    /// Times a file shrank (copytruncate or truncation) and was read again from its start.
    pub truncations: u64,
    /// Rotated files found by fingerprint and read to their end (on restart or after a
    /// copytruncate).
    pub rotated_found: u64,
    /// Full rescans (pattern expansion and a check of every file).
    pub rescans: u64,
    /// True while inotify is in use.
    pub inotify: bool,
    /// Watches that could not be added (those files and directories are polled).
    pub watch_failures: u64,
    /// Times the inotify queue overflowed (handled by a full rescan).
    pub queue_overflows: u64,
    /// Matched files not opened because 512 files are open already.
    pub files_over_limit: u64,
    /// Draining files closed before their grace period because of the per-path limit.
    pub closed_early: u64,
    /// I/O errors (open, stat, read). The file is retried at the next rescan.
    pub errors: u64,
    /// The last I/O error, for the operator.
    pub last_error: Option<String>,
}

/// One open file.
#[derive(Debug)]
struct Tracked {
    /// Never reused.
    key: u64,
    /// The configured path lines are reported under.
    path: Arc<Path>,
    file: File,
    dev: u64,
    ino: u64,
    /// Just after the last line handed out.
    pos: u64,
    /// While skipping an overlong line (or the partial line a first read lands in): how far
    /// the search for its end got, and whether it counts as too long.
    skip: Option<Skip>,
    /// Size at the last look; a smaller size means truncation.
    last_size: u64,
    fp: Fingerprint,
    /// Bumped on truncation: invalidates the shared read buffer.
    generation: u64,
    wd: Option<i32>,
    /// May have unread data.
    dirty: bool,
    /// Set when this file is no longer what its path names (None: current).
    draining: Option<Draining>,
    last_data: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Draining {
    since: Instant,
    /// Order in which files of a path stopped being current: their lines are read in this
    /// order. (Keys do not give it: after a copytruncate the current file keeps its old key
    /// while the copy, with older lines, gets a new one.)
    seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Skip {
    scanned: u64,
    counts: bool,
}

impl Tracked {
    fn position(&self) -> RotatedPosition {
        RotatedPosition {
            fingerprint: self.fp,
            offset: self.pos,
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// Where a newly opened file starts.
enum Start {
    At(u64),
    Tail,
}

/// The open files and their indices.
#[derive(Debug, Default)]
struct Files {
    by_key: BTreeMap<u64, Tracked>,
    current: HashMap<Arc<Path>, u64>,
    by_inode: HashMap<(u64, u64), u64>,
    by_wd: HashMap<i32, u64>,
}

impl Files {
    fn insert(&mut self, t: Tracked) {
        if t.draining.is_none() {
            self.current.insert(Arc::clone(&t.path), t.key);
        }
        self.by_inode.insert((t.dev, t.ino), t.key);
        if let Some(wd) = t.wd {
            self.by_wd.insert(wd, t.key);
        }
        self.by_key.insert(t.key, t);
    }

    fn remove(&mut self, key: u64) -> Option<Tracked> {
        let t = self.by_key.remove(&key)?;
        if self.current.get(&t.path) == Some(&key) {
            self.current.remove(&t.path);
        }
        self.by_inode.remove(&(t.dev, t.ino));
        if let Some(wd) = t.wd {
            self.by_wd.remove(&wd);
        }
        Some(t)
    }

    /// Draining files of `path`, in draining order.
    fn draining_of(&self, path: &Path) -> Vec<&Tracked> {
        let mut v: Vec<&Tracked> = self
            .by_key
            .values()
            .filter(|t| t.draining.is_some() && *t.path == *path)
            .collect();
        v.sort_by_key(|t| t.draining.map(|d| d.seq));
        v
    }
}

/// Tails the files named by a set of patterns.
///
/// # How it works
///
/// Every file is read with `pread` at an explicit offset into one shared buffer; complete
/// lines are copied into the caller's [`LineBatch`], a partial last line stays in the file
/// until its newline arrives. A file's position is always just after the last line handed
/// out, so stopping anywhere (the caller's `max_lines`, a restart) never loses or repeats a
/// line.
///
/// A file is known by its inode while it is open and by a [`Fingerprint`] of its first bytes
/// across restarts. Each configured path has at most one *current* file (what the name
/// points to now) and a few *draining* files: earlier files of the same name (renamed away
/// or deleted) that are read to their end, including lines a writer appends to its old file
/// descriptor after the rotation, for [`ROTATE_GRACE`] before they are closed. Draining files
/// are always read before the current file of the same name.
///
/// Changes are noticed by inotify (files: modify, close_write, attrib, move_self,
/// delete_self; the directories in which pattern components are looked up: create,
/// moved_to, moved_from, delete) and, as a fallback and safety net, by a full rescan every
/// `poll_interval`.
#[derive(Debug)]
pub struct FileSource {
    patterns: Vec<Pattern>,
    poll_interval: Duration,
    first_read_limit: u64,
    max_line: usize,
    inotify: Option<OwnedFd>,
    event_buf: Vec<MaybeUninit<u8>>,
    /// Events read but not yet applied: (watch, flags, name matches a pattern component).
    /// Bounded by what one drain of the kernel queue yields (the kernel caps its queue).
    events: Vec<(i32, ReadFlags, bool)>,
    /// Watched directories. Bounded by what the patterns can reach (directories in which a
    /// component is looked up); an entry goes when the kernel drops its watch.
    dir_watches: HashMap<PathBuf, i32>,
    dir_wds: HashMap<i32, PathBuf>,
    /// Open files; bounded by [`MAX_FILES`].
    files: Files,
    next_key: u64,
    rescan_pending: bool,
    next_poll: Instant,
    chunk: Chunk,
    /// Key of the current file read last, for round-robin fairness.
    last_served: u64,
    /// Scratch list of (order, key) for a read pass, kept to avoid an allocation per read.
    order: Vec<(u64, u64)>,
    /// Next [`Draining::seq`].
    next_drain_seq: u64,
    stats: FileSourceStats,
}

const FILE_MASK: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::DELETE_SELF);
const DIR_MASK: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::ONLYDIR);

impl FileSource {
    /// Validates `config`, opens the matching files and positions each one: at its
    /// checkpoint when the fingerprint still matches; after reading the rest of the rotated
    /// file the checkpoint belongs to (found next to the path by fingerprint) at 0; at 0 when
    /// the file was truncated or replaced; and, for a file without a checkpoint, at
    /// `first_read_limit` bytes before its end. Checkpoints of paths no pattern matches are
    /// ignored.
    pub fn new(
        config: FileSourceConfig,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<Self, SourceError> {
        let invalid = |field, why: &str| SourceError::InvalidConfig {
            field,
            why: why.to_owned(),
        };
        if config.patterns.is_empty() {
            return Err(invalid("patterns", "name at least one file"));
        }
        if config.poll_interval < Duration::from_millis(10) {
            return Err(invalid("poll_interval", "must be at least 10ms"));
        }
        if config.max_line == 0 || config.max_line > MAX_LINE_LIMIT {
            return Err(invalid("max_line", "must be between 1 byte and 16 MiB"));
        }
        let patterns = config
            .patterns
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut stats = FileSourceStats::default();
        let inotify = if config.inotify {
            inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).ok()
        } else {
            None
        };
        stats.inotify = inotify.is_some();
        let mut source = Self {
            patterns,
            poll_interval: config.poll_interval,
            first_read_limit: config.first_read_limit,
            max_line: config.max_line,
            inotify,
            event_buf: vec![MaybeUninit::uninit(); 64 * 1024],
            events: Vec::new(),
            dir_watches: HashMap::new(),
            dir_wds: HashMap::new(),
            files: Files::default(),
            next_key: 1,
            rescan_pending: false,
            next_poll: Instant::now() + config.poll_interval,
            chunk: Chunk::new(config.max_line),
            last_served: 0,
            order: Vec::new(),
            next_drain_seq: 0,
            stats,
        };
        // Watch directories before opening files, so nothing created meanwhile is missed.
        let (files, dirs) = source.expand();
        source.watch_dirs(&dirs);
        for cp in &checkpoints {
            if source.patterns.iter().any(|p| p.matches_path(&cp.path)) {
                source.resume(cp);
            }
        }
        source.scan_files(&files, true);
        Ok(source)
    }

    /// Appends up to `max_lines` complete lines to `out` and returns how many. Never blocks
    /// on I/O beyond reading regular files. Lines of rotated-away files of a path come
    /// before lines of its current file. When `max_lines` cuts a read short, the rest is
    /// handed out by the next call (nothing is dropped); files take turns so that a busy
    /// file does not starve the others.
    ///
    /// `max_lines = 0` reads nothing but still notices changes (rotation, truncation, new
    /// files). A caller whose queue stays full should call it now and then: a file renamed
    /// twice, or truncated and refilled past its old size, before the source looks loses
    /// lines.
    ///
    /// Per-file I/O errors do not fail the call: they are counted in [`stats`](Self::stats)
    /// and the file is retried at the next rescan.
    pub fn read(&mut self, out: &mut LineBatch, max_lines: usize) -> Result<usize, SourceError> {
        self.drain_events();
        let now = Instant::now();
        if now >= self.next_poll {
            self.next_poll = now + self.poll_interval;
            self.poll_tick(now);
        }
        if self.rescan_pending {
            self.rescan();
        }
        let mut n = 0;
        // Each pass visits a snapshot of keys once; only a truncation (which resets the
        // file, so it cannot repeat at once) starts the passes over.
        let mut order = std::mem::take(&mut self.order);
        'passes: loop {
            // Pass 1: draining files, in draining order, to their end.
            order.clear();
            order.extend(
                self.files
                    .by_key
                    .values()
                    .filter(|t| t.dirty)
                    .filter_map(|t| Some((t.draining?.seq, t.key))),
            );
            order.sort_unstable();
            for &(_, key) in &order {
                match self.read_file(key, out, max_lines - n) {
                    ReadOutcome::Done(k) | ReadOutcome::Budget(k) => n += k,
                    ReadOutcome::Truncated => self.truncated(key),
                }
            }
            // Pass 2: current files, round robin from after the one served last. Their
            // draining files are all read by now (unless the budget ran out; then files are
            // only looked at).
            order.clear();
            let after = self.last_served.saturating_add(1);
            let current_dirty =
                |(_, t): (&u64, &Tracked)| (t.draining.is_none() && t.dirty).then_some((0, t.key));
            order.extend(self.files.by_key.range(after..).filter_map(current_dirty));
            order.extend(self.files.by_key.range(..after).filter_map(current_dirty));
            for &(_, key) in &order {
                let budget = max_lines - n;
                match self.read_file(key, out, budget) {
                    ReadOutcome::Done(k) | ReadOutcome::Budget(k) => {
                        n += k;
                        if budget > 0 {
                            self.last_served = key;
                        }
                    }
                    ReadOutcome::Truncated => {
                        self.truncated(key);
                        continue 'passes;
                    }
                }
            }
            break;
        }
        self.order = order;
        Ok(n)
    }

    /// Blocks until something may be ready to read: an inotify event, the next poll
    /// interval, or `timeout`, whichever comes first. Returns at once when data is already
    /// known to be waiting (for example after `read` stopped at `max_lines`).
    pub fn wait(&mut self, timeout: Duration) {
        if self.rescan_pending || self.files.by_key.values().any(|t| t.dirty) {
            return;
        }
        let now = Instant::now();
        if now >= self.next_poll {
            return;
        }
        let t = timeout.min(self.next_poll - now);
        if t.is_zero() {
            return;
        }
        match &self.inotify {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let ts = Timespec::try_from(t).unwrap_or(Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                });
                // EINTR or any other error: return early; the caller reads and waits again.
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            None => std::thread::sleep(t),
        }
    }

    /// Where each path's reading stands: just after the last line handed out by `read`.
    /// One checkpoint per path, sorted by path. Files still draining after a rotation are
    /// carried in [`Checkpoint::rotated`].
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let mut by_path: BTreeMap<&Path, Vec<&Tracked>> = BTreeMap::new();
        for t in self.files.by_key.values() {
            by_path.entry(&t.path).or_default().push(t);
        }
        by_path
            .into_iter()
            .filter_map(|(path, mut files)| {
                // Draining files in draining order, then the current file (if any): the
                // last one is the main position, the others are `rotated`.
                files.sort_by_key(|t| t.draining.map_or(u64::MAX, |d| d.seq));
                let main = files.pop()?;
                Some(Checkpoint {
                    path: path.to_path_buf(),
                    fingerprint: main.fp,
                    offset: main.pos,
                    dev: main.dev,
                    ino: main.ino,
                    rotated: files.iter().map(|t| t.position()).collect(),
                })
            })
            .collect()
    }

    /// The counters.
    pub fn stats(&self) -> &FileSourceStats {
        &self.stats
    }

    // ----- discovery -----

    fn expand(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        for p in &self.patterns {
            p.expand(&mut files, &mut dirs);
        }
        files.sort();
        files.dedup();
        dirs.sort();
        dirs.dedup();
        (files, dirs)
    }

    fn watch_dirs(&mut self, dirs: &[PathBuf]) {
        let Some(fd) = &self.inotify else {
            return;
        };
        for d in dirs {
            if self.dir_watches.contains_key(d) {
                continue;
            }
            match inotify::add_watch(fd, d.as_path(), DIR_MASK) {
                Ok(wd) => {
                    self.dir_watches.insert(d.clone(), wd);
                    self.dir_wds.insert(wd, d.clone());
                }
                Err(_) => self.stats.watch_failures += 1,
            }
        }
    }

    fn watch_file(&mut self, file: &File) -> Option<i32> {
        let fd = self.inotify.as_ref()?;
        // Watch the inode we hold open, not whatever the name points to by now.
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        match inotify::add_watch(fd, proc_path.as_str(), FILE_MASK) {
            Ok(wd) => Some(wd),
            Err(_) => {
                self.stats.watch_failures += 1;
                None
            }
        }
    }

    fn unwatch(&mut self, wd: Option<i32>) {
        if let (Some(fd), Some(wd)) = (&self.inotify, wd) {
            let _ = inotify::remove_watch(fd, wd);
        }
    }

    /// Full rescan: re-expand the patterns, notice names that now point elsewhere or
    /// nowhere, open new files from their start.
    fn rescan(&mut self) {
        self.rescan_pending = false;
        self.stats.rescans += 1;
        let (files, dirs) = self.expand();
        self.watch_dirs(&dirs);
        let now = Instant::now();
        // Phase 1: is each current file still what its path names?
        let currents: Vec<(Arc<Path>, u64)> = self
            .files
            .current
            .iter()
            .map(|(p, k)| (Arc::clone(p), *k))
            .collect();
        for (path, key) in currents {
            let still = files.binary_search_by(|f| f.as_path().cmp(&path)).is_ok()
                && match std::fs::metadata(&path) {
                    Ok(m) => {
                        m.is_file()
                            && self
                                .files
                                .by_key
                                .get(&key)
                                .is_some_and(|t| (t.dev, t.ino) == (m.dev(), m.ino()))
                    }
                    Err(_) => false,
                };
            if !still {
                self.demote(key, now);
            }
        }
        // Phase 2: open what is new.
        self.scan_files(&files, false);
        self.stats.files = self.files.by_key.len();
    }

    /// Opens every path in `files` that has no current file. At startup (`first`) a file
    /// without checkpoint starts `first_read_limit` from its end; later it starts at 0.
    fn scan_files(&mut self, files: &[PathBuf], first: bool) {
        for path in files {
            if self.files.current.contains_key(path.as_path()) {
                continue;
            }
            let Ok(m) = std::fs::metadata(path) else {
                continue;
            };
            if !m.is_file() {
                continue;
            }
            if let Some(&key) = self.files.by_inode.get(&(m.dev(), m.ino())) {
                // Already open: a draining file renamed to a name a pattern also matches
                // takes that name; the same file under a second name (hard link, overlapping
                // patterns) is read once.
                if let Some(mut t) = self.files.remove(key) {
                    if t.draining.is_some() {
                        t.path = Arc::from(path.as_path());
                        t.draining = None;
                        t.dirty = true;
                    }
                    self.files.insert(t);
                }
                continue;
            }
            let start = if first { Start::Tail } else { Start::At(0) };
            self.open(path, start, false);
        }
        self.stats.files = self.files.by_key.len();
    }

    /// Opens `path` and tracks it (as current, or draining under `report_as`).
    fn open(&mut self, path: &Path, start: Start, draining: bool) -> Option<u64> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.io_error("open", path, e);
                return None;
            }
        };
        self.track(Arc::from(path), file, start, draining)
    }

    fn track(
        &mut self,
        report_as: Arc<Path>,
        file: File,
        start: Start,
        draining: bool,
    ) -> Option<u64> {
        if self.files.by_key.len() >= MAX_FILES {
            self.stats.files_over_limit += 1;
            return None;
        }
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => {
                self.io_error("stat", &report_as, e);
                return None;
            }
        };
        if self.files.by_inode.contains_key(&(meta.dev(), meta.ino())) {
            return None;
        }
        let size = meta.len();
        let (pos, skip) = match start {
            Start::At(p) => match line_start_at(&file, p.min(size)) {
                Ok(x) => x,
                Err(e) => {
                    self.io_error("read", &report_as, e);
                    return None;
                }
            },
            Start::Tail => match tail_start(&file, size, self.first_read_limit) {
                Ok(x) => x,
                Err(e) => {
                    self.io_error("read", &report_as, e);
                    return None;
                }
            },
        };
        let fp = Fingerprint::of_file(&file, size).unwrap_or(Fingerprint::EMPTY);
        let wd = self.watch_file(&file);
        let key = self.next_key;
        self.next_key += 1;
        let now = Instant::now();
        let draining = draining.then(|| {
            self.limit_draining(&report_as);
            self.drain_mark(now)
        });
        self.files.insert(Tracked {
            key,
            path: report_as,
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            pos,
            skip,
            last_size: size,
            fp,
            generation: 0,
            wd,
            dirty: true,
            draining,
            last_data: now,
        });
        self.stats.files = self.files.by_key.len();
        Some(key)
    }

    /// The current file of a path no longer is what the path names: keep reading it to its
    /// end as a draining file.
    fn demote(&mut self, key: u64, now: Instant) {
        let Some(mut t) = self.files.remove(key) else {
            return;
        };
        self.limit_draining(&t.path);
        t.draining = Some(self.drain_mark(now));
        t.dirty = true;
        self.stats.rotations += 1;
        self.files.insert(t);
    }

    fn drain_mark(&mut self, now: Instant) -> Draining {
        self.next_drain_seq += 1;
        Draining {
            since: now,
            seq: self.next_drain_seq,
        }
    }

    /// Makes room for one more draining file of `path` (see [`MAX_DRAINING_PER_PATH`]).
    fn limit_draining(&mut self, path: &Path) {
        loop {
            let draining = self.files.draining_of(path);
            if draining.len() < MAX_DRAINING_PER_PATH {
                return;
            }
            let victim = draining
                .iter()
                .find(|t| !t.dirty)
                .or(draining.first())
                .map(|t| t.key);
            match victim {
                Some(k) => {
                    self.close(k);
                    self.stats.closed_early += 1;
                }
                None => return,
            }
        }
    }

    fn close(&mut self, key: u64) {
        if let Some(t) = self.files.remove(key) {
            self.unwatch(t.wd);
            if self.chunk.key == key {
                self.chunk.invalidate();
            }
        }
        self.stats.files = self.files.by_key.len();
    }

    /// Positions a file from its checkpoint (startup only).
    fn resume(&mut self, cp: &Checkpoint) {
        let path: Arc<Path> = Arc::from(cp.path.as_path());
        for r in &cp.rotated {
            self.resume_rotated(&path, r);
        }
        let main = RotatedPosition {
            fingerprint: cp.fingerprint,
            offset: cp.offset,
            dev: cp.dev,
            ino: cp.ino,
        };
        let Ok(file) = File::open(&cp.path) else {
            // Gone: its remaining lines may survive under a rotated name.
            self.resume_rotated(&path, &main);
            return;
        };
        let same = file
            .metadata()
            .ok()
            .filter(|m| m.is_file() && identifies(&main, m.ino(), &file))
            .map(|m| m.len());
        match same {
            Some(size) if size >= cp.offset => {
                self.track(path, file, Start::At(cp.offset), false);
            }
            Some(_) => {
                // Same file, shorter than the offset: truncated (its rest may be in a copy).
                self.stats.truncations += 1;
                self.resume_rotated(&path, &main);
                self.track(path, file, Start::At(0), false);
            }
            None => {
                // A different file: the checkpointed one was rotated (read its rest first)
                // or truncated; either way the file now at the path starts at 0.
                self.resume_rotated(&path, &main);
                self.track(path, file, Start::At(0), false);
            }
        }
    }

    fn resume_rotated(&mut self, path: &Arc<Path>, pos: &RotatedPosition) {
        if let Some(file) = self.find_rotated(path, pos, true) {
            self.stats.rotated_found += 1;
            self.track(Arc::clone(path), file, Start::At(pos.offset), true);
        }
    }

    /// Looks next to `path` for a file whose name starts with the path's name (`auth.log.1`,
    /// `auth.log-20260101`; compressed ones excluded) holding the content `pos` refers to:
    /// same fingerprint, at least `pos.offset` bytes, not open already. Prefers the same
    /// inode, then the most recently modified. `strict` (after a restart) also demands the
    /// same inode when the fingerprint covers less than [`FINGERPRINT_BYTES`]: a few
    /// leading bytes (a timestamp and a host name) are too weak an identity on their own.
    ///
    /// A position in a file that was empty (no fingerprint) is never looked for: only the
    /// inode would identify it, and inode numbers of deleted files are reused at once.
    fn find_rotated(&self, path: &Path, pos: &RotatedPosition, strict: bool) -> Option<File> {
        if pos.fingerprint.len == 0 {
            return None;
        }
        let dir = path.parent()?;
        let base = path.file_name()?.as_bytes();
        let mut best: Option<(bool, std::time::SystemTime, File)> = None;
        for entry in std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let name = name.as_bytes();
            if name.len() <= base.len() || !name.starts_with(base) || is_compressed(name) {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            let Ok(m) = file.metadata() else {
                continue;
            };
            if !m.is_file()
                || m.len() < pos.offset.max(u64::from(pos.fingerprint.len))
                || self.files.by_inode.contains_key(&(m.dev(), m.ino()))
                || (strict && !identifies(pos, m.ino(), &file))
                || (!strict && !pos.fingerprint.matches(&file).unwrap_or(false))
            {
                continue;
            }
            // Same directory, so same device: the inode number alone compares.
            let same_inode = m.ino() == pos.ino;
            let mtime = m.modified().unwrap_or(std::time::UNIX_EPOCH);
            if best
                .as_ref()
                .is_none_or(|(bi, bm, _)| (same_inode, mtime) > (*bi, *bm))
            {
                best = Some((same_inode, mtime, file));
            }
        }
        best.map(|(_, _, f)| f)
    }

    /// A file shrank. Its unread lines may survive in a copy (copytruncate): read that copy
    /// from our offset as a draining file, then the file itself from 0.
    fn truncated(&mut self, key: u64) {
        self.stats.truncations += 1;
        let Some(t) = self.files.by_key.get(&key) else {
            return;
        };
        let path = Arc::clone(&t.path);
        let pos = t.position();
        let is_current = t.draining.is_none();
        if is_current && pos.fingerprint.len > 0 {
            if let Some(copy) = self.find_rotated(&path, &pos, false) {
                self.stats.rotated_found += 1;
                self.track(Arc::clone(&path), copy, Start::At(pos.offset), true);
            }
        }
        if let Some(t) = self.files.by_key.get_mut(&key) {
            t.pos = 0;
            t.skip = None;
            t.last_size = 0;
            t.fp = Fingerprint::EMPTY;
            t.generation += 1;
            t.dirty = true;
        }
        if self.chunk.key == key {
            self.chunk.invalidate();
        }
    }

    // ----- events -----

    fn drain_events(&mut self) {
        let Some(fd) = &self.inotify else {
            return;
        };
        self.events.clear();
        let mut reader = inotify::Reader::new(fd, &mut self.event_buf);
        loop {
            match reader.next() {
                Ok(ev) => {
                    let name_matches = ev.file_name().is_some_and(|n| {
                        let n = n.to_bytes();
                        self.patterns
                            .iter()
                            .any(|p| p.parts().iter().any(|part| part.matches(n)))
                    });
                    self.events.push((ev.wd(), ev.events(), name_matches));
                }
                Err(rustix::io::Errno::INTR) => continue,
                // WOULDBLOCK: drained. Anything else: the next poll tick covers it.
                Err(_) => break,
            }
        }
        let events = std::mem::take(&mut self.events);
        for &(wd, flags, name_matches) in &events {
            self.apply_event(wd, flags, name_matches);
        }
        self.events = events;
    }

    fn apply_event(&mut self, wd: i32, flags: ReadFlags, name_matches: bool) {
        if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
            self.stats.queue_overflows += 1;
            self.mark_all_dirty();
            self.rescan_pending = true;
            return;
        }
        if let Some(&key) = self.files.by_wd.get(&wd) {
            if flags.contains(ReadFlags::IGNORED) {
                self.files.by_wd.remove(&wd);
                if let Some(t) = self.files.by_key.get_mut(&key) {
                    t.wd = None;
                }
                return;
            }
            if let Some(t) = self.files.by_key.get_mut(&key) {
                t.dirty = true;
            }
            if flags.intersects(ReadFlags::MOVE_SELF | ReadFlags::DELETE_SELF | ReadFlags::ATTRIB) {
                self.rescan_pending = true;
            }
            return;
        }
        if self.dir_wds.contains_key(&wd) {
            if flags.contains(ReadFlags::IGNORED) {
                if let Some(d) = self.dir_wds.remove(&wd) {
                    self.dir_watches.remove(&d);
                }
                self.rescan_pending = true;
                return;
            }
            if name_matches || flags.intersects(ReadFlags::MOVE_SELF | ReadFlags::DELETE_SELF) {
                self.rescan_pending = true;
            }
        }
    }

    fn mark_all_dirty(&mut self) {
        for t in self.files.by_key.values_mut() {
            t.dirty = true;
        }
    }

    /// Every poll interval: look at every file, rescan, close draining files whose grace
    /// period is over.
    fn poll_tick(&mut self, now: Instant) {
        self.mark_all_dirty();
        self.rescan_pending = true;
        let expired: Vec<u64> = self
            .files
            .by_key
            .values()
            .filter(|t| {
                t.draining
                    .is_some_and(|d| now.duration_since(d.since.max(t.last_data)) >= ROTATE_GRACE)
            })
            .map(|t| t.key)
            .collect();
        for key in expired {
            // Keep it while complete lines remain unread (the caller has not been reading);
            // reading them renews the grace period.
            if let Some(t) = self.files.by_key.get(&key) {
                let size = t.file.metadata().map(|m| m.len()).unwrap_or(0);
                let from = t.skip.map_or(t.pos, |s| s.scanned);
                if size > from && has_newline_after(&t.file, from, size) {
                    continue;
                }
            }
            self.close(key);
        }
    }

    // ----- reading -----

    fn read_file(&mut self, key: u64, out: &mut LineBatch, budget: usize) -> ReadOutcome {
        let Some(t) = self.files.by_key.get_mut(&key) else {
            return ReadOutcome::Done(0);
        };
        match read_lines(
            t,
            &mut self.chunk,
            &mut self.stats,
            self.max_line,
            out,
            budget,
        ) {
            Ok(outcome) => outcome,
            Err(e) => {
                t.dirty = false;
                let path = t.path.to_path_buf();
                self.io_error("read", &path, e);
                ReadOutcome::Done(0)
            }
        }
    }

    fn io_error(&mut self, op: &'static str, path: &Path, source: io::Error) {
        self.stats.errors += 1;
        self.stats.last_error = Some(
            SourceError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
            .to_string(),
        );
    }
}

/// Where a first read starts: `limit` bytes before the end, moved forward to the next line
/// start. If no line starts in that range, the partial line at the end is skipped (without
/// counting it as too long) up to its newline.
fn tail_start(file: &File, size: u64, limit: u64) -> io::Result<(u64, Option<Skip>)> {
    if size <= limit {
        return Ok((0, None));
    }
    let from = size - limit;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, from - 1)?;
    if byte[0] == b'\n' {
        return Ok((from, None));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < size {
        let want = ((size - at) as usize).min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok((at + i as u64 + 1, None));
        }
        at += n as u64;
    }
    Ok((
        from,
        Some(Skip {
            scanned: at,
            counts: false,
        }),
    ))
}

/// After a restart: is `file` (inode `ino`) the file `pos` was taken in? Its fingerprint
/// must match; a fingerprint over fewer than [`FINGERPRINT_BYTES`] bytes must also come
/// with the same inode (the device is not compared: it may change across reboots, and
/// candidates share a directory anyway).
fn identifies(pos: &RotatedPosition, ino: u64, file: &File) -> bool {
    (pos.fingerprint.len >= FINGERPRINT_BYTES || pos.ino == ino)
        && pos.fingerprint.matches(file).unwrap_or(false)
}

/// Resuming at `pos`: a line start if the byte before it is a newline; otherwise the
/// partial line there is skipped (without counting it as too long) up to its newline.
fn line_start_at(file: &File, pos: u64) -> io::Result<(u64, Option<Skip>)> {
    if pos == 0 {
        return Ok((0, None));
    }
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, pos - 1)?;
    if byte[0] == b'\n' {
        Ok((pos, None))
    } else {
        Ok((
            pos,
            Some(Skip {
                scanned: pos,
                counts: false,
            }),
        ))
    }
}

fn has_newline_after(file: &File, pos: u64, size: u64) -> bool {
    let mut buf = [0u8; 4096];
    let mut at = pos;
    while at < size {
        let want = ((size - at) as usize).min(buf.len());
        match file.read_at(&mut buf[..want], at) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                if memchr::memchr(b'\n', &buf[..n]).is_some() {
                    return true;
                }
                at += n as u64;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
