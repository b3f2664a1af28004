//! The one mixing function behind every seeded choice: SplitMix64 (Steele, Lea and Flood,
//! "Fast splittable pseudorandom number generators", 2014). Generators derive independent
//! streams from the run's seed with it, and the simulated engine hashes token blocks with it.

/// The golden-ratio increment of SplitMix64.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective, well-mixed 64-bit hash of `z`.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SplitMix64 output for state `z` (the increment, then [`mix64`]).
pub const fn splitmix64(z: u64) -> u64 {
    mix64(z.wrapping_add(GOLDEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first outputs of SplitMix64 seeded with 1234567 (the reference values of
    /// Vigna's splitmix64.c, also used by the Java SplittableRandom tests).
    #[test]
    fn reference_sequence() {
        let mut state: u64 = 1_234_567;
        let mut next = || {
            let out = splitmix64(state);
            state = state.wrapping_add(GOLDEN);
            out
        };
        assert_eq!(next(), 6_457_827_717_110_365_317);
        assert_eq!(next(), 3_203_168_211_198_807_973);
        assert_eq!(next(), 9_817_491_932_198_370_423);
    }
}
