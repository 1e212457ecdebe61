//! In-memory hosts for tests, doctests and benchmarks: [`MemoryHost`] is one Redis-like
//! keyspace; [`MemoryCluster`] is N of them splitting the hash slots like a Redis Cluster, each
//! running the production coordinator ([`crate::distributed`]) over a simulated network whose
//! faults a test controls ([`Fate`]).
//!
//! - `keyspace`: typed values by key; `commands`: the Redis commands a host understands;
//!   `host`: [`MemoryHost`].
//! - `network`: the in-memory [`Transport`](crate::distributed::Transport), its fake clock and
//!   fault rules; `cluster`: [`MemoryCluster`]; `driver`: how it is played (the calling thread
//!   as every shard's main thread, a fake clock).
//! - [`example`]: the harness of the documentation examples.

mod cluster;
mod commands;
mod driver;
mod example;
mod host;
mod keyspace;
mod network;

pub use cluster::{ClusterTraffic, MemoryCluster, PendingRun};
pub use example::{example, word_count};
pub use host::MemoryHost;
pub use network::{Fate, Packet};
