//! PEZ: unique 64-bit numbers over HTTP.
//!
//! Layers, from the edge in: [`http`] (warp filters and handlers),
//! [`dispenser`] (numbers served from memory out of leased blocks),
//! [`store`] (durable positions), [`sequence`] (the arithmetic).
//! [`server`] wires them together; [`cli`] and [`config`] are the command
//! line, [`telemetry`] the logs.

pub mod cli;
pub mod config;
pub mod dispenser;
pub mod http;
pub mod sequence;
pub mod server;
pub mod store;
pub mod telemetry;
