//! Distributed executions: one flow run on every shard of a cluster, records exchanged in
//! codec batches, stage barriers, failures detected and reported. The same code runs on a
//! Redis Cluster (gears-module implements [`Transport`] over the cluster bus) and on
//! [`crate::testing::MemoryCluster`] (in-memory queues, a fake clock, a network that can lose,
//! duplicate, reorder and delay messages).
//!
//! - [`wire`]: the versioned message format (`b"GC"`).
//! - [`delivery`]: in-order, once-only delivery with acknowledgements and retransmission.
//! - [`transport`]: what the coordinator needs from its environment.
//! - [`Coordinator`]: one shard's distributed engine. An initiator ([`Coordinator::launch`])
//!   sends `Start` (function name, ARGS, the shards and their slots) to every other shard; each
//!   rebuilds the plan from the function (closures never travel) and runs its stages on
//!   executor workers. There is no two-phase start: messages for an execution not started
//!   here yet wait for its `Start` (or are dropped once idle).
//!
//! ```
//! use gears_core::prelude::*;
//! let cluster = gears_core::testing::MemoryCluster::new(3);
//! for i in 0..100 {
//!     cluster.set(&format!("k{i}"), "v");
//! }
//! // Three coordinators, one per shard, exchanging real messages.
//! let out = cluster.run(GearsBuilder::new(KeysOnlyReader::new("k*")).count());
//! assert_eq!(out.results, [100]);
//! assert!(cluster.traffic().messages.load(std::sync::atomic::Ordering::Relaxed) > 0);
//! ```

mod coordinator;
pub mod delivery;
mod ending;
mod run_state;
mod runs;
mod shard_plan;
mod stages;
pub mod transport;
pub mod wire;

pub use coordinator::{random_run_id, Coordinator};
pub use run_state::Launch;
pub use shard_plan::{from_registry, Erased, PlanOrError, ShardPlan, Typed};
pub use transport::{Link, Peer, Settings, Transport};
