//! The status page (`GET /`): one small HTML document for a person.
//!
//! Rendering is pure and synchronous: the route gathers a [`PageInfo`] from
//! the server's state and this module only turns it into text, so every
//! formatting rule is unit-tested without a server. The page is
//! self-contained (inline CSS, no scripts, fonts or images, not even a
//! favicon request), reloads itself with a `<meta http-equiv="refresh">`,
//! and turns its table into one card per sequence on narrow screens.
//!
//! The page always shows what anyone may know: whether the instance is
//! ready and why not (the fixed phrases of /readyz), its version, how long
//! it has run, how many sequences it serves, and links to the operator
//! endpoints. The details (the store, whether it answers and since when
//! not, the last good reservation, the store's last error; each sequence,
//! where it stands, the numbers on hand, its rate) only when the route
//! allows them ([`PageInfo::details`]).
//!
//! Stable hooks for tests and scrapers: `#ready` with `data-ready`,
//! `#reasons`, `#uptime` with `data-seconds`, `#sequence-count` with
//! `data-count`; `#store`, `#store-reachable` with `data-reachable`,
//! `#down-since`, `#last-reservation` and `#last-error` with
//! `data-seconds` (an age; empty: never); each sequence is a
//! `<tr class="sequence" data-sequence="NAME">` whose cells have the
//! classes `name`, `next`, `on-hand`, `direction`, `mode`, `used` and
//! `rate`, with the raw values in `data-value`, `data-fraction` and
//! `data-per-second`.
//!
//! One job a module: [`model`] what the page shows, [`render`] the HTML,
//! [`text`] how numbers, ages and text are written for a person.

pub mod model;
pub mod render;
pub mod text;

pub use model::{Details, PageInfo, SequenceStatus};
pub use render::render;
pub use text::{escape, percent, rate, uptime};
