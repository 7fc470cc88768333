//! Compact storage for one offender's remembered failure times.
//!
//! A window-table entry holds 8 bytes ([`Times`]), enough for what most tracked offenders
//! have: one-shot scanners with a single failure (any microsecond timestamp), and, for logs
//! with whole-second times (syslog, CLF), up to three failures less than 4.5 hours apart.
//! Anything else moves to a 16-byte [`Wide`] record in the pool: the newest timestamp as
//! `i64` microseconds and up to two older ones as `u32` distances back from it (a distance
//! below 2^31 us, about 35 minutes, in microseconds; a longer one that is a whole number of
//! milliseconds in milliseconds, up to about 24 days). Beyond that (more timestamps, or a
//! long distance with microsecond digits) the times go to a spill vector, exactly and
//! without loss. Wide records and spill vectors are pooled and reused, so the steady state
//! does not allocate.
//!
//! The layout of [`Times`] (bit 63 first):
//! - `0` + 63 bits: one timestamp, non-negative microseconds;
//! - `10` + 34 bits of the newest time in whole seconds + two 14-bit cells, oldest first,
//!   each `1 + seconds back from the newest` (0 = empty);
//! - `11` + a 32-bit index of a [`Wide`] record.

/// Older timestamps kept in a wide record.
pub(crate) const INLINE: usize = 2;

/// An unused wide cell (cells fill from the front).
const EMPTY: u32 = u32::MAX;
/// In wide cell 0: the timestamps are in the spill pool, at the index in cell 1.
const SPILLED: u32 = u32::MAX - 1;
/// Set in a wide cell whose distance is counted in milliseconds.
const MILLIS: u32 = 1 << 31;
/// Millisecond distances must stay below this, so that a cell never reads as a marker.
const MILLIS_LIMIT: i64 = (SPILLED & !MILLIS) as i64;

/// The two tag bits of a [`Times`] that is not a single timestamp.
const TAG: u64 = 0b11 << 62;
/// Tag: whole seconds, packed.
const SECS: u64 = 0b10 << 62;
/// Tag: a wide record's index.
const WIDE: u64 = 0b11 << 62;
/// Bits of a packed cell.
const CELL_BITS: u32 = 14;
/// Bits of the packed newest time, in seconds.
const SECS_BITS: u32 = 62 - 2 * CELL_BITS;
/// Largest value a packed cell holds (`1 + seconds back`).
const CELL_MAX: i64 = (1 << CELL_BITS) - 1;
const MICROS: i64 = 1_000_000;

/// Encodes a distance back from the newest timestamp, if it fits a wide cell.
fn encode(delta: i64) -> Option<u32> {
    if (0..i64::from(MILLIS)).contains(&delta) {
        Some(delta as u32)
    } else if delta > 0 && delta % 1000 == 0 && delta / 1000 < MILLIS_LIMIT {
        Some(MILLIS | (delta / 1000) as u32)
    } else {
        None
    }
}

/// The distance a (non-marker) wide cell holds.
fn decode(cell: u32) -> i64 {
    if cell & MILLIS == 0 {
        i64::from(cell)
    } else {
        i64::from(cell & !MILLIS) * 1000
    }
}

/// Packs whole-second timestamps (`older` oldest first, all at most `newest`), if they fit.
fn pack_secs(newest: i64, older: &[i64]) -> Option<u64> {
    if older.len() > INLINE || newest < 0 || newest % MICROS != 0 {
        return None;
    }
    let secs = newest / MICROS;
    if secs >= 1 << SECS_BITS {
        return None;
    }
    let mut v = SECS | (secs as u64) << (2 * CELL_BITS);
    for (i, &t) in older.iter().enumerate() {
        let back = newest.checked_sub(t)?;
        if back % MICROS != 0 {
            return None;
        }
        let cell = back / MICROS + 1;
        if cell > CELL_MAX {
            return None;
        }
        v |= (cell as u64) << (CELL_BITS * (1 - i as u32));
    }
    Some(v)
}

/// A wide record: the newest timestamp, and the distances back of the older ones (oldest
/// first) or `SPILLED` and a spill index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wide {
    newest: i64,
    cells: [u32; INLINE],
}

