//! A small seeded pseudo-random generator and the integer-only distributions the log
//! generators draw from.
//!
//! Everything here is integer arithmetic, so a seed yields the same sequence on every
//! machine, compiler and platform (no floating point, no `libm`).

/// SplitMix64 (Steele, Lea and Flood 2014): 64 bits of state, passes BigCrush, and is
/// plenty for synthetic logs. Not for anything cryptographic.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for the sizes
    /// used here). Returns 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An index into a collection of `len` items (`0..len`).
    pub fn index(&mut self, len: usize) -> usize {
        // usize -> u64 is lossless on every supported target, and the result is < len.
        self.below(len as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One item of a non-empty slice, uniformly.
    ///
    /// # Panics
    ///
    /// When `items` is empty (a bug in the caller: every table here is a non-empty constant).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.index(items.len());
        items
            .get(i)
            .expect("pick() is only called on non-empty constant tables")
    }

    /// An index chosen with probability proportional to `weights[i]`. Returns 0 when all
    /// weights are zero.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            let w = u64::from(w);
            if r < w {
                return i;
            }
            r -= w;
        }
        0
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// A Zipf-like distribution over ranks `0..n` with exponent 1: rank `i` is drawn with a
/// weight proportional to `1 / (i + 1)`. Integer weights keep it bit-exact everywhere.
#[derive(Clone, Debug)]
pub struct Zipf {
    /// Cumulative weights; the last one is the total.
    cumulative: Vec<u64>,
}

impl Zipf {
    /// The scale of the integer weights: rank 0 weighs `2^40`.
    const SCALE: u64 = 1 << 40;

    /// A distribution over `n` ranks (`n` at least 1; 0 is treated as 1).
    pub fn new(n: usize) -> Self {
        let n = n.max(1) as u64;
        let mut total = 0u64;
        let cumulative = (1..=n)
            .map(|rank| {
                total += Self::SCALE / rank;
                total
            })
            .collect();
        Self { cumulative }
    }

    /// The number of ranks.
    pub fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Always false: a distribution has at least one rank.
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// A rank in `0..len()`, small ranks far more often than large ones.
    pub fn sample(&self, rng: &mut SplitMix64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let r = rng.below(total);
        self.cumulative
            .partition_point(|&c| c <= r)
            .min(self.cumulative.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // Reference values of SplitMix64 seeded with 1234567 (from the published C code).
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
        assert!((0..1_000).all(|_| (3..=5).contains(&rng.range(3, 5))));
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let zipf = Zipf::new(1000);
        let mut rng = SplitMix64::new(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // Rank 0 takes 1/H(1000), about 13 %; rank 9 about a tenth of that.
        assert!((12_000..15_000).contains(&counts[0]), "{}", counts[0]);
        assert!(counts[0] > 5 * counts[9]);
        assert!(counts[999] < 100);
    }
}
