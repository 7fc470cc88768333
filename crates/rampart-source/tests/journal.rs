//! JournalSource against real journal files: the test writes a Journal Export Format stream
//! into `systemd-journal-remote`, which produces a `.journal` file, and the source reads it
//! with the real `journalctl --file`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use rampart_core::Timestamp;
use rampart_source::{JournalEntry, JournalSource, JournalSourceConfig, JournalStart, SourceError};

const JOURNAL_REMOTE: &str = "/usr/lib/systemd/systemd-journal-remote";
const BOOT_ID: &str = "5f3c2d1e0a9b48c7b6a5f4e3d2c1b0a9";
/// 2023-11-14T22:13:20Z, in microseconds.
const T0: i64 = 1_700_000_000_000_000;

/// One entry to write.
struct Entry<'a> {
    realtime: i64,
    message: &'a [u8],
    unit: &'a str,
    comm: &'a str,
    pid: u32,
}

fn entry(i: i64, message: &str) -> Entry<'_> {
    Entry {
        realtime: T0 + i * 1_000_000,
        message: message.as_bytes(),
        unit: "ssh.service",
        comm: "sshd",
        pid: 4242,
    }
}

fn export(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let monotonic = e.realtime - T0 + 1_000_000;
        write!(
            out,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={monotonic}\n_BOOT_ID={BOOT_ID}\n",
            e.realtime
        )
        .unwrap();
        if e.message.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            out.extend_from_slice(b"MESSAGE=");
            out.extend_from_slice(e.message);
            out.push(b'\n');
        } else {
            // Binary field: name, newline, little-endian u64 length, data, newline.
            out.extend_from_slice(b"MESSAGE\n");
            out.extend_from_slice(&(e.message.len() as u64).to_le_bytes());
            out.extend_from_slice(e.message);
            out.push(b'\n');
        }
        write!(
            out,
            "SYSLOG_IDENTIFIER=sshd\n_PID={}\n_HOSTNAME=web1\n_COMM={}\n_SYSTEMD_UNIT={}\n\n",
            e.pid, e.comm, e.unit
        )
        .unwrap();
    }
    out
}

/// Appends `entries` to the journal file `path` (created if missing) with
/// systemd-journal-remote reading the export stream on stdin.
fn write_journal(path: &Path, entries: &[Entry<'_>]) {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} is missing: install the Debian package systemd-journal-remote"
    );
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", path.display()))
        .arg("-")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-journal-remote");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&export(entries))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "systemd-journal-remote failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("systemd-journal-remote did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn journal_file(dir: &TempDir) -> PathBuf {
    dir.path("test.journal")
}

fn config(file: &Path, matches: &[&str]) -> JournalSourceConfig {
    JournalSourceConfig {
        matches: matches.iter().map(|s| (*s).to_owned()).collect(),
        file: Some(file.to_path_buf()),
        directory: None,
    }
}

fn since_start() -> JournalStart {
    JournalStart::Since(Timestamp::from_secs(0))
}

/// Waits and reads until `n` entries came (or 20 s passed).
fn read_n(src: &mut JournalSource, n: usize) -> Vec<JournalEntry> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        src.wait(Duration::from_millis(100));
        src.read(&mut out, 1000).expect("read");
    }
    out
}

/// Reads whatever arrives within `quiet`.
fn read_quiet(src: &mut JournalSource, quiet: Duration) -> Vec<JournalEntry> {
    let deadline = Instant::now() + quiet;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        src.wait(Duration::from_millis(50));
        src.read(&mut out, 1000).expect("read");
    }
    out
}

fn messages(entries: &[JournalEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.message).into_owned())
        .collect()
}

#[test]
fn reads_entries_in_order_with_times_and_messages_including_binary_ones() {
    let dir = TempDir::new("journal-read");
    let file = journal_file(&dir);
    let binary = b"Failed password for \xff\xfe from 192.0.2.9\nsecond line";
    write_journal(
        &file,
        &[
            entry(0, "Failed password for root from 192.0.2.7 port 22 ssh2"),
            Entry {
                message: binary,
                ..entry(1, "")
            },
            entry(2, "Accepted publickey for alice from 198.51.100.3"),
        ],
    );
    let mut src = JournalSource::new(config(&file, &[]), since_start()).unwrap();
    let got = read_n(&mut src, 3);
    assert_eq!(got.len(), 3, "{:?}", src.stats());
    assert_eq!(
        got[0].message,
        b"Failed password for root from 192.0.2.7 port 22 ssh2"
    );
    assert_eq!(got[1].message, binary);
    assert_eq!(
        got[2].message,
        b"Accepted publickey for alice from 198.51.100.3"
    );
    for (i, e) in got.iter().enumerate() {
        assert_eq!(
            e.realtime,
            Timestamp::from_micros(T0 + i as i64 * 1_000_000)
        );
        assert_eq!(e.identifier.as_deref(), Some("sshd"));
        assert_eq!(e.pid, Some(4242));
        assert_eq!(e.hostname.as_deref(), Some("web1"));
        assert!(e.cursor.starts_with("s="), "cursor {:?}", e.cursor);
    }
    assert_eq!(src.cursor().as_deref(), Some(got[2].cursor.as_str()));
    let stats = src.stats();
    assert_eq!((stats.entries, stats.bad_lines, stats.restarts), (3, 0, 0));
}

