//! Every built-in filter is proven by its annotated corpus.

use std::sync::Arc;

use rampart_filter::builtin::BUILTINS;
use rampart_filter::corpus::{check, check_source, undocumented_addresses};
use rampart_filter::Filter;

#[test]
fn every_builtin_filter_passes_its_corpus() {
    let mut failures = Vec::new();
    for b in BUILTINS {
        let filter = Filter::from_toml(b.name, b.name, b.toml).expect("built-in filter compiles");
        let origin = format!("filters/{}.corpus.log", b.name);
        let report = check_source(b.name, b.toml, &origin, b.corpus);
        if filter.attacker_fields().is_empty() {
            failures.push(format!(
                "filters/{}.toml: declares no attacker_fields (which parts of a line the client chooses)",
                b.name
            ));
        }
        for field in filter.attacker_fields() {
            if !report.injected_fields.contains(field) {
                failures.push(format!(
                    "{origin}: no injection line through the attacker-controlled field {field:?} (forged=ADDR via={field})"
                ));
            }
        }
        for field in &report.injected_fields {
            if !filter.attacker_fields().contains(field) {
                failures.push(format!(
                    "{origin}: via={field} is not one of the filter's attacker_fields"
                ));
            }
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
fn corpora_use_only_documentation_addresses() {
    let mut bad = Vec::new();
    for b in BUILTINS {
        for (n, addr) in undocumented_addresses(b.corpus) {
            bad.push(format!("filters/{}.corpus.log:{n}: {addr}", b.name));
        }
    }
    assert!(
        bad.is_empty(),
        "addresses outside 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32:\n{}",
        bad.join("\n")
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
    let b = &BUILTINS
        .iter()
        .find(|b| b.name == "sshd")
        .expect("sshd is built in");
    let filter = Arc::new(Filter::from_toml(b.name, b.name, b.toml).expect("compiles"));
    let bad = "# corpus: now=2026-11-25T00:00:00Z zone=UTC\n\
               # expect: failure addr=198.51.100.99 time=2026-11-21T01:02:03Z pattern=failed-auth\n\
               Nov 21 01:02:03 web1 sshd[1]: Failed password for root from 198.51.100.7 port 1 ssh2\n\
               # expect: none\n\
               Nov 21 01:02:04 web1 sshd[2]: Invalid user x from 198.51.100.7 port 1\n\
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

#[test]
fn corpus_checker_needs_samples_of_patterns_switched_on_by_parameters() {
    let toml = r#"
[params.mode]
kind = "choice"
values = ["normal", "aggressive"]
default = "normal"
[[failure]]
id = "plain"
regex = '^fail <HOST>$'
[[failure]]
id = "extra"
when = { mode = ["aggressive"] }
regex = '^garbage <HOST>$'
"#;
    let only_default = "# corpus: now=2026-11-25T00:00:00Z zone=UTC\n\
        # expect: failure addr=198.51.100.7 time=2026-11-21T01:02:03Z pattern=plain\n\
        2026-11-21T01:02:03Z fail 198.51.100.7\n\
        # expect: none\n\
        2026-11-21T01:02:04Z garbage 198.51.100.7\n";
    let report = check_source("t", toml, "inline", only_default);
    let all = report.errors.join("\n");
    assert!(all.contains("pattern \"extra\" has no sample"), "{all}");
    let with_variant = format!(
        "{only_default}# params: mode=aggressive\n\
         # expect: failure addr=198.51.100.8 time=2026-11-21T01:02:05Z pattern=extra\n\
         2026-11-21T01:02:05Z garbage 198.51.100.8\n"
    );
    let report = check_source("t", toml, "inline", &with_variant);
    assert!(report.errors.is_empty(), "{}", report.errors.join("\n"));
    let unknown = format!("{only_default}# params: mood=aggressive\n# expect: none\nx\n");
    let report = check_source("t", toml, "inline", &unknown);
    let all = report.errors.join("\n");
    assert!(all.contains("unknown parameter \"mood\""), "{all}");
}
