//! The network lab proves itself: real namespaces, the real OpenSSH server and client, real
//! nftables rules, a real HTTP exchange, logs that our built-in filters read, and nothing
//! left behind. These tests need root and iproute2, nftables, openssh-server and
//! openssh-client: without them they fail with the reason, they never skip.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_core::Timestamp;
use rampart_filter::time::{TimeParser, Zone};
use rampart_filter::{EventKind, Scanner};
use rampart_testkit::netns::{
    require_tool, ssh_fail, wait_for_lines, Connect, Host, HttpServer, Lab, LabError, Sshd, IP, NFT,
};

/// Long enough for anything that works; a connect that should succeed takes milliseconds.
const FAST: Duration = Duration::from_secs(3);
/// How long a connect waits before it counts as dropped.
const DROPPED: Duration = Duration::from_millis(300);

fn lab() -> Lab {
    Lab::new().unwrap_or_else(|e| panic!("cannot build the network lab: {e}"))
}

fn sshd(lab: &Lab) -> Sshd {
    Sshd::start(lab, &lab.dir().join("sshd"), 22)
        .unwrap_or_else(|e| panic!("cannot start sshd: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid address")
}

/// The failures (address, pattern id) that the built-in filter `name` finds in `log`, read
/// the way `rampart filter test` reads a file.
fn failures(name: &str, log: &Path) -> Vec<(IpAddr, String)> {
    let filter = Arc::new(rampart_filter::load(name).expect("a built-in filter"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let zone = Zone::parse("local").unwrap_or_else(|_| Zone::utc());
    let mut scanner = Scanner::new(
        vec![Arc::clone(&filter)],
        TimeParser::new(
            filter.timestamp(),
            zone,
            Timestamp::from_secs(now as i64 + 60),
        ),
        true,
    );
    let text = std::fs::read(log).expect("the log exists");
    let mut found = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        scanner.scan(line, |e| {
            if e.kind == EventKind::Failure {
                let addr = e.addr.expect("a failure has an address");
                assert!(e.time.is_some(), "a failure has a time");
                found.push((addr, filter.patterns()[e.pattern].id.clone()));
            }
        });
    }
    found
}

fn log_text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

#[test]
fn bystander_and_attacker_reach_sshd_over_ipv4_and_ipv6() {
    let lab = lab();
    let sshd = sshd(&lab);
    for from in [Host::Bystander, Host::Attacker] {
        for to in [sshd.addr4(), sshd.addr6()] {
            let seen = lab.tcp_connects(from, to, FAST).expect("a connect attempt");
            assert_eq!(seen, Connect::Connected, "{from} -> {to}");
        }
    }
    // sshd saw the lab's source addresses, not some NAT or loopback address.
    for from in ["192.0.2.66", "192.0.2.77", "2001:db8::66", "2001:db8::77"] {
        wait_for_lines(
            sshd.log_path(),
            &format!("Connection from {from} port "),
            1,
            FAST,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn failed_ssh_logins_are_logged_with_the_attacker_address_and_the_sshd_filter_finds_them() {
    let lab = lab();
    let sshd = sshd(&lab);
    let invalid = ssh_fail(&lab, &sshd, Host::Attacker, sshd.addr4(), "nosuchuser")
        .unwrap_or_else(|e| panic!("{e}"));
    let root = ssh_fail(&lab, &sshd, Host::Attacker, sshd.addr6(), "root")
        .unwrap_or_else(|e| panic!("{e}"));
    for login in [&invalid, &root] {
        eprintln!(
            "ssh attempt from {} port {}:",
            login.from, login.client_port
        );
        for line in &login.lines {
            eprintln!("  {line}");
        }
    }
    assert_eq!(invalid.from, ip("192.0.2.66"));
    assert!(
        invalid
            .lines
            .iter()
            .any(|l| l.contains("sshd[")
                && l.contains("Invalid user nosuchuser from 192.0.2.66 port ")),
        "{:#?}",
        invalid.lines
    );
    assert_eq!(root.from, ip("2001:db8::66"));
    assert!(
        root.lines
            .iter()
            .any(|l| l.contains("user root 2001:db8::66 port ")),
        "{:#?}",
        root.lines
    );
    assert!(invalid.client_stderr.contains("Permission denied"));

    let found = failures("sshd", sshd.log_path());
    eprintln!("the sshd filter found {found:?}");
    let log = log_text(sshd.log_path());
    assert!(
        found.contains(&(ip("192.0.2.66"), "invalid-user".into())),
        "the sshd filter found {found:?} in:\n{log}"
    );
    assert!(
        found.iter().any(|(a, _)| *a == ip("2001:db8::66")),
        "the sshd filter found {found:?} in:\n{log}"
    );
    assert!(
        found
            .iter()
            .all(|(a, _)| *a == ip("192.0.2.66") || *a == ip("2001:db8::66")),
        "only the attacker failed: {found:?}"
    );
}

#[test]
fn nft_drop_rule_times_out_the_attacker_while_the_bystander_connects() {
    require_tool(NFT, "nftables").unwrap_or_else(|e| panic!("{e}"));
    let lab = lab();
    let port = 8080;
    let v4 = SocketAddr::new(IpAddr::V4(Host::Server.addr4()), port);
    let v6 = SocketAddr::new(IpAddr::V6(Host::Server.addr6()), port);
    let _listeners = lab
        .in_netns(Host::Server, move || {
            (TcpListener::bind(v4), TcpListener::bind(v6))
        })
        .map(|(a, b)| (a.expect("bind v4"), b.expect("bind v6")))
        .expect("enter the server namespace");
    for to in [v4, v6] {
        assert_eq!(
            lab.tcp_connects(Host::Attacker, to, FAST).expect("connect"),
            Connect::Connected,
            "before the rule the attacker reaches {to}"
        );
    }

    let rules = lab.dir().join("drop-attacker.nft");
    std::fs::write(
        &rules,
        format!(
            "table inet lab_test {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip saddr {} drop\n    ip6 saddr {} drop\n  }}\n}}\n",
            Host::Attacker.addr4(),
            Host::Attacker.addr6()
        ),
    )
    .expect("write the ruleset");
    lab.run_ok(
        Host::Server,
        &[NFT.as_ref(), "-f".as_ref(), rules.as_os_str()],
        FAST,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    for to in [v4, v6] {
        assert_eq!(
            lab.tcp_connects(Host::Attacker, to, DROPPED)
                .expect("connect"),
            Connect::TimedOut,
            "the dropped attacker -> {to}"
        );
        assert_eq!(
            lab.tcp_connects(Host::Bystander, to, FAST)
                .expect("connect"),
            Connect::Connected,
            "the bystander -> {to}"
        );
        let closed = SocketAddr::new(to.ip(), port + 1);
        assert_eq!(
            lab.tcp_connects(Host::Bystander, closed, FAST)
                .expect("connect"),
            Connect::Refused,
            "the bystander -> closed port {closed}"
        );
    }
    // The rule lives in the server's namespace only: the attacker's own table is empty.
    let out = lab
        .run_ok(Host::Attacker, &[NFT, "list", "ruleset"], FAST)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn http_server_logs_the_attacker_request_and_web_scan_flags_it() {
    let lab = lab();
    let log = lab.dir().join("access.log");
    let http = HttpServer::start(&lab, 80, &log).unwrap_or_else(|e| panic!("{e}"));
    let get = |from, to, path| {
        lab.http_get(from, to, path, &format!("Mozilla/5.0 (lab {from})"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(get(Host::Bystander, http.addr4(), "/"), 200);
    assert_eq!(get(Host::Bystander, http.addr6(), "/"), 200);
    assert_eq!(get(Host::Attacker, http.addr4(), "/.env"), 404);
    assert_eq!(get(Host::Attacker, http.addr6(), "/wp-login.php"), 404);

    let lines = wait_for_lines(&log, "\"GET /", 4, FAST).unwrap_or_else(|e| panic!("{e}"));
    let env = lines
        .iter()
        .find(|l| l.contains("/.env"))
        .expect("the /.env request is logged");
    assert!(env.starts_with("192.0.2.66 - - ["), "{env}");
    assert!(
        env.ends_with("] \"GET /.env HTTP/1.1\" 404 0 \"-\" \"Mozilla/5.0 (lab attacker)\""),
        "{env}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2001:db8::66 - - [") && l.contains("GET /wp-login.php ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("192.0.2.77 - - [") && l.contains("\"GET / HTTP/1.1\" 200 0 ")),
        "{lines:#?}"
    );

    let found = failures("web-scan", &log);
    assert!(
        found.contains(&(ip("192.0.2.66"), "scan-path".into())),
        "web-scan found {found:?} in:\n{}",
        log_text(&log)
    );
    assert!(
        found.contains(&(ip("2001:db8::66"), "scan-path".into())),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "only the attacker's probes: {found:?}");
}

#[test]
fn http_serve_subcommand_answers_and_logs_with_the_peer_address() {
    let lab = lab();
    let log = lab.dir().join("served.log");
    let bin = env!("CARGO_BIN_EXE_rampart-testkit");
    let server = lab
        .spawn(
            Host::Server,
            &[
                bin.as_ref(),
                "http-serve".as_ref(),
                "--listen".as_ref(),
                "192.0.2.1:8000".as_ref(),
                "--listen".as_ref(),
                "[2001:db8::1]:8000".as_ref(),
                "--log".as_ref(),
                log.as_os_str(),
            ],
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for_lines(&server.output, "listening on", 2, FAST).unwrap_or_else(|e| panic!("{e}"));
    let v4: SocketAddr = "192.0.2.1:8000".parse().expect("valid");
    let v6: SocketAddr = "[2001:db8::1]:8000".parse().expect("valid");
    assert_eq!(
        lab.http_get(Host::Attacker, v6, "/.git/config", "zgrab/0.x")
            .expect("GET"),
        404
    );
    assert_eq!(
        lab.http_get(Host::Bystander, v4, "/", "Mozilla/5.0")
            .expect("GET"),
        200
    );
    let lines = wait_for_lines(&log, " HTTP/1.1\" ", 2, FAST).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lines[0].starts_with("2001:db8::66 - - [")
            && lines[0].ends_with("\"GET /.git/config HTTP/1.1\" 404 0 \"-\" \"zgrab/0.x\""),
        "{lines:#?}"
    );
    assert!(lines[1].starts_with("192.0.2.77 - - ["), "{lines:#?}");
    let found = failures("web-scan", &log);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, ip("2001:db8::66"));
}

#[test]
fn run_kills_a_command_that_outlives_its_timeout() {
    let lab = lab();
    let started = std::time::Instant::now();
    let err = lab
        .run(
            Host::Attacker,
            &["/usr/bin/sleep", "5"],
            Duration::from_millis(200),
        )
        .expect_err("sleep 5 outlives 200 ms");
    assert!(matches!(err, LabError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let out = lab
        .run(
            Host::Bystander,
            &[IP, "-brief", "address", "show", "dev", "eth0"],
            FAST,
        )
        .expect("ip address");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("192.0.2.77/24") && text.contains("2001:db8::77/64"),
        "{text}"
    );
}

#[test]
fn dropping_the_lab_removes_its_namespaces_and_kills_its_processes_even_when_a_test_panics() {
    let left = Mutex::new(None);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = lab();
        let sleeper = lab
            .spawn(Host::Attacker, &["/usr/bin/sleep", "60"], &[])
            .expect("spawn sleep");
        let mut names = vec![lab.switch_name().to_owned()];
        names.extend(Host::ALL.map(|h| lab.ns_name(h).to_owned()));
        let dir = lab.dir().to_owned();
        for n in &names {
            assert!(Path::new("/run/netns").join(n).exists(), "{n} exists");
        }
        *left.lock().expect("not poisoned") = Some((names, dir, sleeper));
        panic!("a failing test, with the lab up (expected by this test)");
    }));
    assert!(outcome.is_err());
    let (names, dir, mut sleeper) = left
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the closure ran");
    let status = sleeper
        .wait_timeout(FAST)
        .expect("wait")
        .expect("the sleeper was killed");
    assert!(!status.success(), "{status}");
    let listed = std::process::Command::new(IP)
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let listed = String::from_utf8_lossy(&listed.stdout);
    for n in &names {
        assert!(!listed.contains(n.as_str()), "{n} still listed:\n{listed}");
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} still bound");
    }
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn an_sshd_that_cannot_listen_fails_to_start_with_its_log_in_the_error() {
    let lab = lab();
    let _first = sshd(&lab);
    let err = Sshd::start(&lab, &lab.dir().join("sshd-again"), 22)
        .expect_err("the port is taken by the first sshd");
    let text = err.to_string();
    assert!(text.contains("Address already in use"), "{text}");
}
