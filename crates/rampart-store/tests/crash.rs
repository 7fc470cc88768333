//! A batch whose commit() returned survives the process being killed with SIGKILL.
//!
//! The test binary spawns itself as the child: with `RAMPART_STORE_CRASH_CHILD` set to a
//! database path, this same test commits, says so on stdout, and waits to be killed.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ban, TempDir};
use rampart_store::{Batch, Store};

const CHILD_ENV: &str = "RAMPART_STORE_CRASH_CHILD";
const BANS: usize = 2000;

fn batch() -> Batch {
    let bans = (0..BANS)
        .map(|i| {
            let n = format!("198.51.{}.{}/32", 100 + i / 256, i % 256);
            ban("sshd", &n, 1000, 100_000 + i as i64)
        })
        .collect();
    Batch {
        bans,
        lifts: vec![],
        checkpoints: vec![("file:/var/log/auth.log".into(), "ino=7 off=4096".into())],
    }
}

/// Kills the child on drop, so a failing assertion never leaves it sleeping.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn child(db: &str) -> ! {
    let mut store = Store::open(std::path::Path::new(db)).unwrap();
    store.commit(&batch()).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "COMMITTED").unwrap();
    out.flush().unwrap();
    // Keep the connection open (no clean close, no WAL checkpoint) until killed.
    std::thread::sleep(Duration::from_secs(120));
    std::process::exit(3);
}

#[test]
fn committed_batch_survives_sigkill() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(&db);
    }
    let tmp = TempDir::new("sigkill");
    let db = tmp.db();
    let exe = std::env::current_exe().unwrap();
    let spawned = Command::new(&exe)
        .args(["--exact", "committed_batch_survives_sigkill", "--nocapture"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(spawned);
    let stdout = guard.0.stdout.take().unwrap();
    let mut committed = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().trim() == "COMMITTED" {
            committed = true;
            break;
        }
    }
    assert!(committed, "child exited without committing");
    // SIGKILL: no destructor, no sqlite3_close, no checkpoint.
    guard.0.kill().unwrap();
    let status = guard.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "child must die by SIGKILL: {status:?}"
    );
    let wal = std::fs::metadata(rampart_store_wal(&db)).unwrap();
    assert!(
        wal.len() > 0,
        "the committed batch must be in the WAL, not yet checkpointed"
    );

    let store = Store::open(&db).unwrap();
    let active = store.active_bans(common::ts(2000)).unwrap();
    assert_eq!(active.len(), BANS);
    let mut expected = batch().bans;
    expected.sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
    assert_eq!(active, expected);
    assert_eq!(
        store.checkpoints().unwrap(),
        vec![(
            "file:/var/log/auth.log".to_owned(),
            "ino=7 off=4096".to_owned()
        )]
    );
}

fn rampart_store_wal(db: &std::path::Path) -> std::path::PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}
