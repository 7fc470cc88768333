//! The binary, run as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{rampart, s, Tmp};

const NOW: &str = "2026-11-25T00:00:00Z";

const CONFIG: &str = r#"
[defaults]
timezone = "UTC"
allow = ["192.0.2.0/24"]

[[jail]]
name = "sshd"
filter = "sshd"
max_failures = 3
window = "10m"
ban_for = "10m"
[jail.escalation]
factor = 2.0
max = "1h"
forget_after = "1d"
"#;

/// Three rounds of three failures from one attacker, 30 minutes apart, plus an allowlisted
/// address and benign lines.
fn attack_log() -> String {
    let mut log = String::new();
    for round in 0..3 {
        for i in 0..3 {
            let m = 60 + round * 30 + i;
            let hm = format!("{:02}:{:02}", m / 60, m % 60);
            log.push_str(&format!("Nov 21 {hm}:00 web1 sshd[{}]: Failed password for root from 198.51.100.7 port 4{i}000 ssh2\n", 100 + m));
            log.push_str(&format!("Nov 21 {hm}:10 web1 sshd[{}]: Accepted publickey for deploy from 203.0.113.5 port 5000{i} ssh2: ED25519 SHA256:abc\n", 200 + m));
            log.push_str(&format!(
                "Nov 21 {hm}:20 web1 sshd[{}]: Invalid user admin from 192.0.2.50 port 4{i}001\n",
                300 + m
            ));
        }
    }
    log
}

