//! Shared data generators for the Gears criterion benchmarks (`benches/benches/*.rs`).
//!
//! Everything here is deterministic (a fixed-seed SplitMix64), so every run — and the
//! hand-written peer of each benchmark — sees exactly the same input.

use std::sync::Arc;

/// The record type of the codec benchmark: a ~16-character key, a number and two
/// `(field, value)` pairs, roughly a small Redis hash.
pub type CodecRecord = (String, u64, Vec<(String, String)>);

/// A SplitMix64 generator: tiny, fast and good enough for benchmark data.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `n` pseudo-random `u64`s (uniform, so about half are even), shared as the engine's
/// `SliceReader` wants them.
pub fn random_u64s(n: usize, seed: u64) -> Arc<[u64]> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_u64()).collect()
}

/// `n` records for the codec benchmark: keys like `user:0000001234:x` (17 characters),
/// a pseudo-random number, and two short fields.
pub fn codec_records(n: usize, seed: u64) -> Vec<CodecRecord> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let v = rng.next_u64();
            (
                format!("user:{i:010}:{}", (b'a' + (v % 26) as u8) as char),
                v,
                vec![
                    ("name".to_string(), format!("name-{}", v % 100_000)),
                    ("city".to_string(), format!("city-{}", (v >> 20) % 1_000)),
                ],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic() {
        assert_eq!(random_u64s(100, 7), random_u64s(100, 7));
        let recs = codec_records(3, 1);
        assert_eq!(recs, codec_records(3, 1));
        assert_eq!(recs[0].0.len(), 17);
        assert_eq!(recs[0].2.len(), 2);
    }
}
