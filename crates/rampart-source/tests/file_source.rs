//! FileSource against real files in temp directories: appends, every rotation style, glob
//! pickup, first reads, restarts from checkpoints, polling without inotify.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use rampart_source::{Checkpoint, FileSource, FileSourceConfig, LineBatch, SourceError};

fn source(patterns: &[String]) -> FileSource {
    FileSource::new(FileSourceConfig::new(patterns.iter().cloned()), Vec::new()).expect("source")
}

fn restart(patterns: &[String], cps: Vec<Checkpoint>) -> FileSource {
    // Through JSON, as the daemon stores them.
    let json: Vec<String> = cps
        .iter()
        .map(|c| serde_json::to_string(c).expect("serialize"))
        .collect();
    let cps = json
        .iter()
        .map(|j| serde_json::from_str(j).expect("deserialize"))
        .collect();
    FileSource::new(FileSourceConfig::new(patterns.iter().cloned()), cps).expect("source")
}

#[test]
fn reads_appended_lines_and_holds_a_partial_line_until_its_newline() {
    let dir = TempDir::new("append");
    let log = dir.path("app.log");
    append(&log, "old line\n");
    let mut src = source(&[dir.pattern("app.log")]);
    assert_eq!(lines_now(&mut src), strs(&["old line"]));
    append(&log, "one\r\ntwo\nthr");
    assert_eq!(lines_now(&mut src), strs(&["one", "two"]));
    assert_eq!(lines_now(&mut src), Vec::<String>::new());
    append(&log, "ee\n");
    let got = read_now(&mut src);
    assert_eq!(got, vec![(log.clone(), "three".to_owned())]);
    assert_eq!(src.stats().lines, 4);
    assert!(src.stats().inotify, "inotify should be available here");
}

#[test]
fn wait_returns_soon_after_an_append() {
    let dir = TempDir::new("wait");
    let log = dir.path("app.log");
    append(&log, "");
    let mut cfg = FileSourceConfig::new([dir.pattern("app.log")]);
    cfg.poll_interval = Duration::from_secs(60);
    let mut src = FileSource::new(cfg, Vec::new()).unwrap();
    assert!(lines_now(&mut src).is_empty());
    let log2 = log.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        append(&log2, "wake up\n");
    });
    let started = Instant::now();
    src.wait(Duration::from_secs(30));
    let waited = started.elapsed();
    writer.join().unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "wait should end on the inotify event, not the 30 s timeout (took {waited:?})"
    );
    assert_eq!(lines_now(&mut src), strs(&["wake up"]));
}

#[test]
fn rename_rotation_reads_the_old_file_to_its_end_including_late_writes_then_the_new_file() {
    let dir = TempDir::new("rename");
    let log = dir.path("auth.log");
    let mut old = writer(&log);
    old.write_all(b"a1\n").unwrap();
    let mut src = source(&[dir.pattern("auth.log")]);
    assert_eq!(lines_now(&mut src), strs(&["a1"]));
    old.write_all(b"a2\n").unwrap();
    std::fs::rename(&log, dir.path("auth.log.1")).unwrap();
    let mut new = writer(&log);
    new.write_all(b"b1\n").unwrap();
    // The writer has not reopened yet: one more line lands in the old file.
    old.write_all(b"a3\n").unwrap();
    let got = read_now(&mut src);
    let lines: Vec<_> = got.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        lines,
        ["a2", "a3", "b1"],
        "old file to its end, then the new one"
    );
    assert!(
        got.iter().all(|(p, _)| *p == log),
        "reported under the configured path"
    );
    // Still later writes to the old descriptor are read too, within the grace period.
    old.write_all(b"a4\n").unwrap();
    new.write_all(b"b2\n").unwrap();
    assert_eq!(lines_now(&mut src), strs(&["a4", "b2"]));
    assert_eq!(src.stats().rotations, 1);
}

