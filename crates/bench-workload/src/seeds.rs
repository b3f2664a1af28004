//! Independent random streams derived from the run's seed, one per purpose, so changing how
//! one part draws never shifts another's numbers.

/// Arrival times.
pub(crate) const ARRIVALS: u64 = 1;
/// Pattern noise (synthetic curves).
pub(crate) const PATTERN: u64 = 2;
/// Sampled token lengths (stat percentiles).
pub(crate) const LENGTHS: u64 = 3;
/// Dataset prompt choice (shuffles, ties, sessions).
pub(crate) const PICK: u64 = 4;
/// Generated prompt text (one sub-stream per request index).
pub(crate) const TEXT: u64 = 5;

/// SplitMix64 of `seed` combined with `stream`.
pub(crate) fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        ^ stream
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded RNG for `stream`.
pub(crate) fn rng(seed: u64, stream: u64) -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(mix(seed, stream))
}
