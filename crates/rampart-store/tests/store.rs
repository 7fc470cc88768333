//! The store against real SQLite files in temporary directories.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{ban, ip, jail, lift, net, ts, TempDir};
use rampart_core::{Ban, Offender};
use rampart_store::{
    BanRecord, Batch, HistoryRow, Origin, Store, StoreError, StoreStats, SCHEMA_VERSION,
};

fn bans(bans: Vec<BanRecord>) -> Batch {
    Batch {
        bans,
        ..Batch::default()
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn bans_round_trip_with_every_field() {
    let tmp = TempDir::new("roundtrip");
    let mut store = Store::open(&tmp.db()).unwrap();
    let v4 = BanRecord {
        jail: jail("sshd"),
        net: net("192.0.2.7/32"),
        addr: ip("::ffff:192.0.2.7"),
        start: rampart_core::Timestamp::from_micros(1_700_000_000_123_456),
        end: rampart_core::Timestamp::from_micros(1_700_000_600_654_321),
        failures: 7,
        level: 3,
        origin: Origin::Detected,
        details: None,
    };
    let v6 = BanRecord {
        jail: jail("nginx-botsearch"),
        net: net("2001:db8:1:2::/64"),
        addr: ip("2001:db8:1:2::99"),
        start: ts(1_700_000_000),
        end: ts(1_700_086_400),
        failures: u32::MAX,
        level: 0,
        origin: Origin::Manual,
        details: None,
    };
    store.commit(&bans(vec![v4.clone(), v6.clone()])).unwrap();
    let active = store.active_bans(ts(1_700_000_100)).unwrap();
    assert_eq!(active, vec![v6, v4], "sorted by jail, then network");
}

#[test]
fn from_ban_keeps_the_offender_network_and_marks_it_detected() {
    let addr = ip("2001:db8:5:6::7");
    let b = Ban {
        jail: jail("sshd"),
        offender: Offender::from_addr(addr, 64),
        addr,
        failures: 4,
        first_failure: ts(90),
        last_failure: ts(100),
        start: ts(100),
        end: ts(700),
        level: 2,
    };
    let rec = BanRecord::from(&b);
    assert_eq!(rec.net, net("2001:db8:5:6::/64"));
    assert_eq!(rec.addr, addr);
    assert_eq!(
        (rec.start, rec.end, rec.failures, rec.level),
        (ts(100), ts(700), 4, 2)
    );
    assert_eq!(rec.origin, Origin::Detected);
}

#[test]
fn active_bans_pick_the_ban_that_ends_last_per_jail_and_net() {
    let tmp = TempDir::new("latest");
    let mut store = Store::open(&tmp.db()).unwrap();
    let mut second = ban("sshd", "192.0.2.1/32", 200, 2000);
    second.level = 1;
    store
        .commit(&bans(vec![
            ban("sshd", "192.0.2.1/32", 100, 1000),
            second.clone(),
            // A later but shorter ban (e.g. manual) does not hide the longer one.
            ban("sshd", "192.0.2.1/32", 300, 400),
            // Same network, other jail: its own entry.
            ban("postfix", "192.0.2.1/32", 100, 500),
        ]))
        .unwrap();
    let active = store.active_bans(ts(350)).unwrap();
    assert_eq!(
        active,
        vec![ban("postfix", "192.0.2.1/32", 100, 500), second.clone()]
    );
    // Ends tie: the later start wins.
    let mut tie = ban("sshd", "192.0.2.1/32", 250, 2000);
    tie.level = 2;
    store.commit(&bans(vec![tie.clone()])).unwrap();
    assert_eq!(store.active_bans(ts(600)).unwrap(), vec![tie]);
}

#[test]
fn active_bans_skip_expired_and_lifted_bans() {
    let tmp = TempDir::new("skip");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&bans(vec![
            ban("sshd", "192.0.2.1/32", 100, 200),
            ban("sshd", "192.0.2.2/32", 100, 1000),
            ban("sshd", "192.0.2.3/32", 100, 1000),
        ]))
        .unwrap();
    store
        .commit(&Batch {
            lifts: vec![lift(Some("sshd"), "192.0.2.3/32", 300)],
            ..Batch::default()
        })
        .unwrap();
    let nets: Vec<_> = store
        .active_bans(ts(500))
        .unwrap()
        .into_iter()
        .map(|b| b.net)
        .collect();
    assert_eq!(nets, vec![net("192.0.2.2/32")]);
    // End is exclusive: a ban ending exactly now is over.
    assert!(store.active_bans(ts(1000)).unwrap().is_empty());
    // Before the lift time the lifted row still does not count: a lift is final.
    let at_150: Vec<_> = store
        .active_bans(ts(150))
        .unwrap()
        .into_iter()
        .map(|b| b.net)
        .collect();
    assert_eq!(at_150, vec![net("192.0.2.1/32"), net("192.0.2.2/32")]);
}

#[test]
fn lift_in_one_jail_leaves_other_jails_banned_and_keeps_the_reason() {
    let tmp = TempDir::new("lift1");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&bans(vec![
            ban("sshd", "198.51.100.9/32", 100, 1000),
            ban("postfix", "198.51.100.9/32", 100, 1000),
            ban("sshd", "198.51.100.10/32", 100, 1000),
        ]))
        .unwrap();
    store
        .commit(&Batch {
            lifts: vec![lift(Some("sshd"), "198.51.100.9/32", 400)],
            ..Batch::default()
        })
        .unwrap();
    let active: Vec<_> = store
        .active_bans(ts(500))
        .unwrap()
        .into_iter()
        .map(|b| (b.jail.to_string(), b.net))
        .collect();
    assert_eq!(
        active,
        vec![
            ("postfix".to_owned(), net("198.51.100.9/32")),
            ("sshd".to_owned(), net("198.51.100.10/32")),
        ]
    );
    drop(store);
    let raw = rusqlite::Connection::open(tmp.db()).unwrap();
    let (at, reason): (i64, String) = raw
        .query_row(
            "SELECT lifted_us, lift_reason FROM bans WHERE lifted_us IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(at, ts(400).as_micros());
    assert_eq!(reason, "manual unban by test");
}

#[test]
fn lift_in_every_jail_ends_all_bans_of_the_network_only() {
    let tmp = TempDir::new("liftall");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&bans(vec![
            ban("sshd", "2001:db8:1::/64", 100, 1000),
            ban("postfix", "2001:db8:1::/64", 100, 1000),
            ban("sshd", "2001:db8:2::/64", 100, 1000),
            // A single address inside the lifted /64 is another network: untouched.
            ban("sshd", "2001:db8:1::5/128", 100, 1000),
        ]))
        .unwrap();
    store
        .commit(&Batch {
            // Host bits in the lift are ignored: this is 2001:db8:1::/64.
            lifts: vec![lift(None, "2001:db8:1::77/64", 400)],
            ..Batch::default()
        })
        .unwrap();
    let nets: Vec<_> = store
        .active_bans(ts(500))
        .unwrap()
        .into_iter()
        .map(|b| b.net)
        .collect();
    assert_eq!(nets, vec![net("2001:db8:1::5/128"), net("2001:db8:2::/64")]);
    assert_eq!(store.stats(ts(500)).unwrap().lifted, 2);
}

