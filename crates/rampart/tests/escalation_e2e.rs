//! `[blocks]` and `[recidive]` in the kernel: rampart with nftables in the lab's server
//! namespace. Five banned addresses of one /29 ban the whole block, so the lab's attacker
//! (in that /29, never banned itself) is dropped while the bystander (another /29) still
//! connects; unbanning the block lets it back. A recidive ban lands in its own set. Needs
//! root, iproute2 and nftables; fails (never skips) when they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_core::{Clock, SystemClock};
use rampart_testkit::netns::{require_root, Connect, Host, HttpServer, Lab, Spawned};
use serde_json::Value;

mod common;
use common::{append, syslog_stamp};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// An sshd failure line for `addr`, stamped now in UTC.
fn failure(addr: &str) -> String {
    format!(
        "{} rampart-lab sshd[4242]: Invalid user guest from {addr} port 40000\n",
        syslog_stamp(SystemClock.now())
    )
}

fn ctl(socket: &Path, args: &[&str]) -> Option<Value> {
    let out = Command::new(BIN)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn ban_of(socket: &Path, jail: &str, net: &str) -> Option<Value> {
    ctl(socket, &["bans", "--json"])?
        .as_array()?
        .iter()
        .find(|b| b["jail"] == jail && b["net"] == net)
        .cloned()
}

fn wait_until(what: &str, secs: u64, log: impl Fn() -> String, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {secs}s waiting for {what}\n{}", log());
}

fn connects(lab: &Lab, from: Host, to: SocketAddr) -> Connect {
    lab.tcp_connects(from, to, Duration::from_millis(700))
        .unwrap()
}

fn nft(lab: &Lab, args: &[&str]) -> String {
    let mut argv = vec!["/usr/sbin/nft"];
    argv.extend_from_slice(args);
    match lab.run_ok(Host::Server, &argv, Duration::from_secs(10)) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("nft failed: {e}"),
    }
}

#[test]
fn nftables_drops_a_banned_block_and_holds_recidive_bans_in_their_own_set() {
    require_root().unwrap();
    let lab = Lab::new().unwrap();
    let dir = lab.dir().to_owned();
    let http = HttpServer::start(&lab, 80, &dir.join("access.log")).unwrap();
    let log = dir.join("auth.log");
    std::fs::write(&log, "").unwrap();
    let socket: PathBuf = dir.join("run/rampart.sock");
    let config = dir.join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
state = "{state}"
socket = "{socket}"
backend = "nftables"
table = "rampart_esc"
reconcile_every = "1s"

[defaults]
timezone = "UTC"

[[jail]]
name = "sshd"
filter = "sshd"
logs = ["{log}"]
max_failures = 2
ban_for = "3s"
ports = [22]

[recidive]
max_bans = 2
window = "1h"
ban_for = "1h"

[blocks]
group = "prefix"
ipv4_prefix = 29
min_addresses = 5
window = "1h"
ban_for = "1h"
"#,
            state = dir.join("state/rampart.db").display(),
            socket = socket.display(),
            log = log.display(),
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let mut proc: Spawned = lab
        .spawn(Host::Server, &[BIN, "run", "--config", &cfg], &[])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while ctl(&socket, &["status", "--json"]).is_none() {
        if let Ok(Some(st)) = proc.child.try_wait() {
            panic!("rampart exited with {st}: {}", proc.output_text());
        }
        assert!(Instant::now() < deadline, "rampart did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = |p: &Spawned| p.output_text();

    let web = http.addr4();
    assert_eq!(connects(&lab, Host::Attacker, web), Connect::Connected);
    assert_eq!(connects(&lab, Host::Bystander, web), Connect::Connected);

    // Five addresses of 192.0.2.64/29 (the attacker is .66 and never fails itself).
    for a in [
        "192.0.2.64",
        "192.0.2.65",
        "192.0.2.67",
        "192.0.2.68",
        "192.0.2.69",
    ] {
        append(&log, &failure(a).repeat(2));
    }
    wait_until(
        "the block ban",
        15,
        || out(&proc),
        || ban_of(&socket, "blocks", "192.0.2.64/29").is_some(),
    );
    // The ban is persisted before it is applied, and a refused set update is retried on
    // the next tick (500 ms): allow for one retry.
    wait_until(
        "the block in the kernel set",
        5,
        || out(&proc),
        || {
            nft(&lab, &["list", "set", "inet", "rampart_esc", "g_blocks_4"])
                .contains("192.0.2.64/29")
        },
    );
    // The block rule drops all traffic of the block, not only the jail's port 22.
    assert_eq!(connects(&lab, Host::Attacker, web), Connect::TimedOut);
    assert_eq!(connects(&lab, Host::Bystander, web), Connect::Connected);

    // Unbanning the block lets the attacker back.
    let ok = Command::new(BIN)
        .args(["unban", "192.0.2.64/29", "--socket"])
        .arg(&socket)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    wait_until(
        "the block set to empty",
        5,
        || out(&proc),
        || {
            !nft(&lab, &["list", "set", "inet", "rampart_esc", "g_blocks_4"])
                .contains("192.0.2.64/29")
        },
    );
    assert_eq!(connects(&lab, Host::Attacker, web), Connect::Connected);

    // Recidive: two sshd bans of one address (the first lasts 3 s).
    append(&log, &failure("192.0.2.99").repeat(2));
    wait_until(
        "the first sshd ban",
        10,
        || out(&proc),
        || ban_of(&socket, "sshd", "192.0.2.99/32").is_some(),
    );
    std::thread::sleep(Duration::from_millis(4200));
    append(&log, &failure("192.0.2.99").repeat(2));
    wait_until(
        "the recidive ban",
        10,
        || out(&proc),
        || ban_of(&socket, "recidive", "192.0.2.99/32").is_some(),
    );
    let set = nft(
        &lab,
        &["list", "set", "inet", "rampart_esc", "j_recidive_4"],
    );
    assert!(set.contains("192.0.2.99"), "{set}");
    let r = ban_of(&socket, "recidive", "192.0.2.99/32").unwrap();
    assert_eq!(r["reason_detail"], "2 bans within 1h in sshd");
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
}
