//! The jail reader against Debian's real `/etc/fail2ban` (package `fail2ban`) and against
//! temporary copies of it with our own `jail.local` / `jail.d` content.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rampart_f2b::jail::{read_jails, BanBackend, BanTime, JailBackend, Ports};
use rampart_f2b::F2bError;

const ETC: &str = "/etc/fail2ban";

fn require_fail2ban() {
    assert!(
        Path::new(ETC).join("jail.conf").is_file(),
        "/etc/fail2ban/jail.conf is missing: install the Debian package `fail2ban` (apt-get install fail2ban)"
    );
}

/// A temporary fail2ban directory: links to everything in /etc/fail2ban except
/// `jail.local` and `jail.d`, which the test writes. Removed on drop.
struct TempF2b(PathBuf);

impl TempF2b {
    fn new(jail_d: &[(&str, &str)], jail_local: Option<&str>) -> Self {
        require_fail2ban();
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rampart-f2b-jails-{}-{}",
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
        for (name, text) in jail_d {
            std::fs::write(dir.join("jail.d").join(name), text).unwrap();
        }
        if let Some(t) = jail_local {
            std::fs::write(dir.join("jail.local"), t).unwrap();
        }
        TempF2b(dir)
    }
}

impl Drop for TempF2b {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn debian_enables_only_sshd_on_auth_log() {
    require_fail2ban();
    let set = read_jails(Path::new(ETC), false).unwrap();
    let names: Vec<&str> = set.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["sshd"]);
    let j = &set.jails[0];
    assert_eq!(j.filter.name, "sshd");
    assert_eq!(j.filter.params.get("mode"), Some("normal"));
    assert_eq!(j.backend, JailBackend::File);
    assert_eq!(j.logpaths, ["/var/log/auth.log"]);
    assert_eq!((j.maxretry, j.findtime), (5, 600));
    assert_eq!(j.bantime, BanTime::Secs(600));
    assert_eq!(j.ports, Ports::List(vec![(22, 22)]));
    assert_eq!(j.protocol, "tcp");
    assert_eq!(j.ban_backend, Some(BanBackend::Nftables));
    assert!(j.increment.is_none());
    assert!(set.files.iter().any(|f| f.ends_with("paths-debian.conf")));
    assert!(set.files.iter().any(|f| f.ends_with("paths-common.conf")));
}

#[test]
fn all_reads_every_stock_jail_and_maps_recidive() {
    require_fail2ban();
    let set = read_jails(Path::new(ETC), true).unwrap();
    assert!(set.jails.len() > 50, "{} jails", set.jails.len());
    assert!(set.jails.iter().any(|j| j.name == "nginx-http-auth"));
    // Debian's stock recidive: 5 bans within a day earn a week (its own section, not a jail).
    let r = set.recidive.as_ref().expect("recidive read");
    assert_eq!(
        (r.maxretry, r.findtime, r.bantime),
        (5, 86_400, BanTime::Secs(604_800))
    );
    assert!(set
        .warnings
        .iter()
        .any(|w| w.jail == "recidive" && w.message.contains("fail2ban.log")));
    assert!(!set.jails.iter().any(|j| j.name == "recidive"));
    // Stock mail actions (action_mw...) are not used by default: no action warnings for sshd.
    assert!(!set
        .warnings
        .iter()
        .any(|w| w.jail == "sshd" && w.option == "action"));
}

