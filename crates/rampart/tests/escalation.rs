//! `[recidive]` and `[blocks]` through the binary: `rampart replay` over three jails' logs,
//! and the daemon (log-only backend, real state file and control socket) deciding both
//! live, keeping them across a restart, and showing reason, country and block.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use common::{append, invalid_user, rampart, s, wait_for, Daemon, Tmp};

fn apnic() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/geo/rir/delegated-apnic-extended-20181013.gz")
}

const REPLAY_CONFIG: &str = r#"
[defaults]
timezone = "UTC"

[[jail]]
name = "sshd"
filter = "sshd"
max_failures = 2

[[jail]]
name = "mail"
filter = "dovecot"
max_failures = 2

[[jail]]
name = "web"
filter = "web-scan"
max_failures = 2

[recidive]

[blocks]
group = "prefix"
"#;

#[test]
fn replay_of_three_jails_decides_a_recidive_ban_and_a_block_ban() {
    let t = Tmp::new();
    let cfg = t.file("rampart.toml", REPLAY_CONFIG);
    let mut auth = String::new();
    for k in 0..2 {
        auth.push_str(&format!(
            "Nov 21 01:00:0{k} host sshd[10{k}]: Invalid user admin from 203.0.113.77 port 4000{k}\n"
        ));
    }
    for n in 1..=5 {
        for k in 0..2 {
            auth.push_str(&format!(
                "Nov 21 01:1{n}:0{k} host sshd[2{n}{k}]: Invalid user guest from 198.51.100.{n} port 4100{k}\n"
            ));
        }
    }
    let auth = t.file("auth.log", auth);
    let mail = t.file("mail.log", (0..2).map(|k| format!(
        "Nov 21 02:00:0{k} mail dovecot: imap-login: Disconnected (auth failed, 2 attempts): user=<bob>, method=PLAIN, rip=203.0.113.77, lip=192.0.2.1, TLS\n"
    )).collect::<String>());
    let web = t.file(
        "access.log",
        (0..2)
            .map(|k| format!(
                "203.0.113.77 - - [21/Nov/2026:03:00:0{k} +0000] \"GET /wp-login.php HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.0\"\n"
            ))
            .collect::<String>(),
    );
    let run = |json: bool| {
        let mut args = vec![
            "replay",
            "--config",
            s(&cfg),
            "--now",
            "2026-11-25T00:00:00Z",
        ];
        if json {
            args.push("--json");
        }
        args.extend([s(&auth), s(&mail), s(&web)]);
        let out = rampart(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (stdout, stderr) = run(true);
    let bans: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bans.len(), 10, "{stdout}");
    let jail_bans = bans.iter().filter(|b| b["reason"] == "detected").count();
    assert_eq!(jail_bans, 8, "{stdout}");

    let block: Vec<&Value> = bans.iter().filter(|b| b["jail"] == "blocks").collect();
    assert_eq!(block.len(), 1, "{stdout}");
    let b = block[0];
    assert_eq!(b["offender"], "198.51.100.0/24");
    assert_eq!(b["reason"], "block");
    assert_eq!(
        b["reason_detail"],
        "5 addresses within 1h, prefix 198.51.100.0/24"
    );
    assert_eq!(b["failures"], 5);
    assert_eq!(b["ban_start"], "2026-11-21T01:15:01Z");
    assert_eq!(b["ban_for"], "1d");

    let rec: Vec<&Value> = bans.iter().filter(|b| b["jail"] == "recidive").collect();
    assert_eq!(rec.len(), 1, "{stdout}");
    let r = rec[0];
    assert_eq!(r["offender"], "203.0.113.77");
    assert_eq!(r["reason"], "recidive");
    assert_eq!(r["reason_detail"], "3 bans within 1d in sshd, mail, web");
    assert_eq!(r["ban_start"], "2026-11-21T03:00:01Z");
    assert_eq!(r["ban_for"], "1w");
    // Without [geo] there is no country column.
    assert!(r.get("country").is_none());
    assert!(
        stderr.contains("escalation: recidive bans 1; block bans 1"),
        "{stderr}"
    );

    let (text, _) = run(false);
    assert!(
        text.contains("ban recidive 203.0.113.77 failures=3 until=2026-11-28T03:00:01Z for=1w level=0 reason=recidive why=\"3 bans within 1d in sshd, mail, web\""),
        "{text}"
    );
    assert!(text.contains("ban blocks 198.51.100.0/24"), "{text}");
    assert!(text.contains("reason=detected"), "{text}");
}

#[test]
fn four_addresses_of_a_prefix_or_two_jails_bans_are_not_enough() {
    let t = Tmp::new();
    let cfg = t.file("rampart.toml", REPLAY_CONFIG);
    let mut auth = String::new();
    for n in 1..=4 {
        for k in 0..2 {
            auth.push_str(&format!(
                "Nov 21 01:1{n}:0{k} host sshd[2{n}{k}]: Invalid user guest from 198.51.100.{n} port 4100{k}\n"
            ));
        }
    }
    // The fifth address, but in another /24.
    for k in 0..2 {
        auth.push_str(&format!(
            "Nov 21 01:20:0{k} host sshd[3{k}]: Invalid user guest from 198.51.101.5 port 4200{k}\n"
        ));
    }
    let auth = t.file("auth.log", auth);
    let out = rampart(&[
        "replay",
        "--config",
        s(&cfg),
        "--now",
        "2026-11-25T00:00:00Z",
        "--json",
        s(&auth),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    assert!(
        !stdout.contains("\"blocks\"") && !stdout.contains("\"recidive\""),
        "{stdout}"
    );
}

// ---- the daemon ----

struct Setup {
    _tmp: Tmp,
    config: PathBuf,
    socket: String,
    logs: [PathBuf; 3],
}

fn setup() -> Setup {
    let tmp = Tmp::new();
    let logs = ["auth.log", "auth2.log", "auth3.log"].map(|n| tmp.file(n, ""));
    let socket = tmp.0.join("run/rampart.sock");
    let mut jails = String::new();
    for (name, log) in ["a", "b", "c"].iter().zip(&logs) {
        jails.push_str(&format!(
            "[[jail]]\nname = \"{name}\"\nfilter = \"sshd\"\nlogs = [\"{}\"]\nmax_failures = 2\nban_for = \"1h\"\n\n",
            log.display()
        ));
    }
    let config = tmp.file(
        "rampart.toml",
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

{jails}
[recidive]
max_bans = 3
window = "1d"
ban_for = "1w"

[blocks]
group = "allocation"
min_addresses = 5
window = "1h"
ban_for = "1d"

[geo]
sources = ["{apnic}"]
"#,
            state = tmp.0.join("state/rampart.db").display(),
            socket = socket.display(),
            apnic = apnic().display(),
        ),
    );
    Setup {
        socket: socket.display().to_string(),
        _tmp: tmp,
        config,
        logs,
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

fn ban_of(s: &Setup, jail: &str, net: &str) -> Option<Value> {
    json(s, &["bans", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["jail"] == jail && b["net"] == net)
        .cloned()
}

/// Real APNIC allocations (2018 data): 1.0.16.0/20 is JP, 180.152.0.0/13 is CN.
const JP: [&str; 5] = ["1.0.16.1", "1.0.17.2", "1.0.18.3", "1.0.19.4", "1.0.20.5"];
const CN: &str = "180.152.0.10";

#[test]
fn the_daemon_decides_block_and_recidive_bans_live_and_keeps_them_across_a_restart() {
    let s = setup();
    let mut d = start(&s);
    for a in JP {
        append(&s.logs[0], &invalid_user(a).repeat(2));
    }
    for log in &s.logs {
        append(log, &invalid_user(CN).repeat(2));
    }
    wait_for(
        || ban_of(&s, "blocks", "1.0.16.0/20").is_some(),
        "the block ban",
    );
    wait_for(
        || ban_of(&s, "recidive", "180.152.0.10/32").is_some(),
        "the recidive ban",
    );
    let check = |s: &Setup| {
        let b = ban_of(s, "blocks", "1.0.16.0/20").expect("block ban");
        assert_eq!(b["reason"], "block");
        assert_eq!(
            b["reason_detail"],
            "5 addresses within 1h, allocation 1.0.16.0/20"
        );
        assert_eq!(b["country"], "JP");
        assert_eq!(b["block"], "1.0.16.0/20");
        assert!(b["remaining_s"].as_i64().unwrap() > 86_000);
        let r = ban_of(s, "recidive", "180.152.0.10/32").expect("recidive ban");
        assert_eq!(r["reason"], "recidive");
        let why = r["reason_detail"].as_str().unwrap();
        assert!(why.starts_with("3 bans within 1d in "), "{why}");
        for j in ["a", "b", "c"] {
            assert!(why.contains(j), "{why}");
        }
        assert_eq!(r["country"], "CN");
        assert_eq!(r["block"], "180.152.0.0/13");
        assert!(r["remaining_s"].as_i64().unwrap() > 600_000);
        let j = ban_of(s, "a", "1.0.17.2/32").expect("a jail ban");
        assert_eq!(j["reason"], "detected");
        assert_eq!(j["country"], "JP");
    };
    check(&s);
    let status = json(&s, &["status", "--json"]);
    assert_eq!(status["escalation"]["blocks"]["active"], 1, "{status}");
    assert_eq!(status["escalation"]["recidive"]["bans"], 1, "{status}");
    let text = String::from_utf8(ctl(&s, &["bans"]).stdout).unwrap();
    assert!(
        text.contains("why: 5 addresses within 1h, allocation 1.0.16.0/20"),
        "{text}"
    );

    // Killed hard and restarted: both bans come back from the state file, with their
    // stored reason, country and block, and are not decided a second time.
    d.0.kill().unwrap();
    d.0.wait().unwrap();
    let _d = start(&s);
    check(&s);
    let status = json(&s, &["status", "--json"]);
    assert_eq!(status["escalation"]["blocks"]["active"], 1, "{status}");
    assert_eq!(status["escalation"]["recidive"]["bans"], 0, "{status}");
    assert_eq!(status["escalation"]["blocks"]["bans"], 0, "{status}");

    // A sixth JP address while the block is banned does not ban it again; unbanning the
    // block lifts it.
    let out = ctl(&s, &["unban", "1.0.16.0/20"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ban_of(&s, "blocks", "1.0.16.0/20").is_none());
    let status = json(&s, &["status", "--json"]);
    assert_eq!(status["escalation"]["blocks"]["active"], 0, "{status}");
}
