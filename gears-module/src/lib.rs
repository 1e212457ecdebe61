//! # gears
//!
//! The crate Gears module authors depend on: one dependency line gives the typed dataflow
//! engine ([`gears_core`], re-exported here) and the `#[gears::register]` attribute.
//!
//! ```
//! use gears::prelude::*;
//!
//! /// Counts the keys of every shard.
//! #[gears::register]
//! fn key_count() -> GearsBuilder<u64> {
//!     GearsBuilder::new(KeysOnlyReader::new("*")).count()
//! }
//!
//! let host = gears::testing::MemoryHost::new();
//! host.set("a", "1");
//! assert_eq!(key_count().run(&host).results, [1]);
//! assert_eq!(gears::registry::find("key_count").unwrap().doc, "Counts the keys of every shard.");
//! ```
//!
//! Running inside redis-server (commands such as `RG.RUN`, triggers, cluster execution) is
//! the subject of the gears-module issue; this crate currently provides the author-facing API.

extern crate self as gears;

pub use gears_core::*;
pub use gears_macros::register;

#[doc(hidden)]
pub mod __private {
    pub use linkme;
}