/// Reusable storage for offenders whose timestamps do not fit in 8 bytes: wide records, and
/// spill vectors for those that do not fit a wide record either. At most one of each per
/// offender in the window table, so the pool is bounded by that table.
#[derive(Default)]
pub(crate) struct SpillPool {
    wide: Vec<Wide>,
    wide_free: Vec<u32>,
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

    fn alloc_wide(&mut self, w: Wide) -> u32 {
        match self.wide_free.pop() {
            Some(i) => {
                self.wide[i as usize] = w;
                i
            }
            None => {
                self.wide.push(w);
                // One wide record per window-table entry: fewer than 2^30.
                (self.wide.len() - 1) as u32
            }
        }
    }

    /// Gives back wide record `i` and its spill vector, if it has one.
    fn release_wide(&mut self, i: u32) {
        if let Some(v) = self.wide[i as usize].spill() {
            self.release(v);
        }
        self.wide_free.push(i);
    }

    /// How many offenders' timestamps are spilled now.
    pub(crate) fn in_use(&self) -> usize {
        self.vecs.len() - self.free.len()
    }

    /// How many offenders' timestamps are in wide records now.
    #[cfg(test)]
    pub(crate) fn wide_in_use(&self) -> usize {
        self.wide.len() - self.wide_free.len()
    }

    /// Bytes of heap memory the pool holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.wide.capacity() * size_of::<Wide>()
            + self.wide_free.capacity() * size_of::<u32>()
            + self.vecs.capacity() * size_of::<Vec<i64>>()
            + self.free.capacity() * size_of::<u32>()
            + self
                .vecs
                .iter()
                .map(|v| v.capacity() * size_of::<i64>())
                .sum::<usize>()
    }
}

impl Wide {
    fn spill(&self) -> Option<u32> {
        (self.cells[0] == SPILLED).then_some(self.cells[1])
    }
}

/// One offender's timestamps, sorted, never empty: 8 bytes (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times(u64);

impl Times {
    /// The wide record's index, if the times are in one.
    fn wide(self) -> Option<u32> {
        (self.0 & TAG == WIDE).then_some(self.0 as u32)
    }

    /// The newest timestamp.
    pub(crate) fn newest(self, pool: &SpillPool) -> i64 {
        if self.0 >> 63 == 0 {
            self.0 as i64
        } else if self.0 & TAG == SECS {
            ((self.0 & !TAG) >> (2 * CELL_BITS)) as i64 * MICROS
        } else {
            pool.wide[self.0 as u32 as usize].newest
        }
    }

    /// Appends the timestamps, oldest first, to `out`.
    pub(crate) fn load(self, pool: &SpillPool, out: &mut Vec<i64>) {
        if self.0 >> 63 == 0 {
            out.push(self.0 as i64);
            return;
        }
        let newest = self.newest(pool);
        if self.0 & TAG == SECS {
            for i in 0..INLINE as u32 {
                let cell = (self.0 >> (CELL_BITS * (1 - i))) as i64 & CELL_MAX;
                if cell == 0 {
                    break;
                }
                out.push(newest - (cell - 1) * MICROS);
            }
            out.push(newest);
            return;
        }
        let w = &pool.wide[self.0 as u32 as usize];
        match w.spill() {
            Some(i) => out.extend_from_slice(&pool.vecs[i as usize]),
            None => {
                for &cell in w.cells.iter().take_while(|&&c| c != EMPTY) {
                    // Exact: `store` only encoded distances of timestamps that exist.
                    out.push(newest - decode(cell));
                }
                out.push(newest);
            }
        }
    }

    /// Timestamps holding exactly `ts` (sorted, not empty), reusing `old`'s wide record and
    /// spill vector if it had them.
    pub(crate) fn store(old: Option<Times>, ts: &[i64], pool: &mut SpillPool) -> Times {
        let old_wide = old.and_then(Times::wide);
        let (newest, older) = match ts.split_last() {
            // Callers never store nothing; keep the invariant anyway.
            None => (0, &[][..]),
            Some((&newest, older)) => (newest, older),
        };
        let compact = if older.is_empty() && newest >= 0 {
            Some(newest as u64)
        } else {
            pack_secs(newest, older)
        };
        if let Some(v) = compact {
            if let Some(i) = old_wide {
                pool.release_wide(i);
            }
            return Times(v);
        }
        let old_spill = old_wide.and_then(|i| pool.wide[i as usize].spill());
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
        let w = if inline {
            if let Some(i) = old_spill {
                pool.release(i);
            }
            Wide { newest, cells }
        } else {
            let i = old_spill.unwrap_or_else(|| pool.alloc());
            let v = &mut pool.vecs[i as usize];
            v.clear();
            v.extend_from_slice(ts);
            Wide {
                newest,
                cells: [SPILLED, i],
            }
        };
        let i = match old_wide {
            Some(i) => {
                pool.wide[i as usize] = w;
                i
            }
            None => pool.alloc_wide(w),
        };
        Times(WIDE | u64::from(i))
    }

