//! Integration tests: the real server, over real HTTP. One binary, as in
//! zero-to-production, so the crate and its helpers compile once.

mod helpers;
mod postgres_support;

mod admin_log;
mod cli;
mod concurrency;
mod contract;
mod exposure;
mod faults;
mod hostile_clients;
mod lease_limits;
mod lifecycle;
mod local_users;
mod logs;
mod metrics;
mod monitoring;
mod never_twice;
mod operations;
mod pooler;
mod postgres;
mod power_cut;
mod readme;
mod sequences;
mod status_page;
mod store_failure;
mod systemd;
mod takeover;
mod transfer;
