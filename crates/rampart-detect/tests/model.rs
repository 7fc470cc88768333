//! The detector against a naive model: the model keeps every counted failure of every
//! offender in a plain `Vec`, rescans them all on every failure, and finds least recently
//! used entries by linear search. Random failure sequences must get identical outcomes and
//! statistics from both.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use proptest::prelude::*;
use rampart_core::{Ban, Failure, JailName, Offender, Timestamp};
use rampart_detect::{AllowList, DetectorStats, Escalation, JailDetector, JailPolicy, Outcome};

/// Addresses the failures come from: IPv4 (one also written IPv4-mapped), IPv6 sharing /48,
/// /64 and not /128, allowlisted and loopback ones.
const ADDRS: &[&str] = &[
    "192.0.2.1",
    "192.0.2.2",
    "::ffff:192.0.2.1",
    "2001:db8:0:1::1",
    "2001:db8:0:1::2",
    "2001:db8:0:1:8000::1",
    "2001:db8:0:2::1",
    "2001:db8:1::1",
    "10.9.0.1",
    "127.0.0.1",
    "2001:db8:ffff::1",
    "198.51.100.1",
];

const ALLOW: &[&str] = &["10.9.0.0/16", "2001:db8:ffff::/48"];
/// Optionally allowlisted: shares a /64 (and a /48) with failing addresses.
const EXTRA_ALLOW: &str = "2001:db8:0:2::7/128";
const BUILTIN: &[&str] = &["127.0.0.0/8", "0.0.0.0/32", "::1/128", "::/128"];

#[derive(Clone, Debug)]
struct Setup {
    /// Microseconds per tick: all durations and time steps are whole ticks.
    tick: i64,
    start: i64,
    max_failures: u32,
    window: i64,
    tolerance: i64,
    ban_for: i64,
    /// Factor, max (multiple of ban_for) and forget_after, in ticks.
    escalation: Option<(f64, i64, i64)>,
    max_offenders: usize,
    ipv6_prefix: u8,
    extra_allow: bool,
}

#[derive(Clone, Debug)]
enum Op {
    /// A failure `advance` ticks after the previous base time, `back_kind`/`back` deciding
    /// how far back in time it is written.
    Fail {
        addr: usize,
        advance: i64,
        back_kind: u8,
        back: i64,
    },
    Seed {
        addr: usize,
        bans: u32,
        end: i64,
    },
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(vec![
            1i64,
            500_000,
            1_000_000,
            600_000_000,
            600_000_001,
            2_000_000_000,
        ]),
        prop::sample::select(vec![0i64, 1_700_000_000_000_000, -5_000_000_000_000]),
        1u32..=7,
        1i64..=12,
        0i64..=8,
        1i64..=20,
        prop::option::of((
            prop::sample::select(vec![1.0f64, 1.5, 2.0, 3.0]),
            1i64..=8,
            0i64..=40,
        )),
        1usize..=4,
        prop::sample::select(vec![48u8, 64, 128]),
        any::<bool>(),
    )
        .prop_map(
            |(
                tick,
                start,
                k,
                window,
                tolerance,
                ban_for,
                escalation,
                max_offenders,
                prefix,
                extra,
            )| {
                Setup {
                    tick,
                    start,
                    max_failures: k,
                    window,
                    tolerance,
                    ban_for,
                    escalation,
                    max_offenders,
                    ipv6_prefix: prefix,
                    extra_allow: extra,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..ADDRS.len(), 0i64..=3, 0u8..10, 0i64..=18).prop_map(
            |(addr, advance, back_kind, back)| Op::Fail { addr, advance, back_kind, back }
        ),
        1 => (0..ADDRS.len(), 0u32..=3, -10i64..=30)
            .prop_map(|(addr, bans, end)| Op::Seed { addr, bans, end }),
    ]
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn allow_nets(s: &Setup) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = ALLOW.iter().map(|n| net(n)).collect();
    if s.extra_allow {
        nets.push(net(EXTRA_ALLOW));
    }
    nets
}

fn micros(ticks: i64, tick: i64) -> Duration {
    Duration::from_micros((ticks * tick) as u64)
}

fn policy(s: &Setup) -> JailPolicy {
    let mut p = JailPolicy::new(JailName::new("model").unwrap());
    p.max_failures = s.max_failures;
    p.window = micros(s.window, s.tick);
    p.ban_for = micros(s.ban_for, s.tick);
    p.reorder_tolerance = micros(s.tolerance, s.tick);
    p.escalation = s.escalation.map(|(factor, max, forget)| Escalation {
        factor,
        max: micros(s.ban_for * max, s.tick),
        forget_after: micros(forget, s.tick),
    });
    p.allow = AllowList::new(allow_nets(s));
    p.ipv6_prefix = s.ipv6_prefix;
    p.max_offenders = s.max_offenders;
    p
}

