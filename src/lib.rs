//! PEZ: unique 64-bit numbers over HTTP.
//!
//! Layers, from the edge in: [`http`] (warp filters and handlers),
//! [`dispenser`] (numbers served from memory out of leased blocks),
//! [`store`] (durable positions), [`sequence`] (the arithmetic).
//! [`server`] wires them together; [`cli`] and [`config`] are the command line.

pub mod sequence;
pub mod store;
