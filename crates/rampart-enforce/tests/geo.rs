//! Country policies against the real kernel (nftables interval sets over netlink, and
//! ipset hash:net + iptables), in namespaces made by each test. The "countries" are
//! TEST-NET blocks given to the client as extra addresses.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rampart_enforce::{
    GeoAction, GeoEnforcer, GeoIpsetConfig, GeoNftConfig, GeoPlan, GeoRule, NftConfig,
};

const IN_SET: &str = "198.51.100.5";
const BELOW: &str = "198.51.100.4";
const ABOVE: &str = "198.51.100.6";
const OTHER: &str = "203.0.113.5";

/// Extra client addresses (and the server's routes back to them).
fn add_sources(net: &Net) {
    for a in [IN_SET, BELOW, ABOVE, OTHER] {
        let cidr = format!("{a}/32");
        run(&[
            "/usr/bin/ip",
            "-n",
            &net.client,
            "addr",
            "add",
            &cidr,
            "dev",
            "vc",
        ]);
    }
    for r in ["198.51.100.0/24", "203.0.113.0/24"] {
        run(&[
            "/usr/bin/ip",
            "-n",
            &net.server,
            "route",
            "add",
            r,
            "dev",
            "vs",
        ]);
    }
}

fn rule(
    name: &str,
    action: GeoAction,
    notify: bool,
    ports: &[u16],
    v4: &[&str],
    v6: &[&str],
) -> GeoRule {
    GeoRule {
        name: name.into(),
        action,
        notify,
        protocols: vec![Protocol::Tcp],
        ports: ports
            .iter()
            .map(|&p| PortRange { first: p, last: p })
            .collect(),
        v4: v4.iter().map(|s| s.parse().unwrap()).collect(),
        v6: v6.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

fn nft(net: &Net) -> Box<dyn GeoEnforcer> {
    Box::new(
        GeoNftConfig {
            table: "rampart".into(),
            netns: Some(net.server_path()),
        }
        .build()
        .unwrap(),
    )
}

fn ipset(net: &Net) -> Box<dyn GeoEnforcer> {
    Box::new(
        GeoIpsetConfig {
            netns: Some(net.server_path()),
        }
        .build()
        .unwrap(),
    )
}

fn allow_policy_guards_its_port_only(tag: &str, make: fn(&Net) -> Box<dyn GeoEnforcer>) {
    let net = Net::new(tag);
    add_sources(&net);
    let _a = net.listen(5060);
    let _b = net.listen(8080);
    let mut g = make(&net);
    let plan = GeoPlan {
        rules: vec![rule(
            "voip",
            GeoAction::Allow,
            false,
            &[5060],
            &["198.51.100.5/32"],
            &["2001:db8::2/128"],
        )],
        pass: vec![],
    };
    let applied = g.apply(&plan).unwrap();
    assert!(applied.rules_rewritten);
    assert!(
        net.connects(IN_SET, SERVER_V4, 5060),
        "the set's address is allowed"
    );
    assert!(
        !net.connects(OTHER, SERVER_V4, 5060),
        "another country is dropped"
    );
    assert!(
        !net.connects(BELOW, SERVER_V4, 5060),
        "one below the interval is outside"
    );
    assert!(
        !net.connects(ABOVE, SERVER_V4, 5060),
        "one above the interval is outside"
    );
    assert!(
        net.connects(OTHER, SERVER_V4, 8080),
        "a port without policy is open to all"
    );
    assert!(net.connects(CLIENT_V6, SERVER_V6, 5060), "IPv6 in the set");
    assert!(
        !net.connects(CLIENT_V6_SAME_64, SERVER_V6, 5060),
        "IPv6 outside the set"
    );
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 5060));

    // The jails' allowlists always pass.
    let mut with_pass = plan.clone();
    with_pass.pass = vec!["192.0.2.2/32".parse().unwrap()];
    g.apply(&with_pass).unwrap();
    assert!(net.connects(CLIENT_V4, SERVER_V4, 5060), "allowlisted");
    assert!(!net.connects(OTHER, SERVER_V4, 5060));

    // An update replaces the set: the outcome flips.
    let mut moved = with_pass.clone();
    moved.rules[0].v4 = vec!["203.0.113.0/24".parse().unwrap()];
    let applied = g.apply(&moved).unwrap();
    assert!(!applied.rules_rewritten, "same rules, new contents");
    assert!(applied.loaded.iter().any(|(n, _)| n.contains("voip")));
    assert!(net.connects(OTHER, SERVER_V4, 5060));
    assert!(!net.connects(IN_SET, SERVER_V4, 5060));

    // Applying the same plan again changes nothing.
    let again = g.apply(&moved).unwrap();
    assert!(
        again.loaded.is_empty() && !again.rules_rewritten,
        "{again:?}"
    );

    // Removing the policy opens the port again.
    g.apply(&GeoPlan::default()).unwrap();
    assert!(net.connects(IN_SET, SERVER_V4, 5060));
    g.remove().unwrap();
    assert!(net.connects(OTHER, SERVER_V4, 5060));
}