#[test]
fn filter_test_json_reports_every_match_with_line_addr_time_and_pattern() {
    let t = Tmp::new();
    let log = t.file("auth.log", attack_log());
    let out = rampart(&[
        "filter",
        "test",
        "sshd",
        s(&log),
        "--json",
        "--now",
        NOW,
        "--timezone",
        "UTC",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["lines"], 27);
    assert_eq!(v["matched"], 18);
    let matches = v["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 18);
    assert_eq!(matches[0]["line"], 1);
    assert_eq!(matches[0]["addr"], "198.51.100.7");
    assert_eq!(matches[0]["time"], "2026-11-21T01:00:00Z");
    assert_eq!(matches[0]["pattern"], "failed-auth");
    assert_eq!(matches[0]["user"], "root");
    assert_eq!(matches[1]["line"], 3);
    assert_eq!(matches[1]["pattern"], "invalid-user");
    assert_eq!(v["timestamp_format"], "syslog");
    let addrs = v["addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 2);
}

#[test]
fn filter_test_text_report_counts_patterns_and_shows_lines_on_request() {
    let t = Tmp::new();
    let log = t.file("auth.log", attack_log());
    let out = rampart(&[
        "filter",
        "test",
        "sshd",
        s(&log),
        "--now",
        NOW,
        "--show",
        "matched",
        "--show",
        "missed",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("matched     18 failures"), "{text}");
    assert!(text.contains("failed-auth") && text.contains("9"), "{text}");
    assert!(
        text.contains("matched 1: [failed-auth] 198.51.100.7"),
        "{text}"
    );
    assert!(text.contains("missed 2: "), "{text}");
    assert!(text.contains("lines per CPU second"), "{text}");
}

#[test]
fn replay_bans_escalates_and_respects_the_allowlist() {
    let t = Tmp::new();
    let cfg = t.file("rampart.toml", CONFIG);
    let log = t.file("auth.log", attack_log());
    let out = rampart(&[
        "replay",
        "--config",
        s(&cfg),
        "--json",
        "--now",
        NOW,
        s(&log),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let bans: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bans.len(), 3, "{stdout}");
    for b in &bans {
        assert_eq!(b["addr"], "198.51.100.7");
        assert_eq!(b["jail"], "sshd");
        assert_eq!(b["failures"], 3);
    }
    assert_eq!(bans[0]["ban_start"], "2026-11-21T01:02:00Z");
    assert_eq!(bans[0]["ban_end"], "2026-11-21T01:12:00Z");
    assert_eq!(
        bans[1]["ban_end"], "2026-11-21T01:52:00Z",
        "second ban lasts 20m"
    );
    assert_eq!(bans[1]["ban_start"], "2026-11-21T01:32:00Z");
    assert_eq!(
        bans[2]["ban_end"], "2026-11-21T02:42:00Z",
        "third ban lasts 40m"
    );
    assert_eq!(bans[2]["level"], 2);
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(summary.contains("allowlisted 9"), "{summary}");
}

#[test]
fn replay_is_deterministic() {
    let t = Tmp::new();
    let cfg = t.file("rampart.toml", CONFIG);
    let log = t.file("auth.log", attack_log());
    let a = rampart(&["replay", "--config", s(&cfg), "--now", NOW, s(&log)]);
    let b = rampart(&["replay", "--config", s(&cfg), "--now", NOW, s(&log)]);
    assert!(a.status.success());
    let strip = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with("summary:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&a), strip(&b));
    assert!(strip(&a).contains("ban sshd 198.51.100.7 failures=3"));
}

#[test]
fn a_bad_config_fails_with_exit_2_naming_file_line_and_key() {
    let t = Tmp::new();
    let log = t.file("auth.log", attack_log());
    let cfg = t.file(
        "bad.toml",
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nmax_failure = 3\n",
    );
    let out = rampart(&["replay", "--config", s(&cfg), s(&log)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.toml:4") && err.contains("max_failure"),
        "{err}"
    );

    let cfg = t.file(
        "bad2.toml",
        "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nwindow = \"10 parsecs\"\n",
    );
    let out = rampart(&["replay", "--config", s(&cfg), s(&log)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad2.toml") && err.contains("window") && err.contains("10 parsecs"),
        "{err}"
    );
}

#[test]
fn a_filter_without_host_fails_with_exit_2_naming_the_file() {
    let t = Tmp::new();
    let log = t.file("auth.log", attack_log());
    let f = t.file(
        "nohost.toml",
        "[[failure]]\nid = \"x\"\nregex = '^Failed'\n",
    );
    let out = rampart(&["filter", "test", s(&f), s(&log)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("nohost.toml") && err.contains("<HOST>"),
        "{err}"
    );
    let f = t.file(
        "badre.toml",
        "[[failure]]\nid = \"x\"\nregex = '^Failed (<HOST>'\n",
    );
    let out = rampart(&["filter", "test", s(&f), s(&log)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("badre.toml"));
}

#[test]
fn an_unreadable_log_fails_with_exit_2_naming_it() {
    let t = Tmp::new();
    let cfg = t.file("rampart.toml", CONFIG);
    let missing = t.0.join("nope.log");
    for args in [
        vec!["filter", "test", "sshd", s(&missing)],
        vec!["replay", "--config", s(&cfg), s(&missing)],
    ] {
        let out = rampart(&args);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty(), "nothing is printed before the error");
        assert!(String::from_utf8_lossy(&out.stderr).contains("nope.log"));
    }
}

#[test]
fn garbage_binary_and_overlong_lines_are_counted_and_skipped() {
    let t = Tmp::new();
    let mut log = Vec::new();
    log.extend_from_slice(b"\x00\x01\x02\xff\xfe garbage\n");
    log.extend(std::iter::repeat_n(b'A', 5 << 20));
    log.push(b'\n');
    log.extend_from_slice(b"Nov 21 01:00:00 web1 sshd[1]: Failed password for \xff\xfe from 198.51.100.7 port 1 ssh2\n");
    for _ in 0..1000 {
        log.extend_from_slice(
            b"\xde\xad\xbe\xef random binary \x00\x00 Failed password for root from\n",
        );
    }
    let f = t.file("garbage.log", log);
    let out = rampart(&[
        "filter",
        "test",
        "sshd",
        s(&f),
        "--json",
        "--now",
        NOW,
        "--timezone",
        "UTC",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["too_long"], 1);
    assert_eq!(v["lines"], 1002);
    assert_eq!(v["matched"], 1);
    assert_eq!(v["no_timestamp"], 1001);
    assert_eq!(v["matches"][0]["user"], "\u{fffd}\u{fffd}");
}

#[test]
fn builtin_filters_are_listed_and_shown() {
    let out = rampart(&["filter", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("sshd") && text.contains("web-scan"), "{text}");
    let out = rampart(&["filter", "show", "sshd"]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("[[failure]]"));
    let out = rampart(&["filter", "show", "nginx-nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn example_config_loads() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rampart.toml");
    let log = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/auth.log");
    let out = rampart(&["replay", "--config", cfg, "--now", NOW, log]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(" ban sshd "),
        "the example log yields bans: {text}"
    );
}

/// `--help` output is part of the interface: changes show up in review.
/// Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p rampart --test cli`.
#[test]
fn help_matches_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for (name, args) in [
        ("help.txt", vec!["--help"]),
        ("filter-test-help.txt", vec!["filter", "test", "--help"]),
        ("replay-help.txt", vec!["replay", "--help"]),
        ("run-help.txt", vec!["run", "--help"]),
        ("ban-help.txt", vec!["ban", "--help"]),
        (
            "import-fail2ban-help.txt",
            vec!["import", "fail2ban", "--help"],
        ),
    ] {
        let out = rampart(&args);
        assert!(out.status.success());
        let got = String::from_utf8(out.stdout).unwrap();
        let path = dir.join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            got, want,
            "{name} changed; rerun with UPDATE_SNAPSHOTS=1 if intended"
        );
    }
}

fn require_fail2ban() {
    assert!(
        Path::new("/etc/fail2ban/jail.conf").is_file(),
        "/etc/fail2ban/jail.conf is missing: install the Debian package `fail2ban`"
    );
}

/// A fail2ban directory in `t`: links to /etc/fail2ban's files except jail.local and
/// jail.d, plus our `jail.local`.
fn fail2ban_dir(t: &Tmp, jail_local: &str) -> PathBuf {
    require_fail2ban();
    let dir = t.0.join("fail2ban");
    std::fs::create_dir_all(dir.join("jail.d")).unwrap();
    for e in std::fs::read_dir("/etc/fail2ban").unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "jail.local" || name == "jail.d" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), dir.join(&name)).unwrap();
    }
    std::fs::write(dir.join("jail.local"), jail_local).unwrap();
    dir
}

#[test]
fn import_fail2ban_prints_a_config_that_run_check_accepts() {
    require_fail2ban();
    let t = Tmp::new();
    let out = rampart(&["import", "fail2ban"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("imported 1 jail(s) from /etc/fail2ban: sshd"),
        "{err}"
    );
    assert!(toml.contains("filter = \"fail2ban:sshd\""), "{toml}");
    let cfg = t.file("imported.toml", &toml);
    let out = rampart(&["run", "--check", "--config", s(&cfg)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "sshd: filter fail2ban:sshd, File source, max_failures 5 in 10m, ban 10m, drops 22"
        ),
        "{stdout}"
    );
    // `run --fail2ban` converts the same way, in memory.
    let out = rampart(&["run", "--check", "--fail2ban", "/etc/fail2ban"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("fail2ban /etc/fail2ban: valid, 1 jail(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("sshd: filter fail2ban:sshd"), "{stdout}");
}

#[test]
fn import_fail2ban_json_reports_what_was_not_carried_over() {
    let t = Tmp::new();
    let dir = fail2ban_dir(
        &t,
        "[sshd]\nenabled = true\nlogpath = /var/log/auth.log\nignorecommand = /usr/local/bin/ok <ip>\nbantime.increment = true\nbantime.rndtime = 5m\n\n[recidive]\nenabled = true\n",
    );
    let out = rampart(&["import", "fail2ban", s(&dir), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["jails"], serde_json::json!(["sshd"]));
    assert_eq!(doc["skipped"], serde_json::json!([]));
    let warned = |opt: &str| {
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["jail"] == "sshd" && w["option"] == opt)
    };
    assert!(
        warned("ignorecommand") && warned("bantime.rndtime"),
        "{doc:#}"
    );
    let config = doc["config"].as_str().unwrap();
    assert!(config.contains("[jail.escalation]"), "{config}");
    // fail2ban's recidive jail becomes the native section, with a note on how it counts.
    assert!(config.contains("[recidive]\nmax_bans = 5\n"), "{config}");
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["jail"] == "recidive" && w["option"] == "logpath"),
        "{doc:#}"
    );
    let cfg = t.file("x.toml", config);
    let out = rampart(&["run", "--check", "--config", s(&cfg)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A Python formula is refused, naming the jail and the key; exit 2.
    let t2 = Tmp::new();
    let dir = fail2ban_dir(
        &t2,
        "[sshd]\nenabled = true\nbantime.increment = true\nbantime.formula = ban.Time * 3\n",
    );
    let out = rampart(&["import", "fail2ban", s(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[sshd]") && err.contains("bantime.formula"),
        "{err}"
    );
}

#[test]
fn replay_runs_jails_with_fail2ban_filters() {
    require_fail2ban();
    let t = Tmp::new();
    let cfg = t.file(
        "f2b.toml",
        "[defaults]\ntimezone = \"UTC\"\n[[jail]]\nname = \"ssh\"\nfilter = \"fail2ban:sshd\"\nmax_failures = 3\n\n[[jail]]\nname = \"native\"\nfilter = \"sshd\"\nmax_failures = 4\n",
    );
    let mut log = String::new();
    for i in 0..4 {
        log.push_str(&format!(
            "Nov 24 10:00:0{i} host sshd[99]: Failed password for root from 203.0.113.5 port 4{i}22 ssh2\n"
        ));
        log.push_str("Nov 24 10:00:09 host sshd[99]: Connection closed by 198.51.100.1 port 22\n");
    }
    let log = t.file("auth.log", log);
    let out = rampart(&[
        "replay",
        "--config",
        s(&cfg),
        "--json",
        "--now",
        NOW,
        s(&log),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bans: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, u64)> = bans
        .iter()
        .map(|b| {
            (
                b["jail"].as_str().unwrap().to_owned(),
                b["addr"].as_str().unwrap().to_owned(),
                b["failures"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ssh".to_owned(), "203.0.113.5".to_owned(), 3),
            ("native".to_owned(), "203.0.113.5".to_owned(), 4)
        ]
    );
    assert_eq!(bans[0]["first_failure"], "2026-11-24T10:00:00Z");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jail ssh: failures 4"), "{err}");
}
