//! Country policies end to end in network namespaces: clients with addresses from real
//! allocated blocks of two countries (JP 1.0.16.0/20 and CN 180.152.0.0/13, from the
//! vendored APNIC file, assigned to the lab's veths: no traffic leaves the machine), the
//! daemon with a `[geo]` policy that allows only JP to one port, and a data update (a
//! modified APNIC file served by a loopback HTTP server, `rampart geo update --url`) that
//! moves the CN block to JP and changes the outcome after `rampart reload`.
//! Needs root, iproute2, nftables, ipset and iptables; fails (never skips) without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rampart_testkit::http::LoopbackHttp;
use rampart_testkit::netns::{require_root, Connect, Host, Lab, Spawned};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
/// In APNIC's JP allocation 1.0.16.0/20 (2018-10-13 file).
const JP_ADDR: &str = "1.0.16.10";
/// In APNIC's CN allocation 180.152.0.0/13.
const CN_ADDR: &str = "180.152.0.10";
const GUARDED: u16 = 5060;
const OPEN: u16 = 8080;
const NOTIFIED: u16 = 8443;

fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/geo")
        .join(rel);
    assert!(p.exists(), "vendored data file {} is missing", p.display());
    p
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A loopback HTTP server in the test's own namespace (stops when dropped, or after 300 s).
fn http_server() -> LoopbackHttp {
    LoopbackHttp::start(Duration::from_secs(300)).expect("bind a loopback port")
}

/// Serves a file with its `.md5` next to it.
fn publish(server: &LoopbackHttp, name: &str, body: &[u8]) {
    server.serve(&format!("/{name}"), body.to_vec());
    server.serve(
        &format!("/{name}.md5"),
        format!("MD5 ({name}) = {:x}\n", md5::compute(body)).into_bytes(),
    );
}

/// The daemon in the server namespace; killed when dropped.
struct Daemon {
    socket: PathBuf,
    proc: Option<Spawned>,
}

