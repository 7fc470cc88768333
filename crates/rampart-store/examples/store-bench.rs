//! Measures the store on a real file: one commit of 100k bans, `active_bans` over 100k
//! active rows, and `history` over 1M rows. Prints CPU time (user + system of the process,
//! from /proc/self/stat and, to the nanosecond, /proc/self/schedstat: SQLite runs no
//! helper threads here, so the main thread is the whole process) and peak RSS (VmHWM).
//!
//! ```text
//! cargo run --release -p rampart-store --example store-bench [-- DIR]
//! ```
//!
//! DIR (default: the system temp dir) is where the scratch database goes; use a directory on
//! the disk the daemon will use. Addresses come from the documentation ranges: the 768
//! IPv4 addresses of 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24, and IPv6 /64s of
//! 2001:db8::/32 for the rest.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rampart_core::{JailName, Timestamp};
use rampart_store::{BanRecord, Batch, Origin, Store};

const ACTIVE: usize = 100_000;
const HISTORY_ROWS: usize = 1_000_000;
const NOW: i64 = 1_800_000_000;

/// CPU time of this process: (user + system from /proc/self/stat, on-CPU ns from
/// /proc/self/schedstat).
fn cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on every Linux ABI.
    let coarse = Duration::from_millis((ticks(11) + ticks(12)) * 10);
    let sched = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    let ns = sched
        .split_whitespace()
        .next()
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0);
    (coarse, Duration::from_nanos(ns))
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `f`, prints its wall and CPU time, returns its result.
fn measure<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let (c0, s0) = cpu();
    let t0 = Instant::now();
    let out = f();
    let wall = t0.elapsed();
    let (c1, s1) = cpu();
    println!(
        "{label:<48} cpu {:>8.1} ms (stat {:>5} ms)  wall {:>8.1} ms",
        (s1 - s0).as_secs_f64() * 1e3,
        (c1 - c0).as_millis(),
        wall.as_secs_f64() * 1e3,
    );
    out
}

/// A scrambled but deterministic network for index `i`: the 768 documentation IPv4
/// addresses first, then IPv6 /64s spread over 2001:db8::/32.
fn net_of(i: usize) -> (IpNet, IpAddr) {
    const V4: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];
    if i < 768 {
        let [a, b, c] = V4[i / 256];
        let addr = Ipv4Addr::new(a, b, c, (i % 256) as u8);
        (IpNet::from(IpAddr::V4(addr)), IpAddr::V4(addr))
    } else {
        // Multiply by an odd constant: a bijection on u32, so distinct and unordered.
        let mixed = (i as u32).wrapping_mul(0x9E37_79B1);
        let hi = (0x2001_0db8u128 << 96) | (u128::from(mixed) << 64);
        let addr = Ipv6Addr::from(hi | 0x1234);
        let net = IpNet::new(IpAddr::V6(Ipv6Addr::from(hi)), 64)
            .expect("64 is a valid IPv6 prefix length");
        (net, IpAddr::V6(addr))
    }
}

/// `count` bans starting in the hour after `start`, each 1 to 4 hours long.
fn bans(count: usize, offset: usize, start: i64, jails: &[JailName]) -> Vec<BanRecord> {
    (0..count)
        .map(|k| {
            let i = offset + k;
            let (net, addr) = net_of(i % ACTIVE);
            let s = start + (k as i64 % 3600);
            BanRecord {
                jail: jails[i % jails.len()].clone(),
                net,
                addr,
                start: Timestamp::from_secs(s),
                end: Timestamp::from_secs(s + 3600 * (1 + (i % 4) as i64)),
                failures: 5,
                level: (i % 4) as u32,
                origin: Origin::Detected,
                details: None,
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args_os()
        .nth(1)
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("rampart-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let db = dir.join("rampart.db");
    let jails: Vec<JailName> = ["sshd", "postfix", "nginx"]
        .iter()
        .map(|j| JailName::new(j))
        .collect::<Result<_, _>>()?;
    println!("database: {}", db.display());

    let mut store = measure("open (create schema)", || Store::open(&db))?;

    let active = Batch {
        bans: bans(ACTIVE, 0, NOW - 1800, &jails),
        lifts: vec![],
        checkpoints: vec![("file:/var/log/auth.log".into(), "ino=1 off=1".into())],
    };
    measure("commit: 1 batch of 100k bans + checkpoint", || {
        store.commit(&active)
    })?;
    drop(active);
    let n = measure("active_bans: 100k active rows", || {
        store.active_bans(Timestamp::from_secs(NOW))
    })?
    .len();
    println!("  -> {n} active (jail, net) pairs");

    // The daemon's steady state: small batches, each with its source checkpoint.
    let small: Vec<Batch> = (0..1000)
        .map(|k| Batch {
            bans: bans(1, 2 * HISTORY_ROWS + k, NOW - 600, &jails),
            lifts: vec![],
            checkpoints: vec![("file:/var/log/auth.log".into(), format!("ino=1 off={k}"))],
        })
        .collect();
    measure("commit: 1000 batches of 1 ban + checkpoint", || {
        small.iter().try_for_each(|b| store.commit(b))
    })?;

    // History: older, expired bans of the same offenders, up to 1M rows in total.
    let mut rows = ACTIVE;
    let mut round = 1;
    let (c0, s0) = cpu();
    let t0 = Instant::now();
    while rows < HISTORY_ROWS {
        let batch = Batch {
            bans: bans(ACTIVE, rows, NOW - 86_400 * round, &jails),
            ..Batch::default()
        };
        store.commit(&batch)?;
        rows += ACTIVE;
        round += 1;
    }
    let (c1, s1) = cpu();
    println!(
        "{:<48} cpu {:>8.1} ms (stat {:>5} ms)  wall {:>8.1} ms  (incl. building records)",
        "commit: 9 more batches of 100k (to 1M rows)",
        (s1 - s0).as_secs_f64() * 1e3,
        (c1 - c0).as_millis(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let last = Batch {
        bans: bans(ACTIVE, rows, NOW - 3000, &jails),
        ..Batch::default()
    };
    measure("commit: 100k bans into a 1M-row table", || {
        store.commit(&last)
    })?;
    drop(last);

    let h = measure("history since 0: 1.1M rows", || {
        store.history(Timestamp::from_secs(0))
    })?;
    println!(
        "  -> {} (jail, net) pairs, {} bans counted",
        h.len(),
        h.iter().map(|r| u64::from(r.bans)).sum::<u64>()
    );
    drop(h);
    let h = measure("history since now-3d: 1.1M rows", || {
        store.history(Timestamp::from_secs(NOW - 3 * 86_400))
    })?;
    println!("  -> {} pairs", h.len());
    drop(h);
    let n = measure("active_bans: 200k active among 1.1M rows", || {
        store.active_bans(Timestamp::from_secs(NOW))
    })?
    .len();
    println!("  -> {n} active (jail, net) pairs");
    let s = measure("stats", || store.stats(Timestamp::from_secs(NOW)))?;
    println!("  -> {s:?}");
    let pruned = measure("prune: rows ended before now-1d", || {
        store.prune(Timestamp::from_secs(NOW - 86_400))
    })?;
    println!("  -> {pruned} rows deleted");

    println!("peak RSS: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}

/// Removes the scratch directory however `main` ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
