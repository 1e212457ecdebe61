//! What a shard's [`Coordinator`](super::Coordinator) needs from the world around it: a link
//! to send bytes on, a clock, worker lanes, plans by name, settings, and a list of executions.
//!
//! gears-module implements it over the Redis Cluster bus (sending with the Redis lock held,
//! plans from the `#[gears::register]` registry, settings from the module's configuration);
//! `testing::MemoryCluster` implements it over in-memory queues with a fake clock and a
//! controllable network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shard_plan::PlanOrError;
use super::wire::WireShard;
use crate::execution::Execution;
use crate::executor::Lane;
use crate::host::{Host, LogLevel, Topology};
use crate::StepInfo;

/// The link to the other shards, held for the duration of a call (on Redis: a context holding
/// the Redis lock, the only state in which the cluster bus may be used).
pub trait Link {
    /// Hands `bytes` to the link to shard `to`; `false` if the link refused them (node not
    /// connected): the message then waits for a retransmission round, in order.
    fn send(&self, to: &str, bytes: &[u8]) -> bool;

    /// The routing table of an execution another shard started, whose `Start` lists `shards`,
    /// seen from shard `me` (the Redis transport reuses its own table when the cluster agrees,
    /// after re-reading it once if not).
    fn topology(&self, shards: &[WireShard], me: usize) -> Topology;
}

/// The coordinator's tunables, read at each use (a change applies from then on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long an execution waits without news from its peers (`ExecutionMaxIdleTime`).
    pub max_idle: Duration,
    /// Payload bytes per record batch (`ShuffleBatchBytes`), for executions started here.
    pub message_bytes: usize,
    /// Retransmission rounds before giving up on a peer (`SendMsgRetries`).
    pub send_retries: u64,
    /// Records per batch inside a stage.
    pub batch: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_idle: Duration::from_millis(5000),
            message_bytes: crate::plan::DEFAULT_MESSAGE_BYTES,
            send_retries: 3,
            batch: crate::plan::DEFAULT_BATCH,
        }
    }
}

/// What this shard knows about another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// How errors name it (`<id> (<ip>:<port>)` on Redis).
    pub description: String,
    /// Flagged as failing (PFAIL/FAIL on Redis): it will not answer.
    pub failing: bool,
}

/// The environment of one shard's coordinator.
pub trait Transport: Send + Sync + 'static {
    /// Runs `f` with the link (from a worker thread: on Redis this takes the Redis lock, once
    /// for everything `f` sends).
    fn with_link(&self, f: &mut dyn FnMut(&dyn Link));

    /// The clock every timeout is measured on.
    fn now(&self) -> Instant;

    /// A fresh executor lane for one execution's jobs.
    fn lane(&self) -> Result<Lane, String>;

    /// The plan of `function` with `args` (closures never travel: each shard builds it):
    /// a flow, or with `registration` the plan of a registration (an `async` execution). The
    /// default builds it from the registry ([`from_registry`](super::from_registry)).
    fn resolve(&self, function: &str, args: &[String], registration: bool) -> PlanOrError {
        super::from_registry(function, args, registration)
    }

    /// The host stages of an execution run on, routing with `topology`.
    fn host(&self, topology: Topology) -> Arc<dyn Host>;

    /// The current settings.
    fn settings(&self) -> Settings;

    /// What this shard knows about shard `id`.
    fn peer(&self, id: &str) -> Peer;

    /// Lists a peer's part of an execution another shard started (`RG.DUMPEXECUTIONS`).
    fn record(&self, execution: &Arc<Execution>, function: &str, steps: &[StepInfo]);

    /// Drops execution `id` from the list if it finished.
    fn unlist(&self, id: &str);

    /// Writes a line to the log.
    fn log(&self, level: LogLevel, message: &str);
}

/// Runs `f` with `transport`'s link and returns what it returned.
pub(super) fn linked<R>(transport: &dyn Transport, f: impl FnOnce(&dyn Link) -> R) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    transport.with_link(&mut |link| {
        if let Some(f) = f.take() {
            out = Some(f(link));
        }
    });
    out
}