#[test]
fn copytruncate_reads_the_rest_from_the_copy_then_restarts_at_zero() {
    let dir = TempDir::new("copytruncate");
    let log = dir.path("app.log");
    let mut w = writer(&log);
    w.write_all(b"x1\nx2\n").unwrap();
    let mut src = source(&[dir.pattern("app.log")]);
    let mut batch = LineBatch::new();
    assert_eq!(src.read(&mut batch, 1).unwrap(), 1, "read only x1");
    // copytruncate: copy, then truncate in place; the writer keeps its O_APPEND descriptor.
    std::fs::copy(&log, dir.path("app.log.1")).unwrap();
    w.set_len(0).unwrap();
    w.write_all(b"y1\n").unwrap();
    assert_eq!(lines_now(&mut src), strs(&["x2", "y1"]));
    assert_eq!(src.stats().truncations, 1);
    assert_eq!(src.stats().rotated_found, 1);
    w.write_all(b"y2\n").unwrap();
    assert_eq!(lines_now(&mut src), strs(&["y2"]));
}

#[test]
fn truncation_without_a_copy_restarts_at_zero() {
    let dir = TempDir::new("truncate");
    let log = dir.path("app.log");
    append(&log, "long old line number one\nlong old line number two\n");
    let mut src = source(&[dir.pattern("app.log")]);
    assert_eq!(lines_now(&mut src).len(), 2);
    std::fs::write(&log, "new\n").unwrap();
    assert_eq!(lines_now(&mut src), strs(&["new"]));
    assert_eq!(src.stats().truncations, 1);
}

#[test]
fn delete_and_recreate_reads_the_new_file_from_the_start() {
    let dir = TempDir::new("delete");
    let log = dir.path("app.log");
    let mut old = writer(&log);
    old.write_all(b"old1\n").unwrap();
    let mut src = source(&[dir.pattern("app.log")]);
    assert_eq!(lines_now(&mut src), strs(&["old1"]));
    old.write_all(b"old2\n").unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(
        lines_now(&mut src),
        strs(&["old2"]),
        "the deleted file's last lines"
    );
    append(&log, "new1\nnew2\n");
    assert_eq!(lines_now(&mut src), strs(&["new1", "new2"]));
    assert_eq!(src.stats().rotations, 1);
}

#[test]
fn a_file_matching_a_glob_later_is_read_from_its_start() {
    let dir = TempDir::new("glob");
    append(&dir.path("a.log"), "a-old\n");
    let pat = format!("{}/*/*.log", dir.0.display());
    std::fs::create_dir(dir.path("site1")).unwrap();
    append(&dir.path("site1/access.log"), "s1-old\n");
    let mut src = source(&[dir.pattern("*.log"), pat]);
    let mut first = lines_now(&mut src);
    first.sort();
    assert_eq!(first, strs(&["a-old", "s1-old"]));
    // A new file in a watched directory, and a new directory with a matching file.
    append(&dir.path("b.log"), "b1\nb2\n");
    append(&dir.path("ignored.txt"), "nope\n");
    std::fs::create_dir(dir.path("site2")).unwrap();
    append(&dir.path("site2/access.log"), "s2-1\n");
    append(&dir.path("site2/access.log.gz"), "compressed\n");
    let got = read_until(&mut src, 3, Duration::from_secs(5));
    let mut got: Vec<_> = got
        .into_iter()
        .map(|(p, l)| (p.strip_prefix(&dir.0).unwrap().display().to_string(), l))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("b.log".to_owned(), "b1".to_owned()),
            ("b.log".to_owned(), "b2".to_owned()),
            ("site2/access.log".to_owned(), "s2-1".to_owned()),
        ]
    );
}

#[test]
fn first_read_of_a_file_without_checkpoint_starts_near_its_end_on_a_line_start() {
    let dir = TempDir::new("first");
    let log = dir.path("big.log");
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!("line {i:04}\n")); // 10 bytes each
    }
    append(&log, &text);
    let mut cfg = FileSourceConfig::new([dir.pattern("big.log")]);
    cfg.first_read_limit = 55; // lands inside "line 0994"
    let mut src = FileSource::new(cfg, Vec::new()).unwrap();
    assert_eq!(
        lines_now(&mut src),
        strs(&[
            "line 0995",
            "line 0996",
            "line 0997",
            "line 0998",
            "line 0999"
        ])
    );
}

