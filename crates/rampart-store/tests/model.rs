//! Property test: random sequences of batches (bans, lifts, checkpoints) and prunes against a
//! naive in-memory model, comparing active_bans, history, checkpoints and stats.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{ip, jail, net, ts, TempDir};
use ipnet::IpNet;
use proptest::prelude::*;
use rampart_core::{JailName, Timestamp};
use rampart_store::{BanRecord, Batch, HistoryRow, Lift, Origin, Store};

const JAILS: &[&str] = &["sshd", "postfix", "nginx"];
// IPv4, IPv6 prefixes, and an IPv6 /128 that carries the same 32 bits as an IPv4 address.
const NETS: &[&str] = &[
    "192.0.2.1/32",
    "192.0.2.2/32",
    "2001:db8::/64",
    "2001:db8:0:1::/64",
    "::c000:201/128",
];

#[derive(Clone, Debug)]
enum Step {
    Commit {
        bans: Vec<(usize, usize, i64, i64, u32, bool)>,
        lifts: Vec<(Option<usize>, usize, i64)>,
        checkpoints: Vec<(usize, u32)>,
    },
    Prune(i64),
}

fn step() -> impl Strategy<Value = Step> {
    let ban = (
        0..JAILS.len(),
        0..NETS.len(),
        0i64..100,
        0i64..60,
        0u32..4,
        any::<bool>(),
    );
    let lift = (
        proptest::option::of(0..JAILS.len()),
        0..NETS.len(),
        0i64..150,
    );
    let commit = (
        proptest::collection::vec(ban, 0..8),
        proptest::collection::vec(lift, 0..3),
        proptest::collection::vec((0usize..3, any::<u32>()), 0..3),
    )
        .prop_map(|(bans, lifts, checkpoints)| Step::Commit {
            bans,
            lifts,
            checkpoints,
        });
    prop_oneof![8 => commit, 1 => (0i64..150).prop_map(Step::Prune)]
}

struct Row {
    id: usize,
    rec: BanRecord,
    lifted: Option<Timestamp>,
}

#[derive(Default)]
struct Model {
    rows: Vec<Row>,
    next_id: usize,
    checkpoints: BTreeMap<String, String>,
}

impl Model {
    fn commit(&mut self, batch: &Batch) {
        for b in &batch.bans {
            self.next_id += 1;
            self.rows.push(Row {
                id: self.next_id,
                rec: b.clone(),
                lifted: None,
            });
        }
        for l in &batch.lifts {
            for r in &mut self.rows {
                if r.rec.net == l.net.trunc()
                    && l.jail.as_ref().is_none_or(|j| *j == r.rec.jail)
                    && r.lifted.is_none()
                    && r.rec.end > l.at
                {
                    r.lifted = Some(l.at);
                }
            }
        }
        for (k, v) in &batch.checkpoints {
            self.checkpoints.insert(k.clone(), v.clone());
        }
    }

    fn prune(&mut self, before: Timestamp) -> usize {
        let n = self.rows.len();
        self.rows.retain(|r| r.rec.end >= before);
        n - self.rows.len()
    }

    fn active(&self, now: Timestamp) -> Vec<BanRecord> {
        let mut best: BTreeMap<(JailName, IpNet), &Row> = BTreeMap::new();
        for r in self
            .rows
            .iter()
            .filter(|r| r.lifted.is_none() && r.rec.end > now)
        {
            let key = (r.rec.jail.clone(), r.rec.net);
            let rank = |r: &Row| (r.rec.end, r.rec.start, r.id);
            match best.get(&key) {
                Some(old) if rank(old) >= rank(r) => {}
                _ => {
                    best.insert(key, r);
                }
            }
        }
        best.into_values().map(|r| r.rec.clone()).collect()
    }

    fn history(&self, since: Timestamp) -> Vec<HistoryRow> {
        // Sorted by network, then jail.
        let mut groups: BTreeMap<(IpNet, JailName), (u32, Timestamp)> = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r.rec.start >= since) {
            let end = r.lifted.map_or(r.rec.end, |l| l.min(r.rec.end));
            let g = groups
                .entry((r.rec.net, r.rec.jail.clone()))
                .or_insert((0, end));
            g.0 += 1;
            g.1 = g.1.max(end);
        }
        groups
            .into_iter()
            .map(|((net, jail), (bans, last_end))| HistoryRow {
                jail,
                net,
                bans,
                last_end,
            })
            .collect()
    }
}

fn to_batch(
    bans: &[(usize, usize, i64, i64, u32, bool)],
    lifts: &[(Option<usize>, usize, i64)],
    checkpoints: &[(usize, u32)],
) -> Batch {
    Batch {
        bans: bans
            .iter()
            .map(|&(j, n, start, dur, level, manual)| {
                let net = net(NETS[n]);
                BanRecord {
                    jail: jail(JAILS[j]),
                    net,
                    addr: if net.prefix_len() == 32 {
                        net.addr()
                    } else {
                        ip("2001:db8::1")
                    },
                    start: ts(start),
                    end: ts(start + dur),
                    failures: level + 3,
                    level,
                    origin: if manual {
                        Origin::Manual
                    } else {
                        Origin::Detected
                    },
                    details: None,
                }
            })
            .collect(),
        lifts: lifts
            .iter()
            .map(|&(j, n, at)| Lift {
                jail: j.map(|j| jail(JAILS[j])),
                net: net(NETS[n]),
                at: ts(at),
                reason: format!("lift {n} at {at}"),
            })
            .collect(),
        checkpoints: checkpoints
            .iter()
            .map(|&(k, v)| (format!("source-{k}"), v.to_string()))
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_a_naive_model(
        steps in proptest::collection::vec(step(), 1..16),
        probes in proptest::collection::vec(0i64..170, 3),
    ) {
        let tmp = TempDir::new("model");
        let mut store = Store::open(&tmp.db()).unwrap();
        let mut model = Model::default();
        for s in &steps {
            match s {
                Step::Commit { bans, lifts, checkpoints } => {
                    let batch = to_batch(bans, lifts, checkpoints);
                    store.commit(&batch).unwrap();
                    model.commit(&batch);
                }
                Step::Prune(before) => {
                    prop_assert_eq!(store.prune(ts(*before)).unwrap(), model.prune(ts(*before)));
                }
            }
            for &t in &probes {
                let active = store.active_bans(ts(t)).unwrap();
                prop_assert_eq!(&active, &model.active(ts(t)), "active_bans at {}", t);
                prop_assert_eq!(store.history(ts(t)).unwrap(), model.history(ts(t)), "history since {}", t);
                let stats = store.stats(ts(t)).unwrap();
                prop_assert_eq!(stats.active as usize, active.len());
                prop_assert_eq!(stats.bans as usize, model.rows.len());
                prop_assert_eq!(
                    stats.lifted as usize,
                    model.rows.iter().filter(|r| r.lifted.is_some()).count()
                );
            }
            let expected: Vec<_> = model.checkpoints.clone().into_iter().collect();
            prop_assert_eq!(store.checkpoints().unwrap(), expected);
        }
        // The same answers after closing and reopening the file.
        drop(store);
        let store = Store::open(&tmp.db()).unwrap();
        for &t in &probes {
            prop_assert_eq!(store.active_bans(ts(t)).unwrap(), model.active(ts(t)));
            prop_assert_eq!(store.history(ts(t)).unwrap(), model.history(ts(t)));
        }
    }
}
