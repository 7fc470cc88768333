use std::time::Duration;

use ipnet::IpNet;
use rampart_core::JailName;

use super::*;
use crate::table::slot_size;
use crate::Escalation;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn fail(addr: &str, s: i64) -> Failure {
    Failure {
        addr: ip(addr),
        time: at(s),
    }
}

/// 3 failures within 60 s ban for 100 s; 10 s of reordering tolerated.
fn policy() -> JailPolicy {
    let mut p = JailPolicy::new(JailName::new("sshd").unwrap());
    p.max_failures = 3;
    p.window = secs(60);
    p.ban_for = secs(100);
    p.reorder_tolerance = secs(10);
    p.max_offenders = 100;
    p
}

fn detector(p: JailPolicy) -> JailDetector {
    JailDetector::new(p).unwrap()
}

fn banned(o: Outcome) -> Ban {
    match o {
        Outcome::Banned(b) => b,
        other => panic!("expected a ban, got {other:?}"),
    }
}

fn counted(n: u32) -> Outcome {
    Outcome::Counted { failures: n }
}

fn escalating(factor: f64, max: u64, forget_after: u64) -> JailPolicy {
    let mut p = policy();
    p.escalation = Some(Escalation {
        factor,
        max: secs(max),
        forget_after: secs(forget_after),
    });
    p
}

/// Bans `addr` with three failures starting at `t`, and returns the ban.
fn ban_at(d: &mut JailDetector, addr: &str, t: i64) -> Ban {
    assert_eq!(d.record(fail(addr, t)), counted(1));
    assert_eq!(d.record(fail(addr, t + 1)), counted(2));
    banned(d.record(fail(addr, t + 2)))
}

#[test]
fn bans_after_max_failures_within_window() {
    let mut d = detector(policy());
    assert_eq!(d.record(fail("198.51.100.7", 1000)), counted(1));
    assert_eq!(d.record(fail("198.51.100.7", 1010)), counted(2));
    assert_eq!(d.tracked(), 1);
    let ban = banned(d.record(fail("198.51.100.7", 1059)));
    assert_eq!(ban.jail.as_str(), "sshd");
    assert_eq!(ban.offender, Offender::from_addr(ip("198.51.100.7"), 64));
    assert_eq!(ban.addr, ip("198.51.100.7"));
    assert_eq!(ban.failures, 3);
    assert_eq!(ban.first_failure, at(1000));
    assert_eq!(ban.last_failure, at(1059));
    assert_eq!(ban.start, at(1059));
    assert_eq!(ban.end, at(1159));
    assert_eq!(ban.level, 0);
    assert_eq!(d.tracked(), 0, "a ban clears the window");
    let s = d.stats();
    assert_eq!((s.failures, s.counted, s.bans), (3, 3, 1));
}

#[test]
fn does_not_ban_when_failures_are_spread_wider_than_window() {
    let mut d = detector(policy());
    assert_eq!(d.record(fail("198.51.100.7", 0)), counted(1));
    assert_eq!(d.record(fail("198.51.100.7", 30)), counted(2));
    // 0, 30, 60: last - first == window, which is not strictly shorter.
    assert_eq!(d.record(fail("198.51.100.7", 60)), counted(2));
    assert_eq!(d.record(fail("198.51.100.7", 90)), counted(2));
    assert_eq!(d.stats().bans, 0);
    // 60, 90 and 119.999999 lie within 59.999999 s.
    let tipping = Failure {
        addr: ip("198.51.100.7"),
        time: Timestamp::from_micros(119_999_999),
    };
    assert!(matches!(d.record(tipping), Outcome::Banned(_)));
    assert_eq!(d.stats().bans, 1);
}

