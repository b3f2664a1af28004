//! Integration tests of the analysis stage.
//!
//! One test binary per crate: each file below was a test binary of its own, and each linked
//! every dependency again.

mod exact;
mod independent;
mod outputs;
mod robustness;
mod support;