#[test]
fn restart_with_checkpoint_resumes_without_repeating_or_missing_lines() {
    let dir = TempDir::new("resume");
    let log = dir.path("app.log");
    append(&log, "1\n2\n3\n4\n");
    let pats = [dir.pattern("app.log")];
    let mut src = source(&pats);
    let mut batch = LineBatch::new();
    assert_eq!(src.read(&mut batch, 2).unwrap(), 2);
    let cps = src.checkpoints();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].offset, 4);
    drop(src);
    append(&log, "5\n");
    let mut src = restart(&pats, cps);
    assert_eq!(lines_now(&mut src), strs(&["3", "4", "5"]));
}

#[test]
fn restart_after_rotation_while_down_reads_the_rotated_rest_first() {
    let dir = TempDir::new("rotated-down");
    let log = dir.path("auth.log");
    append(&log, "a1\na2\n");
    let pats = [dir.pattern("auth.log")];
    let mut src = source(&pats);
    let mut batch = LineBatch::new();
    assert_eq!(src.read(&mut batch, 1).unwrap(), 1);
    let cps = src.checkpoints();
    drop(src);
    append(&log, "a3\n");
    std::fs::rename(&log, dir.path("auth.log.1")).unwrap();
    append(&dir.path("auth.log.2.gz"), "not this\n");
    append(&log, "b1\n");
    let mut src = restart(&pats, cps);
    assert_eq!(lines_now(&mut src), strs(&["a2", "a3", "b1"]));
    assert_eq!(src.stats().rotated_found, 1);
}

#[test]
fn restart_after_copytruncate_while_down_reads_the_rest_from_the_copy() {
    let dir = TempDir::new("copy-down");
    let log = dir.path("app.log");
    // More than FINGERPRINT_BYTES, so the fingerprint alone identifies the copy.
    let x1 = format!("x1 {}", "-".repeat(2000));
    append(&log, &format!("{x1}\nx2\n"));
    let pats = [dir.pattern("app.log")];
    let mut src = source(&pats);
    let mut batch = LineBatch::new();
    assert_eq!(src.read(&mut batch, 1).unwrap(), 1);
    let cps = src.checkpoints();
    drop(src);
    std::fs::copy(&log, dir.path("app.log.1")).unwrap();
    std::fs::write(&log, "y1\n").unwrap();
    let mut src = restart(&pats, cps);
    assert_eq!(lines_now(&mut src), strs(&["x2", "y1"]));
    assert_eq!(src.stats().rotated_found, 1);
}

#[test]
fn restart_does_not_trust_a_short_fingerprint_on_another_file() {
    let dir = TempDir::new("short-fp");
    let log = dir.path("app.log");
    append(&log, "Nov 21 02:38:01 web1 sshd[1]: same start\n");
    let pats = [dir.pattern("app.log")];
    let mut src = source(&pats);
    assert_eq!(lines_now(&mut src).len(), 1);
    let cps = src.checkpoints();
    assert!(cps[0].fingerprint.len < rampart_source::FINGERPRINT_BYTES);
    drop(src);
    // Keep the old inode alive so the new file cannot reuse its number.
    let keep = dir.path("keep");
    std::fs::rename(&log, &keep).unwrap();
    append(&log, "Nov 21 02:38:01 web1 sshd[1]: same start\nnext\n");
    let mut src = restart(&pats, cps);
    assert_eq!(
        lines_now(&mut src),
        strs(&["Nov 21 02:38:01 web1 sshd[1]: same start", "next"]),
        "a new file that merely starts alike is read from its start"
    );
}

#[test]
fn restart_after_truncation_while_down_starts_at_zero() {
    let dir = TempDir::new("trunc-down");
    let log = dir.path("app.log");
    append(&log, "first line here\nsecond line here\n");
    let pats = [dir.pattern("app.log")];
    let mut src = source(&pats);
    assert_eq!(lines_now(&mut src).len(), 2);
    let cps = src.checkpoints();
    drop(src);
    std::fs::write(&log, "fresh\n").unwrap();
    let mut src = restart(&pats, cps);
    assert_eq!(lines_now(&mut src), strs(&["fresh"]));
}

