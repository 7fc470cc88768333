//! Compact storage for one offender's remembered failure times.
//!
//! Up to three timestamps live inline in 16 bytes: the newest as `i64` microseconds, and up
//! to two older ones as `u32` distances back from it. Most tracked offenders are one-shot
//! scanners with a single failure; the few with more (attackers close to a ban) spill. A distance below 2^31 us (about 35
//! minutes) is stored in microseconds; a longer one that is a whole number of milliseconds
//! (every log with second or millisecond resolution) in milliseconds, up to about 24 days.
//! Anything else (more timestamps, or a long distance with microsecond digits) moves the
//! offender's timestamps to a spill vector, exactly and without loss; the spill vectors are
//! pooled and reused, so the steady state does not allocate.

/// Older timestamps kept inline.
pub(crate) const INLINE: usize = 2;

/// An unused inline cell (cells fill from the front).
const EMPTY: u32 = u32::MAX;
/// In cell 0: the timestamps are in the spill pool, at the index in cell 1.
const SPILLED: u32 = u32::MAX - 1;
/// Set in a cell whose distance is counted in milliseconds.
const MILLIS: u32 = 1 << 31;
/// Millisecond distances must stay below this, so that a cell never reads as a marker.
const MILLIS_LIMIT: i64 = (SPILLED & !MILLIS) as i64;

/// Encodes a distance back from the newest timestamp, if it fits a cell.
fn encode(delta: i64) -> Option<u32> {
    if (0..i64::from(MILLIS)).contains(&delta) {
        Some(delta as u32)
    } else if delta > 0 && delta % 1000 == 0 && delta / 1000 < MILLIS_LIMIT {
        Some(MILLIS | (delta / 1000) as u32)
    } else {
        None
    }
}

/// The distance a (non-marker) cell holds.
fn decode(cell: u32) -> i64 {
    if cell & MILLIS == 0 {
        i64::from(cell)
    } else {
        i64::from(cell & !MILLIS) * 1000
    }
}

/// Reusable vectors for offenders whose timestamps do not fit inline. At most one per
/// offender in the window table, so the pool is bounded by that table.
#[derive(Default)]
pub(crate) struct SpillPool {
    vecs: Vec<Vec<i64>>,
    free: Vec<u32>,
}

impl SpillPool {
    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => i,
            None => {
                self.vecs.push(Vec::new());
                // One spill per window-table entry, and that table holds fewer than 2^30.
                (self.vecs.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, i: u32) {
        self.vecs[i as usize].clear();
        self.free.push(i);
    }

    /// How many offenders' timestamps are spilled now.
    pub(crate) fn in_use(&self) -> usize {
        self.vecs.len() - self.free.len()
    }

    /// Bytes of heap memory the pool holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.vecs.capacity() * size_of::<Vec<i64>>()
            + self.free.capacity() * size_of::<u32>()
            + self
                .vecs
                .iter()
                .map(|v| v.capacity() * size_of::<i64>())
                .sum::<usize>()
    }
}

/// One offender's timestamps, sorted, never empty.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times {
    /// The newest timestamp, in microseconds.
    newest: i64,
    /// Distances back from `newest` of the older timestamps, oldest first; or `SPILLED` and a
    /// pool index.
    cells: [u32; INLINE],
}

impl Times {
    /// The newest timestamp.
    pub(crate) fn newest(&self) -> i64 {
        self.newest
    }

    fn spill(&self) -> Option<u32> {
        (self.cells[0] == SPILLED).then_some(self.cells[1])
    }

    /// Appends the timestamps, oldest first, to `out`.
    pub(crate) fn load(&self, pool: &SpillPool, out: &mut Vec<i64>) {
        match self.spill() {
            Some(i) => out.extend_from_slice(&pool.vecs[i as usize]),
            None => {
                for &cell in self.cells.iter().take_while(|&&c| c != EMPTY) {
                    // Exact: `store` only encoded distances of timestamps that exist.
                    out.push(self.newest - decode(cell));
                }
                out.push(self.newest);
            }
        }
    }

