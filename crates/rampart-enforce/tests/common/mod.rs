//! Test support: a pair of network namespaces joined by a veth, TCP listeners in the server
//! namespace, and connection attempts from chosen client addresses.
//!
//! Server `S`: 192.0.2.1/24, 2001:db8::1/64, 2001:db8:0:1::1/64.
//! Client `C`: 192.0.2.2/24, 2001:db8::2/64, 2001:db8::99/64, 2001:db8:0:1::2/64.
#![allow(dead_code)]

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{bind, connect, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

pub use rampart_core::{Backend, Entry, JailName, PortRange, Protocol, Scope, Timestamp};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub const SERVER_V4: &str = "192.0.2.1";
pub const CLIENT_V4: &str = "192.0.2.2";
pub const SERVER_V6: &str = "2001:db8::1";
pub const CLIENT_V6: &str = "2001:db8::2";
pub const CLIENT_V6_SAME_64: &str = "2001:db8::99";
pub const SERVER_V6_OTHER_64: &str = "2001:db8:0:1::1";
pub const CLIENT_V6_OTHER_64: &str = "2001:db8:0:1::2";

/// Runs a command (absolute path), panicking with its output when it fails.
pub fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?} (is the package installed?): {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns whether it succeeded.
pub fn try_run(argv: &[&str]) -> bool {
    Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Two namespaces and a veth between them; deleted on drop (also when a test panics).
pub struct Net {
    pub server: String,
    pub client: String,
}

impl Net {
    /// Creates the pair; fails loudly when not root or when iproute2 is missing.
    pub fn new(tag: &str) -> Net {
        assert!(
            rustix::process::geteuid().is_root(),
            "backend tests need root (they create network namespaces and firewall rules)"
        );
        for tool in [
            "/usr/bin/ip",
            "/usr/sbin/nft",
            "/usr/sbin/ipset",
            "/usr/sbin/iptables",
        ] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: install iproute2, nftables, ipset and iptables"
            );
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("rpe{}-{}-{n}", std::process::id(), tag);
        let net = Net {
            server: format!("{base}-s"),
            client: format!("{base}-c"),
        };
        run(&["/usr/bin/ip", "netns", "add", &net.server]);
        run(&["/usr/bin/ip", "netns", "add", &net.client]);
        run(&[
            "/usr/bin/ip",
            "link",
            "add",
            "name",
            "vs",
            "netns",
            &net.server,
            "type",
            "veth",
            "peer",
            "name",
            "vc",
            "netns",
            &net.client,
        ]);
        for (ns, dev, addrs) in [
            (
                &net.server,
                "vs",
                [SERVER_V4, SERVER_V6, SERVER_V6_OTHER_64, ""],
            ),
            (
                &net.client,
                "vc",
                [CLIENT_V4, CLIENT_V6, CLIENT_V6_SAME_64, CLIENT_V6_OTHER_64],
            ),
        ] {
            run(&["/usr/bin/ip", "-n", ns, "link", "set", "lo", "up"]);
            for a in addrs.iter().filter(|a| !a.is_empty()) {
                if a.contains(':') {
                    let cidr = format!("{a}/64");
                    run(&[
                        "/usr/bin/ip",
                        "-n",
                        ns,
                        "addr",
                        "add",
                        &cidr,
                        "dev",
                        dev,
                        "nodad",
                    ]);
                } else {
                    let cidr = format!("{a}/24");
                    run(&["/usr/bin/ip", "-n", ns, "addr", "add", &cidr, "dev", dev]);
                }
            }
            run(&["/usr/bin/ip", "-n", ns, "link", "set", dev, "up"]);
        }
        net
    }

    /// `/run/netns/<server>`.
    pub fn server_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.server))
    }

    /// Runs a command inside the server namespace.
    pub fn in_server(&self, argv: &[&str]) -> String {
        let mut full = vec!["/usr/bin/ip", "netns", "exec", &self.server];
        full.extend_from_slice(argv);
        run(&full)
    }

    /// Like [`Net::in_server`], returning success instead of panicking.
    pub fn try_in_server(&self, argv: &[&str]) -> bool {
        let mut full = vec!["/usr/bin/ip", "netns", "exec", &self.server];
        full.extend_from_slice(argv);
        try_run(&full)
    }

    /// A dual-stack TCP listener on `port` in the server namespace (the kernel completes
    /// handshakes into its backlog; nobody needs to accept).
    pub fn listen(&self, port: u16) -> TcpListener {
        in_netns(&self.server, move || {
            TcpListener::bind(SocketAddr::new("::".parse().unwrap(), port)).unwrap()
        })
    }

    /// Whether a TCP connection from client address `src` to `dst:port` completes within
    /// 700 ms.
    pub fn connects(&self, src: &str, dst: &str, port: u16) -> bool {
        let src: IpAddr = src.parse().unwrap();
        let dst: IpAddr = dst.parse().unwrap();
        in_netns(&self.client, move || {
            connect_from(src, SocketAddr::new(dst, port))
        })
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = try_run(&["/usr/bin/ip", "netns", "del", &self.server]);
        let _ = try_run(&["/usr/bin/ip", "netns", "del", &self.client]);
    }
}