#[test]
fn allowlist_always_wins() {
    let mut p = policy();
    p.max_failures = 1;
    p.allow = AllowList::new(
        [
            "203.0.113.0/24",
            "2001:db8:1:2::5/128",
            "::ffff:192.0.2.0/120",
        ]
        .map(|n| n.parse::<IpNet>().unwrap()),
    );
    let mut d = detector(p);
    let allowed = [
        "203.0.113.1",
        "203.0.113.255",
        "::ffff:203.0.113.9",
        "192.0.2.44",
        "127.0.0.1",
        "127.3.2.1",
        "::ffff:127.0.0.1",
        "::1",
        "0.0.0.0",
        "::",
        // Shares the /64 of an allowlisted address: banning the /64 would ban it too.
        "2001:db8:1:2::bad",
    ];
    for (n, a) in allowed.iter().enumerate() {
        for k in 0..5 {
            assert_eq!(
                d.record(fail(a, n as i64 * 10 + k)),
                Outcome::Allowlisted,
                "{a}"
            );
        }
        assert!(d.is_allowlisted(ip(a)), "{a}");
    }
    assert_eq!(d.tracked(), 0);
    assert_eq!(d.stats().allowlisted, 5 * allowed.len() as u64);
    assert_eq!(d.stats().bans, 0);
    for a in [
        "203.0.114.1",
        "2001:db8:1:3::5",
        "192.0.3.1",
        "::ffff:198.51.100.1",
    ] {
        assert!(!d.is_allowlisted(ip(a)), "{a}");
        assert!(matches!(d.record(fail(a, 1000)), Outcome::Banned(_)), "{a}");
    }
}

#[test]
fn ipv6_addresses_in_one_prefix_count_together() {
    let mut d = detector(policy());
    assert_eq!(d.record(fail("2001:db8:1:2::1", 0)), counted(1));
    assert_eq!(d.record(fail("2001:db8:1:2:ffff::2", 1)), counted(2));
    assert_eq!(
        d.record(fail("2001:db8:1:3::1", 2)),
        counted(1),
        "another /64"
    );
    let ban = banned(d.record(fail("2001:db8:1:2:abcd::3", 3)));
    assert_eq!(ban.offender.to_string(), "2001:db8:1:2::/64");
    assert_eq!(ban.addr, ip("2001:db8:1:2:abcd::3"));
    assert_eq!(ban.failures, 3);
    assert_eq!(
        d.record(fail("2001:db8:1:2::99", 4)),
        Outcome::WhileBanned { until: at(103) }
    );

    let mut p = policy();
    p.ipv6_prefix = 128;
    let mut d = detector(p);
    assert_eq!(d.record(fail("2001:db8::1", 0)), counted(1));
    assert_eq!(d.record(fail("2001:db8::2", 0)), counted(1));
}

#[test]
fn late_failure_within_tolerance_is_counted_exactly() {
    // In order: 95, 100, 150 ban. Out of order by 55 s but only 0..10 s late per offender.
    let mut d = detector(policy());
    assert_eq!(d.record(fail("192.0.2.1", 100)), counted(1));
    assert_eq!(d.record(fail("192.0.2.1", 150)), counted(2));
    let ban = banned(d.record(fail("192.0.2.1", 141)));
    assert_eq!((ban.first_failure, ban.last_failure), (at(100), at(150)));
    assert_eq!(
        ban.start,
        at(141),
        "the ban starts at the failure that tipped it"
    );
    assert_eq!(ban.end, at(241));

    // A late failure that only fits with the newer one is counted with it.
    let mut d = detector(policy());
    assert_eq!(d.record(fail("192.0.2.1", 100)), counted(1));
    assert_eq!(d.record(fail("192.0.2.1", 170)), counted(1));
    assert_eq!(
        d.record(fail("192.0.2.1", 161)),
        counted(2),
        "161 - 100 >= 60"
    );
    let ban = banned(d.record(fail("192.0.2.1", 160)));
    assert_eq!((ban.first_failure, ban.last_failure), (at(160), at(170)));
    assert_eq!(ban.failures, 3);
    assert_eq!(d.stats().too_late, 0);
}