#[test]
fn a_lift_in_the_same_batch_ends_a_ban_of_that_batch() {
    let tmp = TempDir::new("liftsame");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&Batch {
            bans: vec![ban("sshd", "203.0.113.4/32", 100, 1000)],
            lifts: vec![lift(Some("sshd"), "203.0.113.4/32", 100)],
            checkpoints: vec![],
        })
        .unwrap();
    assert!(store.active_bans(ts(100)).unwrap().is_empty());
}

#[test]
fn checkpoints_are_upserted_by_key() {
    let tmp = TempDir::new("ckpt");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&Batch {
            checkpoints: vec![
                ("file:/var/log/auth.log".into(), "ino=1 off=100".into()),
                ("journal".into(), "s=abc;i=1".into()),
            ],
            ..Batch::default()
        })
        .unwrap();
    store
        .commit(&Batch {
            checkpoints: vec![("file:/var/log/auth.log".into(), "ino=1 off=250".into())],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(
        store.checkpoints().unwrap(),
        vec![
            (
                "file:/var/log/auth.log".to_owned(),
                "ino=1 off=250".to_owned()
            ),
            ("journal".to_owned(), "s=abc;i=1".to_owned()),
        ]
    );
}

#[test]
fn history_counts_bans_since_and_reports_the_latest_effective_end() {
    let tmp = TempDir::new("history");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&bans(vec![
            ban("sshd", "192.0.2.1/32", 100, 200), // before `since`: not counted
            ban("sshd", "192.0.2.1/32", 1000, 1600), // counted
            ban("sshd", "192.0.2.1/32", 2000, 5000), // counted, lifted at 2500
            ban("postfix", "192.0.2.1/32", 1500, 1700),
            ban("sshd", "2001:db8::/64", 1000, 9000),
        ]))
        .unwrap();
    store
        .commit(&Batch {
            lifts: vec![lift(Some("sshd"), "192.0.2.1/32", 2500)],
            ..Batch::default()
        })
        .unwrap();
    let h = store.history(ts(1000)).unwrap();
    assert_eq!(
        h,
        vec![
            HistoryRow {
                jail: jail("postfix"),
                net: net("192.0.2.1/32"),
                bans: 1,
                last_end: ts(1700)
            },
            HistoryRow {
                jail: jail("sshd"),
                net: net("192.0.2.1/32"),
                bans: 2,
                last_end: ts(2500)
            },
            HistoryRow {
                jail: jail("sshd"),
                net: net("2001:db8::/64"),
                bans: 1,
                last_end: ts(9000)
            },
        ]
    );
    assert_eq!(store.history(ts(0)).unwrap()[1].bans, 3);
    assert!(store.history(ts(2001)).unwrap().is_empty());
}

