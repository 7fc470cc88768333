//! [`JournalSource`]: follows systemd's journal through `journalctl --follow --output=json`.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_core::Timestamp;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::{LineReader, SourceError};

/// The program run to read the journal.
pub const JOURNALCTL: &str = "/usr/bin/journalctl";

/// The only environment the child gets.
const CHILD_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Entries parsed but not yet taken by `read`. Overflow policy: the reader thread blocks
/// (back-pressure onto journalctl); nothing is dropped.
const CHANNEL_CAPACITY: usize = 256;

/// Longest JSON line accepted from journalctl; longer ones are counted as bad and skipped.
/// With the channel bound, this caps the memory held in flight.
const MAX_JSON_LINE: usize = 1024 * 1024;

/// Bytes of the child's stderr kept for the error message (the last ones).
const STDERR_TAIL: usize = 4096;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child that ran at least this long resets the backoff.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// Which part of the journal a [`JournalSource`] reads, as configured for a jail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSourceConfig {
    /// journalctl match terms, each its own argument: `FIELD=value` with FIELD in
    /// `[A-Z0-9_]+`, or `+` for "or" (e.g. `["_SYSTEMD_UNIT=ssh.service", "+",
    /// "_COMM=sshd-session"]`).
    #[serde(default)]
    pub matches: Vec<String>,
    /// Read this journal file instead of the system journal (`--file`).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Read the journal files in this directory instead of the system journal
    /// (`--directory`).
    #[serde(default)]
    pub directory: Option<PathBuf>,
}

/// Where reading starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalStart {
    /// Just after the entry with this cursor (`--after-cursor`), as stored from
    /// [`JournalSource::cursor`].
    AfterCursor(String),
    /// At the first entry at or after this time (`--since=@<seconds>`).
    Since(Timestamp),
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// When it was logged (`__REALTIME_TIMESTAMP`).
    pub realtime: Timestamp,
    /// `MESSAGE`, as bytes (the journal allows any bytes); empty when absent.
    pub message: Vec<u8>,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: Option<String>,
    /// `_PID`.
    pub pid: Option<u32>,
    /// `_HOSTNAME`.
    pub hostname: Option<String>,
    /// `__CURSOR`: where to resume after this entry.
    pub cursor: String,
}

/// Counters of a [`JournalSource`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Entries parsed.
    pub entries: u64,
    /// Lines from journalctl that were not a valid entry (bad JSON, missing fields, too
    /// long), skipped.
    pub bad_lines: u64,
    /// Times journalctl was started again after it exited or could not be started.
    pub restarts: u64,
    /// Why journalctl last exited or failed to start, with the end of its stderr.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    child: Mutex<Option<Child>>,
    stopping: AtomicBool,
    entries: AtomicU64,
    bad_lines: AtomicU64,
    restarts: AtomicU64,
    last_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind: keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Follows systemd's journal through `journalctl --follow --output=json --all`.
///
/// A reader thread owns the `journalctl` child: it splits its stdout into lines (bounded),
/// parses each JSON object into a [`JournalEntry`] and sends it into a bounded channel. When
/// the channel is full the thread blocks, which stops it reading the pipe, which stops
/// `journalctl`: back-pressure, never a drop. When `journalctl` exits, the thread restarts it
/// after a backoff from the cursor of the last entry it received. Dropping the source kills
/// the child.
pub struct JournalSource {
    rx: Option<Receiver<JournalEntry>>,
    peeked: Option<JournalEntry>,
    cursor: Option<String>,
    shared: Arc<Shared>,
    /// Dropping it wakes the reader thread from a backoff sleep.
    stop_tx: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for JournalSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalSource")
            .field("cursor", &self.cursor)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The fixed part of the argv (after the program) and the start.
#[derive(Debug, Clone)]
struct Invocation {
    fixed: Vec<OsString>,
    matches: Vec<OsString>,
    start: JournalStart,
}

impl Invocation {
    fn argv(&self, after: Option<&str>) -> Vec<OsString> {
        let mut argv: Vec<OsString> =
            vec!["--follow".into(), "--output=json".into(), "--all".into()];
        let cursor = after.or(match &self.start {
            JournalStart::AfterCursor(c) => Some(c.as_str()),
            JournalStart::Since(_) => None,
        });
        match (cursor, &self.start) {
            (Some(c), _) => argv.push(format!("--after-cursor={c}").into()),
            (None, JournalStart::Since(t)) => argv.push(format!("--since=@{}", t.as_secs()).into()),
            (None, JournalStart::AfterCursor(_)) => {}
        }
        argv.extend(self.fixed.iter().cloned());
        argv.extend(self.matches.iter().cloned());
        argv
    }