#[test]
fn restart_after_delete_and_recreate_while_down_reads_the_new_file() {
    let dir = TempDir::new("delete-down");
    let log = dir.path("app.log");
    append(&log, "old\n");
    let pats = [dir.pattern("app.log")];
    let mut src = source(&pats);
    assert_eq!(lines_now(&mut src).len(), 1);
    let cps = src.checkpoints();
    drop(src);
    std::fs::remove_file(&log).unwrap();
    append(&log, "new\n");
    let mut src = restart(&pats, cps);
    assert_eq!(lines_now(&mut src), strs(&["new"]));
}

#[test]
fn a_checkpoint_taken_while_the_old_file_drains_resumes_both_files() {
    let dir = TempDir::new("drain-cp");
    let log = dir.path("auth.log");
    let mut old = writer(&log);
    old.write_all(b"a1\n").unwrap();
    let pats = [dir.pattern("auth.log")];
    let mut src = source(&pats);
    assert_eq!(lines_now(&mut src), strs(&["a1"]));
    std::fs::rename(&log, dir.path("auth.log.1")).unwrap();
    append(&log, "b1\n");
    assert_eq!(lines_now(&mut src), strs(&["b1"]));
    // The old writer appends late; we stop before reading it.
    old.write_all(b"a2\n").unwrap();
    let cps = src.checkpoints();
    assert_eq!(cps.len(), 1);
    assert_eq!(
        cps[0].rotated.len(),
        1,
        "the draining file is part of the checkpoint"
    );
    drop(src);
    append(&log, "b2\n");
    let mut src = restart(&pats, cps);
    assert_eq!(lines_now(&mut src), strs(&["a2", "b2"]));
}

#[test]
fn overlong_lines_are_counted_and_skipped() {
    let dir = TempDir::new("overlong");
    let log = dir.path("app.log");
    append(&log, "");
    let mut cfg = FileSourceConfig::new([dir.pattern("app.log")]);
    cfg.max_line = 10;
    let mut src = FileSource::new(cfg, Vec::new()).unwrap();
    let long = "x".repeat(100_000);
    append(&log, &format!("short\n{long}"));
    assert_eq!(lines_now(&mut src), strs(&["short"]));
    append(&log, &format!("{long}\nafter\n0123456789\n01234567890\n"));
    assert_eq!(lines_now(&mut src), strs(&["after", "0123456789"]));
    assert_eq!(src.stats().too_long, 2);
}

#[test]
fn max_lines_splits_reads_without_losing_lines_and_files_take_turns() {
    let dir = TempDir::new("budget");
    let (a, b) = (dir.path("a.log"), dir.path("b.log"));
    append(&a, "");
    append(&b, "");
    let mut src = source(&[dir.pattern("*.log")]);
    assert!(lines_now(&mut src).is_empty());
    let mut text_a = String::new();
    let mut text_b = String::new();
    for i in 0..5000 {
        text_a.push_str(&format!("a{i}\n"));
        text_b.push_str(&format!("b{i}\n"));
    }
    append(&a, &text_a);
    append(&b, &text_b);
    let mut batch = LineBatch::new();
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    let mut first_batches = Vec::new();
    loop {
        batch.clear();
        let n = src.read(&mut batch, 7).unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 7);
        if first_batches.len() < 4 {
            first_batches.push(batch.get(0).unwrap().0.to_path_buf());
        }
        for (p, l) in &batch {
            let l = String::from_utf8(l.to_vec()).unwrap();
            if p == a.as_path() {
                got_a.push(l);
            } else {
                got_b.push(l);
            }
        }
    }
    let want_a: Vec<String> = (0..5000).map(|i| format!("a{i}")).collect();
    let want_b: Vec<String> = (0..5000).map(|i| format!("b{i}")).collect();
    assert_eq!(got_a, want_a);
    assert_eq!(got_b, want_b);
    assert!(
        first_batches.contains(&a) && first_batches.contains(&b),
        "both files served early: {first_batches:?}"
    );
}

