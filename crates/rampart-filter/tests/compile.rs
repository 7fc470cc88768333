//! Bad filter definitions fail with an error that names the file and the pattern.

use rampart_filter::{Filter, FilterError, Verdict};

fn compile(toml: &str) -> Result<Filter, FilterError> {
    Filter::from_toml("t", "test.toml", toml)
}

fn err(toml: &str) -> String {
    compile(toml).expect_err("must be rejected").to_string()
}

#[test]
fn unknown_keys_are_rejected_with_line_and_column() {
    let e = err("descripton = \"typo\"\n[[failure]]\nid = \"a\"\nregex = '^<HOST>'\n");
    assert!(e.starts_with("test.toml:"), "{e}");
    assert!(e.contains("descripton") && e.contains("line 1"), "{e}");
    let e = err("[[failure]]\nid = \"a\"\nregex = '^<HOST>'\nflags = 1\n");
    assert!(e.contains("flags") && e.contains("line 4"), "{e}");
}

#[test]
fn a_filter_without_host_is_rejected() {
    let e = err("[[failure]]\nid = \"a\"\nregex = '^Failed for \\S+'\n");
    assert!(
        e.contains("test.toml") && e.contains("\"a\"") && e.contains("<HOST>"),
        "{e}"
    );
}

#[test]
fn a_regex_that_does_not_compile_is_rejected_naming_the_pattern() {
    let e = err("[[failure]]\nid = \"broken\"\nregex = '^(<HOST>'\n");
    assert!(
        e.contains("test.toml") && e.contains("\"broken\"") && e.contains("does not compile"),
        "{e}"
    );
}

#[test]
fn backtracking_only_syntax_is_rejected() {
    let e = err("[[failure]]\nid = \"look\"\nregex = '^(?!x)<HOST>'\n");
    assert!(e.contains("\"look\""), "{e}");
    let e = err("[[failure]]\nid = \"backref\"\nregex = '^(a)\\1<HOST>'\n");
    assert!(e.contains("\"backref\""), "{e}");
}

#[test]
fn unanchored_patterns_are_rejected() {
    let e = err("[[failure]]\nid = \"a\"\nregex = 'from <HOST>'\n");
    assert!(e.contains("anchored"), "{e}");
}

#[test]
fn duplicate_ids_unknown_groups_and_double_host_are_rejected() {
    assert!(err("[[failure]]\nid = \"a\"\nregex = '^<HOST>'\n[[failure]]\nid = \"a\"\nregex = '^x <HOST>'\n").contains("twice"));
    assert!(err("[[failure]]\nid = \"a\"\nregex = '^(?P<city>\\w+) <HOST>'\n").contains("city"));
    assert!(err("[[failure]]\nid = \"a\"\nregex = '^<HOST> <HOST>'\n").contains("only once"));
    assert!(err("[[failure]]\nid = \"Bad Id\"\nregex = '^<HOST>'\n").contains("[a-z0-9-]"));
    assert!(err("description = \"nothing\"\n").contains("at least one"));
}

#[test]
fn invalid_utf8_lines_are_still_matched() {
    let f = compile("[[failure]]\nid = \"a\"\nregex = '^Failed for (?P<user>.*) from <HOST>$'\n")
        .expect("compiles");
    let mut s = f.scratch();
    let line = b"Failed for \xff\xfe\x80user from 198.51.100.7";
    match f.match_message(&mut s, line) {
        Verdict::Hit(h) => {
            assert_eq!(h.addr, "198.51.100.7".parse().ok());
            assert_eq!(h.user, Some(&b"\xff\xfe\x80user"[..]));
        }
        other => panic!("expected a hit, got {other:?}"),
    }
}

#[test]
fn address_shaped_garbage_is_not_a_failure() {
    let f = compile("[[failure]]\nid = \"a\"\nregex = '^from <HOST>$'\n").expect("compiles");
    let mut s = f.scratch();
    assert_eq!(
        f.match_message(&mut s, b"from 999.1.1.1"),
        Verdict::BadHost { pattern: 0 }
    );
    assert_eq!(f.match_message(&mut s, b"from nothing"), Verdict::NoMatch);
}

#[test]
fn ignore_patterns_veto_failures() {
    let f = compile(
        "prefix = '^x '\n[[failure]]\nid = \"a\"\nregex = 'fail (?P<user>\\S+) from <HOST>$'\n[[ignore]]\nid = \"monitor\"\nregex = 'fail nagios '\n",
    )
    .expect("compiles");
    let mut s = f.scratch();
    assert_eq!(
        f.match_message(&mut s, b"x fail nagios from 192.0.2.1"),
        Verdict::Ignored { pattern: 0 }
    );
    assert!(matches!(
        f.match_message(&mut s, b"x fail root from 192.0.2.1"),
        Verdict::Hit(_)
    ));
}

#[test]
fn notes_supply_the_address_of_a_connection() {
    use rampart_core::Timestamp;
    use rampart_filter::time::{FormatChoice, TimeParser, Zone};
    use rampart_filter::{EventKind, Scanner};
    use std::sync::Arc;
    let f = Arc::new(
        compile(
            "[[failure]]\nid = \"auth\"\nregex = '^conn=(?P<conn>\\d+) auth failed$'\n[[note]]\nid = \"open\"\nregex = '^conn=(?P<conn>\\d+) from <HOST>$'\n",
        )
        .expect("compiles"),
    );
    let now = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").expect("time");
    let mut sc = Scanner::new(
        vec![f],
        TimeParser::new(FormatChoice::Auto, Zone::utc(), now),
        false,
    );
    let mut got = Vec::new();
    for line in [
        "Nov 21 01:00:00 conn=7 auth failed",
        "Nov 21 01:00:01 conn=7 from 198.51.100.7",
        "Nov 21 01:00:02 conn=7 auth failed",
    ] {
        sc.scan(line.as_bytes(), |e| got.push((e.kind, e.addr)));
    }
    // The first failure is held until the note names the connection's address, then
    // counted on the note's line.
    let a = "198.51.100.7".parse().ok();
    assert_eq!(
        got,
        vec![
            (EventKind::Held, None),
            (EventKind::Failure, a),
            (EventKind::Failure, a)
        ]
    );
}