/// Runs `f` on a thread that moved into namespace `name`.
pub fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(format!("/run/netns/{name}")).unwrap();
    thread::spawn(move || {
        move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn connect_from(src: IpAddr, dst: SocketAddr) -> bool {
    let family = if src.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    bind(&fd, &SocketAddr::new(src, 0)).unwrap();
    match connect(&fd, &dst) {
        Ok(()) => return true,
        Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => panic!("connect {src} -> {dst}: {e}"),
    }
    let ts = Timespec {
        tv_sec: 0,
        tv_nsec: 700_000_000,
    };
    let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
    let n = poll(&mut fds, Some(&ts)).unwrap();
    if n == 0 {
        return false;
    }
    matches!(sockopt::socket_error(&fd), Ok(Ok(())))
}

/// A jail name.
pub fn jail(name: &str) -> JailName {
    JailName::new(name).unwrap()
}

/// A scope for TCP ports (empty: all traffic).
pub fn scope(name: &str, ports: &[u16]) -> Scope {
    Scope {
        jail: jail(name),
        protocols: vec![Protocol::Tcp],
        ports: ports
            .iter()
            .map(|&p| PortRange { first: p, last: p })
            .collect(),
        ipv6_prefix: 64,
    }
}

/// Now, as the backends see it.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp::from_micros(d.as_micros() as i64)
}

/// A ban of `net` in `jail` for `secs` seconds from `now`.
pub fn entry(jail_name: &str, net: &str, now: Timestamp, secs: f64) -> Entry {
    Entry {
        jail: jail(jail_name),
        net: net.parse().unwrap(),
        expires: if secs >= 0.0 {
            now.saturating_add(Duration::from_secs_f64(secs))
        } else {
            now.saturating_sub(Duration::from_secs_f64(-secs))
        },
    }
}

/// Remaining seconds of `net` in `jail` according to `list`, if present.
pub fn remaining_secs(list: &[Entry], jail_name: &str, net: &str, now: Timestamp) -> Option<f64> {
    let net: ipnet::IpNet = net.parse().unwrap();
    list.iter()
        .find(|e| e.jail.as_str() == jail_name && e.net == net)
        .map(|e| e.expires.duration_since(now).as_secs_f64())
}

/// `n` distinct IPv6 /64 bans from 2001:db8::/32 in `jail`.
pub fn many_v6(jail_name: &str, n: usize, now: Timestamp, secs: f64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let net = format!("2001:db8:{:x}:{:x}::/64", (i >> 16) + 0x100, i & 0xffff);
            entry(jail_name, &net, now, secs)
        })
        .collect()
}

/// Shared by the backends' test files: the same behaviour for each.
pub fn ban_drops_only_scoped_ports_and_an_all_ports_scope_drops_everything<B: Backend>(
    ns: &str,
    backend: impl Fn(&Net) -> B,
) {
    let net = Net::new(ns);
    let (_a, _b) = (net.listen(2201), net.listen(8080));
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[2201]), scope("all", &[])])
        .unwrap();
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201), "no ban yet");
    let now = now();

    b.ban(&[entry("sshd", "192.0.2.2/32", now, 300.0)], now)
        .unwrap();
    assert!(
        !net.connects(CLIENT_V4, SERVER_V4, 2201),
        "banned on the jail's port"
    );
    assert!(
        net.connects(CLIENT_V4, SERVER_V4, 8080),
        "another port still open"
    );
    assert!(
        net.connects(CLIENT_V6, SERVER_V6, 2201),
        "the IPv4 ban leaves IPv6 alone"
    );

    b.unban(&[(jail("sshd"), "192.0.2.2/32".parse().unwrap())])
        .unwrap();
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201), "unbanned");

    b.ban(&[entry("all", "192.0.2.2/32", now, 300.0)], now)
        .unwrap();
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 2201));
    assert!(
        !net.connects(CLIENT_V4, SERVER_V4, 8080),
        "all-ports scope drops every port"
    );
}

/// Shared by the backends' test files: the same behaviour for each.
pub fn ipv6_prefix_ban_drops_every_address_in_the_prefix<B: Backend>(
    ns: &str,
    backend: impl Fn(&Net) -> B,
) {
    let net = Net::new(ns);
    let _l = net.listen(2201);
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[2201])]).unwrap();
    let now = now();
    b.ban(&[entry("sshd", "2001:db8::/64", now, 300.0)], now)
        .unwrap();
    assert!(
        !net.connects(CLIENT_V6, SERVER_V6, 2201),
        "::2 is in the banned /64"
    );
    assert!(
        !net.connects(CLIENT_V6_SAME_64, SERVER_V6, 2201),
        "::99 too"
    );
    assert!(
        net.connects(CLIENT_V6_OTHER_64, SERVER_V6_OTHER_64, 2201),
        "another /64 is not banned"
    );
    assert!(
        net.connects(CLIENT_V4, SERVER_V4, 2201),
        "IPv4 is not banned"
    );
    let list = b.list(now).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].net,
        "2001:db8::/64".parse::<ipnet::IpNet>().unwrap()
    );
}

/// Shared by the backends' test files: the same behaviour for each.
pub fn ban_expires_after_its_timeout_and_the_client_connects_again<B: Backend>(
    ns: &str,
    backend: impl Fn(&Net) -> B,
) {
    let net = Net::new(ns);
    let _l = net.listen(2201);
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[2201])]).unwrap();
    let start = Instant::now();
    let now = now();
    b.ban(
        &[
            entry("sshd", "192.0.2.2/32", now, 2.0),
            entry("sshd", "2001:db8::/64", now, 2.0),
        ],
        now,
    )
    .unwrap();
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 2201));
    assert!(!net.connects(CLIENT_V6, SERVER_V6, 2201));
    sleep(Duration::from_millis(2300).saturating_sub(start.elapsed()));
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201), "IPv4 ban expired");
    assert!(net.connects(CLIENT_V6, SERVER_V6, 2201), "IPv6 ban expired");
    assert!(
        b.list(self::now()).unwrap().is_empty(),
        "list forgets expired bans"
    );
}
