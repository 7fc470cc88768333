//! Helpers shared by the binary's integration tests (each test file includes this module
//! and uses part of it).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rampart_core::{Clock, SystemClock};
use serde_json::Value;

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir (unique per process and call), removed when
/// dropped.
pub struct Tmp(pub PathBuf);
impl Tmp {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "rampart-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    /// Writes `name` in the directory and returns its path.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary to completion.
pub fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .expect("run rampart")
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A daemon process, killed when dropped.
pub struct Daemon(pub Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `rampart ARGS...` as a daemon and waits until its control socket answers.
pub fn start_daemon(args: &[&std::ffi::OsStr], socket: &str) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon");
    let d = Daemon(child);
    wait_for(
        || ctl(socket, &["status", "--json"]).status.success(),
        "the socket",
    );
    d
}

/// A control command to the daemon on `socket`.
pub fn ctl(socket: &str, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--socket", socket]);
    rampart(&all)
}

/// A control command's JSON answer (the command must succeed).
pub fn json(socket: &str, args: &[&str]) -> Value {
    let out = ctl(socket, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `ok` every 50 ms for up to 15 s.
pub fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` as a classic syslog time (`Nov  1 01:02:03`), in UTC.
pub fn syslog_stamp(t: rampart_core::Timestamp) -> String {
    let c = t.to_civil();
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[usize::from(c.month) - 1],
        c.day,
        c.hour,
        c.minute,
        c.second
    )
}

/// An sshd syslog line with `message`, stamped now (UTC).
pub fn sshd_line_now(message: &str) -> String {
    format!(
        "{} host sshd[4242]: {message}\n",
        syslog_stamp(SystemClock.now())
    )
}

/// An sshd "Invalid user" line stamped now.
pub fn invalid_user(addr: &str) -> String {
    sshd_line_now(&format!("Invalid user admin from {addr} port 50000"))
}

/// An sshd "Failed password" line stamped now.
pub fn failed_password(addr: &str) -> String {
    sshd_line_now(&format!(
        "Failed password for root from {addr} port 50000 ssh2"
    ))
}