#[test]
fn prune_deletes_rows_that_ended_before_the_cutoff_and_counts_them() {
    let tmp = TempDir::new("prune");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&bans(vec![
            ban("sshd", "192.0.2.1/32", 100, 200),
            ban("sshd", "192.0.2.2/32", 100, 300),
            ban("sshd", "192.0.2.3/32", 100, 5000),
            ban("sshd", "192.0.2.4/32", 100, 6000),
        ]))
        .unwrap();
    store
        .commit(&Batch {
            // Lifted early but ends later: stays until its end passes the cutoff.
            lifts: vec![lift(None, "192.0.2.4/32", 150)],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(
        store.prune(ts(300)).unwrap(),
        1,
        "end 300 is not before 300"
    );
    assert_eq!(store.prune(ts(301)).unwrap(), 1);
    assert_eq!(store.prune(ts(301)).unwrap(), 0);
    let h = store.history(ts(0)).unwrap();
    let nets: Vec<_> = h.iter().map(|r| r.net).collect();
    assert_eq!(nets, vec![net("192.0.2.3/32"), net("192.0.2.4/32")]);
}

#[test]
fn a_batch_that_fails_midway_leaves_nothing() {
    let tmp = TempDir::new("atomic");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&Batch {
            bans: vec![ban("sshd", "192.0.2.1/32", 100, 1000)],
            checkpoints: vec![("src".into(), "old".into())],
            ..Batch::default()
        })
        .unwrap();
    let before = store.stats(ts(500)).unwrap();
    // The third ban ends before it starts: the table's CHECK constraint fails after two
    // rows were already inserted in the transaction.
    let err = store
        .commit(&Batch {
            bans: vec![
                ban("sshd", "192.0.2.2/32", 100, 1000),
                ban("sshd", "192.0.2.3/32", 100, 1000),
                ban("sshd", "192.0.2.4/32", 900, 800),
            ],
            lifts: vec![lift(None, "192.0.2.1/32", 400)],
            checkpoints: vec![("src".into(), "new".into())],
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&tmp.db().display().to_string()), "{msg}");
    assert!(msg.contains("insert ban 3 of 3"), "{msg}");
    assert!(msg.contains("CHECK constraint failed"), "{msg}");
    assert_eq!(store.stats(ts(500)).unwrap(), before);
    assert_eq!(
        store.checkpoints().unwrap(),
        vec![("src".into(), "old".into())]
    );
    assert_eq!(store.active_bans(ts(500)).unwrap().len(), 1);
    // The connection is still usable, and a reopened store sees the same.
    store
        .commit(&bans(vec![ban("sshd", "192.0.2.5/32", 100, 1000)]))
        .unwrap();
    drop(store);
    let store = Store::open(&tmp.db()).unwrap();
    let nets: Vec<_> = store
        .active_bans(ts(500))
        .unwrap()
        .into_iter()
        .map(|b| b.net)
        .collect();
    assert_eq!(nets, vec![net("192.0.2.1/32"), net("192.0.2.5/32")]);
}

