//! Splitting a byte stream into lines with bounded memory.
//!
//! The reader owns one fixed buffer. A line longer than the limit is never buffered whole:
//! it is counted in [`LineStats::too_long`] and skipped up to its newline. Lines are bytes
//! (invalid UTF-8 is passed through untouched); a trailing `\r` is removed. The file is
//! read with `read`, never mapped (a truncation during rotation would raise SIGBUS).

use std::io::{self, Read};

/// The default longest line kept: 64 KiB, far beyond any real log line.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

const READ_CHUNK: usize = 256 * 1024;

/// Counters of a [`LineReader`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Lines handed out.
    pub lines: u64,
    /// Lines skipped because they were longer than the limit.
    pub too_long: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Reads lines from `R` into a fixed-size buffer.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_line: usize,
    skipping: bool,
    eof: bool,
    stats: LineStats,
}

impl<R: Read> LineReader<R> {
    /// A reader that keeps lines of at most `max_line` bytes.
    pub fn new(inner: R, max_line: usize) -> Self {
        let max_line = max_line.max(1);
        Self {
            inner,
            buf: vec![0; max_line + READ_CHUNK],
            start: 0,
            end: 0,
            max_line,
            skipping: false,
            eof: false,
            stats: LineStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &LineStats {
        &self.stats
    }

    /// The next line without its `\n` (and `\r`), or `None` at the end of the input. A last
    /// line without a newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                let line_end = self.start + pos;
                self.start = line_end + 1;
                if self.skipping {
                    self.skipping = false;
                    continue;
                }
                if line_end - line_start > self.max_line {
                    self.stats.too_long += 1;
                    continue;
                }
                self.stats.lines += 1;
                return Ok(Some(trim_cr(&self.buf[line_start..line_end])));
            }
            // No newline in the buffered data.
            if self.end - self.start > self.max_line {
                if !self.skipping {
                    self.stats.too_long += 1;
                    self.skipping = true;
                }
                self.start = self.end;
            }
            if self.eof {
                if self.start < self.end && !self.skipping {
                    let (s, e) = (self.start, self.end);
                    self.start = self.end;
                    self.stats.lines += 1;
                    return Ok(Some(trim_cr(&self.buf[s..e])));
                }
                return Ok(None);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.stats.bytes += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `step` bytes per call, to exercise refills.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn collect(input: &[u8], max: usize, step: usize) -> (Vec<Vec<u8>>, LineStats) {
        let mut r = LineReader::new(Trickle(input, step), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(l.to_vec());
        }
        (out, r.stats().clone())
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        let (lines, st) = collect(b"a\r\nbb\n\nccc", 10, 3);
        assert_eq!(
            lines,
            vec![b"a".to_vec(), b"bb".to_vec(), vec![], b"ccc".to_vec()]
        );
        assert_eq!(st.lines, 4);
    }

    #[test]
    fn skips_overlong_lines_without_buffering_them() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1_000_000));
        input.extend(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 50));
        let (lines, st) = collect(&input, 16, 4096);
        assert_eq!(lines, vec![b"short".to_vec(), b"after".to_vec()]);
        assert_eq!(st.too_long, 2);
    }

    #[test]
    fn passes_invalid_utf8_and_nul_bytes_through() {
        let (lines, _) = collect(b"\xff\x00\xfe\nok\n", 64, 1);
        assert_eq!(lines, vec![b"\xff\x00\xfe".to_vec(), b"ok".to_vec()]);
    }

    #[test]
    fn line_of_exactly_the_limit_is_kept() {
        let (lines, st) = collect(b"12345\n123456\n", 5, 2);
        assert_eq!(lines, vec![b"12345".to_vec()]);
        assert_eq!(st.too_long, 1);
    }
}