#[test]
fn failure_older_than_tolerance_is_too_late() {
    let mut d = detector(policy());
    assert_eq!(d.record(fail("192.0.2.1", 100)), counted(1));
    assert_eq!(d.record(fail("192.0.2.1", 161)), counted(1));
    let just_too_late = Failure {
        addr: ip("192.0.2.1"),
        time: Timestamp::from_micros(150_999_999),
    };
    assert_eq!(d.record(just_too_late), Outcome::TooLate);
    assert_eq!(d.record(fail("192.0.2.1", 99)), Outcome::TooLate);
    assert_eq!(d.stats().too_late, 2);
    assert_eq!(d.stats().counted, 2);
    // Exactly `reorder_tolerance` late still counts (with 161, and also with 100).
    assert_eq!(d.record(fail("192.0.2.1", 151)), counted(2));
    assert_eq!(d.stats().failures, 5);
}

#[test]
fn failures_while_banned_are_not_counted() {
    let mut d = detector(policy());
    let ban = ban_at(&mut d, "192.0.2.1", 0);
    assert_eq!(ban.end, at(102));
    for t in [2, 3, 50, 101, -1000] {
        assert_eq!(
            d.record(fail("192.0.2.1", t)),
            Outcome::WhileBanned { until: at(102) }
        );
    }
    assert_eq!(
        d.record(fail("::ffff:192.0.2.1", 60)),
        Outcome::WhileBanned { until: at(102) }
    );
    assert_eq!(d.tracked(), 0);
    let s = d.stats();
    assert_eq!((s.while_banned, s.counted, s.failures), (6, 3, 9));
}

#[test]
fn counting_restarts_after_ban_expires() {
    let mut d = detector(policy());
    let ban = ban_at(&mut d, "192.0.2.1", 0);
    assert_eq!(ban.end, at(102));
    assert_eq!(
        d.record(fail("192.0.2.1", 102)),
        counted(1),
        "fresh count at the end"
    );
    assert_eq!(
        d.record(fail("192.0.2.1", 101)),
        Outcome::WhileBanned { until: at(102) }
    );
    assert_eq!(d.record(fail("192.0.2.1", 103)), counted(2));
    let again = banned(d.record(fail("192.0.2.1", 104)));
    assert_eq!(again.first_failure, at(102));
    assert_eq!(again.level, 1, "the earlier ban is remembered");
    assert_eq!(
        again.end,
        at(204),
        "without escalation every ban lasts ban_for"
    );
}

#[test]
fn escalation_doubles_and_caps_at_max() {
    let mut d = detector(escalating(2.0, 350, 10_000));
    let mut t = 0;
    let mut got = Vec::new();
    for _ in 0..5 {
        let ban = ban_at(&mut d, "192.0.2.1", t);
        got.push((ban.level, ban.end.as_secs() - ban.start.as_secs()));
        t = ban.end.as_secs();
    }
    assert_eq!(got, [(0, 100), (1, 200), (2, 350), (3, 350), (4, 350)]);

    // An absurd level neither overflows nor panics.
    let offender = Offender::from_addr(ip("192.0.2.2"), 64);
    d.seed_history(offender, u32::MAX, at(0));
    let ban = ban_at(&mut d, "192.0.2.2", 10);
    assert_eq!(
        (ban.level, ban.end.as_secs() - ban.start.as_secs()),
        (u32::MAX, 350)
    );
    let mut d = detector(escalating(1e300, u64::MAX / 2, 10_000));
    d.seed_history(offender, 1_000, at(0));
    let ban = ban_at(&mut d, "192.0.2.2", 10);
    assert_eq!(ban.end, Timestamp::from_micros(i64::MAX), "saturates");
}

#[test]
fn escalation_forgets_after_forget_after() {
    let mut d = detector(escalating(2.0, 10_000, 500));
    let first = ban_at(&mut d, "192.0.2.1", 0);
    assert_eq!(first.end, at(102));
    // Starts exactly forget_after after the last end: still remembered.
    let second = ban_at(&mut d, "192.0.2.1", 600);
    assert_eq!(second.start, at(602));
    assert_eq!(second.level, 1);
    assert_eq!(second.end, at(802));
    // Starts more than forget_after after the last end: forgotten, and counting starts over.
    let third = ban_at(&mut d, "192.0.2.1", 1301);
    assert_eq!(third.start, at(1303));
    assert_eq!(third.level, 0);
    assert_eq!(third.end, at(1403));
    let fourth = ban_at(&mut d, "192.0.2.1", 1403);
    assert_eq!(fourth.level, 1);
}

