//! Country-policy sets in the kernel, measured in throw-away network namespaces (needs
//! root; run by `bench/geo.sh`):
//!
//! 1. load a policy with a 100k-prefix IPv4 set (first apply: chain, sets, rules and the
//!    elements in one netlink transaction) with nftables, and with ipset;
//! 2. replace that set atomically 5 times (alternating contents) while two UDP flows run: one
//!    from an address in both versions of a **deny** set (any moment without the policy lets
//!    its packets through: received must stay 0) and one from an address outside it (shows
//!    that traffic flows: received ~ sent);
//! 3. single jail bans (p50/p99 of 200) while a 500k-prefix geo set is loaded.
//!
//! CPU time is this thread's on-CPU time (`/proc/thread-self/schedstat`, including the
//! kernel work nf_tables does inside `sendmsg`) plus waited-for children (`nft`, `ipset`).
//!
//! `cargo run --release -p rampart-enforce --example geo-bench`

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use rampart_core::{Backend, Entry, JailName, PortRange, Protocol, Scope, Timestamp};
use rampart_enforce::{
    GeoAction, GeoEnforcer, GeoIpsetConfig, GeoNftConfig, GeoPlan, GeoRule, NftConfig,
};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

const DENIED: &str = "198.51.100.7";
const ALLOWED: &str = "203.0.113.7";
const SERVER: &str = "192.0.2.1";
const PORT: u16 = 5060;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("/usr/bin/ip")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A server and a client namespace joined by a veth; deleted on drop.
struct Pair {
    server: String,
    client: String,
}

impl Pair {
    fn new(tag: &str) -> Result<Pair, String> {
        let base = format!("rgb{}-{tag}", std::process::id());
        let p = Pair {
            server: format!("{base}-s"),
            client: format!("{base}-c"),
        };
        ip(&["netns", "add", &p.server])?;
        ip(&["netns", "add", &p.client])?;
        ip(&[
            "link", "add", "name", "vs", "netns", &p.server, "type", "veth", "peer", "name", "vc",
            "netns", &p.client,
        ])?;
        ip(&["-n", &p.server, "addr", "add", "192.0.2.1/24", "dev", "vs"])?;
        ip(&["-n", &p.client, "addr", "add", "192.0.2.2/24", "dev", "vc"])?;
        for (ns, dev) in [(&p.server, "vs"), (&p.client, "vc")] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        for a in [DENIED, ALLOWED] {
            ip(&[
                "-n",
                &p.client,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "vc",
            ])?;
            ip(&[
                "-n",
                &p.server,
                "route",
                "add",
                &format!("{a}/32"),
                "dev",
                "vs",
            ])?;
        }
        Ok(p)
    }

    fn server_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.server))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.server]);
        let _ = ip(&["netns", "del", &self.client]);
    }
}

fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = File::open(format!("/run/netns/{name}")).expect("namespace file");
    std::thread::spawn(move || {
        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
            .expect("enter namespace");
        f()
    })
}

fn cpu() -> f64 {
    let own = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9);
    let children = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            Some((f.get(13)?.parse::<f64>().ok()? + f.get(14)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0);
    own + children
}

/// `n` distinct, non-adjacent /24s (even /24 indices from 1.0.0.0 up, a deterministic
/// scramble), plus `extra`.
fn prefixes(n: usize, seed: u64, extra: &[&str]) -> Vec<Ipv4Net> {
    let mut x = seed | 1;
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut v = Vec::with_capacity(n + extra.len());
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // /24 index in 1.0.0.0 - 190.255.255.0 (below the test ranges), even only.
        let idx = ((x % (190 << 15)) as u32 + (1 << 15)) * 2;
        if seen.insert(idx) {
            v.push(Ipv4Net::new(Ipv4Addr::from(idx << 8), 24).expect("valid /24"));
        }
    }
    v.extend(
        extra
            .iter()
            .map(|s| Ipv4Net::from(s.parse::<Ipv4Addr>().expect("address"))),
    );
    v
}

