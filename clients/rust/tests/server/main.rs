//! The client against real PEZ servers (`target/debug/pez` of this
//! workspace, or `PEZ_BIN`), one binary: each test starts its own servers,
//! each with its own data directory and port.

mod failover;
mod harness;
mod ordering;
mod sequences;
mod take;
mod tokens;
