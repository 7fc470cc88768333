//! Model test of the file tailer: random sequences of append, late append to a rotated
//! file's old descriptor, rename rotation, copytruncate, delete + recreate, reads with small
//! budgets, and restarts from checkpoints (with rotations while stopped), on real files in a
//! temp directory. Every line carries (file, generation, sequence), so the check is exact:
//! every line written is read exactly once, in order, per physical file.
//!
//! The model's assumptions, each one a limit of tailing in general rather than of this
//! tailer:
//! - While the source runs it is awake: after each change the test calls `read` with
//!   `max_lines = 0` (it notices changes without taking lines, as a daemon with a full queue
//!   would). Lines may stay unread for a long time; rotations are noticed.
//! - copytruncate writes nothing between the copy and the truncate (lines written there
//!   are lost by the method itself).
//! - While the source is stopped each file is rotated at most once (after two renames the
//!   middle file cannot be told apart from an unrelated one), and the writer of a renamed
//!   file stops writing to its old descriptor when the source stops.
//! - Allowed losses, and only these: lines not yet read from a file deleted before the
//!   source read them and then restarted (the file is gone), and lines not yet read from a
//!   file copytruncated while stopped whose checkpoint fingerprint was too short to trust,
//!   and lines of a file renamed while stopped that the checkpoint knew empty (or not at
//!   all). For those files the lines read must be an in-order prefix.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use common::TempDir;
use proptest::prelude::*;
use rampart_source::{Checkpoint, FileSource, FileSourceConfig, LineBatch, FINGERPRINT_BYTES};

const FILES: usize = 3;
/// Most draining files the source keeps per path is 4; the model reads everything before a
/// path would exceed that many unread rotations.
const MAX_UNREAD_ROTATIONS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Append { f: usize, n: usize },
    AppendOld { f: usize, n: usize },
    Rename { f: usize },
    CopyTruncate { f: usize },
    DeleteRecreate { f: usize },
    Read { max: usize },
    Stop,
    Start,
}

fn op() -> impl Strategy<Value = Op> {
    let f = 0..FILES;
    prop_oneof![
        6 => (f.clone(), 1..8usize).prop_map(|(f, n)| Op::Append { f, n }),
        2 => (f.clone(), 1..4usize).prop_map(|(f, n)| Op::AppendOld { f, n }),
        2 => f.clone().prop_map(|f| Op::Rename { f }),
        2 => f.clone().prop_map(|f| Op::CopyTruncate { f }),
        1 => f.clone().prop_map(|f| Op::DeleteRecreate { f }),
        4 => prop_oneof![1..5usize, Just(usize::MAX)].prop_map(|max| Op::Read { max }),
        1 => Just(Op::Stop),
        1 => Just(Op::Start),
    ]
}

/// One log path as the writer sees it.
struct LogFile {
    path: PathBuf,
    /// Generation of the file the path names now; None before it exists.
    gen: Option<usize>,
    writer: Option<File>,
    /// The previous generation's descriptor, after a rename/delete while running.
    old: Option<(usize, File)>,
    rotated_files: usize,
    rotated_while_down: bool,
    unread_rotations: usize,
    next_gen: usize,
}

struct Model {
    dir: TempDir,
    files: Vec<LogFile>,
    /// Lines written per (file, generation).
    written: BTreeMap<(usize, usize), usize>,
    /// (file, generation) whose unread lines may be lost.
    may_lose: BTreeSet<(usize, usize)>,
    /// Generations deleted (their unread lines vanish if the source restarts).
    deleted: BTreeSet<(usize, usize)>,
    /// Lines read, per (file, generation), in the order read.
    read: BTreeMap<(usize, usize), Vec<usize>>,
    source: Option<FileSource>,
    stopped_with: Vec<Checkpoint>,
    batch: LineBatch,
}

fn line(f: usize, g: usize, n: usize) -> String {
    // About 60 bytes, so files pass FINGERPRINT_BYTES after a few dozen lines.
    format!("f{f} g{g} n{n} {}\n", "-".repeat(40))
}

