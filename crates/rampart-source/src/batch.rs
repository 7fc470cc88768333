//! [`LineBatch`]: lines handed out by a source, stored without an allocation per line.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Lines from one `read` call: one byte buffer plus, per line, the file it came from and its
/// byte range. [`clear`](Self::clear) keeps the capacity, so a batch reused across reads
/// allocates nothing in steady state.
#[derive(Debug, Default, Clone)]
pub struct LineBatch {
    buf: Vec<u8>,
    lines: Vec<(u32, Range<usize>)>,
    paths: Vec<Arc<Path>>,
}

impl LineBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `lines` lines of `bytes` bytes in total.
    pub fn with_capacity(lines: usize, bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            lines: Vec::with_capacity(lines),
            paths: Vec::new(),
        }
    }

    /// Forgets the lines, keeps the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.paths.clear();
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Total bytes of all lines.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Line `i`: the path it was read from (the configured name, also for lines read from a
    /// rotated-away file) and its bytes without the newline.
    pub fn get(&self, i: usize) -> Option<(&Path, &[u8])> {
        let (p, r) = self.lines.get(i)?;
        Some((&self.paths[*p as usize], &self.buf[r.clone()]))
    }

    /// The lines in the order they were read.
    pub fn iter(&self) -> LineIter<'_> {
        LineIter {
            batch: self,
            inner: self.lines.iter(),
        }
    }

    /// Appends a line read from `path`. Sources call this; it is public so that other
    /// sources (stdin, tests) can fill a batch too.
    pub fn push(&mut self, path: &Arc<Path>, line: &[u8]) {
        let idx = self.path_index(path);
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.lines.push((idx, start..self.buf.len()));
    }

    fn path_index(&mut self, path: &Arc<Path>) -> u32 {
        // Few distinct paths per batch: the last one almost always matches.
        if let Some(i) = self
            .paths
            .iter()
            .rposition(|p| Arc::ptr_eq(p, path) || **p == **path)
        {
            return i as u32;
        }
        self.paths.push(Arc::clone(path));
        (self.paths.len() - 1) as u32
    }
}

impl<'a> IntoIterator for &'a LineBatch {
    type Item = (&'a Path, &'a [u8]);
    type IntoIter = LineIter<'a>;

    fn into_iter(self) -> LineIter<'a> {
        self.iter()
    }
}

/// Iterator over the lines of a [`LineBatch`]: `(path, line)`.
#[derive(Debug, Clone)]
pub struct LineIter<'a> {
    batch: &'a LineBatch,
    inner: std::slice::Iter<'a, (u32, Range<usize>)>,
}

impl<'a> LineIter<'a> {
    fn item(&self, (p, r): &'a (u32, Range<usize>)) -> (&'a Path, &'a [u8]) {
        (&self.batch.paths[*p as usize], &self.batch.buf[r.clone()])
    }
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (&'a Path, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let l = self.inner.next()?;
        Some(self.item(l))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for LineIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let l = self.inner.next_back()?;
        Some(self.item(l))
    }
}

impl ExactSizeIterator for LineIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_paths_in_order_and_clear_keeps_capacity() {
        let a: Arc<Path> = Arc::from(Path::new("/var/log/a.log"));
        let b: Arc<Path> = Arc::from(Path::new("/var/log/b.log"));
        let mut batch = LineBatch::new();
        batch.push(&a, b"one");
        batch.push(&b, b"two");
        batch.push(&a, b"");
        let got: Vec<_> = batch
            .iter()
            .map(|(p, l)| (p.to_owned(), l.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (a.to_path_buf(), b"one".to_vec()),
                (b.to_path_buf(), b"two".to_vec()),
                (a.to_path_buf(), vec![]),
            ]
        );
        assert_eq!(batch.paths.len(), 2);
        assert_eq!(batch.bytes(), 6);
        let cap = batch.buf.capacity();
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.buf.capacity(), cap);
        assert_eq!(batch.get(0), None);
    }
}
