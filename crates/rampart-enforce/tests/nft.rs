//! The nftables backend against the real kernel, in namespaces made by each test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use rampart_enforce::{NftBackend, NftConfig, TimeoutRefresh};

const NFT: &str = "/usr/sbin/nft";

fn backend(net: &Net) -> NftBackend {
    config(net).build().unwrap()
}

fn config(net: &Net) -> NftConfig {
    NftConfig {
        netns: Some(net.server_path()),
        ..NftConfig::default()
    }
}

fn v4(addr: &str) -> (JailName, ipnet::IpNet) {
    (jail("x"), format!("{addr}/32").parse().unwrap())
}

#[test]
fn ban_drops_only_scoped_ports_and_an_all_ports_scope_drops_everything() {
    common::ban_drops_only_scoped_ports_and_an_all_ports_scope_drops_everything("nports", backend);
}

#[test]
fn ipv6_prefix_ban_drops_every_address_in_the_prefix() {
    common::ipv6_prefix_ban_drops_every_address_in_the_prefix("nv6", backend);
}

#[test]
fn ban_expires_after_its_timeout_and_the_client_connects_again() {
    common::ban_expires_after_its_timeout_and_the_client_connects_again("nexp", backend);
}

#[test]
fn ban_of_a_present_entry_sets_its_new_timeout_and_unban_removes_it() {
    for refresh in [TimeoutRefresh::Update, TimeoutRefresh::Replace] {
        reban_and_unban(refresh);
    }
}

#[test]
fn the_timeout_refresh_probe_matches_the_kernel_and_leaves_nothing_behind() {
    let net = Net::new("nprobe");
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let r = b.timeout_refresh();
    let release = run(&["/usr/bin/uname", "-r"]);
    let mut v = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap(), v.next().unwrap());
    // Element timeout updates on a plain add arrived in Linux 6.11.
    let expected = if (major, minor) >= (6, 11) {
        TimeoutRefresh::Update
    } else {
        TimeoutRefresh::Replace
    };
    assert_eq!(r, expected, "kernel {release}");
    let probe = net.in_server(&[NFT, "list", "set", "inet", "rampart", "probe_refresh"]);
    assert!(!probe.contains("elements"), "{probe}");
    assert!(
        b.list(now()).unwrap().is_empty(),
        "the probe set is not a jail's"
    );
}

fn reban_and_unban(refresh: TimeoutRefresh) {
    let net = Net::new("nreban");
    let mut b = backend(&net);
    b.force_timeout_refresh(refresh);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let now = now();
    b.ban(
        &[
            entry("sshd", "192.0.2.2/32", now, 100.0),
            entry("sshd", "2001:db8::/64", now, 100.0),
        ],
        now,
    )
    .unwrap();
    let l = b.list(now).unwrap();
    let r = remaining_secs(&l, "sshd", "192.0.2.2/32", now).unwrap();
    assert!((98.0..=100.01).contains(&r), "{r}");

    for secs in [1000.0, 50.0] {
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
            let r = remaining_secs(&l, "sshd", n, now).unwrap();
            assert!(
                r > secs - 2.0 && r <= secs + 0.01,
                "{n}: {r} after re-ban to {secs}"
            );
        }
    }

    // Duplicates in one call: the last one wins.
    b.ban(
        &[
            entry("sshd", "192.0.2.2/32", now, 500.0),
            entry("sshd", "192.0.2.2/32", now, 700.0),
        ],
        now,
    )
    .unwrap();
    let r = remaining_secs(&b.list(now).unwrap(), "sshd", "192.0.2.2/32", now).unwrap();
    assert!(r > 698.0, "{r}");

    // Unban of present and absent entries together, and of a duplicate.
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
    // Expired entries are skipped, not added.
    b.ban(&[entry("sshd", "192.0.2.9/32", now, -5.0)], now)
        .unwrap();
    assert_eq!(b.list(now).unwrap().len(), 1);
}

