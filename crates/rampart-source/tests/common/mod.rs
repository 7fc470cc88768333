//! Helpers shared by the integration tests: unique temp directories removed on drop, and
//! collecting lines from a source.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rampart_source::{FileSource, LineBatch};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory unique to this process and call, removed (with its content) on drop, also
/// when the test fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("rampart-source-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn pattern(&self, name: &str) -> String {
        self.path(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Appends `text` to `path` (creating it), like a logger opening in append mode.
pub fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// An append-mode writer that keeps its descriptor, like a daemon writing its log.
pub fn writer(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open writer")
}

/// Reads everything ready now (repeated `read` calls until one returns 0).
pub fn read_now(src: &mut FileSource) -> Vec<(PathBuf, String)> {
    let mut batch = LineBatch::new();
    let mut out = Vec::new();
    loop {
        batch.clear();
        let n = src.read(&mut batch, 1000).expect("read");
        out.extend(
            batch
                .iter()
                .map(|(p, l)| (p.to_path_buf(), String::from_utf8_lossy(l).into_owned())),
        );
        if n == 0 {
            return out;
        }
    }
}

/// Lines only, of everything ready now.
pub fn lines_now(src: &mut FileSource) -> Vec<String> {
    read_now(src).into_iter().map(|(_, l)| l).collect()
}

/// Waits and reads until `n` lines came or `timeout` passed.
pub fn read_until(src: &mut FileSource, n: usize, timeout: Duration) -> Vec<(PathBuf, String)> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        src.wait(Duration::from_millis(50));
        out.extend(read_now(src));
    }
    out
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}
