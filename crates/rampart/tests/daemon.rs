//! The daemon run as an admin runs it, with the log-only backend (no kernel): a real log
//! file, the real binary, the real control socket and state file. The kernel side is
//! proven by the network-namespace tests in tests/e2e.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rampart_core::{Clock, SystemClock};
use serde_json::Value;

use common::{append, invalid_user, rampart, wait_for, Daemon, Tmp};

struct Setup {
    tmp: Tmp,
    config: PathBuf,
    socket: String,
    log: PathBuf,
}

fn setup(extra: &str) -> Setup {
    let tmp = Tmp::new();
    let log = tmp.0.join("auth.log");
    std::fs::write(&log, "").unwrap();
    let socket = tmp.0.join("run/rampart.sock");
    let config = tmp.0.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
state = "{state}"
socket = "{socket}"
backend = "log-only"
reconcile_every = "1s"

[defaults]
timezone = "UTC"
allow = ["198.51.100.0/24"]

[[jail]]
name = "sshd"
filter = "sshd"
logs = ["{log}"]
max_failures = 3
window = "10m"
ban_for = "1h"
{extra}
"#,
            state = tmp.0.join("state/rampart.db").display(),
            socket = socket.display(),
            log = log.display(),
        ),
    )
    .unwrap();
    Setup {
        socket: socket.display().to_string(),
        tmp,
        config,
        log,
    }
}

fn start(s: &Setup) -> Daemon {
    common::start_daemon(
        &["run".as_ref(), "--config".as_ref(), s.config.as_os_str()],
        &s.socket,
    )
}

fn ctl(s: &Setup, args: &[&str]) -> Output {
    common::ctl(&s.socket, args)
}

fn json(s: &Setup, args: &[&str]) -> Value {
    common::json(&s.socket, args)
}

fn banned(s: &Setup, net: &str) -> Option<Value> {
    let bans = json(s, &["bans", "--json"]);
    bans.as_array()
        .unwrap()
        .iter()
        .find(|b| b["net"] == net)
        .cloned()
}

