//! The lookup structure: sorted, non-overlapping ranges per family with a 16-bit bucket
//! index in front of the binary search, and the sweep that makes overlapping input
//! non-overlapping.

use std::collections::BTreeSet;

use crate::addr::Addr;

/// Walks the elementary segments of a set of possibly overlapping spans in ascending order:
/// `f(start, end, active)` is called for every maximal segment over which the set of covering
/// spans does not change and is not empty; `active` holds `(priority, index into spans)`.
pub(crate) fn sweep<A: Addr, P: Ord + Copy>(
    spans: &[(A, A, P)],
    mut f: impl FnMut(A, A, &BTreeSet<(P, usize)>),
) {
    // (position, is_end, index): at one position ends are applied before starts; an end
    // event sits one past the span's last address (none for a span reaching the top).
    let mut events: Vec<(A, bool, usize)> = Vec::with_capacity(spans.len() * 2);
    for (i, &(s, e, _)) in spans.iter().enumerate() {
        events.push((s, false, i));
        if let Some(n) = e.inc() {
            events.push((n, true, i));
        }
    }
    events.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut active: BTreeSet<(P, usize)> = BTreeSet::new();
    let mut k = 0;
    while k < events.len() {
        let pos = events[k].0;
        while k < events.len() && events[k].0 == pos {
            let (_, is_end, i) = events[k];
            if is_end {
                active.remove(&(spans[i].2, i));
            } else {
                active.insert((spans[i].2, i));
            }
            k += 1;
        }
        if active.is_empty() {
            continue;
        }
        let end = if k < events.len() {
            events[k].0.dec()
        } else {
            A::MAX
        };
        f(pos, end, &active);
    }
}

/// Makes overlapping spans disjoint: every address takes the value of the covering span with
/// the least priority. Adjacent pieces of the same span are merged. Already disjoint input
/// (the common case: the RIR files have no overlaps) takes a fast path.
pub(crate) fn flatten<A: Addr, V: Copy, P: Ord + Copy>(
    mut items: Vec<(A, A, V, P)>,
) -> Vec<(A, A, V)> {
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.3.cmp(&b.3)));
    if items.windows(2).all(|w| w[0].1 < w[1].0) {
        return items.into_iter().map(|(s, e, v, _)| (s, e, v)).collect();
    }
    let spans: Vec<(A, A, P)> = items.iter().map(|&(s, e, _, p)| (s, e, p)).collect();
    let mut out: Vec<(A, A, V)> = Vec::with_capacity(items.len());
    let mut last_idx = usize::MAX;
    sweep(&spans, |s, e, active| {
        let Some(&(_, i)) = active.first() else {
            return;
        };
        if let Some(last) = out.last_mut() {
            if last_idx == i && last.1.inc() == Some(s) {
                last.1 = e;
                return;
            }
        }
        out.push((s, e, items[i].2));
        last_idx = i;
    });
    out
}

/// Sorted, disjoint ranges with a value each; `find` is a bucket lookup on the top 16 bits
/// followed by a binary search inside the bucket.
#[derive(Debug, Clone)]
pub(crate) struct Table<A, V> {
    starts: Vec<A>,
    ends: Vec<A>,
    vals: Vec<V>,
    /// `index[b]` = the first entry whose start has top-16 bits >= b; 65,537 entries.
    index: Vec<u32>,
}

impl<A: Addr, V: Copy> Default for Table<A, V> {
    fn default() -> Self {
        Table::from_disjoint(Vec::new())
    }
}

impl<A: Addr, V: Copy> Table<A, V> {
    /// From sorted, disjoint segments (the output of [`flatten`]).
    pub(crate) fn from_disjoint(segs: Vec<(A, A, V)>) -> Self {
        debug_assert!(segs.windows(2).all(|w| w[0].1 < w[1].0));
        let mut starts = Vec::with_capacity(segs.len());
        let mut ends = Vec::with_capacity(segs.len());
        let mut vals = Vec::with_capacity(segs.len());
        for (s, e, v) in segs {
            starts.push(s);
            ends.push(e);
            vals.push(v);
        }
        let mut index = Vec::with_capacity(65_537);
        let mut i = 0usize;
        for b in 0..=65_536usize {
            while i < starts.len() && starts[i].top16() < b {
                i += 1;
            }
            index.push(i as u32);
        }
        Table {
            starts,
            ends,
            vals,
            index,
        }
    }

    /// The entry holding `a`, if any.
    #[inline]
    pub(crate) fn find(&self, a: A) -> Option<usize> {
        let b = a.top16();
        let lo = self.index[b] as usize;
        let hi = self.index[b + 1] as usize;
        let pp = lo + self.starts[lo..hi].partition_point(|&s| s <= a);
        let i = pp.checked_sub(1)?;
        (self.ends[i] >= a).then_some(i)
    }

    /// Entry `i`: start, end, value.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> (A, A, V) {
        (self.starts[i], self.ends[i], self.vals[i])
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// All entries, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (A, A, V)> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_range_holding_an_address_across_buckets() {
        let t = Table::from_disjoint(vec![
            (0x0000_0000u32, 0x0000_00ff, 'a'),
            (0x0001_ff00, 0x0003_00ff, 'b'), // spans three buckets
            (0xffff_ff00, 0xffff_ffff, 'c'),
        ]);
        let v = |a: u32| t.find(a).map(|i| t.get(i).2);
        assert_eq!(v(0), Some('a'));
        assert_eq!(v(0xff), Some('a'));
        assert_eq!(v(0x100), None);
        assert_eq!(v(0x0001_feff), None);
        assert_eq!(v(0x0001_ff00), Some('b'));
        assert_eq!(v(0x0002_1234), Some('b'));
        assert_eq!(v(0x0003_00ff), Some('b'));
        assert_eq!(v(0x0003_0100), None);
        assert_eq!(v(0xffff_ffff), Some('c'));
        assert_eq!(v(0x8000_0000), None);
        let empty: Table<u128, ()> = Table::default();
        assert_eq!(empty.find(5), None);
    }

    #[test]
    fn flatten_lets_the_least_priority_win_and_restores_the_outer_span() {
        // An outer /22 and an inner /24 with lower priority value (more specific).
        let out = flatten(vec![
            (0u32, 1023, 'O', 1024u32),
            (256, 511, 'I', 256),
            (1000, 2000, 'P', 1500), // partial overlap, larger: loses inside the /22
        ]);
        assert_eq!(
            out,
            vec![
                (0, 255, 'O'),
                (256, 511, 'I'),
                (512, 1023, 'O'),
                (1024, 2000, 'P')
            ]
        );
        let top = flatten(vec![
            (u32::MAX - 1, u32::MAX, 'x', 2u32),
            (u32::MAX, u32::MAX, 'y', 1),
        ]);
        assert_eq!(
            top,
            vec![(u32::MAX - 1, u32::MAX - 1, 'x'), (u32::MAX, u32::MAX, 'y')]
        );
    }
}
