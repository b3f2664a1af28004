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
/// The codes of `dataset.unique_prefix` (one per request index).
pub(crate) const PREFIX: u64 = 6;

/// `seed` combined with `stream` (SplitMix64's mixing).
pub(crate) fn mix(seed: u64, stream: u64) -> u64 {
    use bench_text::seed::{GOLDEN, mix64};
    mix64(
        seed ^ stream
            .wrapping_mul(GOLDEN)
            .wrapping_add(0xD1B5_4A32_D192_ED03),
    )
}

/// A seeded RNG for `stream`.
pub(crate) fn rng(seed: u64, stream: u64) -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(mix(seed, stream))
}
