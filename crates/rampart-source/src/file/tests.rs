use super::*;

fn temp_file(tag: &str, content: &[u8]) -> (PathBuf, File) {
    let dir = std::env::temp_dir().join(format!("rampart-unit-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.log");
    std::fs::write(&path, content).unwrap();
    let f = File::open(&path).unwrap();
    (dir, f)
}

#[test]
fn tail_start_aligns_forward_to_the_next_line() {
    let (dir, f) = temp_file("tail", b"aaaa\nbbbb\ncccc\n");
    // 7 bytes from the end lands inside "bbbb": the next line start is "cccc".
    assert_eq!(tail_start(&f, 15, 7).unwrap().0, 10);
    // Exactly at a line start.
    assert_eq!(tail_start(&f, 15, 10).unwrap(), (5, None));
    // Larger than the file: from the start.
    assert_eq!(tail_start(&f, 15, 100).unwrap(), (0, None));
    // Zero: at the end.
    assert_eq!(tail_start(&f, 15, 0).unwrap(), (15, None));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tail_start_inside_an_unfinished_last_line_skips_it_without_counting() {
    let (dir, f) = temp_file("partial", b"aaaa\nbbbbbbbb");
    let (pos, skip) = tail_start(&f, 13, 4).unwrap();
    assert_eq!(pos, 9);
    let skip = skip.unwrap();
    assert!(!skip.counts);
    assert_eq!(skip.scanned, 13);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resuming_inside_a_line_skips_to_the_next_line() {
    let (dir, f) = temp_file("resume", b"aaaa\nbbbb\n");
    assert_eq!(line_start_at(&f, 5).unwrap(), (5, None));
    assert!(line_start_at(&f, 7).unwrap().1.is_some());
    assert_eq!(line_start_at(&f, 0).unwrap(), (0, None));
    std::fs::remove_dir_all(dir).unwrap();
}
