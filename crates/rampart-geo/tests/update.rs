//! `update` against a real HTTP server on loopback (a std TcpListener thread) serving the
//! vendored RIR files, then modified, corrupt and missing ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rampart_geo::update::{update, Outcome, UpdateOptions};
use rampart_geo::{CountryCode, GeoDb, GeoError, Registry};
use rampart_testkit::http::LoopbackHttp;

static N: AtomicUsize = AtomicUsize::new(0);

/// A temp directory removed on drop.
struct Tmp(PathBuf);
impl Tmp {
    fn new() -> Tmp {
        let p = std::env::temp_dir().join(format!(
            "rampart-geo-update-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback HTTP server for the length of a test (stops when dropped, or after 120 s).
fn http_server() -> LoopbackHttp {
    LoopbackHttp::start(Duration::from_secs(120)).expect("bind a loopback port")
}

/// Serves a delegated file at /NAME with its .md5 (BSD style, as APNIC writes it), or
/// without one.
fn publish(server: &LoopbackHttp, name: &str, text: &[u8], with_md5: bool) {
    server.serve(&format!("/{name}"), text.to_vec());
    if with_md5 {
        let md5 = format!("MD5 ({name}) = {:x}\n", md5::compute(text));
        server.serve(&format!("/{name}.md5"), md5.into_bytes());
    } else {
        server.remove(&format!("/{name}.md5"));
    }
}

fn vendored(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/geo/rir")
        .join(format!("delegated-{name}-extended-20181013.gz"));
    rampart_geo::read_file(&p).unwrap()
}

fn options(server: &LoopbackHttp, cache: &Path, names: &[(Registry, &str)]) -> UpdateOptions {
    let mut o = UpdateOptions::new(cache);
    o.urls = names
        .iter()
        .map(|(r, n)| (*r, format!("{}/{n}", server.base())))
        .collect();
    o.connect_timeout = Duration::from_secs(5);
    o.read_timeout = Duration::from_secs(2);
    o.total_timeout = Duration::from_secs(60);
    o
}

const APNIC: (Registry, &str) = (Registry::Apnic, "apnic-latest");
const AFRINIC: (Registry, &str) = (Registry::Afrinic, "afrinic-latest");

fn seed() -> IpAddr {
    "180.152.123.123".parse().unwrap()
}

#[test]
fn update_fetches_verifies_keeps_the_previous_copy_and_reports_a_moved_block() {
    let server = http_server();
    let cache = Tmp::new();
    let apnic = vendored("apnic");
    publish(&server, "apnic-latest", &apnic, true);
    publish(&server, "afrinic-latest", &vendored("afrinic"), false);
    let opts = options(&server, &cache.0, &[APNIC, AFRINIC]);

    // First run: both written, APNIC's md5 verified, AFRINIC has none published.
    let r = update(&opts).unwrap();
    assert!(r.is_ok(), "{r:?}");
    match &r.registries[0].outcome {
        Outcome::Updated {
            md5_verified: true,
            diff: None,
            records,
            ..
        } => assert!(*records > 100_000),
        o => panic!("{o:?}"),
    }
    assert!(matches!(
        r.registries[1].outcome,
        Outcome::Updated {
            md5_verified: false,
            ..
        }
    ));
    let current = cache.0.join("delegated-apnic-extended-latest");
    assert_eq!(std::fs::read(&current).unwrap(), apnic);
    assert!(!cache
        .0
        .join("delegated-apnic-extended-latest.prev")
        .exists());

    // Same data again: nothing written.
    let r = update(&opts).unwrap();
    assert!(matches!(
        r.registries[0].outcome,
        Outcome::Unchanged { md5_verified: true }
    ));

    // APNIC moves the seed block from CN to JP.
    let text = String::from_utf8(apnic.clone()).unwrap();
    let old_line = "apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA";
    assert!(text.contains(old_line));
    let moved = text.replace(
        old_line,
        "apnic|JP|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA",
    );
    publish(&server, "apnic-latest", moved.as_bytes(), true);
    let r = update(&opts).unwrap();
    let Outcome::Updated { diff: Some(d), .. } = &r.registries[0].outcome else {
        panic!("{:?}", r.registries[0].outcome);
    };
    assert_eq!(d.changed.len(), 1, "{d:?}");
    let c = &d.changed[0];
    assert_eq!(c.start, "180.152.0.0".parse::<IpAddr>().unwrap());
    assert!(c.country_changed && !c.status_changed && !c.holder_changed);
    assert_eq!(
        (c.old.cc, c.new.cc),
        (CountryCode::parse("CN"), CountryCode::parse("JP"))
    );
    assert!(d.added.is_empty() && d.removed.is_empty());
    assert_eq!(d.counts().country_v4_addresses, 524_288);
    // The cache now answers JP, the previous copy CN.
    let prev = cache.0.join("delegated-apnic-extended-latest.prev");
    assert_eq!(std::fs::read(&prev).unwrap(), apnic);
    let now = GeoDb::load(&[&current]).unwrap();
    assert_eq!(now.country(seed()), CountryCode::parse("JP"));
    let before = GeoDb::load(&[&prev]).unwrap();
    assert_eq!(before.country(seed()), CountryCode::parse("CN"));
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&cache.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn bad_downloads_fail_and_leave_the_cache_alone() {
    let server = http_server();
    let cache = Tmp::new();
    let afrinic = vendored("afrinic");
    publish(&server, "afrinic-latest", &afrinic, true);
    let opts = options(&server, &cache.0, &[AFRINIC]);
    assert!(update(&opts).unwrap().is_ok());
    let current = cache.0.join("delegated-afrinic-extended-latest");

    let fails = |what: &str| -> GeoError {
        let r = update(&opts).unwrap();
        assert!(!r.is_ok(), "{what}");
        assert_eq!(
            std::fs::read(&current).unwrap(),
            afrinic,
            "{what}: cache untouched"
        );
        match r.registries.into_iter().next().unwrap().outcome {
            Outcome::Failed(e) => e,
            o => panic!("{what}: {o:?}"),
        }
    };

    // A published checksum that does not match.
    let text = String::from_utf8(afrinic.clone()).unwrap();
    let changed = text.replacen("|ZA|", "|NA|", 1);
    publish(&server, "afrinic-latest", changed.as_bytes(), false);
    server.serve(
        "/afrinic-latest.md5",
        format!("{:x}  afrinic\n", md5::compute(&afrinic)).into_bytes(),
    );
    assert!(matches!(fails("md5 mismatch"), GeoError::Checksum { .. }));

    // A download cut short (the md5 matches what was served, the summary does not).
    let cut: String = text.lines().take(5000).map(|l| format!("{l}\n")).collect();
    publish(&server, "afrinic-latest", cut.as_bytes(), true);
    let e = fails("truncated");
    assert!(e.to_string().contains("the summary declares"), "{e}");

    // Another registry's file at this registry's URL.
    publish(&server, "afrinic-latest", &vendored("lacnic"), true);
    let e = fails("wrong registry");
    assert!(
        e.to_string()
            .contains("the file is lacnic's, expected afrinic's"),
        "{e}"
    );

    // Not found.
    server.remove("/afrinic-latest");
    let e = fails("404");
    assert!(e.to_string().contains("HTTP status 404"), "{e}");

    // A server that accepts and never answers: the read timeout ends it.
    server.stall("/afrinic-latest");
    let t0 = Instant::now();
    let e = fails("stalled");
    assert!(matches!(e, GeoError::Fetch { .. }), "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "timed out after {:?}",
        t0.elapsed()
    );
}

#[test]
fn plain_http_to_another_host_is_refused_before_connecting() {
    let cache = Tmp::new();
    let mut opts = UpdateOptions::new(&cache.0);
    opts.urls = vec![(
        Registry::Apnic,
        "http://192.0.2.1/delegated-apnic-extended-latest".into(),
    )];
    let r = update(&opts).unwrap();
    match &r.registries[0].outcome {
        Outcome::Failed(GeoError::Url { reason, .. }) => {
            assert!(reason.contains("plain http is refused"))
        }
        o => panic!("{o:?}"),
    }
    assert!(!cache.0.join("delegated-apnic-extended-latest").exists());
}