    /// Timestamps holding exactly `ts` (sorted, not empty), reusing `old`'s spill vector if
    /// it had one.
    pub(crate) fn store(old: Option<Times>, ts: &[i64], pool: &mut SpillPool) -> Times {
        let old_spill = old.and_then(|t| t.spill());
        let Some((&newest, older)) = ts.split_last() else {
            // Callers never store nothing; keep the invariant anyway.
            if let Some(i) = old_spill {
                pool.release(i);
            }
            return Times {
                newest: 0,
                cells: [EMPTY; INLINE],
            };
        };
        let mut cells = [EMPTY; INLINE];
        let inline = older.len() <= INLINE
            && older.iter().zip(cells.iter_mut()).all(|(&t, cell)| {
                match newest.checked_sub(t).and_then(encode) {
                    Some(c) => {
                        *cell = c;
                        true
                    }
                    None => false,
                }
            });
        if inline {
            if let Some(i) = old_spill {
                pool.release(i);
            }
            return Times { newest, cells };
        }
        let i = old_spill.unwrap_or_else(|| pool.alloc());
        let v = &mut pool.vecs[i as usize];
        v.clear();
        v.extend_from_slice(ts);
        let mut cells = [EMPTY; INLINE];
        cells[0] = SPILLED;
        cells[1] = i;
        Times { newest, cells }
    }

    /// Gives back the spill vector, if any (when the offender leaves the table).
    pub(crate) fn release(self, pool: &mut SpillPool) {
        if let Some(i) = self.spill() {
            pool.release(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ts: &[i64], pool: &mut SpillPool) -> (Times, Vec<i64>) {
        let t = Times::store(None, ts, pool);
        let mut out = Vec::new();
        t.load(pool, &mut out);
        (t, out)
    }

    #[test]
    fn short_histories_stay_inline() {
        let mut pool = SpillPool::default();
        let ts = [-5, 1_000, 2_147_483_001];
        let (t, out) = round_trip(&ts, &mut pool);
        assert_eq!(out, ts);
        assert!(t.spill().is_none());
        let secs = [0, 1_500_000_000_000, 2_000_000_000_000];
        let (t, out) = round_trip(&secs, &mut pool);
        assert_eq!(out, secs);
        assert!(
            t.spill().is_none(),
            "whole seconds across 23 days fit inline"
        );
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn long_or_odd_histories_spill_exactly_and_come_back() {
        let mut pool = SpillPool::default();
        for ts in [
            vec![1, 2, 3, 4],
            vec![0, 3_000_000_001],
            vec![i64::MIN, i64::MAX],
            vec![0, 2_147_483_645_000],
            vec![0, 2_147_483_647_000],
        ] {
            let (t, out) = round_trip(&ts, &mut pool);
            assert_eq!(out, ts);
            if ts.len() == 2 && ts[1] == 2_147_483_645_000 {
                assert!(t.spill().is_none());
                continue;
            }
            assert!(t.spill().is_some(), "{ts:?}");
            let back = Times::store(Some(t), &[7, 8], &mut pool);
            assert!(back.spill().is_none());
            assert_eq!(pool.in_use(), 0);
        }
    }

    #[test]
    fn a_spill_vector_is_reused_not_reallocated() {
        let mut pool = SpillPool::default();
        let t = Times::store(None, &[1, 2, 3, 4, 5, 6, 7], &mut pool);
        let t = Times::store(Some(t), &[1, 2, 3, 4, 5, 6, 7, 8], &mut pool);
        assert_eq!(pool.in_use(), 1);
        t.release(&mut pool);
        assert_eq!(pool.in_use(), 0);
        let _ = Times::store(None, &[1, 2, 3, 4, 5, 6], &mut pool);
        assert_eq!(pool.vecs.len(), 1);
    }
}
