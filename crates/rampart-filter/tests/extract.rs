//! The split fast path of capture extraction must agree with the general engine on every
//! line, including lines an attacker shaped to confuse it.

use std::sync::LazyLock;

use proptest::prelude::*;
use rampart_core::Timestamp;
use rampart_filter::builtin::BUILTINS;
use rampart_filter::time::{FormatChoice, TimeParser, Zone};
use rampart_filter::Filter;

static FILTERS: LazyLock<Vec<Filter>> = LazyLock::new(|| {
    BUILTINS
        .iter()
        .map(|b| Filter::from_toml(b.name, b.name, b.toml).expect("compiles"))
        .collect()
});

static MESSAGES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(corpus_messages);

/// Messages (timestamp removed) of every line of every built-in corpus.
fn corpus_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for b in BUILTINS {
        let mut tp = TimeParser::new(
            FormatChoice::Auto,
            Zone::utc(),
            Timestamp::from_secs(1_800_000_000),
        );
        for line in b
            .corpus
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let start = tp
                .parse(line.as_bytes())
                .map(|s| s.message_start)
                .unwrap_or(0);
            out.push(line.as_bytes()[start..].to_vec());
        }
    }
    out
}

const FRAGMENTS: &[&str] = &[
    " from 198.51.100.7 port 22",
    " from 203.0.113.9 port 4242 ssh2",
    " from ",
    " port 22",
    " ssh2",
    " [preauth]",
    " user ",
    " invalid user x",
    " 2001:db8::1 port 1",
    " not allowed because listed in DenyUsers",
    ": RSA SHA256:abc",
    "  ",
    "x",
    "::ffff:",
    ".",
    " rhost=198.51.100.7",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn split_fast_path_agrees_with_the_general_engine(
        base in 0usize..10_000,
        edits in proptest::collection::vec((0usize..200, 0usize..FRAGMENTS.len(), any::<bool>()), 0..4),
    ) {
        let msgs = &*MESSAGES;
        let mut msg = msgs[base % msgs.len()].clone();
        for (pos, frag, delete) in edits {
            let at = pos % (msg.len() + 1);
            if delete && at < msg.len() {
                let end = (at + FRAGMENTS[frag].len()).min(msg.len());
                msg.drain(at..end);
            } else {
                msg.splice(at..at, FRAGMENTS[frag].bytes());
            }
        }
        for f in FILTERS.iter() {
            for p in f.patterns() {
                let ex = p.extractor();
                let mut cache = ex.create_cache();
                let full = ex.full_extract(&mut cache, &msg);
                // The pattern's own engine (a plan, when it has one) is the PikeVM's equal.
                prop_assert_eq!(full, ex.reference_extract(&msg), "{} {} ({}) on {:?}", f.name(), p.id, ex.describe(), String::from_utf8_lossy(&msg));
                if let Some(fast) = ex.split_extract(&mut cache, &msg) {
                    prop_assert_eq!(Some(fast), full, "{} {} on {:?}", f.name(), p.id, String::from_utf8_lossy(&msg));
                }
                if ex.split_rules_out(&mut cache, &msg) {
                    prop_assert_eq!(full, None, "{} {} ruled out {:?}", f.name(), p.id, String::from_utf8_lossy(&msg));
                }
                prop_assert_eq!(ex.extract(&mut cache, &msg), full);
            }
        }
    }
}

/// Patterns where several splits are feasible, so only the rightmost one is right.
const SYNTHETIC: &[&str] = &[
    r"^a (?P<user>.*) b(?P<conn>.*)$",
    r"^a (?P<user>.*) from (?P<host>[0-9.]+)(?: (?P<conn>.*))?$",
    r"^(?:a |aa )?(?P<user>.+) from (?P<host>[0-9.]+) b$",
    r"^a (?P<conn>[a-z]*) ?(?P<user>.*) b(?: b)?$",
];

const ALPHABET: &[&str] = &[
    "a ", "aa ", "b", " b", " from ", "1.2.3.4", "x", " ", "from",
];

fn extractor(pattern: &str) -> rampart_filter::extract::Extractor {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .expect("parses");
    let ex = rampart_filter::extract::Extractor::new(&hir).expect("builds");
    assert!(ex.has_fast_path(), "{pattern} should take the split path");
    ex
}

static SYNTH: LazyLock<Vec<rampart_filter::extract::Extractor>> =
    LazyLock::new(|| SYNTHETIC.iter().map(|p| extractor(p)).collect());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]
    #[test]
    fn split_fast_path_takes_the_rightmost_feasible_split(
        parts in proptest::collection::vec(0usize..ALPHABET.len(), 0..12),
    ) {
        let mut msg = b"a ".to_vec();
        for i in parts {
            msg.extend_from_slice(ALPHABET[i].as_bytes());
        }
        for (pattern, ex) in SYNTHETIC.iter().zip(SYNTH.iter()) {
            let mut cache = ex.create_cache();
            let full = ex.full_extract(&mut cache, &msg);
            prop_assert_eq!(full, ex.reference_extract(&msg), "{} on {:?}", pattern, String::from_utf8_lossy(&msg));
            if let Some(fast) = ex.split_extract(&mut cache, &msg) {
                prop_assert_eq!(Some(fast), full, "{} on {:?}", pattern, String::from_utf8_lossy(&msg));
            }
            if ex.split_rules_out(&mut cache, &msg) {
                prop_assert_eq!(full, None, "{} ruled out {:?}", pattern, String::from_utf8_lossy(&msg));
            }
            prop_assert_eq!(ex.extract(&mut cache, &msg), full);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    /// Choosing the pattern from the literals a message contains gives the same verdict as
    /// the combined automaton, on corpus lines cut and spliced with each other's pieces.
    #[test]
    fn literal_selection_agrees_with_the_combined_automaton(
        a in 0usize..10_000,
        b in 0usize..10_000,
        cut in 0usize..200,
        edits in proptest::collection::vec((0usize..200, 0usize..FRAGMENTS.len()), 0..3),
    ) {
        let msgs = &*MESSAGES;
        let (x, y) = (&msgs[a % msgs.len()], &msgs[b % msgs.len()]);
        // The head of one message and the tail of another: patterns' literals collide.
        let mut msg = x[..cut.min(x.len())].to_vec();
        msg.extend_from_slice(&y[cut.min(y.len())..]);
        for (pos, frag) in edits {
            let at = pos % (msg.len() + 1);
            msg.splice(at..at, FRAGMENTS[frag].bytes());
        }
        for f in FILTERS.iter() {
            let mut s1 = f.scratch();
            let mut s2 = f.scratch();
            prop_assert_eq!(
                f.match_message(&mut s1, &msg),
                f.match_message_with_set(&mut s2, &msg),
                "{} on {:?}", f.name(), String::from_utf8_lossy(&msg)
            );
        }
    }
}

/// The prefix path (prefix matched once per line, then the patterns whose leading literal
/// follows it) is taken where the patterns start with selective literals, and not where
/// they start with `"` (there the line's literal scan rules out more lines for less).
/// The proptest above checks that both paths agree wherever it is taken.
#[test]
fn the_prefix_path_is_taken_where_patterns_start_with_literals() {
    let with: Vec<&str> = FILTERS
        .iter()
        .filter(|f| f.has_dispatch())
        .map(Filter::name)
        .collect();
    for name in ["sshd", "nginx-auth", "nginx-limit-req"] {
        assert!(
            with.contains(&name),
            "{name} should match its prefix once: {with:?}"
        );
    }
    assert!(!with.contains(&"web-badbots"), "{with:?}");
}
