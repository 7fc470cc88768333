//! End to end in network namespaces: a real sshd and HTTP server in the server namespace,
//! an attacker and a bystander, rampart running there with a real firewall backend, and
//! real connections proving what is dropped. Needs root, iproute2, nftables, ipset,
//! iptables and openssh; fails (never skips) when they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_core::{Clock, SystemClock};
use rampart_testkit::netns::{
    require_root, ssh_fail, Connect, Host, HttpServer, Lab, Spawned, Sshd,
};
use serde_json::Value;

mod common;
use common::{append, syslog_stamp};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

struct Rampart<'a> {
    lab: &'a Lab,
    config: PathBuf,
    socket: PathBuf,
    proc: Option<Spawned>,
}

impl<'a> Rampart<'a> {
    fn new(lab: &'a Lab, backend: &str, jails: &str) -> Self {
        let dir = lab.dir();
        let config = dir.join("rampart.toml");
        let socket = dir.join("run/rampart.sock");
        std::fs::write(
            &config,
            format!(
                r#"
[daemon]
state = "{state}"
socket = "{socket}"
backend = "{backend}"
table = "rampart_e2e"
reconcile_every = "1s"

[defaults]
timezone = "local"
{jails}
"#,
                state = dir.join("state/rampart.db").display(),
                socket = socket.display(),
            ),
        )
        .unwrap();
        Self {
            lab,
            config,
            socket,
            proc: None,
        }
    }

