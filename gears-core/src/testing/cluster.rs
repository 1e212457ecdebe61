//! [`MemoryCluster`]: N [`MemoryHost`] shards splitting the hash slots like a Redis Cluster,
//! each with the production [`Coordinator`], exchanging really encoded messages over a
//! simulated network.
//!
//! How the cluster is played (the calling thread as every shard's main thread, a fake clock)
//! is in `driver`.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::driver::Started;
use super::network::{lock, Fate, Packet, ShardTransport, Shared};
use super::MemoryHost;
use crate::builder::GearsBuilder;
use crate::bytes::RedisBytes;
use crate::chain::Chain;
use crate::distributed::{Coordinator, Erased, Settings, ShardPlan, Typed};
use crate::error::{GearsError, StepError};
use crate::execution::{Execution, ExecutionStatus};
use crate::executor::Executor;
use crate::host::{StreamId, Topology};
use crate::plan::{Plan, RunOptions, RunResult};
use crate::record::Record;
use crate::registry::ErasedPlan;
use crate::value::Value;

/// Traffic counters of a [`MemoryCluster`]: what its coordinators sent (first transmissions
/// of sequenced messages, as `RG.INFOCLUSTER`'s `messagesSent`/`bytesSent`).
#[derive(Debug, Default)]
pub struct ClusterTraffic {
    /// Shard messages sent.
    pub messages: AtomicU64,
    /// Bytes of shard messages sent.
    pub bytes: AtomicU64,
}

pub(super) struct Inner {
    pub(super) shards: Vec<MemoryHost>,
    pub(super) topology: Topology,
    pub(super) traffic: ClusterTraffic,
    pub(super) shared: Arc<Shared>,
    pub(super) coordinators: RwLock<Vec<Arc<Coordinator>>>,
    /// Coordinators replaced by [`MemoryCluster::restart`] (their jobs may still run).
    pub(super) retired: Mutex<Vec<Arc<Coordinator>>>,
    /// Held while a thread plays the shards' main threads.
    pub(super) main: Mutex<()>,
    pub(super) next: AtomicU64,
    /// Owned here (shards hold it weakly): the workers stop when the cluster goes.
    _executor: Arc<Executor>,
}

/// N [`MemoryHost`] shards splitting the hash slots, each running the production coordinator
/// ([`crate::distributed`]) over a simulated network whose faults tests control.
#[derive(Clone)]
pub struct MemoryCluster {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCluster")
            .field("shards", &self.inner.shards)
            .finish()
    }
}

impl MemoryCluster {
    /// `n` shards with contiguous slot ranges.
    pub fn new(n: usize) -> Self {
        let topology = Topology::evenly_split(n, 0);
        let shards: Vec<MemoryHost> = (0..n)
            .map(|i| MemoryHost::with_topology(topology.as_seen_by(i)))
            .collect();
        let executor = Arc::new(Executor::new(2));
        let shared = Arc::new(Shared::new(shards.clone(), topology.clone(), &executor));
        let coordinators = (0..n).map(|i| new_coordinator(&shared, i)).collect();
        Self {
            inner: Arc::new(Inner {
                shards,
                topology,
                traffic: ClusterTraffic::default(),
                shared,
                coordinators: RwLock::new(coordinators),
                retired: Mutex::new(Vec::new()),
                main: Mutex::new(()),
                next: AtomicU64::new(0),
                _executor: executor,
            }),
        }
    }

    /// The shards.
    pub fn shards(&self) -> &[MemoryHost] {
        &self.inner.shards
    }

    /// The topology (as seen by shard 0).
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// Messages and bytes exchanged so far.
    pub fn traffic(&self) -> &ClusterTraffic {
        &self.inner.traffic
    }

    /// The shard owning `key` (any bytes).
    pub fn owner(&self, key: impl AsRef<[u8]>) -> &MemoryHost {
        &self.inner.shards[self.inner.topology.owner_of_key(key.as_ref())]
    }

