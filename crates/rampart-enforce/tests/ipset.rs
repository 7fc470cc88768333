//! The ipset + iptables backend against the real kernel, in namespaces made by each test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rampart_enforce::{IpsetBackend, IpsetConfig};

const IPSET: &str = "/usr/sbin/ipset";
const IPTABLES: &str = "/usr/sbin/iptables";
const IP6TABLES: &str = "/usr/sbin/ip6tables";

fn config(net: &Net) -> IpsetConfig {
    IpsetConfig {
        netns: Some(net.server_path()),
        ..IpsetConfig::default()
    }
}

fn backend(net: &Net) -> IpsetBackend {
    config(net).build().unwrap()
}

#[test]
fn ban_drops_only_scoped_ports_and_an_all_ports_scope_drops_everything() {
    common::ban_drops_only_scoped_ports_and_an_all_ports_scope_drops_everything("iports", backend);
}

#[test]
fn ipv6_prefix_ban_drops_every_address_in_the_prefix() {
    common::ipv6_prefix_ban_drops_every_address_in_the_prefix("iv6", backend);
}

#[test]
fn ban_expires_after_its_timeout_and_the_client_connects_again() {
    common::ban_expires_after_its_timeout_and_the_client_connects_again("iexp", backend);
}

#[test]
fn ban_of_a_present_entry_sets_its_new_timeout_and_unban_removes_it() {
    let net = Net::new("ireban");
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let now = now();
    for secs in [100.0, 1000.0, 50.0] {
        b.ban(
            &[
                entry("sshd", "192.0.2.2/32", now, secs),
                entry("sshd", "2001:db8::/64", now, secs),
                entry("sshd", "198.51.100.7/32", now, secs),
            ],
            now,
        )
        .unwrap();
        let l = b.list(now).unwrap();
        assert_eq!(l.len(), 3, "{l:?}");
        for n in ["192.0.2.2/32", "2001:db8::/64", "198.51.100.7/32"] {
            // ipset counts whole seconds.
            let r = remaining_secs(&l, "sshd", n, now).unwrap();
            assert!(
                r > secs - 3.0 && r <= secs + 1.0,
                "{n}: {r} after re-ban to {secs}"
            );
        }
    }
    b.unban(&[
        (jail("sshd"), "192.0.2.2/32".parse().unwrap()),
        (jail("sshd"), "192.0.2.2/32".parse().unwrap()),
        (jail("sshd"), "203.0.113.9/32".parse().unwrap()),
        (jail("sshd"), "2001:db8::/64".parse().unwrap()),
    ])
    .unwrap();
    let l = b.list(now).unwrap();
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].net, "198.51.100.7/32".parse::<ipnet::IpNet>().unwrap());
    b.ban(&[entry("sshd", "192.0.2.9/32", now, -5.0)], now)
        .unwrap();
    assert_eq!(b.list(now).unwrap().len(), 1, "expired entries are skipped");
}

