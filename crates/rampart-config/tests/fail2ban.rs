//! fail2ban filters in native jails, and fail2ban jails imported as a native config
//! (Debian's real /etc/fail2ban, package `fail2ban`, plus temporary jail.local files).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rampart_config::fail2ban::import;
use rampart_config::{Config, JailFilter, SourceKind};

const ETC: &str = "/etc/fail2ban";

fn require_fail2ban() {
    assert!(
        Path::new(ETC).join("jail.conf").is_file(),
        "/etc/fail2ban/jail.conf is missing: install the Debian package `fail2ban`"
    );
}

/// A temporary fail2ban directory linking /etc/fail2ban's files, with our own jail.local
/// and an empty jail.d. Removed on drop.
struct TempF2b(PathBuf);

impl TempF2b {
    fn new(jail_local: &str) -> Self {
        require_fail2ban();
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rampart-config-f2b-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("jail.d")).unwrap();
        for e in std::fs::read_dir(ETC).unwrap() {
            let e = e.unwrap();
            let name = e.file_name();
            if name == "jail.local" || name == "jail.d" {
                continue;
            }
            std::os::unix::fs::symlink(e.path(), dir.join(&name)).unwrap();
        }
        std::fs::write(dir.join("jail.local"), jail_local).unwrap();
        TempF2b(dir)
    }
}