impl Model {
    fn new() -> Self {
        let dir = TempDir::new("model");
        let files = (0..FILES)
            .map(|i| LogFile {
                path: dir.path(&format!("f{i}.log")),
                gen: None,
                writer: None,
                old: None,
                rotated_files: 0,
                rotated_while_down: false,
                unread_rotations: 0,
                next_gen: 0,
            })
            .collect();
        let mut m = Model {
            dir,
            files,
            written: BTreeMap::new(),
            may_lose: BTreeSet::new(),
            deleted: BTreeSet::new(),
            read: BTreeMap::new(),
            source: None,
            stopped_with: Vec::new(),
            batch: LineBatch::new(),
        };
        // Two files exist before the first start; the third appears later.
        m.append(0, 3);
        m.append(1, 2);
        m.start();
        m
    }

    fn config(&self) -> FileSourceConfig {
        let mut cfg = FileSourceConfig::new([self.dir.pattern("*.log")]);
        // Files seen at the first start are read whole.
        cfg.first_read_limit = 1 << 30;
        cfg
    }

    fn start(&mut self) {
        if self.source.is_some() {
            return;
        }
        let json: Vec<String> = self
            .stopped_with
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        let cps = json
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect();
        self.source = Some(FileSource::new(self.config(), cps).unwrap());
        for f in &mut self.files {
            f.rotated_while_down = false;
        }
    }

    fn stop(&mut self) {
        let Some(src) = self.source.take() else {
            return;
        };
        self.stopped_with = src.checkpoints();
        drop(src);
        for f in &mut self.files {
            f.old = None;
        }
        // Deleted generations: whatever was not read is gone for good.
        self.may_lose.extend(self.deleted.iter().copied());
    }

    /// The source notices changes without taking lines.
    fn notice(&mut self) {
        if let Some(src) = &mut self.source {
            self.batch.clear();
            assert_eq!(src.read(&mut self.batch, 0).unwrap(), 0);
        }
    }

    fn read(&mut self, max: usize) {
        let Some(src) = &mut self.source else {
            return;
        };
        loop {
            self.batch.clear();
            let n = src.read(&mut self.batch, max.min(10_000)).unwrap();
            for (path, l) in &self.batch {
                let text = std::str::from_utf8(l).unwrap();
                let mut it = text.split(' ');
                let f: usize = it.next().unwrap()[1..].parse().unwrap();
                let g: usize = it.next().unwrap()[1..].parse().unwrap();
                let s: usize = it.next().unwrap()[1..].parse().unwrap();
                assert_eq!(
                    path,
                    self.files[f].path.as_path(),
                    "line {text} under the wrong path"
                );
                self.read.entry((f, g)).or_default().push(s);
            }
            if max != usize::MAX || n == 0 {
                break;
            }
        }
        if max == usize::MAX {
            for f in &mut self.files {
                f.unread_rotations = 0;
            }
        }
    }

    fn append(&mut self, f: usize, n: usize) {
        let lf = &mut self.files[f];
        if lf.writer.is_none() {
            let g = lf.next_gen;
            lf.next_gen += 1;
            lf.gen = Some(g);
            lf.writer = Some(common::writer(&lf.path));
        }
        let g = lf.gen.unwrap();
        let count = self.written.entry((f, g)).or_default();
        let w = lf.writer.as_mut().unwrap();
        for _ in 0..n {
            w.write_all(line(f, g, *count).as_bytes()).unwrap();
            *count += 1;
        }
    }

    fn append_old(&mut self, f: usize, n: usize) {
        let Some((g, w)) = &mut self.files[f].old else {
            return;
        };
        let count = self.written.entry((f, *g)).or_default();
        for _ in 0..n {
            w.write_all(line(f, *g, *count).as_bytes()).unwrap();
            *count += 1;
        }
    }

    /// Whether a rotation of `f` may happen now (see the module's assumptions); reads
    /// everything first if the source would otherwise hold too many unread rotations.
    fn may_rotate(&mut self, f: usize) -> bool {
        if self.files[f].writer.is_none() {
            return false;
        }
        if self.source.is_none() {
            return !self.files[f].rotated_while_down;
        }
        if self.files[f].unread_rotations >= MAX_UNREAD_ROTATIONS {
            self.read(usize::MAX);
        }
        true
    }

    fn rotated(&mut self, f: usize) {
        let lf = &mut self.files[f];
        lf.unread_rotations += 1;
        if self.source.is_none() {
            lf.rotated_while_down = true;
        }
    }

    /// auth.log.N -> auth.log.N+1 ... auth.log -> auth.log.1
    fn shift(&mut self, f: usize) {
        let lf = &mut self.files[f];
        let base = lf.path.display().to_string();
        for k in (1..=lf.rotated_files).rev() {
            std::fs::rename(format!("{base}.{k}"), format!("{base}.{}", k + 1)).unwrap();
        }
        lf.rotated_files += 1;
    }

