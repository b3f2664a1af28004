//! End-to-end tests: the bench binary run the way a user runs it.
//!
//! One test binary per crate: each file below was a test binary of its own, and each linked
//! every dependency again.

mod catalog;
mod chat;
mod cli;
mod common;
mod interrupt;
mod k8s;
mod modes;
mod pipeline;
mod real_traces;
mod serve;
mod server;
mod service;
mod shards;
mod snapshots_cli;
mod storage;
mod sweep;
mod templates;