#[test]
fn prepare_is_idempotent_keeps_elements_and_drops_sets_of_gone_jails() {
    let net = Net::new("nprep");
    let _l = net.listen(2201);
    let _m = net.listen(8080);
    let mut b = backend(&net);
    let scopes = [scope("sshd", &[2201]), scope("web", &[8080])];
    b.prepare(&scopes).unwrap();
    assert!(b.last_prepare_rewrote(), "first prepare creates the table");
    let now = now();
    b.ban(
        &[
            entry("sshd", "192.0.2.2/32", now, 300.0),
            entry("web", "192.0.2.2/32", now, 300.0),
        ],
        now,
    )
    .unwrap();
    let before = net.in_server(&[NFT, "-s", "list", "table", "inet", "rampart"]);
    b.prepare(&scopes).unwrap();
    assert!(!b.last_prepare_rewrote(), "nothing to do the second time");
    let after = net.in_server(&[NFT, "-s", "list", "table", "inet", "rampart"]);
    assert_eq!(before, after);
    assert_eq!(b.list(now).unwrap().len(), 2);

    // A fresh backend (a daemon restart) sees the same table as current.
    let mut again = backend(&net);
    again.prepare(&scopes).unwrap();
    assert!(!again.last_prepare_rewrote());

    // A changed port rewrites the rules but keeps the elements.
    b.prepare(&[scope("sshd", &[2202]), scope("web", &[8080])])
        .unwrap();
    assert!(b.last_prepare_rewrote());
    assert_eq!(b.list(now).unwrap().len(), 2);
    assert!(
        net.connects(CLIENT_V4, SERVER_V4, 2201),
        "2201 is no longer in scope"
    );
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 8080));

    // A gone jail loses its sets (and its bans); the rest stays.
    b.prepare(&[scope("sshd", &[2202])]).unwrap();
    let l = b.list(now).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].jail.as_str(), "sshd");
    let ruleset = net.in_server(&[NFT, "list", "table", "inet", "rampart"]);
    assert!(!ruleset.contains("j_web_"), "{ruleset}");
    assert!(net.connects(CLIENT_V4, SERVER_V4, 8080));

    // Someone deletes one of rampart's rules: prepare notices and restores it.
    let handles = net.in_server(&[NFT, "-a", "list", "chain", "inet", "rampart", "input"]);
    let handle = handles
        .lines()
        .find(|l| l.contains("j_sshd_4"))
        .and_then(|l| l.rsplit("handle ").next())
        .unwrap()
        .trim()
        .to_owned();
    net.in_server(&[
        NFT, "delete", "rule", "inet", "rampart", "input", "handle", &handle,
    ]);
    b.prepare(&[scope("sshd", &[2202])]).unwrap();
    assert!(b.last_prepare_rewrote());
    let ruleset = net.in_server(&[NFT, "list", "table", "inet", "rampart"]);
    assert!(ruleset.contains("@j_sshd_4 drop"), "{ruleset}");
}

#[test]
fn lost_elements_and_a_deleted_table_show_in_list_and_prepare_plus_ban_restore_them() {
    let net = Net::new("nlost");
    let _l = net.listen(2201);
    let mut b = backend(&net);
    let scopes = [scope("sshd", &[2201])];
    b.prepare(&scopes).unwrap();
    let now = now();
    let bans = [entry("sshd", "192.0.2.2/32", now, 300.0)];
    b.ban(&bans, now).unwrap();

    net.in_server(&[NFT, "flush", "set", "inet", "rampart", "j_sshd_4"]);
    assert!(b.list(now).unwrap().is_empty(), "list shows the loss");
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201));
    b.prepare(&scopes).unwrap();
    b.ban(&bans, now).unwrap();
    assert_eq!(b.list(now).unwrap().len(), 1);
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 2201));

    net.in_server(&[NFT, "delete", "table", "inet", "rampart"]);
    assert!(
        b.list(now).unwrap().is_empty(),
        "no table: nothing listed, no error"
    );
    assert!(net.connects(CLIENT_V4, SERVER_V4, 2201));
    let err = b.ban(&bans, now).unwrap_err();
    assert!(err.message.contains("prepare"), "{err}");
    b.prepare(&scopes).unwrap();
    assert!(b.last_prepare_rewrote());
    b.ban(&bans, now).unwrap();
    assert_eq!(b.list(now).unwrap().len(), 1);
    assert!(!net.connects(CLIENT_V4, SERVER_V4, 2201));
}

