//! Integration tests: the real server, over real HTTP. One binary, as in
//! zero-to-production, so the crate and its helpers compile once.

mod cli;
mod concurrency;
mod contract;
mod helpers;
mod lifecycle;
mod store_failure;