    fn start(&mut self) {
        let cfg = self.config.display().to_string();
        let p = self
            .lab
            .spawn(Host::Server, &[BIN, "run", "--config", &cfg], &[])
            .unwrap();
        self.proc = Some(p);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.ctl(&["status", "--json"]).is_none() {
            if let Some(p) = self.proc.as_mut() {
                if let Ok(Some(st)) = p.child.try_wait() {
                    panic!("rampart exited with {st}: {}", p.output_text());
                }
            }
            assert!(Instant::now() < deadline, "rampart did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let mut p = self.proc.take().expect("running");
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }

    fn ctl(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn ctl_ok(&self, args: &[&str]) -> bool {
        Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap()
            .status
            .success()
    }

    fn ban_of(&self, net: &str) -> Option<Value> {
        let bans = self.ctl(&["bans", "--json"])?;
        bans.as_array()?.iter().find(|b| b["net"] == net).cloned()
    }

    fn log(&self) -> String {
        self.proc
            .as_ref()
            .map(|p| p.output_text())
            .unwrap_or_default()
    }
}

fn wait_until_or(what: &str, secs: u64, mut ok: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {secs}s waiting for {what}\n{}", why());
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

fn connects(lab: &Lab, from: Host, to: SocketAddr) -> Connect {
    lab.tcp_connects(from, to, Duration::from_millis(700))
        .unwrap()
}

/// An sshd failure line for `addr`, stamped now in local time (the jail's zone is local):
/// what rsyslog would write for an invalid user.
fn sshd_failure(addr: &str, n: u32) -> String {
    let now = SystemClock.now();
    let local =
        rampart_core::Timestamp::from_micros(now.as_micros() + local_offset_seconds() * 1_000_000);
    format!(
        "{} rampart-lab sshd[{}]: Invalid user guest{n} from {addr} port {}\n",
        syslog_stamp(local),
        7000 + n,
        40000 + n
    )
}

fn local_offset_seconds() -> i64 {
    let out = Command::new("/usr/bin/date").arg("+%z").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let h: i64 = s[1..3].parse().unwrap_or(0);
    let m: i64 = s[3..5].parse().unwrap_or(0);
    sign * (h * 3600 + m * 60)
}

fn nft(lab: &Lab, args: &[&str]) -> String {
    let mut argv = vec!["/usr/sbin/nft"];
    argv.extend_from_slice(args);
    let out = lab
        .run_ok(Host::Server, &argv, Duration::from_secs(10))
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Real sshd, real failed logins, nftables: the attacker is dropped on the jail's port
/// while the bystander connects and other ports stay open; the ban expires; the HTTP jail
/// bans a scanner on its own port.
#[test]
fn nftables_bans_a_real_ssh_attacker_then_lets_it_back_after_expiry() {
    require_root().unwrap();
    let lab = Lab::new().unwrap();
    let sshd = Sshd::start(&lab, &lab.dir().join("sshd"), 22).unwrap();
    let http_log = lab.dir().join("access.log");
    let http = HttpServer::start(&lab, 80, &http_log).unwrap();
    let jails = format!(
        r#"
[[jail]]
name = "sshd"
filter = "sshd"
logs = ["{ssh_log}"]
max_failures = 3
window = "10m"
ban_for = "12s"
ports = [22]

[[jail]]
name = "web"
filter = "web-scan"
logs = ["{http_log}"]
max_failures = 2
ban_for = "1h"
ports = [80, 443]
"#,
        ssh_log = sshd.log_path().display(),
        http_log = http_log.display()
    );
    let mut r = Rampart::new(&lab, "nftables", &jails);
    r.start();
    let ssh4 = sshd.addr4();
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::Connected);
    assert_eq!(connects(&lab, Host::Bystander, ssh4), Connect::Connected);

    for n in 0..2 {
        ssh_fail(&lab, &sshd, Host::Attacker, ssh4, &format!("nosuch{n}")).unwrap();
    }
    // The third attempt tips the ban, which lands before sshd logs the connection's end
    // (its last packets are dropped), so it runs aside and its result is not checked.
    std::thread::scope(|scope| {
        scope.spawn(|| ssh_fail(&lab, &sshd, Host::Attacker, ssh4, "nosuch2"));
        wait_until_or(
            "the ssh ban",
            5,
            || r.ban_of("192.0.2.66/32").is_some(),
            || {
                format!(
                    "{}\n{}",
                    r.log(),
                    std::fs::read_to_string(sshd.log_path()).unwrap_or_default()
                )
            },
        );
    });
    assert_eq!(
        connects(&lab, Host::Attacker, ssh4),
        Connect::TimedOut,
        "{}",
        r.log()
    );
    assert_eq!(connects(&lab, Host::Bystander, ssh4), Connect::Connected);
    // Scoped to port 22: the web server still answers the attacker.
    assert_eq!(
        connects(&lab, Host::Attacker, http.addr4()),
        Connect::Connected
    );
    let set = nft(&lab, &["list", "set", "inet", "rampart_e2e", "j_sshd_4"]);
    assert!(set.contains("192.0.2.66"), "{set}");

    // The ban (12 s) expires in the kernel and the attacker connects again.
    wait_until("the ban to expire", 20, || {
        connects(&lab, Host::Attacker, ssh4) == Connect::Connected
    });

    // The web jail: two scans of the attacker ban it on 80 and 443 only.
    for path in ["/.env", "/wp-login.php"] {
        let _ = lab.http_get(Host::Attacker, http.addr4(), path, "zgrab/0.x");
    }
    wait_until("the web ban", 5, || r.ban_of("192.0.2.66/32").is_some());
    assert_eq!(
        connects(&lab, Host::Attacker, http.addr4()),
        Connect::TimedOut
    );
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::Connected);
    assert_eq!(
        connects(&lab, Host::Bystander, http.addr4()),
        Connect::Connected
    );
    let status = r.ctl(&["status", "--json"]).unwrap();
    assert_eq!(status["backend"], "nftables");
}

/// SIGKILL and restart: the ban is still enforced, no line is counted twice, a failure
/// written while rampart was down is counted, and the next ban of a repeat offender is
/// longer. Rotation (rename + create, then copytruncate) loses no failure. A flushed set
/// is restored by the reconcile.
#[test]
fn nftables_survives_kill_rotation_and_flush() {
    require_root().unwrap();
    let lab = Lab::new().unwrap();
    let sshd = Sshd::start(&lab, &lab.dir().join("sshd"), 22).unwrap();
    let log = lab.dir().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let jails = format!(
        r#"
[[jail]]
name = "sshd"
filter = "sshd"
logs = ["{log}"]
max_failures = 3
window = "10m"
ban_for = "1h"
ports = [22]
[jail.escalation]
factor = 3.0
max = "1w"
forget_after = "7d"
"#,
        log = log.display()
    );
    let mut r = Rampart::new(&lab, "nftables", &jails);
    r.start();
    let ssh4 = sshd.addr4();
    let attacker = "192.0.2.66";

    // Two failures, a hard kill, one more failure while down, restart: banned (2 + 1).
    append(
        &log,
        &(sshd_failure(attacker, 1) + &sshd_failure(attacker, 2)),
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(r.ban_of("192.0.2.66/32").is_none());
    r.kill();
    append(&log, &sshd_failure(attacker, 3));
    r.start();
    wait_until("the ban after restart", 5, || {
        r.ban_of("192.0.2.66/32").is_some()
    });
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::TimedOut);
    let first = r.ban_of("192.0.2.66/32").unwrap();
    assert_eq!(first["level"], 0);

    // Kill again: the kernel keeps enforcing while rampart is down and after it restarts;
    // re-reading the window does not count the old lines again (still one ban, level 0).
    r.kill();
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::TimedOut);
    r.start();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::TimedOut);
    let status = r.ctl(&["status", "--json"]).unwrap();
    assert_eq!(
        status["jails"][0]["bans"], 0,
        "no new ban from re-read lines: {status}"
    );
    assert_eq!(status["active_bans"], 1);

    // Someone flushes rampart's set: the reconcile (every second) restores it.
    nft(&lab, &["flush", "set", "inet", "rampart_e2e", "j_sshd_4"]);
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::Connected);
    wait_until("the reconcile", 5, || {
        connects(&lab, Host::Attacker, ssh4) == Connect::TimedOut
    });
    // Even the whole table.
    nft(&lab, &["delete", "table", "inet", "rampart_e2e"]);
    wait_until("the table to come back", 5, || {
        connects(&lab, Host::Attacker, ssh4) == Connect::TimedOut
    });

