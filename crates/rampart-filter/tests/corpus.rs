//! Every built-in filter is proven by its annotated corpus.

use std::sync::Arc;

use rampart_filter::builtin::BUILTINS;
use rampart_filter::corpus::check;
use rampart_filter::Filter;

#[test]
fn every_builtin_filter_passes_its_corpus() {
    let mut failures = Vec::new();
    for b in BUILTINS {
        let filter =
            Arc::new(Filter::from_toml(b.name, b.name, b.toml).expect("built-in filter compiles"));
        let origin = format!("filters/{}.corpus.log", b.name);
        let report = check(&filter, &origin, b.corpus);
        if report.injections == 0 {
            failures.push(format!("{origin}: no injection line (forged=...)"));
        }
        if report.failures == 0 {
            failures.push(format!("{origin}: no failure lines"));
        }
        failures.extend(report.errors);
    }
    assert!(
        failures.is_empty(),
        "corpus problems:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_filter_file_is_a_builtin_with_a_corpus() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../filters");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("filters/ exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".toml"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    let builtins: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
    assert_eq!(names, builtins, "filters/*.toml and BUILTINS differ");
    for n in &names {
        let corpus = format!("{dir}/{n}.corpus.log");
        assert!(std::path::Path::new(&corpus).is_file(), "{n} has no corpus");
    }
}

#[test]
fn every_builtin_filter_has_an_active_prefilter() {
    for b in BUILTINS {
        let filter = Filter::from_toml(b.name, b.name, b.toml).expect("compiles");
        assert!(
            filter.has_prefilter(),
            "{}: some pattern has no required literal",
            b.name
        );
    }
}

#[test]
fn corpus_checker_catches_a_wrong_annotation() {
    let b = &BUILTINS[0];
    let filter = Arc::new(Filter::from_toml(b.name, b.name, b.toml).expect("compiles"));
    let bad = "# corpus: now=2026-11-25T00:00:00Z zone=UTC\n\
               # expect: failure addr=198.51.100.99 time=2026-11-21T01:02:03Z pattern=failed-auth\n\
               Nov 21 01:02:03 web1 sshd[1]: Failed password for root from 198.51.100.7 port 1 ssh2\n\
               # expect: none\n\
               Nov 21 01:02:04 web1 sshd[1]: Invalid user x from 198.51.100.7 port 1\n\
               Nov 21 01:02:05 web1 sshd[1]: unannotated\n";
    let report = check(&filter, "inline", bad);
    let all = report.errors.join("\n");
    assert!(
        all.contains("inline:2") || all.contains("inline:3"),
        "{all}"
    );
    assert!(all.contains("expected addr"), "{all}");
    assert!(all.contains("expected none, got failure"), "{all}");
    assert!(all.contains("without a `# expect:` annotation"), "{all}");
    assert!(all.contains("has no sample"), "{all}");
}
