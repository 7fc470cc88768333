//! Measures the firewall backends in a throw-away network namespace (needs root):
//!
//! - 100k distinct bans applied in one `ban` call (IPv6 /64s from 2001:db8::/32);
//! - `list` of those 100k elements;
//! - single-element ban latency (p50/p99 of 200 bans), without and then with a 100k-prefix
//!   interval set loaded in another nftables table (`nft -f`), plus, for contrast, what one
//!   `nft add element` costs with that set present.
//!
//! CPU time is this thread's on-CPU time (`/proc/thread-self/schedstat`, which includes the
//! kernel work nf_tables does inside our `sendmsg`) plus the CPU time of waited-for child
//! processes (`/proc/self/stat` cutime + cstime, 10 ms ticks).
//!
//! Run: `cargo run --release -p rampart-enforce --example enforce-bench [-- --only nft|ipset]`

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rampart_core::{Backend, Entry, JailName, PortRange, Protocol, Scope, Timestamp};
use rampart_enforce::{IpsetConfig, NftConfig, TimeoutRefresh};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

const N: usize = 100_000;
const SINGLES: usize = 200;

fn cmd(argv: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{argv:?}: {e}"))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).map_err(|e| format!("{argv:?}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{argv:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The namespace; deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = cmd(&["/usr/bin/ip", "netns", "del", &self.0], None);
    }
}

/// (thread CPU seconds, children CPU seconds).
fn cpu() -> (f64, f64) {
    let own = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9);
    let children = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            // Fields 16 and 17 of stat (cutime, cstime) are 13 and 14 after the name.
            Some((f.get(13)?.parse::<f64>().ok()? + f.get(14)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0);
    (own, children)
}

/// Runs `f` and returns (its result, wall, cpu).
fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, f64) {
    let (c0, k0) = cpu();
    let t = Instant::now();
    let r = f();
    let wall = t.elapsed();
    let (c1, k1) = cpu();
    (r, wall, (c1 - c0) + (k1 - k0))
}

fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_micros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn jail() -> JailName {
    JailName::new("sshd").expect("valid jail name")
}

fn scope() -> Scope {
    Scope {
        jail: jail(),
        protocols: vec![Protocol::Tcp],
        ports: vec![PortRange {
            first: 22,
            last: 22,
        }],
        ipv6_prefix: 64,
    }
}

fn many(now: Timestamp) -> Vec<Entry> {
    (0..N)
        .map(|i| Entry {
            jail: jail(),
            net: format!("2001:db8:{:x}:{:x}::/64", (i >> 16) + 0x100, i & 0xffff)
                .parse()
                .expect("valid net"),
            expires: now.saturating_add(Duration::from_secs(3600)),
        })
        .collect()
}