    // Unban, then attack again across rotations: rename + create after the first failure,
    // copytruncate after the second. The third bans, at level 1 (3 h, not 1 h).
    assert!(r.ctl_ok(&["unban", attacker]));
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::Connected);
    append(&log, &sshd_failure(attacker, 4));
    std::thread::sleep(Duration::from_millis(300));
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    append(&log, &sshd_failure(attacker, 5));
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::copy(&log, log.with_extension("log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&log, &sshd_failure(attacker, 6));
    wait_until("the escalated ban", 5, || {
        r.ban_of("192.0.2.66/32").is_some_and(|b| b["level"] == 1)
    });
    let b = r.ban_of("192.0.2.66/32").unwrap();
    let remaining = b["remaining_s"].as_i64().unwrap();
    assert!(remaining > 3 * 3600 - 60, "escalated to 3h: {b}");
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::TimedOut);
    assert_eq!(connects(&lab, Host::Bystander, ssh4), Connect::Connected);
}

/// The same flow with ipset + iptables.
#[test]
fn ipset_bans_a_real_ssh_attacker_and_keeps_the_bystander() {
    require_root().unwrap();
    let lab = Lab::new().unwrap();
    let sshd = Sshd::start(&lab, &lab.dir().join("sshd"), 22).unwrap();
    let jails = format!(
        r#"
[[jail]]
name = "sshd"
filter = "sshd"
logs = ["{ssh_log}"]
max_failures = 2
ban_for = "10s"
ports = [22]
# The lab's hosts share one /64 with the server; rampart never bans a prefix that holds
# its own address, so count IPv6 offenders per address here.
ipv6_prefix = 128
"#,
        ssh_log = sshd.log_path().display(),
    );
    let mut r = Rampart::new(&lab, "ipset", &jails);
    r.start();
    let ssh4 = sshd.addr4();
    let ssh6 = sshd.addr6();
    assert_eq!(connects(&lab, Host::Attacker, ssh6), Connect::Connected);
    ssh_fail(&lab, &sshd, Host::Attacker, ssh6, "nobody0").unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| ssh_fail(&lab, &sshd, Host::Attacker, ssh6, "nobody1"));
        wait_until("the ipv6 ban", 5, || r.ban_of("2001:db8::66/128").is_some());
    });
    assert_eq!(
        connects(&lab, Host::Attacker, ssh6),
        Connect::TimedOut,
        "{}",
        r.log()
    );
    assert_eq!(connects(&lab, Host::Bystander, ssh6), Connect::Connected);
    assert_eq!(connects(&lab, Host::Bystander, ssh4), Connect::Connected);
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::Connected);
    ssh_fail(&lab, &sshd, Host::Attacker, ssh4, "nobody2").unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| ssh_fail(&lab, &sshd, Host::Attacker, ssh4, "nobody3"));
        wait_until("the ipv4 ban", 5, || r.ban_of("192.0.2.66/32").is_some());
    });
    assert_eq!(connects(&lab, Host::Attacker, ssh4), Connect::TimedOut);
    assert_eq!(connects(&lab, Host::Bystander, ssh4), Connect::Connected);
    let out = lab
        .run_ok(
            Host::Server,
            &["/usr/sbin/ipset", "list", "rampart4_sshd"],
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("192.0.2.66"));
    wait_until("the ban to expire", 20, || {
        connects(&lab, Host::Attacker, ssh4) == Connect::Connected
    });
}