fn deny_drops_the_set_and_notify_records_without_dropping(
    tag: &str,
    make: fn(&Net) -> Box<dyn GeoEnforcer>,
) {
    let net = Net::new(tag);
    add_sources(&net);
    let _a = net.listen(5060);
    let _b = net.listen(8080);
    let mut g = make(&net);
    let plan = GeoPlan {
        rules: vec![
            rule(
                "global",
                GeoAction::Deny,
                false,
                &[],
                &["203.0.113.0/24"],
                &[],
            ),
            rule(
                "voip",
                GeoAction::Allow,
                true,
                &[5060],
                &["192.0.2.0/24"],
                &[],
            ),
        ],
        pass: vec![],
    };
    g.apply(&plan).unwrap();
    assert!(
        !net.connects(OTHER, SERVER_V4, 8080),
        "denied on every port"
    );
    assert!(net.connects(IN_SET, SERVER_V4, 8080));
    assert!(g.seen().unwrap().is_empty());
    assert!(
        net.connects(IN_SET, SERVER_V4, 5060),
        "notify lets traffic through"
    );
    assert!(net.connects(CLIENT_V4, SERVER_V4, 5060));
    let seen = g.seen().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "voip");
    assert_eq!(seen[0].1.to_string(), IN_SET);
    assert!(g.seen().unwrap().is_empty(), "read elements are deleted");
    g.remove().unwrap();
}

#[test]
fn nft_allow_policy_guards_its_port_only_and_updates_swap_the_set() {
    allow_policy_guards_its_port_only("gnall", nft);
}

#[test]
fn ipset_allow_policy_guards_its_port_only_and_updates_swap_the_set() {
    allow_policy_guards_its_port_only("giall", ipset);
}

#[test]
fn nft_deny_drops_the_set_and_notify_records_without_dropping() {
    deny_drops_the_set_and_notify_records_without_dropping("gndeny", nft);
}

#[test]
fn ipset_deny_drops_the_set_and_notify_records_without_dropping() {
    deny_drops_the_set_and_notify_records_without_dropping("gideny", ipset);
}

#[test]
fn nft_geo_objects_and_jail_sets_live_side_by_side() {
    let net = Net::new("gnside");
    add_sources(&net);
    let _a = net.listen(22);
    let mut jails = NftConfig {
        netns: Some(net.server_path()),
        ..NftConfig::default()
    }
    .build()
    .unwrap();
    jails.prepare(&[scope("sshd", &[22])]).unwrap();
    let mut g = nft(&net);
    // 50,000 disjoint /32s around the test address: a big set loads in one transaction.
    let mut v4: Vec<ipnet::Ipv4Net> = (0..50_000u32)
        .map(|i| ipnet::Ipv4Net::new((0x0a00_0000 + i * 2).into(), 32).unwrap())
        .collect();
    v4.push(IN_SET.parse::<std::net::Ipv4Addr>().unwrap().into());
    let plan = GeoPlan {
        rules: vec![GeoRule {
            v4,
            ..rule("ssh", GeoAction::Allow, false, &[22], &[], &[])
        }],
        pass: vec![],
    };
    let applied = g.apply(&plan).unwrap();
    assert!(applied
        .loaded
        .iter()
        .any(|(n, c)| n == "g_ssh_4" && *c == 100_002));
    assert!(net.connects(IN_SET, SERVER_V4, 22));
    assert!(!net.connects(OTHER, SERVER_V4, 22));
    // A jail ban while the big set is loaded: the jail's own set, unaffected by geo.
    let t = now();
    jails
        .ban(&[entry("sshd", &format!("{IN_SET}/32"), t, 60.0)], t)
        .unwrap();
    assert!(!net.connects(IN_SET, SERVER_V4, 22), "banned by the jail");
    // A jail prepare that rewrites its rules leaves the geo chain alone.
    jails
        .prepare(&[scope("sshd", &[22]), scope("web", &[80])])
        .unwrap();
    assert!(jails.last_prepare_rewrote());
    let chain = net.in_server(&[
        "/usr/sbin/nft",
        "list",
        "chain",
        "inet",
        "rampart",
        "geo_input",
    ]);
    assert!(chain.contains("@g_ssh_4"), "{chain}");
    assert!(!net.connects(OTHER, SERVER_V4, 22));
    let again = g.apply(&plan).unwrap();
    assert!(
        !again.rules_rewritten && again.loaded.is_empty(),
        "{again:?}"
    );
}