impl Daemon {
    fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn log(&self) -> String {
        self.proc
            .as_ref()
            .map(|p| p.output_text())
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

fn ip(lab: &Lab, host: Host, args: &[&str]) {
    let mut argv = vec!["/usr/bin/ip"];
    argv.extend_from_slice(args);
    lab.run_ok(host, &argv, Duration::from_secs(10)).unwrap();
}

/// Gives `host` the extra source address `addr` for traffic to the server, and the server a
/// route back to it.
fn give_address(lab: &Lab, host: Host, addr: &str) {
    let server = lab.addr4(Host::Server).to_string();
    ip(
        lab,
        host,
        &["addr", "add", &format!("{addr}/32"), "dev", "eth0"],
    );
    ip(
        lab,
        host,
        &[
            "route",
            "replace",
            &format!("{server}/32"),
            "dev",
            "eth0",
            "src",
            addr,
        ],
    );
    ip(
        lab,
        Host::Server,
        &["route", "add", &format!("{addr}/32"), "dev", "eth0"],
    );
}

fn geo_update(cache: &Path, server: &LoopbackHttp) -> String {
    let out = Command::new(BIN)
        .args(["geo", "update", "--cache"])
        .arg(cache)
        .args(["--only", "apnic", "--url"])
        .arg(format!("apnic={}/apnic", server.base()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "geo update: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(lab: &Lab, backend: &str, cache: &Path, countries: &str) -> String {
    let dir = lab.dir();
    format!(
        r#"
[daemon]
state = "{state}"
socket = "{socket}"
backend = "{backend}"
table = "rampart_geo"
reconcile_every = "1s"

[[jail]]
name = "sshd"
filter = "sshd"
source = "file"
logs = ["{log}"]
ports = [22]

[geo]
sources = ["{cache}"]

[[geo.policy]]
name = "voip"
ports = [{GUARDED}]
allow_countries = [{countries}]

[[geo.policy]]
name = "web"
ports = [{NOTIFIED}]
allow_countries = ["JP"]
mode = "notify"
"#,
        state = dir.join("state/rampart.db").display(),
        socket = dir.join("run/rampart.sock").display(),
        log = dir.join("auth.log").display(),
        cache = cache.display(),
    )
}

fn wait_for(what: &str, secs: u64, d: &Daemon, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {secs}s waiting for {what}\ndaemon log:\n{}",
        d.log()
    );
}

fn connects(lab: &Lab, from: Host, port: u16) -> bool {
    let to = SocketAddr::new(lab.addr4(Host::Server).into(), port);
    match lab
        .tcp_connects(from, to, Duration::from_millis(800))
        .unwrap()
    {
        Connect::Connected => true,
        Connect::TimedOut => false,
        other => panic!("{from} -> {to}: unexpected {other:?}"),
    }
}

fn country_policy_allows_one_country_and_follows_a_data_update(backend: &str) {
    require_root().unwrap();
    let lab = Lab::new().unwrap();
    give_address(&lab, Host::Bystander, JP_ADDR);
    give_address(&lab, Host::Attacker, CN_ADDR);
    let listeners: Vec<TcpListener> = [GUARDED, OPEN, NOTIFIED]
        .into_iter()
        .map(|port| {
            lab.in_netns(Host::Server, move || {
                TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).unwrap()
            })
            .unwrap()
        })
        .collect();
    assert_eq!(listeners.len(), 3);

    // The registry data, as `geo update` fetches it.
    let http = http_server();
    let apnic = gunzip(&data("rir/delegated-apnic-extended-20181013.gz"));
    publish(&http, "apnic", &apnic);
    let cache = lab.dir().join("geo");
    geo_update(&cache, &http);

    let cfg_path = lab.dir().join("rampart.toml");
    std::fs::write(&cfg_path, config(&lab, backend, &cache, "\"JP\"")).unwrap();
    std::fs::write(lab.dir().join("auth.log"), "").unwrap();
    let cfg = cfg_path.display().to_string();
    let mut d = Daemon {
        socket: lab.dir().join("run/rampart.sock"),
        proc: None,
    };
    d.proc = Some(
        lab.spawn(Host::Server, &[BIN, "run", "--config", &cfg], &[])
            .unwrap(),
    );
    wait_for("the daemon's socket", 30, &d, || {
        d.ctl(&["status", "--json"]).status.success()
    });

    // Status shows each policy with its set sizes.
    let st = d.json(&["status", "--json"]);
    let geo = &st["geo"];
    assert_eq!(geo["backend"], backend, "{geo}");
    let voip = &geo["policies"][0];
    assert_eq!(voip["name"], "voip");
    assert_eq!(voip["mode"], "allow");
    assert_eq!(voip["action"], "enforce");
    assert!(voip["set_v4"].as_u64().unwrap() > 100, "{voip}");
    assert!(voip["set_v6"].as_u64().unwrap() > 10, "{voip}");
    let text = String::from_utf8_lossy(&d.ctl(&["status"]).stdout).into_owned();
    assert!(
        text.contains("geo policy voip: enforce allow [JP] on tcp 5060; set "),
        "{text}"
    );

    // Only JP reaches the guarded port; the open port takes both.
    assert!(
        connects(&lab, Host::Bystander, GUARDED),
        "JP client on the guarded port"
    );
    assert!(
        !connects(&lab, Host::Attacker, GUARDED),
        "CN client is dropped"
    );
    assert!(connects(&lab, Host::Bystander, OPEN));
    assert!(connects(&lab, Host::Attacker, OPEN));

    // Notify mode lets CN through and reports the first contact.
    assert!(
        connects(&lab, Host::Attacker, NOTIFIED),
        "notify does not drop"
    );
    wait_for("the first contact from CN", 15, &d, || {
        let st = d.json(&["status", "--json"]);
        st["geo"]["policies"][1]["first_contacts"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|c| c["country"] == "CN" && c["addr"] == CN_ADDR)
            })
    });
    assert!(d.log().contains("country=CN"), "{}", d.log());