struct Window {
    offender: Offender,
    /// Every counted failure since the entry was made, in arrival order.
    times: Vec<i64>,
    used: u64,
}

struct History {
    offender: Offender,
    bans: u32,
    end: i64,
    used: u64,
}

/// The naive model: no pruning, no encoding, linear scans, i128 arithmetic.
struct Model {
    jail: JailName,
    max_failures: usize,
    window: i128,
    tolerance: i128,
    ban_for: i64,
    /// Factor, max and forget_after in microseconds.
    escalation: Option<(f64, i64, i128)>,
    ipv6_prefix: u8,
    max_offenders: usize,
    never: Vec<IpNet>,
    clock: u64,
    windows: Vec<Window>,
    history: Vec<History>,
    stats: DetectorStats,
}

impl Model {
    fn new(s: &Setup) -> Self {
        let mut never = allow_nets(s);
        never.extend(BUILTIN.iter().map(|n| net(n)));
        Model {
            jail: JailName::new("model").unwrap(),
            max_failures: s.max_failures as usize,
            window: i128::from(s.window * s.tick),
            tolerance: i128::from(s.tolerance * s.tick),
            ban_for: s.ban_for * s.tick,
            escalation: s
                .escalation
                .map(|(f, max, forget)| (f, s.ban_for * max * s.tick, i128::from(forget * s.tick))),
            ipv6_prefix: s.ipv6_prefix,
            max_offenders: s.max_offenders,
            never,
            clock: 0,
            windows: Vec::new(),
            history: Vec::new(),
            stats: DetectorStats::default(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn duration(&self, level: u32) -> i64 {
        match self.escalation {
            None => self.ban_for,
            Some((factor, max, _)) => {
                let mut d = self.ban_for as f64;
                for _ in 0..level {
                    if d >= max as f64 {
                        break;
                    }
                    d *= factor;
                }
                (d as i64).min(max).max(self.ban_for)
            }
        }
    }

    fn record(&mut self, f: Failure) -> Outcome {
        self.stats.failures += 1;
        let addr = f.addr.to_canonical();
        let offender = Offender::from_addr(addr, self.ipv6_prefix);
        let on = offender.net();
        // Two CIDR networks share an address exactly when one holds the other's first one.
        if self
            .never
            .iter()
            .any(|a| a.contains(&on.network()) || on.contains(&a.network()))
        {
            self.stats.allowlisted += 1;
            return Outcome::Allowlisted;
        }
        let t = f.time.as_micros();
        let now = self.tick();
        let h = self.history.iter().position(|h| h.offender == offender);
        if let Some(h) = h {
            self.history[h].used = now;
            if t < self.history[h].end {
                self.stats.while_banned += 1;
                return Outcome::WhileBanned {
                    until: Timestamp::from_micros(self.history[h].end),
                };
            }
        }
        let w = self.windows.iter().position(|w| w.offender == offender);
        let mut all = Vec::new();
        if let Some(w) = w {
            self.windows[w].used = now;
            let newest = *self.windows[w].times.iter().max().unwrap();
            if i128::from(t) < i128::from(newest) - self.tolerance {
                self.stats.too_late += 1;
                return Outcome::TooLate;
            }
            all = self.windows[w].times.clone();
        }
        all.push(t);
        self.stats.counted += 1;
        let mut sorted = all.clone();
        sorted.sort();
        let k = self.max_failures;
        let span = |a: i64, b: i64| i128::from(b) - i128::from(a);
        let group = (0..(sorted.len() + 1).saturating_sub(k))
            .find(|&j| span(sorted[j], sorted[j + k - 1]) < self.window);
        if let Some(j) = group {
            if let Some(w) = w {
                self.windows.remove(w);
            }
            let level = match h {
                Some(h) => {
                    let past = &self.history[h];
                    match self.escalation {
                        Some((_, _, forget)) if i128::from(t) > i128::from(past.end) + forget => 0,
                        _ => past.bans,
                    }
                }
                None => 0,
            };
            let end = t.saturating_add(self.duration(level));
            let bans = level.saturating_add(1);
            let now = self.tick();
            match h {
                Some(h) => {
                    self.history[h].bans = bans;
                    self.history[h].end = end;
                    self.history[h].used = now;
                }
                None => self.add_history(offender, bans, end, now),
            }
            self.stats.bans += 1;
            return Outcome::Banned(Ban {
                jail: self.jail.clone(),
                offender,
                addr,
                failures: k as u32,
                first_failure: Timestamp::from_micros(sorted[j]),
                last_failure: Timestamp::from_micros(sorted[j + k - 1]),
                start: f.time,
                end: Timestamp::from_micros(end),
                level,
            });
        }
        // The most failures within one span shorter than the window that includes `t`.
        let failures = all
            .iter()
            .filter(|&&a| a <= t && span(a, t) < self.window)
            .map(|&a| {
                all.iter()
                    .filter(|&&p| p >= a && span(a, p) < self.window)
                    .count()
            })
            .max()
            .unwrap();
        match w {
            Some(w) => self.windows[w].times.push(t),
            None => {
                if self.windows.len() == self.max_offenders {
                    let lru = (0..self.windows.len())
                        .min_by_key(|&i| self.windows[i].used)
                        .unwrap();
                    self.windows.remove(lru);
                    self.stats.evictions += 1;
                }
                self.windows.push(Window {
                    offender,
                    times: vec![t],
                    used: now,
                });
            }
        }
        Outcome::Counted {
            failures: failures as u32,
        }
    }

    fn add_history(&mut self, offender: Offender, bans: u32, end: i64, now: u64) {
        if self.history.len() == self.max_offenders {
            let lru = (0..self.history.len())
                .min_by_key(|&i| self.history[i].used)
                .unwrap();
            self.history.remove(lru);
            self.stats.history_evictions += 1;
        }
        self.history.push(History {
            offender,
            bans,
            end,
            used: now,
        });
    }

    fn seed(&mut self, offender: Offender, bans: u32, end: Timestamp) {
        let offender = Offender::from_addr(offender.net().addr(), self.ipv6_prefix);
        let h = self.history.iter().position(|h| h.offender == offender);
        let now = self.tick();
        match (h, bans) {
            (Some(h), 0) => {
                self.history.remove(h);
            }
            (None, 0) => {}
            (Some(h), _) => {
                self.history[h].bans = bans;
                self.history[h].end = end.as_micros();
                self.history[h].used = now;
            }
            (None, _) => self.add_history(offender, bans, end.as_micros(), now),
        }
    }
}

fn check(s: &Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut detector = JailDetector::new(policy(s)).unwrap();
    let mut model = Model::new(s);
    let mut base = s.start;
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Fail {
                addr,
                advance,
                back_kind,
                back,
            } => {
                base += advance * s.tick;
                let back = match back_kind {
                    0..=5 => 0,
                    6..=8 => back % (s.tolerance + 1),
                    _ => s.tolerance + 1 + back % 10,
                };
                let failure = Failure {
                    addr: ADDRS[addr].parse::<IpAddr>().unwrap(),
                    time: Timestamp::from_micros(base - back * s.tick),
                };
                let got = detector.record(failure);
                let want = model.record(failure);
                prop_assert_eq!(got, want, "op {} {:?}", n, op);
            }
            Op::Seed { addr, bans, end } => {
                // Seed under a /128 to exercise regrouping.
                let offender = Offender::from_addr(ADDRS[addr].parse().unwrap(), 128);
                let end = Timestamp::from_micros(base + end * s.tick);
                detector.seed_history(offender, bans, end);
                model.seed(offender, bans, end);
            }
        }
        prop_assert_eq!(detector.stats(), &model.stats, "op {} {:?}", n, op);
        prop_assert_eq!(detector.tracked(), model.windows.len());
        prop_assert_eq!(detector.remembered(), model.history.len());
    }
    let st = detector.stats();
    prop_assert_eq!(
        st.failures,
        st.counted + st.allowlisted + st.while_banned + st.too_late
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn detector_agrees_with_naive_model(s in setup(), ops in prop::collection::vec(op(), 1..150)) {
        check(&s, &ops)?;
    }
}

#[test]
fn model_test_exercises_bans_evictions_spills_and_lateness() {
    // A fixed long run, so the property above is known to reach every path it compares.
    let s = Setup {
        tick: 600_000_001,
        start: 1_700_000_000_000_000,
        max_failures: 7,
        window: 12,
        tolerance: 8,
        ban_for: 3,
        escalation: Some((2.0, 4, 30)),
        max_offenders: 3,
        ipv6_prefix: 64,
        extra_allow: false,
    };
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut ops = Vec::new();
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ops.push(Op::Fail {
            addr: (x % 8) as usize,
            advance: i64::from(x % 7 == 0),
            back_kind: ((x >> 8) % 10) as u8,
            back: (x >> 16) as i64 % 19,
        });
    }
    check(&s, &ops).unwrap();
    let mut detector = JailDetector::new(policy(&s)).unwrap();
    let mut peak_spilled = 0;
    let mut base = s.start;
    for op in &ops {
        if let Op::Fail { addr, advance, .. } = *op {
            base += advance * s.tick;
            detector.record(Failure {
                addr: ADDRS[addr].parse().unwrap(),
                time: Timestamp::from_micros(base),
            });
            peak_spilled = peak_spilled.max(detector.spilled());
        }
    }
    let st = detector.stats();
    assert!(st.bans > 10 && st.evictions > 10, "{st:?}");
    assert!(peak_spilled > 0);
}
