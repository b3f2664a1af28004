//! Integration tests of the workload stage.
//!
//! One test binary per crate: each file below was a test binary of its own, and each linked
//! every dependency again.

mod common;
mod real_traces;
mod stage;