    /// `SET` on the owning shard.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.owner(&key).set(key, value)
    }

    /// `GET` from the owning shard.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<RedisBytes> {
        self.owner(&key).get(key)
    }

    /// `HSET` on the owning shard.
    pub fn hset<F: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, fields: &[(F, V)]) {
        self.owner(&key).hset(key, fields)
    }

    /// `XADD` on the owning shard.
    pub fn xadd<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: impl AsRef<[u8]>,
        fields: &[(F, V)],
    ) -> StreamId {
        self.owner(&key).xadd(key, fields)
    }

    /// Builds and runs `flow` on every shard, started from shard 0; an engine failure is
    /// reported as one `execution` error.
    pub fn run<T: Record, C: Chain<Out = T>>(&self, flow: GearsBuilder<T, C>) -> RunResult<T> {
        let plan = flow.build();
        self.run_plan(&plan, &RunOptions::default())
            .unwrap_or_else(|e| RunResult {
                results: Vec::new(),
                errors: vec![StepError::new("execution", e.to_string())],
                stats: Vec::new(),
            })
    }

    /// Runs `plan` on every shard, started from shard 0, through the production coordinator:
    /// records that cross shards travel as codec batches inside wire messages. The typed
    /// results are kept at the initiator. A failed execution (a stage error, a silent or
    /// restarted shard) is [`GearsError::Distributed`]; an aborted one (`options.abort`)
    /// [`GearsError::Aborted`].
    pub fn run_plan<T: Record>(
        &self,
        plan: &Plan<T>,
        options: &RunOptions,
    ) -> Result<RunResult<T>, GearsError> {
        let typed = Arc::new(Typed::new(plan.clone()));
        self.run_to_end(typed.clone(), options, || typed.take())
    }

    /// Runs a registered (type-erased) plan on every shard, like [`run_plan`](Self::run_plan).
    pub fn run_erased(
        &self,
        plan: &Arc<dyn ErasedPlan>,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError> {
        let erased = Arc::new(Erased::keeping(plan.clone()));
        self.run_to_end(erased.clone(), options, || erased.take())
    }

    /// Starts `plan` from shard 0, plays the cluster until its end, and takes what the
    /// initiator kept.
    fn run_to_end<T>(
        &self,
        plan: Arc<dyn ShardPlan>,
        options: &RunOptions,
        take: impl FnOnce() -> Option<RunResult<T>>,
    ) -> Result<RunResult<T>, GearsError> {
        let started = self.begin(plan, options, None)?;
        self.complete(&started)?;
        outcome_of(&started.execution, take())
    }

    /// Builds `flow` and starts it from shard 0 without waiting for its end: the messages
    /// are delivered until the cluster is idle, but the clock does not move (see
    /// [`advance`](Self::advance), [`PendingRun::wait`]).
    pub fn start<T: Record, C: Chain<Out = T>>(&self, flow: GearsBuilder<T, C>) -> PendingRun<T> {
        self.start_in(flow, None)
    }

    /// [`start`](Self::start) in the launch queue `queue`: it starts once the runs started
    /// before it in the same queue completed (the FIFO of an `async` registration's events).
    pub fn start_queued<T: Record, C: Chain<Out = T>>(
        &self,
        flow: GearsBuilder<T, C>,
        queue: &str,
    ) -> PendingRun<T> {
        self.start_in(flow, Some(queue))
    }

    fn start_in<T: Record, C: Chain<Out = T>>(
        &self,
        flow: GearsBuilder<T, C>,
        queue: Option<&str>,
    ) -> PendingRun<T> {
        let typed = Arc::new(Typed::new(flow.build()));
        let started = self.begin(typed.clone(), &RunOptions::default(), queue);
        self.play(Duration::ZERO);
        PendingRun {
            cluster: self.clone(),
            typed,
            started: Some(started),
        }
    }

    /// Plays the cluster for `by` of simulated time (a tick every 100 ms, every message
    /// delivered in between).
    pub fn advance(&self, by: Duration) {
        self.play(by);
    }

    /// Decides the fate of every packet from now on (faults for tests); see [`Fate`].
    pub fn set_rule(&self, rule: impl FnMut(&Packet) -> Fate + Send + 'static) {
        self.inner.shared.set_rule(Some(Box::new(rule)));
    }

    /// Delivers every packet from now on.
    pub fn clear_rule(&self) {
        self.inner.shared.set_rule(None);
    }

    /// The packets held by [`Fate::Hold`], in the order they were sent.
    pub fn held(&self) -> Vec<Packet> {
        self.inner.shared.held()
    }

    /// Delivers the held packets now (messages arriving late), until the cluster is idle
    /// again; returns how many there were.
    pub fn release_held(&self) -> usize {
        let _main = lock(&self.inner.main);
        let n = self.inner.shared.release_held();
        self.quiesce();
        self.sync_traffic();
        n
    }

    /// Restarts shard `shard`'s coordinator: a new run id, nothing in flight. Its keys stay.
    pub fn restart(&self, shard: usize) {
        let _main = lock(&self.inner.main);
        let fresh = new_coordinator(&self.inner.shared, shard);
        let old = std::mem::replace(&mut self.write_coordinators()[shard], fresh);
        lock(&self.inner.retired).push(old);
    }

    /// Flags shard `shard` failing (as the cluster flags a node PFAIL/FAIL), or not.
    pub fn set_failing(&self, shard: usize, failing: bool) {
        lock(&self.inner.shared.failing)[shard] = failing;
    }

    /// The coordinators' settings (idle time, retries; `message_bytes` and `batch` are taken
    /// from each run's options).
    pub fn settings(&self) -> Settings {
        lock(&self.inner.shared.settings).clone()
    }

    /// Changes the coordinators' settings.
    pub fn set_settings(&self, settings: Settings) {
        *lock(&self.inner.shared.settings) = settings;
    }

    /// Simulated time elapsed since the cluster was made.
    pub fn elapsed(&self) -> Duration {
        self.inner.shared.clock.elapsed()
    }

    /// Shard `shard`'s coordinator (its counters, run id, executions in flight).
    pub fn coordinator(&self, shard: usize) -> Arc<Coordinator> {
        self.inner
            .coordinators
            .read()
            .unwrap_or_else(|p| p.into_inner())[shard]
            .clone()
    }

    /// Ids of the executions listed on shard `shard` (peers list their part while it runs).
    pub fn listed(&self, shard: usize) -> Vec<String> {
        lock(&self.inner.shared.listed[shard])
            .keys()
            .cloned()
            .collect()
    }

    /// What the coordinators logged, oldest first (`shard <i>: <level>: <line>`).
    pub fn log_lines(&self) -> Vec<String> {
        lock(&self.inner.shared.log).clone()
    }

    fn write_coordinators(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Coordinator>>> {
        self.inner
            .coordinators
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// A run [`MemoryCluster::start`]ed and not waited for yet.
pub struct PendingRun<T> {
    cluster: MemoryCluster,
    typed: Arc<Typed<T>>,
    started: Option<Result<Started, GearsError>>,
}

impl<T> std::fmt::Debug for PendingRun<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRun").finish_non_exhaustive()
    }
}

impl<T: Record> PendingRun<T> {
    /// Whether the execution completed (or could not start).
    pub fn is_finished(&self) -> bool {
        match &self.started {
            Some(Ok(started)) => started.execution.is_finished(),
            _ => true,
        }
    }

    /// Plays the cluster until the run completed; its result as
    /// [`MemoryCluster::run`] gives it.
    pub fn wait(mut self) -> RunResult<T> {
        let result = match self.started.take() {
            Some(Ok(started)) => self
                .cluster
                .complete(&started)
                .and_then(|()| outcome_of(&started.execution, self.typed.take())),
            Some(Err(e)) => Err(e),
            None => Err(GearsError::Internal(
                "the run was already waited for".into(),
            )),
        };
        result.unwrap_or_else(|e| RunResult {
            results: Vec::new(),
            errors: vec![StepError::new("execution", e.to_string())],
            stats: Vec::new(),
        })
    }
}

impl<T> Drop for PendingRun<T> {
    fn drop(&mut self) {
        if let Some(Ok(started)) = &self.started {
            self.cluster.forget_plan(started);
        }
    }
}

fn new_coordinator(shared: &Arc<Shared>, index: usize) -> Arc<Coordinator> {
    let transport = Arc::new(ShardTransport {
        shared: shared.clone(),
        index,
    });
    Coordinator::new(shared.ids[index].clone(), transport)
}

/// The run's result kept at the initiator, or why there is none.
fn outcome_of<T>(
    execution: &Execution,
    kept: Option<RunResult<T>>,
) -> Result<RunResult<T>, GearsError> {
    if execution.status() == ExecutionStatus::Aborted {
        return Err(GearsError::Aborted);
    }
    if let Some(result) = kept {
        return Ok(result);
    }
    let errors = execution
        .outcome()
        .map(|o| o.errors.clone())
        .unwrap_or_default();
    let message = errors
        .first()
        .map_or("the execution ended without results", |e| {
            e.strip_prefix("execution: ").unwrap_or(e)
        });
    Err(GearsError::Distributed(message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;

    #[test]
    fn cluster_shards_refuse_foreign_keys() {
        let c = MemoryCluster::new(3);
        let owner = c.topology().owner_of_key(b"foo");
        let other = (owner + 1) % 3;
        assert!(c.shards()[owner].call(&["SET", "foo", "1"]).is_ok());
        let err = c.shards()[other].call(&["SET", "foo", "1"]).unwrap_err();
        assert!(err.message.contains("non local key"), "{err}");
    }
}
