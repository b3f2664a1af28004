//! Integration tests of the dataset stage.
//!
//! One test binary per crate: each file below was a test binary of its own, and each linked
//! every dependency again.

mod example_configs;
mod real_data;