/// The `k`-th single-ban address: 198.51.100.1.. then 203.0.113.1..
fn single(k: usize, now: Timestamp) -> Entry {
    let addr = if k < 254 {
        format!("198.51.100.{}/32", k + 1)
    } else {
        format!("203.0.113.{}/32", k - 253)
    };
    Entry {
        jail: jail(),
        net: addr.parse().expect("valid net"),
        expires: now.saturating_add(Duration::from_secs(600)),
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p = |q: f64| ms(v[((v.len() as f64 - 1.0) * q).round() as usize]);
    (p(0.50), p(0.99))
}

fn singles(b: &mut dyn Backend, offset: usize) -> Result<(f64, f64), String> {
    let mut lat = Vec::with_capacity(SINGLES);
    for k in 0..SINGLES {
        let now = now();
        let e = single(offset + k, now);
        let t = Instant::now();
        b.ban(&[e], now).map_err(|e| e.to_string())?;
        lat.push(t.elapsed());
    }
    Ok(percentiles(lat))
}

fn load_interval_set() -> Result<Duration, String> {
    // 100k non-adjacent IPv6 /56s from 2001:db8::/32 in a foreign table.
    let mut s = String::from(
        "table inet geo {\n set blocked { type ipv6_addr; flags interval; elements = {\n",
    );
    for i in 0..N {
        let j = i * 2;
        s.push_str(&format!("  2001:db8:{:x}:{:x}00::/56,\n", j >> 8, j & 0xff));
    }
    s.push_str(
        " } }\n chain input { type filter hook input priority 0; ip6 saddr @blocked drop; }\n}\n",
    );
    let t = Instant::now();
    cmd(&["/usr/sbin/nft", "-f", "-"], Some(s.as_bytes()))?;
    Ok(t.elapsed())
}

fn report(what: &str, wall: Duration, cpu: f64) {
    println!(
        "{what:<58} wall {:>9.1} ms   cpu {:>9.1} ms",
        wall.as_secs_f64() * 1e3,
        cpu * 1e3
    );
}

fn bench_nft(with_geo: bool) -> Result<(), String> {
    let mut b = NftConfig::default().build().map_err(|e| e.to_string())?;
    b.prepare(&[scope()]).map_err(|e| e.to_string())?;
    let refresh = b.timeout_refresh();
    println!("nft   timeout refresh strategy on this kernel: {refresh:?}");
    let (p50, p99) = singles(&mut b, 0)?;
    println!("nft   single ban x{SINGLES} (no other sets)                  p50 {p50:.3} ms   p99 {p99:.3} ms");
    if with_geo {
        let t = load_interval_set()?;
        println!(
            "nft   (loaded a {N}-prefix interval set in table inet geo with nft -f: {:.2} s)",
            t.as_secs_f64()
        );
        let (p50, p99) = singles(&mut b, SINGLES)?;
        println!("nft   single ban x{SINGLES} (100k interval set elsewhere)      p50 {p50:.3} ms   p99 {p99:.3} ms");
        let mut runs = Vec::new();
        for k in 0..3 {
            let e = format!("{{ 203.0.113.{} timeout 10m }}", 250 - k);
            let t = Instant::now();
            cmd(
                &[
                    "/usr/sbin/nft",
                    "add",
                    "element",
                    "inet",
                    "rampart",
                    "j_sshd_4",
                    &e,
                ],
                None,
            )?;
            runs.push(t.elapsed());
        }
        let (med, _) = percentiles(runs);
        println!(
            "nft   for contrast, `nft add element` of one address: median {med:.0} ms (3 runs)"
        );
    }
    let now = now();
    let bans = many(now);
    let (r, wall, cpu) = measure(|| b.ban(&bans, now));
    r.map_err(|e| e.to_string())?;
    report(
        &format!("nft   ban {N} distinct /64s in one call"),
        wall,
        cpu,
    );
    let (r, wall, cpu) = measure(|| b.ban(&bans, now));
    r.map_err(|e| e.to_string())?;
    report(
        &format!("nft   ban the same {N} again (all refreshed)"),
        wall,
        cpu,
    );
    let (r, wall, cpu) = measure(|| b.list(now));
    let n = r.map_err(|e| e.to_string())?.len();
    report(&format!("nft   list ({n} elements)"), wall, cpu);
    let (r, wall, cpu) = measure(|| b.prepare(&[scope()]));
    r.map_err(|e| e.to_string())?;
    report("nft   prepare with everything in place", wall, cpu);
    let other = match refresh {
        TimeoutRefresh::Update => TimeoutRefresh::Replace,
        TimeoutRefresh::Replace => TimeoutRefresh::Update,
    };
    b.force_timeout_refresh(other);
    let all: Vec<_> = bans.iter().map(|e| (e.jail.clone(), e.net)).collect();
    let (r, wall, cpu) = measure(|| b.unban(&all));
    r.map_err(|e| e.to_string())?;
    report(&format!("nft   unban {N} in one call"), wall, cpu);
    let (r, wall, cpu) = measure(|| b.ban(&bans, now));
    r.map_err(|e| e.to_string())?;
    report(
        &format!("nft   ban {N} in one call, forced {other:?}"),
        wall,
        cpu,
    );
    let (r, wall, cpu) = measure(|| b.ban(&bans, now));
    r.map_err(|e| e.to_string())?;
    report(
        &format!("nft   ban the same {N} again, forced {other:?}"),
        wall,
        cpu,
    );
    Ok(())
}

fn bench_ipset() -> Result<(), String> {
    let mut b = IpsetConfig::default().build().map_err(|e| e.to_string())?;
    b.prepare(&[scope()]).map_err(|e| e.to_string())?;
    let (p50, p99) = singles(&mut b, 0)?;
    println!("ipset single ban x{SINGLES} (one ipset restore each)          p50 {p50:.3} ms   p99 {p99:.3} ms");
    let now = now();
    let bans = many(now);
    let (r, wall, cpu) = measure(|| b.ban(&bans, now));
    r.map_err(|e| e.to_string())?;
    report(
        &format!("ipset ban {N} distinct /64s in one call"),
        wall,
        cpu,
    );
    let (r, wall, cpu) = measure(|| b.list(now));
    let n = r.map_err(|e| e.to_string())?.len();
    report(&format!("ipset list ({n} elements)"), wall, cpu);
    let (r, wall, cpu) = measure(|| b.prepare(&[scope()]));
    r.map_err(|e| e.to_string())?;
    report("ipset prepare with everything in place", wall, cpu);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    if !rustix::process::geteuid().is_root() {
        eprintln!("enforce-bench needs root (it creates a network namespace)");
        return ExitCode::from(2);
    }
    let name = format!("rpe-bench-{}", std::process::id());
    if let Err(e) = cmd(&["/usr/bin/ip", "netns", "add", &name], None) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let ns = Netns(name);
    let path = format!("/run/netns/{}", ns.0);
    // Everything runs on a thread inside the namespace: the netlink socket is opened there
    // and tool processes inherit it, so no `ip netns exec` sits in the measurements.
    let result = std::thread::spawn(move || -> Result<(), String> {
        let f = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        move_into_link_name_space(f.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| format!("setns {path}: {e}"))?;
        println!("kernel {}", cmd(&["/usr/bin/uname", "-r"], None)?.trim());
        if only.as_deref() != Some("ipset") {
            bench_nft(true)?;
        }
        if only.as_deref() != Some("nft") {
            bench_ipset()?;
        }
        Ok(())
    })
    .join();
    drop(ns);
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("enforce-bench: {e}");
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(2),
    }
}