fn plan(name: &str, action: GeoAction, v4: Vec<Ipv4Net>) -> GeoPlan {
    GeoPlan {
        rules: vec![GeoRule {
            name: name.into(),
            action,
            notify: false,
            protocols: vec![Protocol::Udp],
            ports: vec![PortRange {
                first: PORT,
                last: PORT,
            }],
            v4,
            v6: vec![],
        }],
        pass: vec![],
    }
}

fn load(tag: &str, make: &dyn Fn(&Pair) -> Box<dyn GeoEnforcer>) -> Result<(), String> {
    let pair = Pair::new(tag)?;
    let mut g = make(&pair);
    let p = plan("bench", GeoAction::Allow, prefixes(100_000, 7, &[]));
    let c0 = cpu();
    let t = Instant::now();
    let applied = g.apply(&p).map_err(|e| e.to_string())?;
    let wall = t.elapsed();
    println!(
        "{:<7} load a 100,000-prefix policy (first apply)          wall {:>7.1} ms  cpu {:>7.1} ms  (element transaction {:.1} ms, {} elements)",
        g.name(),
        wall.as_secs_f64() * 1e3,
        (cpu() - c0) * 1e3,
        applied.load_time.as_secs_f64() * 1e3,
        applied.loaded.iter().map(|(_, n)| n).sum::<usize>()
    );
    Ok(())
}