#[test]
fn reopening_after_drop_sees_committed_data() {
    let tmp = TempDir::new("reopen");
    {
        let mut store = Store::open(&tmp.db()).unwrap();
        store
            .commit(&Batch {
                bans: vec![ban("sshd", "203.0.113.8/32", 100, 1000)],
                lifts: vec![],
                checkpoints: vec![("k".into(), "v".into())],
            })
            .unwrap();
    }
    let store = Store::open(&tmp.db()).unwrap();
    assert_eq!(
        store.active_bans(ts(200)).unwrap(),
        vec![ban("sshd", "203.0.113.8/32", 100, 1000)]
    );
    assert_eq!(store.checkpoints().unwrap(), vec![("k".into(), "v".into())]);
}

#[test]
fn new_database_is_mode_0600_in_a_new_directory_of_mode_0700() {
    let tmp = TempDir::new("modes");
    let db = tmp.path().join("state/rampart/rampart.db");
    let mut store = Store::open(&db).unwrap();
    store
        .commit(&bans(vec![ban("sshd", "192.0.2.1/32", 1, 2)]))
        .unwrap();
    assert_eq!(mode(&tmp.path().join("state/rampart")), 0o700);
    assert_eq!(mode(&tmp.path().join("state")), 0o700);
    assert_eq!(mode(&db), 0o600);
    let wal = tmp.path().join("state/rampart/rampart.db-wal");
    assert!(wal.exists(), "WAL mode keeps a -wal file while open");
    assert_eq!(mode(&wal), 0o600);
    assert_eq!(
        mode(&tmp.path().join("state/rampart/rampart.db-shm")),
        0o600
    );
}

#[test]
fn an_existing_file_with_a_loose_mode_is_tightened_to_0600() {
    let tmp = TempDir::new("tighten");
    drop(Store::open(&tmp.db()).unwrap());
    std::fs::set_permissions(tmp.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(Store::open(&tmp.db()).unwrap());
    assert_eq!(mode(&tmp.db()), 0o600);
}

#[test]
fn a_new_file_gets_the_current_schema_version_and_application_id() {
    let tmp = TempDir::new("version");
    drop(Store::open(&tmp.db()).unwrap());
    let raw = rusqlite::Connection::open(tmp.db()).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let app: i64 = raw
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    let journal: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(app, 0x726d_7074);
    assert_eq!(journal, "wal", "WAL is persistent in the file");
}

#[test]
fn a_file_from_a_newer_version_is_refused_untouched() {
    let tmp = TempDir::new("newer");
    drop(Store::open(&tmp.db()).unwrap());
    {
        let raw = rusqlite::Connection::open(tmp.db()).unwrap();
        raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = Store::open(&tmp.db()).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&tmp.db().display().to_string()), "{msg}");
    assert!(msg.contains("newer"), "{msg}");
    let raw = rusqlite::Connection::open(tmp.db()).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 1);
}