#[test]
fn a_foreign_table_is_never_touched() {
    let net = Net::new("nforeign");
    let script = "table inet foreign {\n\
        set j_sshd_4 { type ipv4_addr; flags timeout; elements = { 198.51.100.7 timeout 1h } }\n\
        set blocklist { type ipv4_addr; flags interval; elements = { 203.0.113.0/24 } }\n\
        chain input { type filter hook input priority 0; policy accept; ip saddr @blocklist counter drop; }\n\
        }\n";
    let path = std::env::temp_dir().join(format!("{}.nft", net.server));
    std::fs::write(&path, script).unwrap();
    net.in_server(&[NFT, "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    let snapshot = || {
        // Without the remaining time (the word after `expires`), which moves.
        let t = net.in_server(&[NFT, "list", "table", "inet", "foreign"]);
        let mut words = Vec::new();
        let mut skip = false;
        for w in t.split_whitespace() {
            if !std::mem::replace(&mut skip, w == "expires") {
                words.push(w);
            }
        }
        words.join(" ")
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
    let listed = b.list(now).unwrap();
    assert_eq!(
        listed.len(),
        2,
        "the foreign j_sshd_4 is not rampart's: {listed:?}"
    );
    b.unban(&[(jail("sshd"), "198.51.100.7/32".parse().unwrap())])
        .unwrap();
    b.prepare(&[scope("sshd", &[23])]).unwrap();
    b.prepare(&[]).unwrap();

    assert_eq!(snapshot(), before);
    let foreign = net.in_server(&[NFT, "list", "set", "inet", "foreign", "j_sshd_4"]);
    assert!(foreign.contains("198.51.100.7"), "{foreign}");
}

#[test]
fn forward_chain_exists_only_when_configured() {
    let net = Net::new("nfwd");
    let mut b = NftConfig {
        forward: true,
        ..config(&net)
    }
    .build()
    .unwrap();
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let t = net.in_server(&[NFT, "list", "table", "inet", "rampart"]);
    assert!(t.contains("hook forward priority filter - 10"), "{t}");
    assert_eq!(t.matches("@j_sshd_4 drop").count(), 2, "{t}");
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let t = net.in_server(&[NFT, "list", "table", "inet", "rampart"]);
    assert!(!t.contains("hook forward"), "{t}");
}

#[test]
fn entries_that_do_not_fit_are_rejected_before_the_kernel_sees_the_call() {
    let net = Net::new("nbad");
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    let now = now();
    for bad in [
        entry("other", "192.0.2.2/32", now, 60.0),
        entry("sshd", "192.0.2.0/24", now, 60.0),
        entry("sshd", "2001:db8::2/128", now, 60.0),
    ] {
        let good = entry("sshd", "192.0.2.3/32", now, 60.0);
        assert!(b.ban(&[good, bad.clone()], now).is_err(), "{bad:?}");
    }
    assert!(
        b.list(now).unwrap().is_empty(),
        "nothing of a refused call is applied"
    );
    assert!(
        b.unban(&[v4("192.0.2.2")]).is_err(),
        "jail x was never prepared"
    );
}

#[test]
fn hundred_thousand_bans_in_one_call() {
    let net = Net::new("n100k");
    let mut b = backend(&net);
    b.prepare(&[scope("sshd", &[22])]).unwrap();
    for refresh in [TimeoutRefresh::Replace, TimeoutRefresh::Update] {
        b.force_timeout_refresh(refresh);
        let now = now();
        let mut bans = many_v6("sshd", 100_000, now, 3600.0);
        bans.extend((1..=254).map(|i| entry("sshd", &format!("198.51.100.{i}/32"), now, 3600.0)));
        b.ban(&bans, now).unwrap();
        // Listed right away, while the kernel still grows the set's hash table.
        let listed = b.list(now).unwrap();
        assert_eq!(listed.len(), bans.len());
        let distinct: std::collections::HashSet<_> = listed.iter().map(|e| e.net).collect();
        assert_eq!(distinct.len(), bans.len(), "every ban listed exactly once");
        let r = remaining_secs(&listed, "sshd", "2001:db8:101:86a0::/64", now);
        assert!(r.is_none(), "100000 = 0x186a0 is past the last one");
        let r = remaining_secs(&listed, "sshd", "2001:db8:101:869f::/64", now).unwrap();
        assert!(r > 3500.0, "{r}");
        // Once more with a longer timeout: all present, all refreshed.
        for e in &mut bans {
            e.expires = now.saturating_add(Duration::from_secs(7200));
        }
        b.ban(&bans, now).unwrap();
        let listed = b.list(now).unwrap();
        assert_eq!(listed.len(), bans.len());
        let min = listed
            .iter()
            .map(|e| e.expires.duration_since(now))
            .min()
            .unwrap();
        assert!(min > Duration::from_secs(7100), "{min:?} with {refresh:?}");
        b.unban(
            &bans
                .iter()
                .map(|e| (e.jail.clone(), e.net))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(b.list(now).unwrap().is_empty());
    }
}