#[test]
fn prepare_is_idempotent_keeps_elements_and_drops_sets_of_gone_jails() {
    let net = Net::new("iprep");
    let _l = net.listen(2201);
    let _m = net.listen(8080);
    let mut b = backend(&net);
    let scopes = [scope("sshd", &[2201]), scope("web", &[8080])];
    b.prepare(&scopes).unwrap();
    assert!(b.last_prepare_rewrote());
    let now = now();
    b.ban(
        &[
            entry("sshd", "192.0.2.2/32", now, 300.0),
            entry("web", "2001:db8::/64", now, 300.0),
        ],
        now,
    )
    .unwrap();
    b.prepare(&scopes).unwrap();
    assert!(!b.last_prepare_rewrote(), "nothing to do the second time");
    let mut again = backend(&net);
    again.prepare(&scopes).unwrap();
    assert!(
        !again.last_prepare_rewrote(),
        "a restarted daemon finds everything in place"
    );
    assert_eq!(again.list(now).unwrap().len(), 2);

    b.prepare(&[scope("sshd", &[2202]), scope("web", &[8080])])
        .unwrap();
    assert!(b.last_prepare_rewrote());
    assert_eq!(
        b.list(now).unwrap().len(),
        2,
        "elements survive a rule change"
    );
    assert!(
        net.connects(CLIENT_V4, SERVER_V4, 2201),
        "2201 is no longer in scope"
    );

    b.prepare(&[scope("sshd", &[2202])]).unwrap();
    let sets = net.in_server(&[IPSET, "list", "-n"]);
    assert!(!sets.contains("rampart6_web"), "{sets}");
    assert!(sets.contains("rampart4_sshd"), "{sets}");
    assert_eq!(b.list(now).unwrap().len(), 1);
    let rules = net.in_server(&[IPTABLES, "-w", "-S"]);
    assert_eq!(rules.matches("-A INPUT -j rampart").count(), 1, "{rules}");
    assert!(
        rules.contains("-A rampart -p tcp -m set --match-set rampart4_sshd src -m multiport --dports 2202 -j DROP"),
        "{rules}"
    );
    let rules6 = net.in_server(&[IP6TABLES, "-w", "-S"]);
    assert!(rules6.contains("--match-set rampart6_sshd src"), "{rules6}");

    // A deleted jump comes back.
    net.in_server(&[IPTABLES, "-w", "-D", "INPUT", "-j", "rampart"]);
    b.prepare(&[scope("sshd", &[2202])]).unwrap();
    assert!(b.last_prepare_rewrote());
    let rules = net.in_server(&[IPTABLES, "-w", "-S"]);
    assert_eq!(rules.matches("-A INPUT -j rampart").count(), 1, "{rules}");
}

#[test]
fn lost_sets_show_in_list_and_prepare_plus_ban_restore_them() {
    let net = Net::new("ilost");
    let _l = net.listen(2201);
    let mut b = backend(&net);
    let scopes = [scope("sshd", &[2201])];
    b.prepare(&scopes).unwrap();
    let now = now();
    let bans = [entry("sshd", "192.0.2.2/32", now, 300.0)];
    b.ban(&bans, now).unwrap();

    net.in_server(&[IPSET, "flush", "rampart4_sshd"]);
    assert!(b.list(now).unwrap().is_empty(), "list shows the loss");
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201));
    b.prepare(&scopes).unwrap();
    b.ban(&bans, now).unwrap();
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 2201));

    // Everything removed by hand: chain, jump, sets.
    net.in_server(&[IPTABLES, "-w", "-D", "INPUT", "-j", "rampart"]);
    net.in_server(&[IPTABLES, "-w", "-F", "rampart"]);
    net.in_server(&[IPTABLES, "-w", "-X", "rampart"]);
    net.in_server(&[IP6TABLES, "-w", "-D", "INPUT", "-j", "rampart"]);
    net.in_server(&[IP6TABLES, "-w", "-F", "rampart"]);
    net.in_server(&[IP6TABLES, "-w", "-X", "rampart"]);
    net.in_server(&[IPSET, "destroy", "rampart4_sshd"]);
    assert!(b.list(now).unwrap().is_empty());
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201));
    assert!(b.ban(&bans, now).is_err(), "the set is gone");
    b.prepare(&scopes).unwrap();
    assert!(b.last_prepare_rewrote());
    b.ban(&bans, now).unwrap();
    assert_eq!(b.list(now).unwrap().len(), 1);
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 2201));
}

