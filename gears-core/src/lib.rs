//! # gears-core
//!
//! The Gears engine — RedisGears 1.x's dataflow model, typed and native — with no Redis in
//! sight: everything Redis-specific goes through the [`Host`](host::Host) trait, which
//! `gears-module` implements inside redis-server and [`testing`] implements in memory
//! (one server, or N shards of a simulated cluster).
//!
//! - [`GearsBuilder`]: a reader, then typed steps (`map`, `filter`, `group_by`, `count`, …);
//!   one file per operator under `ops/`.
//! - [`plan`]: a flow split into stages at its global steps (`collect`, `repartition` and the
//!   operations built on them); a stage runs as a pull chain over batches of records. How
//!   stages, exchanges, fused chains and nodes run is the private `plumbing/`, apart from
//!   the user API.
//! - [`readers`]: where records come from; [`trigger`]: what fires a registration;
//!   [`event`]: what fired it.
//! - [`bytes`]: [`RedisBytes`](bytes::RedisBytes), the binary-safe strings records carry
//!   (keys, values, fields), with string views.
//! - [`codec`]: records cross shards in bincode-2 batches with a versioned header.
//! - [`distributed`]: the cluster coordinator (stages on every shard, reliable messages,
//!   barriers, timeouts) behind a small transport trait: the Redis Cluster bus in
//!   gears-module, in-memory queues in [`testing::MemoryCluster`].
//! - [`executor`]: worker threads fed by lock-free per-registration lanes (FIFO per lane).
//! - [`registry`]: the `#[gears::register]` functions, by name.
//!
//! ```
//! # use gears_core as gears;
//! use gears::prelude::*;
//! let cluster = gears::testing::MemoryCluster::new(3);
//! for (i, city) in ["paris", "rome", "paris", "oslo"].iter().enumerate() {
//!     cluster.hset(&format!("user:{i}"), &[("city", city)]);
//! }
//! let flow = GearsBuilder::new(KeysReader::new("user:*"))
//!     .count_by(|r| r.field("city").unwrap_or("?").to_string())
//!     .sort();
//! let out = cluster.run(flow);
//! assert!(out.errors.is_empty());
//! assert_eq!(out.results, [("oslo".to_string(), 1), ("paris".into(), 2), ("rome".into(), 1)]);
//! ```
#![forbid(unsafe_code)]

pub mod builder;
pub mod bytes;
pub mod codec;
pub mod context;
pub mod distributed;
pub mod error;
pub mod event;
pub mod execution;
pub mod executor;
pub mod glob;
pub mod host;
mod ops;
pub mod plan;
mod plumbing;
pub mod readers;
pub mod record;
pub mod registry;
pub mod slot;
pub mod testing;
pub mod trigger;
pub mod value;

pub use builder::GearsBuilder;
pub use plumbing::pull::{StepInfo, StepStats};

/// Fusion of per-record steps: consecutive `map`, `filter`, `flat_map` and `for_each` steps
/// are composed at compile time into one [`Chain`](chain::Chain) (the second type parameter
/// of [`GearsBuilder`], like an iterator adapter) and run as one loop per record. These are
/// the chain's types as builder types name them.
pub mod chain {
    pub use crate::ops::filter::Filter;
    pub use crate::ops::flat_map::FlatMap;
    pub use crate::ops::for_each::ForEach;
    pub use crate::ops::map::Map;
    pub use crate::plumbing::chain::{Chain, Identity, PerRecord, PlainFn, Then};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::plumbing::pull::StageCx;
}

/// Everything a flow author needs, in one `use`.
pub mod prelude {
    pub use crate::builder::GearsBuilder;
    pub use crate::bytes::RedisBytes;
    pub use crate::error::{GearsError, StepError};
    pub use crate::host::{Host, KeyType, KeyValue, ShardId, StreamId};
    pub use crate::plan::RunResult;
    pub use crate::readers::{
        CommandReader, IterReader, KeyRecord, KeysOnlyReader, KeysReader, ShardsIdReader,
        SliceReader, StreamReader, StreamRecord,
    };
    pub use crate::record::{PartitionKey, Record};
    pub use crate::registry::Flow;
    pub use crate::trigger::{ExecutionMode, FailurePolicy, Registration};
    pub use crate::value::{IntoValue, Value};
}
