//! `rampart run --fail2ban DIR`: the daemon runs fail2ban's enabled jails (Debian's
//! filter.d, our own jail.local on a temporary log), with the log-only backend; bans are
//! read back through the control socket. Needs the Debian package `fail2ban`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use common::{append, failed_password, wait_for, Tmp};

#[test]
fn run_fail2ban_bans_with_the_debian_sshd_filter() {
    assert!(
        Path::new("/etc/fail2ban/jail.conf").is_file()
            && Path::new("/etc/fail2ban/filter.d/sshd.conf").is_file(),
        "/etc/fail2ban is missing: install the Debian package `fail2ban`"
    );
    let tmp = Tmp::new();
    let f2b = tmp.0.join("fail2ban");
    std::fs::create_dir_all(f2b.join("jail.d")).unwrap();
    for e in std::fs::read_dir("/etc/fail2ban").unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "jail.local" || name == "jail.d" {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), f2b.join(&name)).unwrap();
    }
    let log = tmp.0.join("auth.log");
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        f2b.join("jail.local"),
        format!(
            "[DEFAULT]\nignoreip = 127.0.0.1/8 ::1 198.51.100.0/24\n\n[sshd]\nenabled = true\nlogpath = {}\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\n",
            log.display()
        ),
    )
    .unwrap();
    let socket = tmp.0.join("run/rampart.sock");
    let base = tmp.0.join("rampart.toml");
    std::fs::write(
        &base,
        format!(
            "[daemon]\nstate = \"{}\"\nsocket = \"{}\"\nbackend = \"log-only\"\n\n[defaults]\ntimezone = \"UTC\"\n",
            tmp.0.join("state/rampart.db").display(),
            socket.display()
        ),
    )
    .unwrap();
    let sock = socket.display().to_string();
    let json = |args: &[&str]| -> Value { common::json(&sock, args) };
    let banned = |net: &str| -> Option<Value> {
        json(&["bans", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["net"] == net)
            .cloned()
    };
    let _d = common::start_daemon(
        &[
            "run".as_ref(),
            "--fail2ban".as_ref(),
            f2b.as_os_str(),
            "--config".as_ref(),
            base.as_os_str(),
        ],
        &sock,
    );

    append(&log, &failed_password("203.0.113.5").repeat(2));
    append(&log, &failed_password("198.51.100.9").repeat(4));
    std::thread::sleep(Duration::from_millis(300));
    assert!(banned("203.0.113.5/32").is_none(), "banned too early");
    append(&log, &failed_password("203.0.113.5"));
    wait_for(|| banned("203.0.113.5/32").is_some(), "the ban");
    let b = banned("203.0.113.5/32").unwrap();
    assert_eq!(b["jail"], "sshd");
    assert!(b["remaining_s"].as_i64().unwrap() > 3500, "{b}");
    // ignoreip became the jail's allowlist.
    assert!(banned("198.51.100.9/32").is_none());
    let status = json(&["status", "--json"]);
    let jail = &status["jails"][0];
    assert_eq!(jail["name"], "sshd");
    assert_eq!(jail["failures"], 7, "{status:#}");
    assert_eq!(jail["bans"], 1);
    assert_eq!(status["backend"], "log-only");

    // A reload re-imports fail2ban's jails.
    let out = common::ctl(&sock, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(banned("203.0.113.5/32").is_some());
}