#[test]
fn seeded_history_escalates_first_ban() {
    let mut d = detector(escalating(2.0, 10_000, 1_000));
    let offender = Offender::from_addr(ip("2001:db8:5:6::1"), 64);
    d.seed_history(offender, 2, at(50));
    assert_eq!(d.remembered(), 1);
    let ban = ban_at(&mut d, "2001:db8:5:6::77", 100);
    assert_eq!(ban.level, 2);
    assert_eq!(ban.end, at(102 + 400));

    // A seeded ban that is still running makes failures WhileBanned.
    let other = Offender::from_addr(ip("192.0.2.9"), 64);
    d.seed_history(other, 1, at(5_000));
    assert_eq!(
        d.record(fail("192.0.2.9", 4_000)),
        Outcome::WhileBanned { until: at(5_000) }
    );

    // An offender remembered under another prefix length is regrouped.
    let narrow = Offender::from_addr(ip("2001:db8:7:8::1"), 128);
    d.seed_history(narrow, 1, at(0));
    assert_eq!(ban_at(&mut d, "2001:db8:7:8::2", 100).level, 1);

    // Seeding zero bans forgets.
    d.seed_history(other, 0, at(0));
    assert_eq!(d.record(fail("192.0.2.9", 4_000)), counted(1));
}

#[test]
fn table_evicts_least_recently_seen_and_counts_it() {
    let mut p = policy();
    p.max_failures = 5;
    p.max_offenders = 2;
    let mut d = detector(p);
    assert_eq!(d.record(fail("192.0.2.1", 0)), counted(1)); // A
    assert_eq!(d.record(fail("192.0.2.2", 1)), counted(1)); // B
    assert_eq!(d.record(fail("192.0.2.1", 2)), counted(2)); // A seen again: B is the oldest
    assert_eq!(d.record(fail("192.0.2.3", 3)), counted(1)); // C evicts B
    assert_eq!(d.stats().evictions, 1);
    assert_eq!(d.tracked(), 2);
    assert_eq!(d.record(fail("192.0.2.1", 4)), counted(3), "A was kept");
    assert_eq!(
        d.record(fail("192.0.2.2", 5)),
        counted(1),
        "B's count was lost; C evicted"
    );
    assert_eq!(
        d.record(fail("192.0.2.3", 6)),
        counted(1),
        "C's count was lost; A evicted"
    );
    assert_eq!(d.stats().evictions, 3);
    assert_eq!(d.tracked(), 2);

    // The ban history is bounded the same way.
    let mut p = policy();
    p.max_offenders = 1;
    let mut d = detector(p);
    assert_eq!(ban_at(&mut d, "192.0.2.1", 0).level, 0);
    assert_eq!(ban_at(&mut d, "192.0.2.2", 0).level, 0);
    assert_eq!(d.stats().history_evictions, 1);
    assert_eq!(d.remembered(), 1);
    assert_eq!(
        d.record(fail("192.0.2.1", 50)),
        counted(1),
        "its running ban was forgotten"
    );
    assert_eq!(
        ban_at(&mut d, "192.0.2.1", 200).level,
        0,
        "and its escalation"
    );
}

