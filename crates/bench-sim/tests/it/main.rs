//! Integration tests of the simulated engine.
//!
//! One test binary per crate: each file below was a test binary of its own, and each linked
//! every dependency again.

mod api;
mod common;
mod load;