    // Bans carry the country and the registry block.
    let out = d.ctl(&["ban", "sshd", "1.0.16.99"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bans = d.json(&["bans", "--json"]);
    let b = bans
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["net"] == "1.0.16.99/32")
        .unwrap();
    assert_eq!(b["country"], "JP", "{b}");
    assert_eq!(b["block"], "1.0.16.0/20", "{b}");
    let table = String::from_utf8_lossy(&d.ctl(&["bans"]).stdout).into_owned();
    assert!(
        table.contains("COUNTRY") && table.contains("1.0.16.0/20"),
        "{table}"
    );

    // A bad [geo] on reload is refused; the old policy keeps running.
    std::fs::write(&cfg_path, config(&lab, backend, &cache, "\"QQ\"")).unwrap();
    let out = d.ctl(&["reload"]);
    assert!(!out.status.success(), "a bad country code must be refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("QQ"),
        "{out:?}"
    );
    assert!(
        !connects(&lab, Host::Attacker, GUARDED),
        "old policy still enforced"
    );
    assert!(connects(&lab, Host::Bystander, GUARDED));

    // The registry moves 180.152.0.0/13 from CN to JP: update + reload lets the client in.
    std::fs::write(&cfg_path, config(&lab, backend, &cache, "\"JP\"")).unwrap();
    let moved = String::from_utf8(apnic).unwrap().replace(
        "apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA",
        "apnic|JP|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA",
    );
    publish(&http, "apnic", moved.as_bytes());
    let report = geo_update(&cache, &http);
    assert!(
        report.contains("180.152.0.0/13  CN allocated A92951CA -> JP"),
        "{report}"
    );
    assert!(connects(&lab, Host::Attacker, OPEN));
    assert!(
        !connects(&lab, Host::Attacker, GUARDED),
        "not before the reload"
    );
    let out = d.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert!(
        connects(&lab, Host::Attacker, GUARDED),
        "the moved block is JP now"
    );
    assert!(connects(&lab, Host::Bystander, GUARDED));
}

#[test]
fn nftables_country_policy_allows_one_country_and_follows_a_data_update() {
    country_policy_allows_one_country_and_follows_a_data_update("nftables");
}

#[test]
fn ipset_country_policy_allows_one_country_and_follows_a_data_update() {
    country_policy_allows_one_country_and_follows_a_data_update("ipset");
}

/// `rampart replay` adds the country and registry block of every decision when the config
/// has `[geo]`, and leaves its output as it was without.
#[test]
fn replay_carries_country_and_block_only_when_the_config_has_geo() {
    let dir = std::env::temp_dir().join(format!("rampart-geo-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Clean(PathBuf);
    impl Drop for Clean {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _clean = Clean(dir.clone());
    let log = dir.join("auth.log");
    let mut text = String::new();
    for (i, addr) in [
        CN_ADDR,
        CN_ADDR,
        CN_ADDR,
        "192.0.2.50",
        "192.0.2.50",
        "192.0.2.50",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "Nov 21 01:00:0{i} host sshd[{}]: Invalid user guest from {addr} port {}\n",
            100 + i,
            40000 + i
        ));
    }
    std::fs::write(&log, text).unwrap();
    let jail = "[defaults]\ntimezone = \"UTC\"\n\n[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nmax_failures = 3\n";
    let with_geo = dir.join("geo.toml");
    std::fs::write(
        &with_geo,
        format!(
            "{jail}\n[geo]\nsources = [\"{}\"]\n",
            data("rir/delegated-apnic-extended-20181013.gz").display()
        ),
    )
    .unwrap();
    let without = dir.join("plain.toml");
    std::fs::write(&without, jail).unwrap();
    let replay = |cfg: &Path, json: bool| {
        let mut c = Command::new(BIN);
        c.arg("replay")
            .arg("--config")
            .arg(cfg)
            .args(["--now", "2026-11-25T00:00:00Z"]);
        if json {
            c.arg("--json");
        }
        let out = c.arg(&log).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<Value> = replay(&with_geo, true)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["addr"], CN_ADDR);
    assert_eq!(lines[0]["country"], "CN");
    assert_eq!(lines[0]["block"], "180.152.0.0/13");
    assert_eq!(lines[1]["addr"], "192.0.2.50");
    assert!(lines[1]["country"].is_null() && lines[1].get("country").is_some());
    let text = replay(&with_geo, false);
    assert!(text.contains("country=CN block=180.152.0.0/13"), "{text}");
    let plain: Value =
        serde_json::from_str(replay(&without, true).lines().next().unwrap()).unwrap();
    assert!(
        plain.get("country").is_none() && plain.get("block").is_none(),
        "{plain}"
    );
    assert!(!replay(&without, false).contains("country="));
}
