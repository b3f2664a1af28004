//! Integration tests of the client stage (the timing tests are a binary of their own: tests/timing.rs, so nothing else runs beside them).
//!
//! One test binary per crate: each file below was a test binary of its own, and each linked
//! every dependency again.

mod common;
mod faults;
mod features;
mod keepalive;
mod limits;
mod process;
mod secrets;
mod sessions;
mod templates;