#[test]
fn without_inotify_polling_follows_appends_rotation_and_new_files() {
    let dir = TempDir::new("polling");
    let log = dir.path("app.log");
    append(&log, "p0\n");
    let mut cfg = FileSourceConfig::new([dir.pattern("*.log")]);
    cfg.inotify = false;
    cfg.poll_interval = Duration::from_millis(20);
    let mut src = FileSource::new(cfg, Vec::new()).unwrap();
    assert!(!src.stats().inotify);
    assert_eq!(lines_now(&mut src), strs(&["p0"]));
    append(&log, "p1\n");
    std::fs::rename(&log, dir.path("app.log.1")).unwrap();
    append(&log, "q1\n");
    append(&dir.path("other.log"), "o1\n");
    let got: Vec<String> = read_until(&mut src, 3, Duration::from_secs(5))
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, strs(&["o1", "p1", "q1"]));
    let p1 = got.iter().position(|l| l == "p1").unwrap();
    let q1 = got.iter().position(|l| l == "q1").unwrap();
    assert!(p1 < q1, "old file first: {got:?}");
}

#[test]
fn invalid_configuration_is_refused_with_the_reason() {
    let err = |cfg: FileSourceConfig| FileSource::new(cfg, Vec::new()).unwrap_err();
    assert!(matches!(
        err(FileSourceConfig::new(["relative/path.log"])),
        SourceError::InvalidPattern { .. }
    ));
    assert!(matches!(
        err(FileSourceConfig::new(Vec::<String>::new())),
        SourceError::InvalidConfig {
            field: "patterns",
            ..
        }
    ));
    let mut cfg = FileSourceConfig::new(["/var/log/x.log"]);
    cfg.max_line = 0;
    assert!(matches!(
        err(cfg),
        SourceError::InvalidConfig {
            field: "max_line",
            ..
        }
    ));
}

#[test]
fn config_parses_with_defaults_and_refuses_unknown_keys() {
    let cfg: FileSourceConfig =
        serde_json::from_str(r#"{"patterns":["/var/log/auth.log"],"poll_interval":"250ms"}"#)
            .unwrap();
    assert_eq!(cfg.poll_interval, Duration::from_millis(250));
    assert_eq!(cfg.first_read_limit, 1024 * 1024);
    assert_eq!(cfg.max_line, 64 * 1024);
    assert!(cfg.inotify);
    assert!(serde_json::from_str::<FileSourceConfig>(r#"{"patterns":[],"polling":"1s"}"#).is_err());
    assert!(
        serde_json::from_str::<FileSourceConfig>(r#"{"patterns":[],"poll_interval":"soon"}"#)
            .is_err()
    );
}

#[test]
fn a_rotated_file_is_closed_after_the_grace_period() {
    let dir = TempDir::new("grace");
    let log = dir.path("app.log");
    append(&log, "a1\n");
    let mut cfg = FileSourceConfig::new([dir.pattern("app.log")]);
    cfg.poll_interval = Duration::from_millis(100);
    let mut src = FileSource::new(cfg, Vec::new()).unwrap();
    assert_eq!(lines_now(&mut src), strs(&["a1"]));
    std::fs::rename(&log, dir.path("app.log.1")).unwrap();
    append(&log, "b1\n");
    assert_eq!(lines_now(&mut src), strs(&["b1"]));
    assert_eq!(
        src.stats().files,
        2,
        "the old file stays open for late writes"
    );
    assert_eq!(src.checkpoints()[0].rotated.len(), 1);
    std::thread::sleep(rampart_source::ROTATE_GRACE);
    let deadline = Instant::now() + Duration::from_secs(5);
    while src.stats().files > 1 && Instant::now() < deadline {
        src.wait(Duration::from_millis(50));
        assert!(lines_now(&mut src).is_empty());
    }
    assert_eq!(src.stats().files, 1, "closed after the grace period");
    assert!(src.checkpoints()[0].rotated.is_empty());
}