#[test]
fn invalid_policy_is_rejected_with_field_name() {
    let esc = |factor: f64, max: u64| {
        Some(Escalation {
            factor,
            max: secs(max),
            forget_after: secs(0),
        })
    };
    type Breaker = Box<dyn Fn(&mut JailPolicy)>;
    let cases: Vec<(&str, Breaker)> = vec![
        ("max_failures", Box::new(|p| p.max_failures = 0)),
        ("window", Box::new(|p| p.window = Duration::ZERO)),
        ("window", Box::new(|p| p.window = Duration::from_nanos(999))),
        ("ban_for", Box::new(|p| p.ban_for = Duration::ZERO)),
        (
            "escalation.factor",
            Box::new(move |p| p.escalation = esc(0.5, 1000)),
        ),
        (
            "escalation.factor",
            Box::new(move |p| p.escalation = esc(f64::NAN, 1000)),
        ),
        (
            "escalation.factor",
            Box::new(move |p| p.escalation = esc(f64::INFINITY, 1000)),
        ),
        (
            "escalation.max",
            Box::new(move |p| p.escalation = esc(2.0, 99)),
        ),
        ("ipv6_prefix", Box::new(|p| p.ipv6_prefix = 0)),
        ("ipv6_prefix", Box::new(|p| p.ipv6_prefix = 129)),
        ("max_offenders", Box::new(|p| p.max_offenders = 0)),
        ("max_offenders", Box::new(|p| p.max_offenders = usize::MAX)),
    ];
    for (field, break_it) in cases {
        let mut p = policy();
        break_it(&mut p);
        let err = JailDetector::new(p).unwrap_err();
        assert_eq!(err.field(), field);
        let text = err.to_string();
        assert!(text.contains(field) && text.contains("sshd"), "{text}");
    }
    let mut ok = policy();
    ok.escalation = esc(1.0, 100);
    ok.reorder_tolerance = Duration::ZERO;
    ok.max_offenders = 1;
    assert!(JailDetector::new(ok).is_ok());
}

#[test]
fn max_failures_of_one_bans_at_once_without_tracking() {
    let mut p = policy();
    p.max_failures = 1;
    p.max_offenders = 1;
    let mut d = detector(p);
    assert_eq!(d.record(fail("192.0.2.1", 0)), counted_or_ban(&d));
    assert_eq!(d.tracked(), 0);
    assert_eq!(d.stats().evictions, 0);

    fn counted_or_ban(d: &JailDetector) -> Outcome {
        Outcome::Banned(Ban {
            jail: d.policy().jail.clone(),
            offender: Offender::from_addr(ip("192.0.2.1"), 64),
            addr: ip("192.0.2.1"),
            failures: 1,
            first_failure: at(0),
            last_failure: at(0),
            start: at(0),
            end: at(100),
            level: 0,
        })
    }
}

#[test]
fn many_failures_spill_and_are_released_by_the_ban() {
    let mut p = policy();
    p.max_failures = 20;
    let mut d = detector(p);
    for n in 1..20 {
        assert_eq!(d.record(fail("192.0.2.1", n)), counted(n as u32));
    }
    assert_eq!(d.spilled(), 1);
    assert!(matches!(
        d.record(fail("192.0.2.1", 20)),
        Outcome::Banned(_)
    ));
    assert_eq!(d.spilled(), 0);
}

#[test]
fn memory_per_tracked_offender_is_measured() {
    // The numbers quoted in the crate documentation.
    assert_eq!(slot_size::<Times>(), 24);
    assert_eq!(slot_size::<History>(), 32);

    let n: usize = 1 << 16;
    let mut p = policy();
    p.max_failures = 5;
    p.max_offenders = n;
    let mut d = detector(p);
    for i in 0..n as u32 {
        // Three failures each, whole seconds: all in the 8-byte entry.
        for k in 0..3 {
            let addr = IpAddr::V4((0x0a00_0000 + i).into());
            let out = d.record(Failure {
                addr,
                time: at(i64::from(k)),
            });
            assert_eq!(out, counted(k + 1));
        }
    }
    assert_eq!(d.tracked(), n);
    assert_eq!(d.spilled(), 0);
    let per_offender = d.heap_bytes() as f64 / n as f64;
    // 24 bytes of slot + 8 bytes of index (2^17 buckets of 4 bytes for 2^16 entries).
    assert!(
        per_offender <= 32.01,
        "{per_offender} bytes per tracked offender"
    );

    // The steady state (a full table, evicting) does not grow.
    let before = d.heap_bytes();
    for i in 0..10_000u32 {
        let addr = IpAddr::V4((0x0b00_0000 + i % 3000).into());
        d.record(Failure {
            addr,
            time: at(100 + i64::from(i)),
        });
    }
    assert_eq!(d.heap_bytes(), before);
}
