//! Schema version 2: a version-1 file upgrades in place; its rows read with no details,
//! new rows keep reason, country and block.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ban, ip, ts, TempDir};
use rampart_store::{BanDetails, Batch, Origin, Store, SCHEMA_VERSION, V1_SCHEMA};

/// Makes a file the way rampart 1 (schema version 1) left it, with one ban row.
fn v1_file(path: &std::path::Path) {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.execute_batch(V1_SCHEMA).unwrap();
    raw.pragma_update(None, "user_version", 1).unwrap();
    raw.pragma_update(None, "application_id", 0x726d_7074)
        .unwrap();
    raw.execute(
        "INSERT INTO bans (jail, family, net, prefix, addr, start_us, end_us, failures, level, origin) \
         VALUES ('sshd', 4, x'c0000207', 32, x'c0000207', ?1, ?2, 5, 0, 0)",
        rusqlite::params![ts(1000).as_micros(), ts(100_000).as_micros()],
    )
    .unwrap();
    raw.execute(
        "INSERT INTO bans (jail, family, net, prefix, addr, start_us, end_us, failures, level, origin) \
         VALUES ('sshd', 4, x'c0000208', 32, x'c0000208', ?1, ?2, 0, 0, 1)",
        rusqlite::params![ts(1000).as_micros(), ts(100_000).as_micros()],
    )
    .unwrap();
}

#[test]
fn a_version_1_file_upgrades_and_its_rows_read_with_null_details() {
    let tmp = TempDir::new("migrate-v1");
    v1_file(&tmp.db());
    let mut store = Store::open(&tmp.db()).unwrap();
    let raw = rusqlite::Connection::open(tmp.db()).unwrap();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 2);
    let old = store.active_bans_with_details(ts(2000)).unwrap();
    assert_eq!(old.len(), 2);
    assert_eq!(old[0].addr, ip("192.0.2.7"));
    assert_eq!(old[0].details, None);
    assert_eq!(old[0].reason_kind(), "detected");
    assert_eq!(old[1].reason_kind(), "manual");
    assert_eq!(old[0].reason_detail(), None);

    // New rows keep what they were given.
    let mut b = ban("blocks", "198.51.100.0/24", 3000, 90_000);
    b.details = Some(Box::new(BanDetails {
        country: Some("JP".into()),
        block: Some("198.51.100.0/24".into()),
        reason: Some("block: 5 addresses within 1h, prefix 198.51.100.0/24".into()),
    }));
    store
        .commit(&Batch {
            bans: vec![b.clone()],
            ..Batch::default()
        })
        .unwrap();
    drop(store);
    let store = Store::open(&tmp.db()).unwrap();
    let all = store.active_bans_with_details(ts(4000)).unwrap();
    let got = all.iter().find(|r| r.jail.as_str() == "blocks").unwrap();
    assert_eq!(got, &b);
    assert_eq!(got.reason_kind(), "block");
    assert_eq!(
        got.reason_detail(),
        Some("5 addresses within 1h, prefix 198.51.100.0/24")
    );
    // active_bans (start-up) does not read the details.
    let lean = store.active_bans(ts(4000)).unwrap();
    assert!(lean.iter().all(|r| r.details.is_none()));
    assert_eq!(lean.len(), 3);
}

#[test]
fn bans_since_lists_every_ban_oldest_first_with_lifts_as_ends() {
    let tmp = TempDir::new("since");
    let mut store = Store::open(&tmp.db()).unwrap();
    let mut manual = ban("web", "192.0.2.9/32", 500, 9000);
    manual.origin = Origin::Manual;
    store
        .commit(&Batch {
            bans: vec![
                ban("sshd", "192.0.2.9/32", 300, 900),
                manual,
                ban("sshd", "192.0.2.9/32", 100, 700),
                ban("sshd", "192.0.2.10/32", 10, 70),
            ],
            lifts: vec![common::lift(Some("web"), "192.0.2.9/32", 800)],
            ..Batch::default()
        })
        .unwrap();
    let got = store.bans_since(ts(100)).unwrap();
    let starts: Vec<i64> = got.iter().map(|r| r.start.as_secs()).collect();
    assert_eq!(starts, vec![100, 300, 500]);
    assert_eq!(got[2].origin, Origin::Manual);
    assert_eq!(got[2].end, ts(800), "a lifted ban ends at its lift");
}