    /// Gives back the wide record and spill vector, if any (when the offender leaves the
    /// table).
    pub(crate) fn release(self, pool: &mut SpillPool) {
        if let Some(i) = self.wide() {
            pool.release_wide(i);
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
        assert_eq!(t.newest(pool), *ts.last().unwrap());
        (t, out)
    }

    #[test]
    fn one_time_or_three_whole_seconds_take_eight_bytes() {
        assert_eq!(size_of::<Times>(), 8);
        let mut pool = SpillPool::default();
        for ts in [
            vec![0],
            vec![1_763_690_523_123_456],
            vec![i64::MAX],
            vec![1_763_690_523_000_000, 1_763_690_523_000_000],
            vec![
                1_763_690_000_000_000,
                1_763_690_100_000_000,
                1_763_690_523_000_000,
            ],
            vec![0, 16_382_000_000],
            vec![
                ((1i64 << SECS_BITS) - 1) * MICROS,
                ((1i64 << SECS_BITS) - 1) * MICROS,
            ],
        ] {
            let (t, out) = round_trip(&ts, &mut pool);
            assert_eq!(out, ts);
            assert!(t.wide().is_none(), "{ts:?}");
        }
        assert_eq!(pool.wide_in_use(), 0);
    }

    #[test]
    fn short_histories_stay_in_a_wide_record() {
        let mut pool = SpillPool::default();
        for ts in [
            vec![-5, 1_000, 2_147_483_001],
            vec![0, 1_500_000_000_000, 2_000_000_000_000],
            vec![-1],
            vec![0, 16_383_000_000],
            vec![1_000_001, 2_000_000],
            vec![(1i64 << SECS_BITS) * MICROS, (1i64 << SECS_BITS) * MICROS],
        ] {
            let (t, out) = round_trip(&ts, &mut pool);
            assert_eq!(out, ts);
            assert!(t.wide().is_some(), "{ts:?}");
            t.release(&mut pool);
        }
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.wide_in_use(), 0);
    }

    #[test]
    fn long_or_odd_histories_spill_exactly_and_come_back() {
        let mut pool = SpillPool::default();
        for ts in [
            vec![1, 2, 3, 4],
            vec![0, 3_000_000_001],
            vec![i64::MIN, i64::MAX],
            vec![0, 2_147_483_645_001],
            vec![0, 2_147_483_647_000],
        ] {
            let (t, out) = round_trip(&ts, &mut pool);
            assert_eq!(out, ts);
            assert_eq!(pool.in_use(), 1, "{ts:?}");
            let back = Times::store(Some(t), &[7, 8], &mut pool);
            assert_eq!(pool.in_use(), 0);
            assert_eq!(pool.wide_in_use(), 1);
            let back = Times::store(Some(back), &[7], &mut pool);
            assert!(back.wide().is_none());
            assert_eq!(pool.wide_in_use(), 0);
        }
    }

    #[test]
    fn a_spill_vector_and_a_wide_record_are_reused_not_reallocated() {
        let mut pool = SpillPool::default();
        let t = Times::store(None, &[1, 2, 3, 4, 5, 6, 7], &mut pool);
        let t = Times::store(Some(t), &[1, 2, 3, 4, 5, 6, 7, 8], &mut pool);
        assert_eq!(pool.in_use(), 1);
        assert_eq!(pool.wide_in_use(), 1);
        t.release(&mut pool);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.wide_in_use(), 0);
        let _ = Times::store(None, &[1, 2, 3, 4, 5, 6], &mut pool);
        assert_eq!(pool.vecs.len(), 1);
        assert_eq!(pool.wide.len(), 1);
    }
}