    fn spawn(&self, after: Option<&str>) -> Result<Child, SourceError> {
        let argv = self.argv(after);
        Command::new(JOURNALCTL)
            .args(&argv)
            .env_clear()
            .env("PATH", CHILD_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SourceError::Spawn {
                argv: display_argv(&argv),
                source,
            })
    }
}

fn display_argv(argv: &[OsString]) -> Vec<String> {
    std::iter::once(JOURNALCTL.to_owned())
        .chain(argv.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect()
}

/// Checks one match term: `FIELD=value` with FIELD in `[A-Z0-9_]+`, or `+`.
/// Checks journalctl match terms as [`JournalSource::new`] does: each is `FIELD=value` with
/// FIELD of `[A-Z0-9_]` and a value without control characters, or a lone `+` between
/// terms. The config loader calls this too, so a bad term fails at load, naming its line.
pub fn check_journal_matches(terms: &[String]) -> Result<(), SourceError> {
    if let Some(bad) = terms.iter().find(|t| !valid_match(t)) {
        return Err(SourceError::InvalidJournalMatch { term: bad.clone() });
    }
    if terms.first().is_some_and(|t| t == "+") || terms.last().is_some_and(|t| t == "+") {
        return Err(SourceError::InvalidJournalMatch { term: "+".into() });
    }
    Ok(())
}

fn valid_match(term: &str) -> bool {
    if term == "+" {
        return true;
    }
    match term.split_once('=') {
        Some((field, value)) => {
            !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                && !value.bytes().any(|b| b.is_ascii_control())
        }
        None => false,
    }
}

fn absolute(field: &'static str, p: &Path) -> Result<OsString, SourceError> {
    if !p.is_absolute() {
        return Err(SourceError::InvalidConfig {
            field,
            why: format!("{} is not an absolute path", p.display()),
        });
    }
    Ok(p.as_os_str().to_owned())
}

impl JournalSource {
    /// Validates `config` and starts `journalctl` (strictly: if it cannot be started now,
    /// this fails; later exits are retried with backoff).
    pub fn new(config: JournalSourceConfig, start: JournalStart) -> Result<Self, SourceError> {
        check_journal_matches(&config.matches)?;
        let mut fixed = Vec::new();
        match (&config.file, &config.directory) {
            (Some(_), Some(_)) => {
                return Err(SourceError::InvalidConfig {
                    field: "file",
                    why: "give a file or a directory, not both".into(),
                })
            }
            (Some(f), None) => {
                fixed.push("--file".into());
                fixed.push(absolute("file", f)?);
            }
            (None, Some(d)) => {
                fixed.push("--directory".into());
                fixed.push(absolute("directory", d)?);
            }
            (None, None) => {}
        }
        if let JournalStart::AfterCursor(c) = &start {
            if c.is_empty() || c.contains(['\0', '\n']) {
                return Err(SourceError::InvalidConfig {
                    field: "cursor",
                    why: format!("{c:?} is not a journal cursor"),
                });
            }
        }
        let inv = Invocation {
            fixed,
            matches: config.matches.iter().map(OsString::from).collect(),
            start,
        };
        let mut child = inv.spawn(None)?;
        let pipes = (child.stdout.take(), child.stderr.take());
        let shared = Arc::new(Shared::default());
        *lock(&shared.child) = Some(child);
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let (stop_tx, stop_rx) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("journalctl-reader".into())
            .spawn(move || run(inv, pipes, thread_shared, tx, stop_rx))
            .map_err(|source| SourceError::Io {
                op: "start a thread for",
                path: PathBuf::from(JOURNALCTL),
                source,
            })?;
        Ok(Self {
            rx: Some(rx),
            peeked: None,
            cursor: None,
            shared,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Appends up to `max` entries that are ready to `out` and returns how many; never
    /// blocks.
    pub fn read(&mut self, out: &mut Vec<JournalEntry>, max: usize) -> Result<usize, SourceError> {
        let mut n = 0;
        if max == 0 {
            return Ok(0);
        }
        if let Some(e) = self.peeked.take() {
            out.push(e);
            n += 1;
        }
        let Some(rx) = &self.rx else {
            return Ok(n);
        };
        while n < max {
            match rx.try_recv() {
                Ok(e) => {
                    out.push(e);
                    n += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if n == 0 {
                        return Err(SourceError::JournalReaderGone {
                            last_error: self.stats().last_error.unwrap_or_default(),
                        });
                    }
                    break;
                }
            }
        }
        if n > 0 {
            if let Some(last) = out.last() {
                self.cursor = Some(last.cursor.clone());
            }
        }
        Ok(n)
    }

    /// Blocks until an entry is ready or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) {
        if self.peeked.is_some() {
            return;
        }
        if let Some(rx) = &self.rx {
            match rx.recv_timeout(timeout) {
                Ok(e) => self.peeked = Some(e),
                Err(RecvTimeoutError::Timeout) => {}
                // The thread is gone; `read` reports it. Do not spin.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
            }
        }
    }

    /// The cursor of the last entry handed out by [`read`](Self::read), to store and pass
    /// back as [`JournalStart::AfterCursor`].
    pub fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    /// The counters.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            entries: self.shared.entries.load(Ordering::Relaxed),
            bad_lines: self.shared.bad_lines.load(Ordering::Relaxed),
            restarts: self.shared.restarts.load(Ordering::Relaxed),
            last_error: lock(&self.shared.last_error).clone(),
        }
    }

    /// The process id of the running journalctl, if one runs (for diagnostics).
    pub fn child_id(&self) -> Option<u32> {
        lock(&self.shared.child).as_ref().map(Child::id)
    }
}

impl Drop for JournalSource {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Unblock the thread wherever it is: a full channel (receiver gone), a backoff sleep
        // (stop sender gone), a pipe read (child killed).
        self.rx = None;
        self.stop_tx = None;
        if let Some(child) = lock(&self.shared.child).as_mut() {
            let _ = child.kill();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reader thread: run journalctl, pump its output, restart it when it exits.
/// The pipes of a running child.
type Pipes = (Option<ChildStdout>, Option<ChildStderr>);

fn run(
    inv: Invocation,
    first: Pipes,
    shared: Arc<Shared>,
    tx: SyncSender<JournalEntry>,
    stop_rx: Receiver<()>,
) {
    // The first child is already in `shared.child`; later ones are spawned here.
    let mut first = Some(first);
    let mut last_cursor = String::new();
    let mut backoff = BACKOFF_MIN;
    loop {
        let (stdout, stderr) = match first.take() {
            Some(pipes) => pipes,
            None => {
                let after = (!last_cursor.is_empty()).then_some(last_cursor.as_str());
                match inv.spawn(after) {
                    Ok(mut child) => {
                        let pipes = (child.stdout.take(), child.stderr.take());
                        *lock(&shared.child) = Some(child);
                        pipes
                    }
                    Err(e) => {
                        *lock(&shared.last_error) = Some(e.to_string());
                        shared.restarts.fetch_add(1, Ordering::Relaxed);
                        if sleep_or_stop(&stop_rx, backoff) {
                            return;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        let started = Instant::now();
        // Drop may have run between the spawn and storing the child: then it is ours to
        // kill (Drop sets `stopping` before it looks at `child`).
        if shared.stopping.load(Ordering::SeqCst) {
            if let Some(c) = lock(&shared.child).as_mut() {
                let _ = c.kill();
            }
            reap(&shared);
            return;
        }
        let stderr_thread = stderr.map(|e| std::thread::spawn(move || stderr_tail(e)));
        let receiver_alive = match stdout {
            Some(out) => pump(out, &tx, &shared, &mut last_cursor),
            None => true,
        };
        if !receiver_alive {
            if let Some(c) = lock(&shared.child).as_mut() {
                let _ = c.kill();
            }
        }
        let status = reap(&shared);
        let err_tail = stderr_thread
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        if !receiver_alive || shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let argv = display_argv(&inv.argv((!last_cursor.is_empty()).then_some(&last_cursor)));
        *lock(&shared.last_error) = Some(format!(
            "{} exited ({}): {}",
            argv.join(" "),
            status.unwrap_or_else(|| "unknown status".into()),
            String::from_utf8_lossy(&err_tail).trim()
        ));
        shared.restarts.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() >= BACKOFF_RESET_AFTER {
            backoff = BACKOFF_MIN;
        }
        if sleep_or_stop(&stop_rx, backoff) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Sleeps `d` unless the source is dropped meanwhile; true when it was.
fn sleep_or_stop(stop_rx: &Receiver<()>, d: Duration) -> bool {
    !matches!(stop_rx.recv_timeout(d), Err(RecvTimeoutError::Timeout))
}

/// Waits for the child to exit and forgets it; its exit status, described.
fn reap(shared: &Shared) -> Option<String> {
    let child = lock(&shared.child).take();
    child.map(|mut c| match c.wait() {
        Ok(s) => s.to_string(),
        Err(e) => format!("wait failed: {e}"),
    })
}

fn stderr_tail(mut err: ChildStderr) -> Vec<u8> {
    let mut tail = Vec::with_capacity(STDERR_TAIL);
    let mut buf = [0u8; 4096];
    loop {
        match err.read(&mut buf) {
            Ok(0) | Err(_) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
}

/// Reads journalctl's output to its end, sending entries. False when the receiver is gone.
fn pump(
    out: ChildStdout,
    tx: &SyncSender<JournalEntry>,
    shared: &Shared,
    last_cursor: &mut String,
) -> bool {
    pump_lines(out, shared, |entry| {
        last_cursor.clear();
        last_cursor.push_str(&entry.cursor);
        tx.send(entry).is_ok()
    })
}

/// Splits `input` into lines, parses each as an entry and hands it to `send` (which
/// returns false to stop). Bad lines are counted and skipped. False when `send` stopped.
fn pump_lines(
    input: impl Read,
    shared: &Shared,
    mut send: impl FnMut(JournalEntry) -> bool,
) -> bool {
    let mut lines = LineReader::new(input, MAX_JSON_LINE);
    let mut too_long_seen = 0;
    // A read error ends this child's output like EOF does: the child is then restarted.
    while let Ok(Some(line)) = lines.next_line() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_entry(line) {
            Some(entry) => {
                shared.entries.fetch_add(1, Ordering::Relaxed);
                if !send(entry) {
                    return false;
                }
            }
            None => {
                shared.bad_lines.fetch_add(1, Ordering::Relaxed);
            }
        }
        let too_long = lines.stats().too_long;
        if too_long > too_long_seen {
            shared
                .bad_lines
                .fetch_add(too_long - too_long_seen, Ordering::Relaxed);
            too_long_seen = too_long;
        }
    }
    let too_long = lines.stats().too_long;
    shared
        .bad_lines
        .fetch_add(too_long - too_long_seen, Ordering::Relaxed);
    true
}

// ----- parsing -----

/// The fields we use, borrowed from the line where possible. Unknown fields are skipped.
#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "__CURSOR", borrow)]
    cursor: Cow<'a, str>,
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    realtime: Cow<'a, str>,
    #[serde(rename = "MESSAGE", default)]
    message: FieldValue,
    #[serde(rename = "SYSLOG_IDENTIFIER", default)]
    identifier: FieldValue,
    #[serde(rename = "_PID", default)]
    pid: FieldValue,
    #[serde(rename = "_HOSTNAME", default)]
    hostname: FieldValue,
}

/// A field as journalctl's JSON writes it: a string; an array of byte values (binary data);
/// null (data too large, without `--all`); or an array of those (a field with several
/// values: the first is kept).
#[derive(Debug, Default, PartialEq, Eq)]
struct FieldValue(Option<Vec<u8>>);

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = FieldValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array of bytes, null, or an array of those")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
        Ok(FieldValue(Some(v.as_bytes().to_vec())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
        Ok(FieldValue(Some(v.into_bytes())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
        Ok(FieldValue(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<FieldValue, E> {
        Ok(FieldValue(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
        let mut bytes = Vec::new();
        let mut first_value: Option<Option<Vec<u8>>> = None;
        while let Some(el) = seq.next_element::<Element>()? {
            match el {
                Element::Byte(b) if first_value.is_none() => bytes.push(b),
                Element::Value(v) if bytes.is_empty() => {
                    if first_value.is_none() {
                        first_value = Some(v.0);
                    }
                }
                _ => return Err(de::Error::custom("an array mixing bytes and values")),
            }
        }
        Ok(FieldValue(first_value.unwrap_or(Some(bytes))))
    }
}

/// One element of a JSON array field: a byte, or a whole value (multi-valued field).
enum Element {
    Byte(u8),
    Value(FieldValue),
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte value or a field value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
                u8::try_from(v)
                    .map(Element::Byte)
                    .map_err(|_| E::custom("byte value above 255"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
                u8::try_from(v)
                    .map(Element::Byte)
                    .map_err(|_| E::custom("byte value out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
                FieldVisitor.visit_str(v).map(Element::Value)
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Element, E> {
                FieldVisitor.visit_string(v).map(Element::Value)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
                Ok(Element::Value(FieldValue(None)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                FieldVisitor.visit_seq(seq).map(Element::Value)
            }
        }
        d.deserialize_any(V)
    }
}

fn text(v: FieldValue) -> Option<String> {
    v.0.map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Parses one line of `journalctl --output=json`; `None` for anything that is not an entry
/// with a cursor and a realtime timestamp.
fn parse_entry(line: &[u8]) -> Option<JournalEntry> {
    let raw: RawEntry<'_> = serde_json::from_slice(line).ok()?;
    let micros: i64 = raw.realtime.parse().ok()?;
    let pid = raw
        .pid
        .0
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok());
    Some(JournalEntry {
        realtime: Timestamp::from_micros(micros),
        message: raw.message.0.unwrap_or_default(),
        identifier: text(raw.identifier),
        pid,
        hostname: text(raw.hostname),
        cursor: raw.cursor.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_string_binary_null_and_multi_valued_messages() {
        let line = br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":"Failed password for root from 192.0.2.7","SYSLOG_IDENTIFIER":"sshd","_PID":"812","_HOSTNAME":"web1","OTHER":{"x":[1,2]}}"#;
        let e = parse_entry(line).unwrap();
        assert_eq!(e.realtime, Timestamp::from_micros(1_700_000_000_123_456));
        assert_eq!(e.message, b"Failed password for root from 192.0.2.7");
        assert_eq!(e.identifier.as_deref(), Some("sshd"));
        assert_eq!(e.pid, Some(812));
        assert_eq!(e.hostname.as_deref(), Some("web1"));
        assert_eq!(e.cursor, "s=1;i=2");

        let bin = br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105,255,0]}"#;
        assert_eq!(parse_entry(bin).unwrap().message, b"hi\xff\0");

        let null = br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":null,"_PID":null}"#;
        let e = parse_entry(null).unwrap();
        assert!(e.message.is_empty());
        assert_eq!(e.pid, None);

        let multi =
            br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":["first",[115,101,99]]}"#;
        assert_eq!(parse_entry(multi).unwrap().message, b"first");

        let escaped =
            br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":"tab\there \u00e9"}"#;
        assert_eq!(
            parse_entry(escaped).unwrap().message,
            "tab\there \u{e9}".as_bytes()
        );
    }

    #[test]
    fn refuses_lines_that_are_not_entries() {
        for bad in [
            &b"not json"[..],
            br#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":"no cursor"}"#,
            br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"soon"}"#,
            br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":[300]}"#,
            br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":{"a":1}}"#,
            br#"["array"]"#,
        ] {
            assert_eq!(parse_entry(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bad_lines_are_counted_and_skipped_not_fatal() {
        let input = b"{\"__CURSOR\":\"a\",\"__REALTIME_TIMESTAMP\":\"1\",\"MESSAGE\":\"one\"}\n\
{broken json\n\
\n\
{\"__CURSOR\":\"b\",\"__REALTIME_TIMESTAMP\":\"2\",\"MESSAGE\":\"two\"}\n";
        let shared = Shared::default();
        let mut got = Vec::new();
        assert!(pump_lines(&input[..], &shared, |e| {
            got.push(e);
            true
        }));
        let msgs: Vec<_> = got.iter().map(|e| e.message.clone()).collect();
        assert_eq!(msgs, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(shared.bad_lines.load(Ordering::Relaxed), 1);
        assert_eq!(shared.entries.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_overlong_line_counts_as_bad() {
        let mut input = vec![b'{'; MAX_JSON_LINE + 10];
        input.extend_from_slice(b"\n{\"__CURSOR\":\"b\",\"__REALTIME_TIMESTAMP\":\"2\"}\n");
        let shared = Shared::default();
        let mut n = 0;
        pump_lines(&input[..], &shared, |_| {
            n += 1;
            true
        });
        assert_eq!(n, 1);
        assert_eq!(shared.bad_lines.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn match_terms_are_validated() {
        for ok in [
            "_SYSTEMD_UNIT=ssh.service",
            "+",
            "_COMM=sshd-session",
            "PRIORITY=",
            "A9_=x=y",
        ] {
            assert!(valid_match(ok), "{ok}");
        }
        for bad in [
            "",
            "=x",
            "_comm=sshd",
            "--since=now",
            "-f",
            "FIELD",
            "A B=x",
            "++",
        ] {
            assert!(!valid_match(bad), "{bad}");
        }
    }

    #[test]
    fn argv_starts_from_the_cursor_when_there_is_one() {
        let inv = Invocation {
            fixed: vec!["--file".into(), "/tmp/x.journal".into()],
            matches: vec!["_COMM=sshd".into()],
            start: JournalStart::Since(Timestamp::from_secs(1_700_000_000)),
        };
        let strs = |v: Vec<OsString>| {
            v.into_iter()
                .map(|s| s.into_string().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strs(inv.argv(None)),
            [
                "--follow",
                "--output=json",
                "--all",
                "--since=@1700000000",
                "--file",
                "/tmp/x.journal",
                "_COMM=sshd"
            ]
        );
        assert_eq!(strs(inv.argv(Some("s=abc")))[3], "--after-cursor=s=abc");
    }
}