#[test]
fn bans_after_max_failures_and_answers_control_commands() {
    let s = setup("");
    let _d = start(&s);
    append(&s.log, &invalid_user("203.0.113.5").repeat(2));
    append(&s.log, &invalid_user("198.51.100.9").repeat(5));
    std::thread::sleep(Duration::from_millis(300));
    assert!(banned(&s, "203.0.113.5/32").is_none(), "banned too early");
    append(&s.log, &invalid_user("203.0.113.5"));
    wait_for(|| banned(&s, "203.0.113.5/32").is_some(), "the ban");
    let b = banned(&s, "203.0.113.5/32").unwrap();
    assert_eq!(b["jail"], "sshd");
    assert_eq!(b["origin"], "detected");
    assert!(b["remaining_s"].as_i64().unwrap() > 3500);
    // The allowlisted network failed five times and is not banned.
    assert!(banned(&s, "198.51.100.9/32").is_none());

    let status = json(&s, &["status", "--json"]);
    let jail = &status["jails"][0];
    assert_eq!(jail["name"], "sshd");
    assert_eq!(jail["failures"], 8);
    assert_eq!(jail["bans"], 1);
    assert_eq!(jail["allowlisted"], 5);
    assert_eq!(status["backend"], "log-only");

    // Manual bans: the allowlist and the host's own addresses always win.
    let out = ctl(&s, &["ban", "sshd", "198.51.100.20"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowlisted"));
    let out = ctl(&s, &["ban", "sshd", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("own addresses"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(&s, &["ban", "nosuchjail", "203.0.113.77"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no jail named"));
    let out = ctl(&s, &["ban", "sshd", "203.0.113.77", "--for", "2h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = banned(&s, "203.0.113.77/32").unwrap();
    assert_eq!(b["origin"], "manual");
    assert!(b["remaining_s"].as_i64().unwrap() > 7000);

    let out = ctl(&s, &["unban", "203.0.113.77"]);
    assert!(out.status.success());
    assert!(banned(&s, "203.0.113.77/32").is_none());
    let out = ctl(&s, &["unban", "203.0.113.77"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not banned"));

    // The text forms print something a person reads.
    let text = String::from_utf8(ctl(&s, &["bans"]).stdout).unwrap();
    assert!(
        text.contains("203.0.113.5/32") && text.contains("REMAINING"),
        "{text}"
    );
    let text = String::from_utf8(ctl(&s, &["status"]).stdout).unwrap();
    assert!(text.contains("jail sshd:"), "{text}");
}

#[test]
fn a_bad_reload_keeps_the_old_config_and_a_good_one_applies() {
    let s = setup("");
    let _d = start(&s);
    let good = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, format!("{good}\nmax_failures = \"three\"\n")).unwrap();
    let out = ctl(&s, &["reload"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("rampart.toml"),
        "the error names the file: {err}"
    );
    // Still running, old config: three failures ban.
    append(&s.log, &invalid_user("203.0.113.8").repeat(3));
    wait_for(
        || banned(&s, "203.0.113.8/32").is_some(),
        "a ban under the old config",
    );
    // A good config with a second jail.
    std::fs::write(
        &s.config,
        good.replace("max_failures = 3", "max_failures = 2"),
    )
    .unwrap();
    let out = ctl(&s, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    append(&s.log, &invalid_user("203.0.113.9").repeat(2));
    wait_for(
        || banned(&s, "203.0.113.9/32").is_some(),
        "a ban under the new config",
    );
    // The ban from before the reload is still active, and counted once.
    assert!(banned(&s, "203.0.113.8/32").is_some());
    let status = json(&s, &["status", "--json"]);
    assert_eq!(status["active_bans"], 2);
}

#[test]
fn a_killed_daemon_restarts_with_its_bans_and_counts_each_line_once() {
    let s = setup("[jail.escalation]\nfactor = 2.0\nmax = \"1w\"\nforget_after = \"7d\"\n");
    let mut d = start(&s);
    append(&s.log, &invalid_user("203.0.113.5").repeat(3));
    wait_for(|| banned(&s, "203.0.113.5/32").is_some(), "the first ban");
    // Two failures of another offender, then the daemon dies hard.
    append(&s.log, &invalid_user("203.0.113.6").repeat(2));
    std::thread::sleep(Duration::from_millis(500));
    d.0.kill().unwrap();
    d.0.wait().unwrap();
    // One failure written while it is down.
    append(&s.log, &invalid_user("203.0.113.6"));
    let _d = start(&s);
    // Two before the crash + one while down = three: banned after the restart, once.
    wait_for(
        || banned(&s, "203.0.113.6/32").is_some(),
        "the ban after restart",
    );
    let first = banned(&s, "203.0.113.5/32").expect("the first ban survives the restart");
    assert_eq!(first["level"], 0);
    std::thread::sleep(Duration::from_millis(500));
    let status = json(&s, &["status", "--json"]);
    assert_eq!(status["active_bans"], 2);
    // Re-reading the window did not ban 203.0.113.5 a second time.
    assert_eq!(status["jails"][0]["bans"], 1, "{status}");
    // Unban and fail again: the history makes the next ban longer (level 1).
    assert!(ctl(&s, &["unban", "203.0.113.5"]).status.success());
    append(&s.log, &invalid_user("203.0.113.5").repeat(3));
    wait_for(
        || banned(&s, "203.0.113.5/32").is_some_and(|b| b["level"] == 1),
        "an escalated ban",
    );
    let b = banned(&s, "203.0.113.5/32").unwrap();
    assert!(b["remaining_s"].as_i64().unwrap() > 7000, "{b}");
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let s = setup("");
    let mut d = start(&s);
    let pid = d.0.id();
    let out = Command::new("/bin/kill")
        .args(["-TERM", &pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = d.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(!Path::new(&s.socket).exists());
    drop(s.tmp);
}

#[test]
fn an_invalid_config_fails_at_start_with_exit_2_naming_file_and_line() {
    let s = setup("bogus_key = 1");
    let out = rampart(&["run", "--config", s.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rampart.toml:"), "{err}");
    assert!(err.contains("bogus_key"), "{err}");
    let out = rampart(&["run", "--check", "--config", s.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// A journal file written by systemd-journal-remote from an export stream.
fn write_journal(path: &Path, entries: &[(i64, &str, &str)]) {
    const REMOTE: &str = "/usr/lib/systemd/systemd-journal-remote";
    assert!(
        Path::new(REMOTE).exists(),
        "{REMOTE} is missing: install the Debian package systemd-journal-remote"
    );
    let mut export = Vec::new();
    for (i, (realtime, comm, message)) in entries.iter().enumerate() {
        write!(
            export,
            "__REALTIME_TIMESTAMP={realtime}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=5f3c2d1e0a9b48c7b6a5f4e3d2c1b0a9\nMESSAGE={message}\nSYSLOG_IDENTIFIER={comm}\n_PID={}\n_HOSTNAME=web1\n_COMM={comm}\n_SYSTEMD_UNIT=ssh.service\n\n",
            1_000_000 + i,
            4000 + i
        )
        .unwrap();
    }
    let mut child = Command::new(REMOTE)
        .arg(format!("--output={}", path.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn reads_the_journal_when_configured_and_bans_from_it() {
    let s = setup("source = \"journal\"\njournal = [\"_COMM=sshd\", \"_COMM=sshd-session\"]\n");
    let journal = s.tmp.0.join("sshd.journal");
    let now = SystemClock.now().as_micros();
    write_journal(
        &journal,
        &[
            (
                now - 3_000_000,
                "sshd-session",
                "Invalid user a from 203.0.113.40 port 1",
            ),
            (
                now - 2_000_000,
                "cron",
                "Invalid user b from 203.0.113.40 port 2",
            ),
            (
                now - 1_000_000,
                "sshd",
                "Invalid user c from 203.0.113.40 port 3",
            ),
            (
                now,
                "sshd-session",
                "Invalid user d from 203.0.113.40 port 4",
            ),
            // Older than the window: history, not a reason to ban now.
            (
                now - 3_600_000_000,
                "sshd",
                "Invalid user e from 203.0.113.41 port 5",
            ),
            (
                now - 3_599_000_000,
                "sshd",
                "Invalid user f from 203.0.113.41 port 6",
            ),
            (
                now - 3_598_000_000,
                "sshd",
                "Invalid user g from 203.0.113.41 port 7",
            ),
        ],
    );
    let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["run", "--config"])
        .arg(&s.config)
        .arg("--journal-file")
        .arg(&journal)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _d = Daemon(child);
    wait_for(
        || ctl(&s, &["status", "--json"]).status.success(),
        "the socket",
    );
    // Three sshd entries (the cron one does not match the journal terms): banned.
    wait_for(
        || banned(&s, "203.0.113.40/32").is_some(),
        "the journal ban",
    );
    let status = json(&s, &["status", "--json"]);
    let jail = &status["jails"][0];
    assert!(
        jail["source"].as_str().unwrap().starts_with("journal"),
        "{jail}"
    );
    // The old entries follow the new ones in the file, so journalctl's --since lets them
    // through; the engine counts them as stale, not toward a ban.
    assert_eq!(jail["failures"], 6, "{jail}");
    assert_eq!(jail["stale_failures"], 3, "{jail}");
    assert!(banned(&s, "203.0.113.41/32").is_none());
}
