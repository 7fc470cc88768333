//! `rampart geo lookup|update`, run as a user runs them, against the vendored data and a
//! loopback HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use rampart_testkit::http::LoopbackHttp;

mod common;
use common::{rampart, s, Tmp};

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/geo")
        .join(rel);
    assert!(p.exists(), "vendored data file {} is missing", p.display());
    p
}

fn apnic() -> PathBuf {
    data("rir/delegated-apnic-extended-20181013.gz")
}

fn snapshot(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got, want,
        "{name} changed; rerun with UPDATE_SNAPSHOTS=1 if intended"
    );
}

/// The seed scenario of issue 6: the offline whois for 180.152.123.123.
#[test]
fn lookup_shows_the_seed_allocation_and_the_holders_other_blocks() {
    let out = stdout(&rampart(&[
        "geo",
        "lookup",
        "180.152.123.123",
        "--source",
        s(&apnic()),
    ]));
    snapshot("geo-lookup-seed.txt", &out);
    for want in [
        "registry  apnic",
        "country   CN",
        "block     180.152.0.0/13",
        "status    allocated",
        "date      2009-08-21",
        "holder    A92951CA: 12 IPv4 blocks (4883456 addresses)",
        "180.160.0.0/12",
        "222.72.0.0/15",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn lookup_json_carries_every_field() {
    let out = stdout(&rampart(&[
        "geo",
        "lookup",
        "180.152.123.123",
        "--source",
        s(&apnic()),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["address"], "180.152.123.123");
    assert_eq!(v["country"], "CN");
    assert_eq!(v["decided_by"], 0);
    let a = &v["answers"][0];
    assert_eq!(a["source"]["kind"], "rir");
    assert_eq!(a["registry"], "apnic");
    assert_eq!(a["cc"], "CN");
    assert_eq!(a["country"], "CN");
    assert_eq!(a["block"]["start"], "180.152.0.0");
    assert_eq!(a["block"]["end"], "180.159.255.255");
    assert_eq!(a["block"]["addresses"], 524_288);
    assert_eq!(a["block"]["cidrs"], serde_json::json!(["180.152.0.0/13"]));
    assert_eq!(a["status"], "allocated");
    assert_eq!(a["date"], "2009-08-21");
    assert_eq!(a["holder"], "A92951CA");
    let others = a["holder_blocks"].as_array().unwrap();
    assert_eq!(others.len(), 11, "the holder's other blocks");
    assert!(others
        .iter()
        .any(|b| b["cidrs"] == serde_json::json!(["58.32.0.0/13"]) && b["date"] == "2005-01-28"));
}

#[test]
fn lookup_with_sources_that_disagree_shows_both_and_the_precedence() {
    let tmp = Tmp::new();
    let list = tmp.file("jp.txt", "180.152.0.0/13\n");
    let out = stdout(&rampart(&[
        "geo",
        "lookup",
        "180.152.123.123",
        "--source",
        s(&apnic()),
        "--source",
        s(&list),
    ]));
    assert!(
        out.contains("  jp.txt (prefix-list)\n    country   JP\n    network   180.152.0.0/13\n"),
        "{out}"
    );
    assert!(
        out.contains("country by precedence: CN (from delegated-apnic-extended-20181013.gz); the sources disagree"),
        "{out}"
    );
    // Unknown address, and a bad argument.
    let out = stdout(&rampart(&[
        "geo",
        "lookup",
        "192.0.2.1",
        "--source",
        s(&list),
    ]));
    assert_eq!(
        out,
        "192.0.2.1\n  no source knows this address (1 source loaded)\n"
    );
    let bad = rampart(&["geo", "lookup", "not-an-ip", "--source", s(&list)]);
    assert_eq!(bad.status.code(), Some(2));
    let empty = Tmp::new();
    let none = rampart(&["geo", "lookup", "192.0.2.1", "--cache", s(&empty.0)]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("run `rampart geo update` first"));
}

/// A loopback HTTP server for the length of a test (stops when dropped, or after 120 s).
fn http_server() -> LoopbackHttp {
    LoopbackHttp::start(Duration::from_secs(120)).expect("bind a loopback port")
}

/// Serves a file with its `.md5` next to it.
fn publish(server: &LoopbackHttp, name: &str, body: &[u8]) {
    server.serve(&format!("/{name}"), body.to_vec());
    server.serve(
        &format!("/{name}.md5"),
        format!("MD5 ({name}) = {:x}\n", md5::compute(body)).into_bytes(),
    );
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn update_downloads_then_reports_a_block_that_moved_country_and_lookup_follows() {
    let server = http_server();
    let cache = Tmp::new();
    let apnic_text = gunzip(&apnic());
    publish(&server, "apnic", &apnic_text);
    publish(
        &server,
        "afrinic",
        &gunzip(&data("rir/delegated-afrinic-extended-20181013.gz")),
    );
    let apnic_url = format!("apnic={}/apnic", server.base());
    let afrinic_url = format!("afrinic={}/afrinic", server.base());
    let args = |json: bool| {
        let mut a = vec![
            "geo".to_string(),
            "update".into(),
            "--cache".into(),
            s(&cache.0).into(),
            "--only".into(),
            "apnic".into(),
            "--only".into(),
            "afrinic".into(),
            "--url".into(),
            apnic_url.clone(),
            "--url".into(),
            afrinic_url.clone(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };
    let run = |json: bool| {
        let a = args(json);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        rampart(&refs)
    };

    let first = stdout(&run(false));
    assert!(first.starts_with("afrinic   updated "), "{first}");
    assert!(
        first.contains("first download: nothing to compare"),
        "{first}"
    );
    assert!(first.contains("md5 verified"), "{first}");
    assert!(
        first.ends_with("2 updated, 0 unchanged, 0 failed\n"),
        "{first}"
    );
    let seen = stdout(&rampart(&[
        "geo",
        "lookup",
        "180.152.123.123",
        "--cache",
        s(&cache.0),
    ]));
    assert!(
        seen.contains("delegated-apnic-extended-latest (rir)"),
        "{seen}"
    );
    assert!(seen.contains("country   CN"), "{seen}");

    let again = stdout(&run(false));
    assert!(
        again.ends_with("0 updated, 2 unchanged, 0 failed\n"),
        "{again}"
    );

    // The registry moves the seed block to another country.
    let moved = String::from_utf8(apnic_text).unwrap().replace(
        "apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA",
        "apnic|JP|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA",
    );
    publish(&server, "apnic", moved.as_bytes());
    let out = stdout(&run(false));
    assert!(
        out.contains("1 changed country (524288 IPv4 addresses), 0 changed holder, 0 changed status, 0 added, 0 removed"),
        "{out}"
    );
    assert!(
        out.contains(
            "country        180.152.0.0/13  CN allocated A92951CA -> JP allocated A92951CA"
        ),
        "{out}"
    );
    assert!(out.ends_with("1 updated, 1 unchanged, 0 failed\n"), "{out}");
    let seen = stdout(&rampart(&[
        "geo",
        "lookup",
        "180.152.123.123",
        "--cache",
        s(&cache.0),
    ]));
    assert!(seen.contains("country   JP"), "{seen}");
    assert!(cache
        .0
        .join("delegated-apnic-extended-latest.prev")
        .exists());

    // Move it back and read the JSON report.
    publish(&server, "apnic", &gunzip(&apnic()));
    let v: serde_json::Value = serde_json::from_str(&stdout(&run(true))).unwrap();
    assert_eq!(v["ok"], true);
    let ap = v["registries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["registry"] == "apnic")
        .unwrap();
    assert_eq!(ap["result"], "updated");
    assert_eq!(ap["md5_verified"], true);
    assert_eq!(ap["first_download"], false);
    assert_eq!(ap["counts"]["country"], 1);
    assert_eq!(ap["counts"]["country_v4_addresses"], 524_288);
    let c = &ap["changed"][0];
    assert_eq!(c["cidrs"], serde_json::json!(["180.152.0.0/13"]));
    assert_eq!(
        (c["old"]["cc"].as_str(), c["new"]["cc"].as_str()),
        (Some("JP"), Some("CN"))
    );
    assert_eq!(c["country_changed"], true);
}

#[test]
fn update_refuses_plain_http_to_other_hosts_and_fails_with_exit_2() {
    let cache = Tmp::new();
    let out = rampart(&[
        "geo",
        "update",
        "--cache",
        s(&cache.0),
        "--url",
        "apnic=http://192.0.2.1/delegated-apnic-extended-latest",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain http is refused"), "{err}");

    // A registry whose download fails makes the run fail; the other still updates.
    let server = http_server();
    publish(
        &server,
        "afrinic",
        &gunzip(&data("rir/delegated-afrinic-extended-20181013.gz")),
    );
    let out = rampart(&[
        "geo",
        "update",
        "--cache",
        s(&cache.0),
        "--only",
        "afrinic",
        "--only",
        "lacnic",
        "--url",
        &format!("afrinic={}/afrinic", server.base()),
        "--url",
        &format!("lacnic={}/missing", server.base()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("afrinic   updated"), "{text}");
    assert!(text.contains("lacnic    FAILED    "), "{text}");
    assert!(text.contains("HTTP status 404"), "{text}");
    assert!(
        text.ends_with("1 updated, 0 unchanged, 1 failed\n"),
        "{text}"
    );
}

#[test]
fn geo_help_matches_snapshots() {
    for (name, args) in [
        ("geo-lookup-help.txt", vec!["geo", "lookup", "--help"]),
        ("geo-update-help.txt", vec!["geo", "update", "--help"]),
    ] {
        snapshot(name, &stdout(&rampart(&args)));
    }
}
