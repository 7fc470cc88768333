//! Reading complete lines of one file into a [`LineBatch`].

use std::io;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::{FileSourceStats, Skip, Tracked};
use crate::fingerprint::{Fingerprint, FINGERPRINT_BYTES};
use crate::LineBatch;

/// Bytes read per `pread`.
const READ_CHUNK: usize = 256 * 1024;

/// The shared read buffer: bytes `[start, start + len)` of file `key` (generation
/// `generation`). Kept between calls, so a read cut short by `max_lines`, or a partial last
/// line, is not read from the file again.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) key: u64,
    generation: u64,
    start: u64,
    len: usize,
    buf: Vec<u8>,
}

impl Chunk {
    pub(super) fn new(max_line: usize) -> Self {
        Self {
            key: 0,
            generation: 0,
            start: 0,
            len: 0,
            // A kept partial line (at most max_line bytes) plus a full read always fit.
            buf: vec![0; max_line + 1 + READ_CHUNK],
        }
    }

    pub(super) fn invalidate(&mut self) {
        self.key = 0;
        self.len = 0;
    }

    fn end(&self) -> u64 {
        self.start + self.len as u64
    }
}

/// What reading one file came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadOutcome {
    /// Read up to the end of its complete lines; that many lines handed out.
    Done(usize),
    /// Stopped because the budget was used up; that many lines handed out.
    Budget(usize),
    /// The file is smaller than when last seen; nothing read.
    Truncated,
}

/// Hands out the complete lines of `t` from its position, at most `budget`.
pub(super) fn read_lines(
    t: &mut Tracked,
    chunk: &mut Chunk,
    stats: &mut FileSourceStats,
    max_line: usize,
    out: &mut LineBatch,
    budget: usize,
) -> io::Result<ReadOutcome> {
    // Look first (truncation, fingerprint), even with no budget: a caller whose queue is
    // full can still call `read` with `max_lines = 0` to notice changes promptly.
    let size = t.file.metadata()?.len();
    if size < t.last_size {
        return Ok(ReadOutcome::Truncated);
    }
    t.last_size = size;
    if t.fp.len < FINGERPRINT_BYTES && size > u64::from(t.fp.len) {
        t.fp = Fingerprint::of_file(&t.file, size)?;
    }
    if budget == 0 {
        return Ok(ReadOutcome::Budget(0));
    }
    if chunk.key != t.key || chunk.generation != t.generation {
        chunk.key = t.key;
        chunk.generation = t.generation;
        chunk.start = t.pos;
        chunk.len = 0;
    }
    let start_pos = t.pos;
    let mut got = 0;
    let result = loop {
        if got == budget {
            break ReadOutcome::Budget(got);
        }
        let cur = t.skip.map_or(t.pos, |s| s.scanned);
        if cur < chunk.start || cur > chunk.end() {
            chunk.start = cur;
            chunk.len = 0;
        }
        let off = (cur - chunk.start) as usize;
        if let Some(i) = memchr::memchr(b'\n', &chunk.buf[off..chunk.len]) {
            let nl = cur + i as u64;
            match t.skip.take() {
                Some(s) => {
                    if s.counts {
                        stats.too_long += 1;
                    }
                }
                None => {
                    let a = (t.pos - chunk.start) as usize;
                    let b = (nl - chunk.start) as usize;
                    if b - a > max_line {
                        stats.too_long += 1;
                    } else {
                        let line = &chunk.buf[a..b];
                        out.push(&t.path, line.strip_suffix(b"\r").unwrap_or(line));
                        got += 1;
                    }
                }
            }
            t.pos = nl + 1;
            continue;
        }
        // No newline after `cur` in the buffer.
        let end = chunk.end();
        match &mut t.skip {
            Some(s) => s.scanned = end,
            None if end - t.pos > max_line as u64 => {
                t.skip = Some(Skip {
                    scanned: end,
                    counts: true,
                })
            }
            None => {}
        }
        if end >= size {
            t.dirty = false;
            break ReadOutcome::Done(got);
        }
        // Keep the partial line (or nothing, while skipping) and read more after it.
        let keep = if t.skip.is_some() { end } else { t.pos };
        let drop = (keep - chunk.start) as usize;
        chunk.buf.copy_within(drop..chunk.len, 0);
        chunk.len -= drop;
        chunk.start = keep;
        let room = chunk.buf.len() - chunk.len;
        let want = room.min((size - end) as usize);
        match t
            .file
            .read_at(&mut chunk.buf[chunk.len..chunk.len + want], end)
        {
            Ok(0) => {
                // Shrank since the size check: the next look sees the truncation (its
                // inotify event, or the next poll tick).
                t.dirty = false;
                break ReadOutcome::Done(got);
            }
            Ok(n) => {
                chunk.len += n;
                stats.bytes += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    stats.lines += got as u64;
    if t.pos != start_pos {
        t.last_data = Instant::now();
    }
    Ok(result)
}