#[test]
fn match_terms_filter_entries() {
    let dir = TempDir::new("journal-match");
    let file = journal_file(&dir);
    write_journal(
        &file,
        &[
            entry(0, "from ssh unit"),
            Entry {
                unit: "cron.service",
                comm: "cron",
                ..entry(1, "from cron")
            },
            Entry {
                unit: "ssh@1.service",
                comm: "sshd-session",
                ..entry(2, "from sshd-session")
            },
            entry(3, "last from ssh unit"),
        ],
    );
    let matches = ["_SYSTEMD_UNIT=ssh.service", "+", "_COMM=sshd-session"];
    let mut src = JournalSource::new(config(&file, &matches), since_start()).unwrap();
    let got = read_n(&mut src, 3);
    let got: Vec<_> = got
        .into_iter()
        .chain(read_quiet(&mut src, Duration::from_millis(300)))
        .collect();
    assert_eq!(
        messages(&got),
        ["from ssh unit", "from sshd-session", "last from ssh unit"]
    );
}

#[test]
fn resumes_after_a_cursor_with_only_newer_entries() {
    let dir = TempDir::new("journal-cursor");
    let file = journal_file(&dir);
    write_journal(
        &file,
        &[entry(0, "one"), entry(1, "two"), entry(2, "three")],
    );
    let mut src = JournalSource::new(config(&file, &[]), since_start()).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 2 && Instant::now() < deadline {
        src.wait(Duration::from_millis(100));
        let room = 2 - got.len();
        src.read(&mut got, room).unwrap();
    }
    assert_eq!(messages(&got), ["one", "two"]);
    let cursor = src.cursor().expect("a cursor after reading");
    assert_eq!(cursor, got[1].cursor);
    drop(src);
    let mut src =
        JournalSource::new(config(&file, &[]), JournalStart::AfterCursor(cursor)).unwrap();
    let got = read_n(&mut src, 1);
    let got: Vec<_> = got
        .into_iter()
        .chain(read_quiet(&mut src, Duration::from_millis(300)))
        .collect();
    assert_eq!(messages(&got), ["three"]);
}

#[test]
fn since_skips_older_entries() {
    let dir = TempDir::new("journal-since");
    let file = journal_file(&dir);
    write_journal(&file, &[entry(0, "old"), entry(100, "new")]);
    let start = JournalStart::Since(Timestamp::from_micros(T0 + 50_000_000));
    let mut src = JournalSource::new(config(&file, &[]), start).unwrap();
    let got = read_n(&mut src, 1);
    let got: Vec<_> = got
        .into_iter()
        .chain(read_quiet(&mut src, Duration::from_millis(300)))
        .collect();
    assert_eq!(messages(&got), ["new"]);
}

#[test]
fn follows_entries_appended_while_running() {
    let dir = TempDir::new("journal-follow");
    let file = journal_file(&dir);
    write_journal(&file, &[entry(0, "before")]);
    let mut src = JournalSource::new(config(&file, &[]), since_start()).unwrap();
    assert_eq!(messages(&read_n(&mut src, 1)), ["before"]);
    write_journal(&file, &[entry(1, "after 1"), entry(2, "after 2")]);
    assert_eq!(messages(&read_n(&mut src, 2)), ["after 1", "after 2"]);
}

#[test]
fn restarts_journalctl_after_it_exits_and_resumes_after_the_last_entry() {
    let dir = TempDir::new("journal-restart");
    let file = journal_file(&dir);
    write_journal(&file, &[entry(0, "a"), entry(1, "b")]);
    let mut src = JournalSource::new(config(&file, &[]), since_start()).unwrap();
    assert_eq!(messages(&read_n(&mut src, 2)), ["a", "b"]);
    let pid = src.child_id().expect("journalctl runs");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill journalctl");
    // Wait for the restart, then add entries.
    let deadline = Instant::now() + Duration::from_secs(20);
    while src.stats().restarts == 0 || src.child_id().is_none_or(|p| p == pid) {
        assert!(
            Instant::now() < deadline,
            "journalctl was not restarted: {:?}",
            src.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    write_journal(&file, &[entry(2, "c")]);
    let got = read_n(&mut src, 1);
    let got: Vec<_> = got
        .into_iter()
        .chain(read_quiet(&mut src, Duration::from_millis(300)))
        .collect();
    assert_eq!(messages(&got), ["c"], "no entry repeated after the restart");
    let stats = src.stats();
    assert_eq!(stats.restarts, 1);
    let err = stats.last_error.expect("the exit is recorded");
    assert!(
        err.contains("journalctl") && err.contains("--after-cursor="),
        "{err}"
    );
}

#[test]
fn dropping_the_source_kills_journalctl() {
    let dir = TempDir::new("journal-drop");
    let file = journal_file(&dir);
    write_journal(&file, &[entry(0, "x")]);
    let src = JournalSource::new(config(&file, &[]), since_start()).unwrap();
    let pid = src.child_id().expect("journalctl runs");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(src);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "journalctl {pid} still exists after drop"
    );
}

#[test]
fn invalid_settings_are_refused_before_anything_runs() {
    let file = PathBuf::from("/tmp/none.journal");
    for bad in [
        &["_comm=sshd"][..],
        &["--since=today"],
        &["+", "_COMM=sshd"],
        &["_COMM=sshd", "+"],
    ] {
        let err = JournalSource::new(config(&file, bad), since_start()).unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidJournalMatch { .. }),
            "{bad:?}: {err}"
        );
    }
    let relative = JournalSourceConfig {
        file: Some(PathBuf::from("x.journal")),
        ..JournalSourceConfig::default()
    };
    assert!(matches!(
        JournalSource::new(relative, since_start()).unwrap_err(),
        SourceError::InvalidConfig { field: "file", .. }
    ));
    let cfg: Result<JournalSourceConfig, _> =
        serde_json::from_str(r#"{"matches":["_COMM=sshd"],"unit":"ssh"}"#);
    assert!(cfg.is_err(), "unknown keys are refused");
}
