//! PEZ: unique 64-bit numbers over HTTP.
//!
//! Layers, from the edge in: [`http`] (warp filters and handlers),
//! [`dispenser`] (numbers served from memory out of leased blocks),
//! [`store`] (durable positions), [`sequence`] (the arithmetic).
//! [`server`] wires them together; [`cli`] and [`config`] are the command
//! line, [`telemetry`] the logs, [`systemd`] the readiness protocol;
//! `libpq` the two calls into libpq that diesel does not expose, shared by
//! the configuration (parsing connection strings) and the PostgreSQL store;
//! [`trusted`] the checks on files another local user must not control.

/// The version: Cargo's, with `git describe` when built from git.
pub const VERSION: &str = env!("PEZ_VERSION");

pub mod cli;
pub mod config;
pub mod dispenser;
pub mod durable;
pub mod failpoint;
pub mod http;
pub(crate) mod libpq;
pub mod sequence;
pub mod server;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod trusted;
pub mod unpoisoned;