fn swap_under_traffic(
    tag: &str,
    make: &dyn Fn(&Pair) -> Box<dyn GeoEnforcer>,
) -> Result<(), String> {
    let pair = Pair::new(tag)?;
    let mut g = make(&pair);
    let a = plan("bench", GeoAction::Deny, prefixes(100_000, 11, &[DENIED]));
    let b = plan("bench", GeoAction::Deny, prefixes(100_000, 13, &[DENIED]));
    g.apply(&a).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let got_denied = Arc::new(AtomicU64::new(0));
    let got_allowed = Arc::new(AtomicU64::new(0));
    let (s, gd, ga) = (stop.clone(), got_denied.clone(), got_allowed.clone());
    let receiver = in_netns(&pair.server, move || {
        let sock = UdpSocket::bind(("0.0.0.0", PORT)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
        let mut buf = [0u8; 64];
        while !s.load(Ordering::Relaxed) {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                match from.ip().to_string().as_str() {
                    DENIED => gd.fetch_add(1, Ordering::Relaxed),
                    ALLOWED => ga.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
        }
        // Drain what is queued.
        sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
        while let Ok((_, from)) = sock.recv_from(&mut buf) {
            match from.ip().to_string().as_str() {
                DENIED => gd.fetch_add(1, Ordering::Relaxed),
                ALLOWED => ga.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut senders = Vec::new();
    for src in [DENIED, ALLOWED] {
        let s = stop.clone();
        senders.push(in_netns(&pair.client, move || {
            let sock = UdpSocket::bind((src, 0)).expect("bind client");
            let dst: SocketAddr = (SERVER.parse::<Ipv4Addr>().expect("server"), PORT).into();
            let mut sent = 0u64;
            while !s.load(Ordering::Relaxed) {
                if sock.send_to(b"rampart-geo-bench", dst).is_ok() {
                    sent += 1;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            sent
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut swaps = Vec::new();
    for i in 0..5 {
        let p = if i % 2 == 0 { &b } else { &a };
        let c0 = cpu();
        let t = Instant::now();
        let applied = g.apply(p).map_err(|e| e.to_string())?;
        swaps.push((t.elapsed(), cpu() - c0, applied.loaded.len()));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<u64> = senders.into_iter().map(|h| h.join().unwrap_or(0)).collect();
    receiver
        .join()
        .map_err(|_| "receiver panicked".to_string())?;
    for (wall, c, sets) in &swaps {
        println!(
            "{:<7} replace the 100,000-prefix set ({sets} set)            wall {:>7.1} ms  cpu {:>7.1} ms",
            g.name(),
            wall.as_secs_f64() * 1e3,
            c * 1e3
        );
    }
    println!(
        "{:<7} during 5 replacements: denied flow sent {} received {} (must be 0); other flow sent {} received {}",
        g.name(),
        sent[0],
        got_denied.load(Ordering::Relaxed),
        sent[1],
        got_allowed.load(Ordering::Relaxed)
    );
    if got_denied.load(Ordering::Relaxed) != 0 {
        return Err("packets of the denied flow got through during a replacement".into());
    }
    Ok(())
}

fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn bans_with_big_set() -> Result<(), String> {
    let pair = Pair::new("ban")?;
    let jail = JailName::new("sshd").map_err(|e| e.to_string())?;
    let mut b = NftConfig {
        netns: Some(pair.server_path()),
        ..NftConfig::default()
    }
    .build()
    .map_err(|e| e.to_string())?;
    b.prepare(&[Scope {
        jail: jail.clone(),
        protocols: vec![Protocol::Tcp],
        ports: vec![PortRange {
            first: 22,
            last: 22,
        }],
        ipv6_prefix: 64,
    }])
    .map_err(|e| e.to_string())?;
    b.timeout_refresh();
    let mut g = GeoNftConfig {
        table: "rampart".into(),
        netns: Some(pair.server_path()),
    }
    .build()
    .map_err(|e| e.to_string())?;
    let c0 = cpu();
    let t = Instant::now();
    let applied = g
        .apply(&plan("big", GeoAction::Allow, prefixes(500_000, 5, &[])))
        .map_err(|e| e.to_string())?;
    println!(
        "nftables load a 500,000-prefix policy (first apply)         wall {:>7.1} ms  cpu {:>7.1} ms  (element transaction {:.1} ms)",
        t.elapsed().as_secs_f64() * 1e3,
        (cpu() - c0) * 1e3,
        applied.load_time.as_secs_f64() * 1e3
    );
    let mut lat = Vec::with_capacity(200);
    for k in 0..200u32 {
        let now = now();
        let e = Entry {
            jail: jail.clone(),
            net: ipnet::IpNet::V4(Ipv4Net::from(Ipv4Addr::from(0xc633_6400 + k))),
            expires: now.saturating_add(Duration::from_secs(600)),
        };
        let t = Instant::now();
        b.ban(&[e], now).map_err(|e| e.to_string())?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "nftables single jail ban x200 with the 500,000-prefix set loaded   p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(lat[99]),
        ms(lat[197]),
        ms(lat[199])
    );
    Ok(())
}

/// One measurement of the run.
type Step = Box<dyn Fn() -> Result<(), String>>;

fn main() -> ExitCode {
    if !rustix::process::geteuid().is_root() {
        eprintln!("geo-bench needs root (it creates network namespaces)");
        return ExitCode::from(2);
    }
    let nft = |p: &Pair| -> Box<dyn GeoEnforcer> {
        Box::new(
            GeoNftConfig {
                table: "rampart".into(),
                netns: Some(p.server_path()),
            }
            .build()
            .expect("nft geo backend"),
        )
    };
    let ipset = |p: &Pair| -> Box<dyn GeoEnforcer> {
        Box::new(
            GeoIpsetConfig {
                netns: Some(p.server_path()),
            }
            .build()
            .expect("ipset geo backend"),
        )
    };
    let steps: [(&str, Step); 5] = [
        ("nft load", Box::new(move || load("nl", &nft))),
        ("ipset load", Box::new(move || load("il", &ipset))),
        ("nft swap", Box::new(move || swap_under_traffic("ns", &nft))),
        (
            "ipset swap",
            Box::new(move || swap_under_traffic("is", &ipset)),
        ),
        ("bans", Box::new(bans_with_big_set)),
    ];
    let mut code = ExitCode::SUCCESS;
    for (what, f) in steps {
        if let Err(e) = f() {
            eprintln!("{what}: {e}");
            code = ExitCode::from(1);
        }
    }
    code
}