#[test]
fn jail_local_overrides_defaults_and_jail_d() {
    let t = TempF2b::new(
        &[(
            "10-mine.conf",
            "[nginx-http-auth]\nenabled = true\nlogpath = /srv/www/*/error.log tail\n",
        )],
        Some(
            "[DEFAULT]\nbantime = 1h\nfindtime = 1d 2h\nmaxretry = 3\nignoreip = 127.0.0.1/8 ::1, 192.0.2.7 198.51.100.0/24 trusted.example.org\nbanaction = nftables-multiport\nbanaction_allports = nftables-allports\n\n[sshd]\nenabled = true\nmode = aggressive\nport = ssh,2222\nbackend = systemd\naction = %(action_mw)s\nignorecommand = /usr/local/bin/check <ip>\n\n[nginx-http-auth]\nmaxretry = 7\nbantime = -1\nbanaction = %(banaction_allports)s\nmysetting = 1\n",
        ),
    );
    let set = read_jails(&t.0, false).unwrap();
    let names: Vec<&str> = set.jails.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["sshd", "nginx-http-auth"]);
    let ssh = &set.jails[0];
    assert_eq!(ssh.filter.params.get("mode"), Some("aggressive"));
    assert_eq!(ssh.filter.params.get("logtype"), Some("journal"));
    assert_eq!(ssh.backend, JailBackend::Journal);
    assert!(ssh.logpaths.is_empty());
    assert_eq!((ssh.maxretry, ssh.findtime), (3, 93_600));
    assert_eq!(ssh.bantime, BanTime::Secs(3600));
    assert_eq!(ssh.ports, Ports::List(vec![(22, 22), (2222, 2222)]));
    let allow: Vec<String> = ssh.ignoreip.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        allow,
        ["127.0.0.0/8", "::1/128", "192.0.2.7/32", "198.51.100.0/24"]
    );
    let warned = |jail: &str, opt: &str, text: &str| {
        set.warnings
            .iter()
            .any(|w| w.jail == jail && w.option == opt && w.message.contains(text))
    };
    assert!(
        warned("sshd", "ignoreip", "trusted.example.org"),
        "{:#?}",
        set.warnings
    );
    assert!(
        warned("sshd", "ignorecommand", "shell"),
        "{:#?}",
        set.warnings
    );
    assert!(
        warned("sshd", "action", "sendmail-whois"),
        "{:#?}",
        set.warnings
    );
    let web = &set.jails[1];
    assert_eq!(web.maxretry, 7);
    assert_eq!(web.bantime, BanTime::Permanent);
    assert_eq!(web.ports, Ports::All);
    assert_eq!(web.logpaths, ["/srv/www/*/error.log"]);
    assert_eq!(web.ban_backend, Some(BanBackend::Nftables));
    assert!(warned("nginx-http-auth", "mysetting", "not a jail option"));
    assert!(
        !warned("sshd", "mode", ""),
        "mode is used by filter = ...[mode=%(mode)s]"
    );
}

#[test]
fn bantime_increment_family_is_read_and_formulas_are_rejected() {
    let t = TempF2b::new(
        &[(
            "inc.local",
            "[sshd]\nenabled = true\nlogpath = /var/log/auth.log\nbantime.increment = true\nbantime.factor = 2\nbantime.maxtime = 5w\nbantime.rndtime = 30m\nbantime.overalljails = true\nbanaction = iptables-ipset-proto6\n",
        )],
        None,
    );
    let set = read_jails(&t.0, false).unwrap();
    let inc = set.jails[0].increment.clone().unwrap();
    assert_eq!(inc.factor, 2.0);
    assert_eq!(inc.maxtime, Some(5 * 604_800));
    assert_eq!(inc.rndtime, Some(1800));
    assert!(inc.overalljails);
    assert!(inc.multipliers.is_empty());
    assert_eq!(set.jails[0].ban_backend, Some(BanBackend::Ipset));
    assert!(set.warnings.iter().any(|w| w.option == "bantime.rndtime"));
    assert!(set
        .warnings
        .iter()
        .any(|w| w.option == "bantime.overalljails"));

    let t = TempF2b::new(
        &[(
            "f.local",
            "[sshd]\nenabled = true\nbantime.increment = true\nbantime.formula = ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)\n",
        )],
        None,
    );
    let e = read_jails(&t.0, false).unwrap_err();
    assert!(matches!(&e, F2bError::Jail { option, .. } if option == "bantime.formula"));
    let m = e.to_string();
    assert!(m.contains("[sshd]") && m.contains("Python"), "{m}");

    // The stock formula, written out, is accepted; so are multipliers.
    let t = TempF2b::new(
        &[(
            "m.local",
            "[sshd]\nenabled = true\nbantime.increment = true\nbantime.formula = ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor\nbantime.multipliers = 1 5 30 60\n",
        )],
        None,
    );
    let set = read_jails(&t.0, false).unwrap();
    assert_eq!(
        set.jails[0].increment.as_ref().unwrap().multipliers,
        [1.0, 5.0, 30.0, 60.0]
    );
}

#[test]
fn invalid_values_name_the_jail_and_option() {
    for (text, opt) in [
        ("maxretry = many", "maxretry"),
        ("findtime = 10 fortnights", "findtime"),
        ("port = nosuchservice", "port"),
        ("backend = gamin2", "backend"),
        ("logpath = relative/auth.log", "logpath"),
    ] {
        let t = TempF2b::new(
            &[("x.local", &format!("[sshd]\nenabled = true\n{text}\n"))],
            None,
        );
        let e = read_jails(&t.0, false).unwrap_err();
        match &e {
            F2bError::Jail { jail, option, .. } => {
                assert_eq!((jail.as_str(), option.as_str()), ("sshd", opt), "{e}")
            }
            other => panic!("{text}: {other}"),
        }
    }
}

#[test]
fn a_missing_jail_conf_is_an_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("rampart-f2b-nojail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = read_jails(&dir, false).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(e.contains("jail.conf"), "{e}");
}
