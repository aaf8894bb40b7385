//! Settings: `PEZ_*` environment variables (also read from `.env`), each also
//! a command-line flag. Each is declared once ([`declared`]); clap takes the
//! values as text ([`raw`]) and [`RawSettings::validate`] checks them
//! ([`validate`]), so a bad one stops `pez` with one line that names the
//! variable.
//!
//! One job a module: [`command`] is the command line's grammar; [`setting`]
//! what a setting is, [`declared`] the table of them, [`raw`] their values
//! as given; [`validate`] makes those into the resolved [`settings`], with
//! [`database`] saying where the store is and [`secret`] keeping tokens and
//! passwords out of sight; [`error`] is the one error, [`conninfo`],
//! [`log_filter`] and [`unknown`] check what libpq, env_logger and the
//! environment are given.

pub mod command;
pub mod conninfo;
pub mod database;
pub mod declared;
pub mod error;
pub mod log_filter;
pub mod raw;
pub mod secret;
pub mod setting;
pub mod settings;
pub mod unknown;
pub mod validate;

pub use database::{PgSettings, StoreChoice};
pub use error::SettingError;
pub use raw::RawSettings;
pub use secret::Secret;
pub use setting::Setting;
pub use settings::{Access, Limits, Settings};
pub use validate::DEFAULT_MAX_COUNT;