impl Drop for TempF2b {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_native_jail_runs_a_fail2ban_filter_with_parameters() {
    require_fail2ban();
    let c = Config::parse(
        Path::new("/etc/rampart/t.toml"),
        "[defaults]\ntimezone = \"UTC\"\n[daemon]\nfail2ban_dir = \"/etc/fail2ban\"\n[[jail]]\nname = \"ssh\"\nfilter = \"fail2ban:sshd[mode=aggressive]\"\nlogs = [\"/var/log/auth.log\"]\n",
    )
    .unwrap();
    let j = &c.jails[0];
    assert_eq!(j.filter.name(), "fail2ban:sshd");
    let f = j.filter.fail2ban().unwrap();
    assert_eq!(f.def().options.get("mode"), Some("aggressive"));
    assert!(j.filter.native().is_none());
    let mut st = f.new_state();
    let line =
        b"Jan 10 10:00:00 host sshd[123]: Failed password for root from 192.0.2.10 port 4242 ssh2";
    let hits: Vec<_> = f.process_line(&mut st, line, 1_736_503_300).collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].addr(), Some("192.0.2.10".parse().unwrap()));

    // filter_params work for fail2ban filters too; doubly set ones are errors.
    let c = Config::parse(
        Path::new("/etc/rampart/t.toml"),
        "[[jail]]\nname = \"ssh\"\nfilter = \"fail2ban:sshd\"\nlogs = [\"/var/log/auth.log\"]\n[jail.filter_params]\nmode = \"ddos\"\n",
    )
    .unwrap();
    assert_eq!(c.daemon.fail2ban_dir, Path::new("/etc/fail2ban"));
    let f = c.jails[0].filter.fail2ban().unwrap();
    assert_eq!(f.def().options.get("mode"), Some("ddos"));
    let e = Config::parse(
        Path::new("/etc/rampart/t.toml"),
        "[[jail]]\nname = \"ssh\"\nfilter = \"fail2ban:sshd[mode=extra]\"\nlogs = [\"/l\"]\n[jail.filter_params]\nmode = \"ddos\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("both"), "{e}");
    let e = Config::parse(
        Path::new("/etc/rampart/t.toml"),
        "[[jail]]\nname = \"ssh\"\nfilter = \"fail2ban:nosuchfilter\"\nlogs = [\"/l\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("t.toml:1") && e.contains("nosuchfilter"), "{e}");
}

#[test]
fn the_debian_import_loads_as_the_same_jails() {
    require_fail2ban();
    let imp = import(Path::new(ETC), false).unwrap();
    assert_eq!(imp.jails, ["sshd"]);
    let c = Config::parse(Path::new("/tmp/imported.toml"), &imp.toml).unwrap();
    assert_eq!(c.jails.len(), 1);
    let j = &c.jails[0];
    assert_eq!(j.policy.jail.as_str(), "sshd");
    assert_eq!(j.filter.name(), "fail2ban:sshd");
    assert_eq!(j.policy.max_failures, 5);
    assert_eq!(j.policy.window, Duration::from_secs(600));
    assert_eq!(j.policy.ban_for, Duration::from_secs(600));
    assert_eq!(j.logs, ["/var/log/auth.log"]);
    assert_eq!(j.source, SourceKind::File);
    assert_eq!(j.scope.ports.len(), 1);
    assert_eq!(j.scope.ports[0].first, 22);
    assert!(
        imp.toml.contains("fail2ban_dir = \"/etc/fail2ban\""),
        "{}",
        imp.toml
    );
}

#[test]
fn import_all_loads_every_stock_jail() {
    require_fail2ban();
    let imp = import(Path::new(ETC), true).unwrap();
    assert!(imp.jails.len() > 50);
    let c = Config::parse(Path::new("/tmp/all.toml"), &imp.toml).unwrap();
    // fail2ban's recidive jail becomes the native section: 5 bans in 1d -> 1w.
    let r = c.recidive.as_ref().expect("[recidive] imported");
    assert_eq!(r.policy.max_bans, 5);
    assert_eq!(r.policy.window, std::time::Duration::from_secs(86_400));
    assert_eq!(r.policy.ban_for, std::time::Duration::from_secs(604_800));
    let names: Vec<&str> = c.jails.iter().map(|j| j.policy.jail.as_str()).collect();
    assert_eq!(
        names,
        imp.jails.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(c
        .jails
        .iter()
        .all(|j| matches!(j.filter, JailFilter::Fail2ban(_))));
}

#[test]
fn a_tuned_jail_local_maps_to_native_settings() {
    let t = TempF2b::new(
        "[DEFAULT]\nignoreip = 127.0.0.1/8 ::1 192.0.2.0/24\nbantime.increment = true\nbantime.maxtime = 1w\n\n[sshd]\nenabled = true\nmode = aggressive\nbackend = systemd\nmaxretry = 3\nfindtime = 1h\nbantime = 30m\nport = ssh,2222\n\n[nginx-http-auth]\nenabled = true\nlogpath = /var/log/nginx/*error.log\nbanaction = nftables-allports\nbantime = -1\n\n[recidive]\nenabled = true\n",
    );
    let imp = import(&t.0, false).unwrap();
    assert_eq!(imp.jails, ["sshd", "nginx-http-auth"]);
    let c = Config::parse(Path::new("/tmp/x.toml"), &imp.toml).unwrap();
    assert!(c.recidive.is_some(), "{}", imp.toml);
    let ssh = &c.jails[0];
    assert_eq!(ssh.source, SourceKind::Journal);
    assert!(
        ssh.journal.iter().any(|t| t.starts_with("_SYSTEMD_UNIT=")),
        "{:?}",
        ssh.journal
    );
    assert_eq!(ssh.policy.max_failures, 3);
    assert_eq!(ssh.policy.window, Duration::from_secs(3600));
    assert_eq!(ssh.policy.ban_for, Duration::from_secs(1800));
    let esc = ssh.policy.escalation.as_ref().unwrap();
    assert_eq!(esc.factor, 2.0);
    assert_eq!(esc.max, Duration::from_secs(604_800));
    let ports: Vec<(u16, u16)> = ssh.scope.ports.iter().map(|p| (p.first, p.last)).collect();
    assert_eq!(ports, [(22, 22), (2222, 2222)]);
    let f = ssh.filter.fail2ban().unwrap();
    assert_eq!(f.def().options.get("mode"), Some("aggressive"));
    assert_eq!(f.def().options.get("logtype"), Some("journal"));
    assert!(ssh.policy.allow.contains("192.0.2.77".parse().unwrap()));
    let web = &c.jails[1];
    assert!(web.scope.ports.is_empty(), "allports drops every port");
    assert_eq!(web.policy.ban_for, Duration::from_secs(365 * 86_400));
    assert_eq!(web.logs, ["/var/log/nginx/*error.log"]);
    assert!(imp
        .warnings
        .iter()
        .any(|w| w.jail == "nginx-http-auth" && w.option == "bantime"));
}

#[test]
fn run_with_fail2ban_takes_daemon_settings_from_the_base_config() {
    require_fail2ban();
    let base = std::env::temp_dir().join(format!("rampart-f2b-base-{}.toml", std::process::id()));
    std::fs::write(
        &base,
        "[defaults]\ntimezone = \"UTC\"\n[daemon]\nbackend = \"log-only\"\nstate = \"/tmp/x/state.db\"\n",
    )
    .unwrap();
    let (c, imp) = Config::from_fail2ban(Path::new(ETC), Some(&base)).unwrap();
    assert_eq!(imp.jails, ["sshd"]);
    assert_eq!(c.daemon.backend, rampart_config::BackendKind::LogOnly);
    assert_eq!(c.daemon.state, Path::new("/tmp/x/state.db"));
    assert_eq!(c.daemon.fail2ban_dir, Path::new(ETC));
    assert_eq!(c.jails[0].policy.jail.as_str(), "sshd");
    std::fs::write(&base, "[[jail]]\nname = \"x\"\nfilter = \"sshd\"\n").unwrap();
    let e = Config::from_fail2ban(Path::new(ETC), Some(&base))
        .unwrap_err()
        .to_string();
    std::fs::remove_file(&base).unwrap();
    assert!(e.contains("jails come from fail2ban"), "{e}");
}

#[test]
fn an_import_fails_naming_the_jail_when_its_filter_does_not_load() {
    let t = TempF2b::new("[sshd]\nenabled = true\nfilter = nosuchfilter\n");
    let e = import(&t.0, false).unwrap_err().to_string();
    assert!(e.contains("[sshd]") && e.contains("nosuchfilter"), "{e}");
}