#[test]
fn an_sqlite_file_of_another_application_is_refused() {
    let tmp = TempDir::new("foreign");
    {
        let raw = rusqlite::Connection::open(tmp.db()).unwrap();
        raw.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('keep');")
            .unwrap();
    }
    let err = Store::open(&tmp.db()).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    assert!(err.to_string().contains("not a rampart store"), "{err}");
    let raw = rusqlite::Connection::open(tmp.db()).unwrap();
    let t: String = raw
        .query_row("SELECT t FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(t, "keep");
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt_with_its_path() {
    let tmp = TempDir::new("garbage");
    std::fs::write(tmp.db(), vec![0x5a; 8192]).unwrap();
    let err = Store::open(&tmp.db()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&tmp.db().display().to_string()), "{msg}");
    assert!(msg.contains("corrupt or not an SQLite database"), "{msg}");
}

#[test]
fn a_directory_or_symlink_in_place_of_the_file_is_refused() {
    let tmp = TempDir::new("notfile");
    std::fs::create_dir(tmp.db()).unwrap();
    let err = Store::open(&tmp.db()).unwrap_err();
    assert!(matches!(err, StoreError::NotAFile { .. }), "{err:?}");
    let target = tmp.path().join("real.db");
    drop(Store::open(&target).unwrap());
    let link = tmp.path().join("link.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = Store::open(&link).unwrap_err();
    assert!(matches!(err, StoreError::NotAFile { .. }), "{err:?}");
    assert!(err.to_string().contains("link.db"), "{err}");
}

#[test]
fn ipv4_and_ipv6_networks_are_distinct_keys() {
    let tmp = TempDir::new("families");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&bans(vec![
            ban("sshd", "192.0.2.1/32", 100, 1000),
            // The same 32 bits at the start of an IPv6 network, and ::c000:201.
            ban("sshd", "c000:201::/32", 100, 1000),
            ban("sshd", "::c000:201/128", 100, 1000),
            ban("sshd", "2001:db8::/64", 100, 1000),
            ban("sshd", "2001:db8::/48", 100, 1000),
        ]))
        .unwrap();
    store
        .commit(&Batch {
            lifts: vec![lift(None, "192.0.2.1/32", 200)],
            ..Batch::default()
        })
        .unwrap();
    let nets: Vec<_> = store
        .active_bans(ts(300))
        .unwrap()
        .into_iter()
        .map(|b| b.net)
        .collect();
    assert_eq!(
        nets,
        vec![
            net("::c000:201/128"),
            net("2001:db8::/48"),
            net("2001:db8::/64"),
            net("c000:201::/32"),
        ]
    );
    assert_eq!(store.history(ts(0)).unwrap().len(), 5);
}

#[test]
fn stats_count_rows_active_pairs_lifts_checkpoints_and_file_size() {
    let tmp = TempDir::new("stats");
    let mut store = Store::open(&tmp.db()).unwrap();
    store
        .commit(&Batch {
            bans: vec![
                ban("sshd", "192.0.2.1/32", 100, 200),
                ban("sshd", "192.0.2.2/32", 100, 1000),
                ban("sshd", "192.0.2.2/32", 150, 1100),
                ban("sshd", "192.0.2.3/32", 100, 1000),
            ],
            lifts: vec![lift(None, "192.0.2.3/32", 300)],
            checkpoints: vec![("a".into(), "1".into())],
        })
        .unwrap();
    let s = store.stats(ts(500)).unwrap();
    assert!(s.file_bytes > 0 && s.wal_bytes > 0, "{s:?}");
    assert_eq!(
        s,
        StoreStats {
            bans: 4,
            active: 1,
            lifted: 1,
            checkpoints: 1,
            ..s.clone()
        }
    );
    assert_eq!(s.active as usize, store.active_bans(ts(500)).unwrap().len());
}

#[test]
fn an_empty_batch_writes_nothing_and_succeeds() {
    let tmp = TempDir::new("empty");
    let mut store = Store::open(&tmp.db()).unwrap();
    store.commit(&Batch::default()).unwrap();
    assert_eq!(store.stats(ts(0)).unwrap().bans, 0);
}

#[test]
fn a_database_with_damaged_pages_is_reported_as_corrupt() {
    let tmp = TempDir::new("damaged");
    {
        let mut store = Store::open(&tmp.db()).unwrap();
        let many = (0..5000)
            .map(|i| {
                let n = format!("2001:db8:{:x}::/64", i);
                ban("sshd", &n, 100, 1000 + i)
            })
            .collect();
        store.commit(&bans(many)).unwrap();
    }
    // The last connection's close checkpointed the WAL into the file; now scribble over
    // every page after the first (the header and schema stay readable).
    let len = std::fs::metadata(tmp.db()).unwrap().len() as usize;
    assert!(
        len > 16 * 4096,
        "the database should span many pages: {len}"
    );
    let mut bytes = std::fs::read(tmp.db()).unwrap();
    for b in &mut bytes[4096..] {
        *b = 0xa5;
    }
    std::fs::write(tmp.db(), &bytes).unwrap();
    let err = Store::open(&tmp.db())
        .and_then(|s| s.active_bans(ts(0)).map(|_| ()))
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&tmp.db().display().to_string()),
        "{err}"
    );
}
