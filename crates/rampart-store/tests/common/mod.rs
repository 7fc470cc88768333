//! Helpers shared by the integration tests: unique temp directories and short constructors.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ipnet::IpNet;
use rampart_core::{JailName, Timestamp};
use rampart_store::{BanRecord, Lift, Origin};

/// A directory unique to this process and call (tests run in parallel), removed on drop
/// even when the test fails.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rampart-store-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("rampart.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn jail(name: &str) -> JailName {
    JailName::new(name).unwrap()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_secs(secs)
}

/// A detected ban of `net` in `jail` from `start` to `end` (seconds), level 0, 5 failures;
/// its address is the network address.
pub fn ban(jail_name: &str, n: &str, start: i64, end: i64) -> BanRecord {
    let net = net(n);
    BanRecord {
        jail: jail(jail_name),
        net,
        addr: net.addr(),
        start: ts(start),
        end: ts(end),
        failures: 5,
        level: 0,
        origin: Origin::Detected,
        details: None,
    }
}

pub fn lift(jail_name: Option<&str>, n: &str, at: i64) -> Lift {
    Lift {
        jail: jail_name.map(jail),
        net: net(n),
        at: ts(at),
        reason: "manual unban by test".to_owned(),
    }
}