    fn has_checkpoint_with_content(&self, f: usize) -> bool {
        self.stopped_with
            .iter()
            .any(|c| c.path == self.files[f].path && c.fingerprint.len > 0)
    }

    fn rename(&mut self, f: usize) {
        if !self.may_rotate(f) {
            return;
        }
        if self.source.is_none() && !self.has_checkpoint_with_content(f) {
            // Created while stopped (or empty when the source stopped) and rotated before
            // the source could fingerprint it.
            let g = self.files[f].gen.unwrap();
            self.may_lose.insert((f, g));
        }
        self.shift(f);
        let up = self.source.is_some();
        let lf = &mut self.files[f];
        std::fs::rename(&lf.path, format!("{}.1", lf.path.display())).unwrap();
        let old_gen = lf.gen.unwrap();
        let old_writer = lf.writer.take().unwrap();
        lf.old = up.then_some((old_gen, old_writer));
        let g = lf.next_gen;
        lf.next_gen += 1;
        lf.gen = Some(g);
        lf.writer = Some(common::writer(&lf.path));
        self.rotated(f);
    }

    fn copytruncate(&mut self, f: usize) {
        if !self.may_rotate(f) {
            return;
        }
        let up = self.source.is_some();
        self.shift(f);
        let lf = &mut self.files[f];
        let old_gen = lf.gen.unwrap();
        std::fs::copy(&lf.path, format!("{}.1", lf.path.display())).unwrap();
        lf.writer.as_ref().unwrap().set_len(0).unwrap();
        lf.old = None;
        let g = lf.next_gen;
        lf.next_gen += 1;
        lf.gen = Some(g);
        if !up {
            // The rest is found again only through a fingerprint long enough to trust.
            let path = lf.path.clone();
            let short = self
                .stopped_with
                .iter()
                .find(|c| c.path == path)
                .is_none_or(|c| c.fingerprint.len < FINGERPRINT_BYTES);
            if short {
                self.may_lose.insert((f, old_gen));
            }
        }
        self.rotated(f);
    }

    fn delete_recreate(&mut self, f: usize) {
        if !self.may_rotate(f) {
            return;
        }
        let up = self.source.is_some();
        let lf = &mut self.files[f];
        std::fs::remove_file(&lf.path).unwrap();
        let old_gen = lf.gen.unwrap();
        let old_writer = lf.writer.take().unwrap();
        lf.old = up.then_some((old_gen, old_writer));
        let g = lf.next_gen;
        lf.next_gen += 1;
        lf.gen = Some(g);
        lf.writer = Some(common::writer(&lf.path));
        self.deleted.insert((f, old_gen));
        if !up {
            self.may_lose.insert((f, old_gen));
        }
        self.rotated(f);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { f, n } => self.append(f, n),
            Op::AppendOld { f, n } => self.append_old(f, n),
            Op::Rename { f } => self.rename(f),
            Op::CopyTruncate { f } => self.copytruncate(f),
            Op::DeleteRecreate { f } => self.delete_recreate(f),
            Op::Read { max } => self.read(max),
            Op::Stop => self.stop(),
            Op::Start => self.start(),
        }
        if !matches!(op, Op::Read { .. } | Op::Stop | Op::Start) {
            self.notice();
        }
    }

    fn check(&mut self, ops: &[Op]) {
        self.start();
        self.read(usize::MAX);
        for (&(f, g), &n) in &self.written {
            let got = self.read.get(&(f, g)).cloned().unwrap_or_default();
            let want: Vec<usize> = (0..n).collect();
            if self.may_lose.contains(&(f, g)) {
                assert_eq!(
                    got,
                    want[..got.len().min(n)].to_vec(),
                    "file {f} generation {g}: lines read must be an in-order prefix; ops {ops:?}"
                );
            } else {
                assert_eq!(
                    got, want,
                    "file {f} generation {g}: every line exactly once, in order; ops {ops:?}"
                );
            }
        }
        for key in self.read.keys() {
            assert!(
                self.written.contains_key(key),
                "read lines never written: {key:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_line_is_read_exactly_once_in_order_across_rotations_and_restarts(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let mut m = Model::new();
        for op in &ops {
            m.apply(op);
        }
        m.check(&ops);
    }
}
