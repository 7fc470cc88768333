//! Plans (the direct matcher for patterns that one byte of look-ahead decides) must find
//! exactly what the regex crate's PikeVM finds: the same match, the same groups.

use std::sync::LazyLock;

use proptest::prelude::*;
use rampart_core::Timestamp;
use rampart_filter::builtin::BUILTINS;
use rampart_filter::extract::Extractor;
use rampart_filter::time::{FormatChoice, TimeParser, Zone};
use rampart_filter::Filter;
use rampart_testkit::{GenConfig, LogKind};

fn hir(pattern: &str) -> regex_syntax::hir::Hir {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .expect("parses")
}

/// Patterns with every construct a plan handles: optional parts, alternatives decided by
/// the first byte or by literals, repeated groups, bounded runs, groups inside repetitions,
/// with and without `$`.
const SYNTHETIC: &[&str] = &[
    r"^(?P<user>\S+) from \[?(?P<host>[0-9A-Fa-f:.]+)\]?(?: port \d+(?: (?P<conn>x+))?)?$",
    r#"^a(?:-b|-cd)?(?:\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])+ (?P<user>[a-z]*)"#,
    r"^(?:(?P<conn>a)|b)+c?$",
    r"^x{2}[a-c]{1,3}(?P<host>y+)?z",
    r"^(?:ab|cd|b)e (?:f|g)+ *$",
    r"^(?P<conn>[^\s\[]\S* p(?:-x|-yz)?(?:\[\d+\]:| \d+ \S+ (?:-|(?:\[[^\]]*\])+))|\[p\]:?) (?:error: |fatal: )?z",
    r"^(?:(?:SHA256|MD5):[a-z]+|[0-9a-fx]{2}(?::[0-9a-fx]{2})+)$",
    // Heads with every group, rests on an automaton.
    r"^(?P<host>[0-9.]+) (?P<user>\S+) [^ ]*(?:ab|abc|x)[^ ]* (?:1|19)",
    r#"^(?P<conn>[a-z]+)-(?:a|ab)*"[^"]*(?:cd|d)[^"]*"(?: "[^"]*")*$"#,
];

const ALPHABET: &[&str] = &[
    "a", "b", "c", "d", "e", " ", "x", "y", "z", "-", "[", "]", "\"", "\\", ":", ".", "1", "9",
    " from ", " port ", "ab", "cd", "-cd", "-b", "f", "g", "p", "-yz", "[p]", "error: ", "SHA256",
    "MD5", "0f", "\n",
];

static SYNTH: LazyLock<Vec<Extractor>> = LazyLock::new(|| {
    SYNTHETIC
        .iter()
        .map(|p| {
            let ex = Extractor::new(&hir(p)).expect("builds");
            assert!(ex.has_plan(), "{p} should have a plan");
            ex
        })
        .collect()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]
    #[test]
    fn plans_agree_with_the_pikevm_on_generated_strings(
        parts in proptest::collection::vec(0usize..ALPHABET.len(), 0..14),
    ) {
        let msg: Vec<u8> = parts.iter().flat_map(|&i| ALPHABET[i].bytes()).collect();
        for (pattern, ex) in SYNTHETIC.iter().zip(SYNTH.iter()) {
            let mut cache = ex.create_cache();
            prop_assert_eq!(
                ex.extract(&mut cache, &msg),
                ex.reference_extract(&msg),
                "{} on {:?}", pattern, String::from_utf8_lossy(&msg)
            );
        }
    }
}

/// The sshd patterns that match most lines of a real auth.log.
const SSHD_FREQUENT: &[&str] = &[
    "invalid-user",
    "not-allowed",
    "failed-publickey-user",
    "failed-auth",
    "pam-failure-ruser",
    "pam-failure",
    "pam-more-failures",
    "max-attempts",
    "too-many-failures",
    "preauth-closed-user",
    "preauth-received-disconnect",
    "preauth-user-end",
    "preauth-closed-end",
];

#[test]
fn frequent_builtin_patterns_run_on_plans() {
    let mut planned = 0;
    for b in BUILTINS {
        let f = Filter::from_toml(b.name, b.name, b.toml).expect("compiles");
        for p in f.patterns() {
            let d = p.extractor().describe();
            if d.starts_with("plan") || d == "split(plan+plan)" {
                planned += 1;
            }
        }
    }
    // A regression that loses plans (a construct no longer accepted) shows here, not only
    // in the benchmark.
    assert!(planned >= 30, "only {planned} patterns run on plans");
    let sshd = rampart_filter::load("sshd").expect("sshd");
    for p in sshd.patterns() {
        let d = p.extractor().describe();
        if SSHD_FREQUENT.contains(&p.id.as_str()) {
            assert!(
                d.starts_with("plan") || d == "split(plan+plan)",
                "sshd {} runs on {d}",
                p.id
            );
        }
    }
}

/// Every pattern of every built-in filter, on every line of the generated benchmark logs
/// (a sample of 20,000 of each kind): the extractor and the PikeVM agree.
#[test]
fn builtin_patterns_agree_with_the_pikevm_on_generated_logs() {
    let filters: Vec<Filter> = BUILTINS
        .iter()
        .map(|b| Filter::from_toml(b.name, b.name, b.toml).expect("compiles"))
        .collect();
    let mut runs: Vec<_> = filters
        .iter()
        .flat_map(|f| {
            f.patterns().iter().map(move |p| {
                let ex = p.extractor();
                (f, p, ex.create_cache(), ex.reference_cache())
            })
        })
        .collect();
    for kind in [LogKind::Auth, LogKind::Access] {
        let mut text = Vec::new();
        rampart_testkit::generate(
            &GenConfig {
                kind,
                lines: 20_000,
                seed: 7,
                start: Timestamp::from_secs(1_795_000_000),
                doc_only: true,
            },
            &mut text,
        )
        .expect("generates");
        let mut tp = TimeParser::new(
            FormatChoice::Auto,
            Zone::utc(),
            Timestamp::from_secs(1_800_000_000),
        );
        let mut matched = 0usize;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let start = tp.parse(line).map(|s| s.message_start).unwrap_or(0);
            let msg = &line[start.min(line.len())..];
            for (f, p, cache, rc) in &mut runs {
                let ex = p.extractor();
                let got = ex.extract(cache, msg);
                matched += usize::from(got.is_some());
                assert_eq!(
                    got,
                    ex.reference_extract_with(rc, msg),
                    "{} {} ({}) on {:?}",
                    f.name(),
                    p.id,
                    ex.describe(),
                    String::from_utf8_lossy(msg)
                );
            }
        }
        assert!(matched > 1000, "{kind:?}: only {matched} matches");
    }
}