#[test]
fn foreign_sets_and_chains_are_never_touched() {
    let net = Net::new("iforeign");
    net.in_server(&[IPSET, "create", "blocklist", "hash:ip", "timeout", "0"]);
    net.in_server(&[IPSET, "add", "blocklist", "198.51.100.7"]);
    net.in_server(&[IPSET, "create", "r4_sshd", "hash:ip"]);
    net.in_server(&[IPTABLES, "-w", "-N", "mine"]);
    net.in_server(&[
        IPTABLES,
        "-w",
        "-A",
        "mine",
        "-m",
        "set",
        "--match-set",
        "blocklist",
        "src",
        "-j",
        "DROP",
    ]);
    net.in_server(&[IPTABLES, "-w", "-A", "INPUT", "-j", "mine"]);
    let snapshot = || {
        let sets = net.in_server(&[IPSET, "save", "blocklist"])
            + &net.in_server(&[IPSET, "save", "r4_sshd"]);
        let rules: Vec<String> = net
            .in_server(&[IPTABLES, "-w", "-S"])
            .lines()
            .filter(|l| !l.contains("rampart"))
            .map(str::to_owned)
            .collect();
        (sets, rules)
    };
    let before = snapshot();
    let mut b = backend(&net);
    let now = now();
    b.prepare(&[scope("sshd", &[22]), scope("web", &[])])
        .unwrap();
    b.ban(
        &[
            entry("sshd", "192.0.2.2/32", now, 60.0),
            entry("web", "2001:db8::/64", now, 60.0),
        ],
        now,
    )
    .unwrap();
    assert_eq!(b.list(now).unwrap().len(), 2);
    b.unban(&[(jail("sshd"), "198.51.100.7/32".parse().unwrap())])
        .unwrap();
    b.prepare(&[scope("sshd", &[23])]).unwrap();
    b.prepare(&[]).unwrap();
    assert_eq!(snapshot(), before);
    let rules = net.in_server(&[IPTABLES, "-w", "-S"]);
    assert!(rules.contains("-A INPUT -j mine"), "{rules}");
}

#[test]
fn forward_jump_exists_only_when_configured() {
    let net = Net::new("ifwd");
    let mut b = IpsetConfig {
        forward: true,
        ..config(&net)
    }
    .build()
    .unwrap();
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    for tool in [IPTABLES, IP6TABLES] {
        let r = net.in_server(&[tool, "-w", "-S"]);
        assert!(r.contains("-A FORWARD -j rampart"), "{r}");
    }
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    for tool in [IPTABLES, IP6TABLES] {
        let r = net.in_server(&[tool, "-w", "-S"]);
        assert!(!r.contains("-A FORWARD -j rampart"), "{r}");
        assert!(r.contains("-A INPUT -j rampart"), "{r}");
    }
}

#[test]
fn long_jail_names_get_hashed_set_names_within_31_bytes() {
    let net = Net::new("ilong");
    let mut b = backend(&net);
    let long = format!("{}-one", "nginx-botsearch-with-a-long-name");
    b.prepare(&[scope(&long, &[80]), scope(&format!("{long}x"), &[80])])
        .unwrap();
    let (v4, v6) = b.set_names(&jail(&long)).unwrap();
    assert!(v4.len() <= 31 && v6.len() <= 31, "{v4} {v6}");
    let now = now();
    b.ban(&[entry(&long, "192.0.2.2/32", now, 60.0)], now)
        .unwrap();
    let l = b.list(now).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].jail.as_str(), long);
}

#[test]
fn hundred_thousand_bans_in_one_call() {
    let net = Net::new("i100k");
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let now = now();
    let mut bans = many_v6("sshd", 100_000, now, 3600.0);
    bans.extend((1..=254).map(|i| entry("sshd", &format!("198.51.100.{i}/32"), now, 3600.0)));
    b.ban(&bans, now).unwrap();
    let listed = b.list(now).unwrap();
    assert_eq!(listed.len(), bans.len());
    let distinct: std::collections::HashSet<_> = listed.iter().map(|e| e.net).collect();
    assert_eq!(distinct.len(), bans.len(), "every ban listed exactly once");
    let r = remaining_secs(&listed, "sshd", "2001:db8:101:869f::/64", now).unwrap();
    assert!(r > 3500.0, "{r}");
}
