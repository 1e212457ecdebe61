//! [`MemoryCluster`]: N [`MemoryHost`] shards splitting the hash slots like a Redis Cluster,
//! each with the production [`Coordinator`], exchanging really encoded messages over a
//! simulated network.
//!
//! The calling thread plays every shard's main thread: it delivers the messages in flight, one
//! at a time, while stage jobs run on the cluster's executor workers. When nothing is in
//! flight and no job runs, the fake clock moves 100 ms and every coordinator ticks
//! (acknowledgements, retransmissions, idle peers), so timeouts take no real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crossbeam::channel::select;

use super::network::{lock, Fate, MemoryLink, Packet, ShardTransport, Shared};
use super::MemoryHost;
use crate::builder::GearsBuilder;
use crate::chain::Chain;
use crate::distributed::{Coordinator, Erased, Launch, Settings, ShardPlan, Typed};
use crate::error::{GearsError, StepError};
use crate::execution::{Execution, ExecutionId, ExecutionStatus};
use crate::executor::Executor;
use crate::host::{StreamId, Topology};
use crate::plan::{Plan, RunOptions, RunResult};
use crate::record::Record;
use crate::registry::ErasedPlan;
use crate::value::Value;

/// Simulated time between two ticks of an idle cluster.
const TICK: Duration = Duration::from_millis(100);
/// Ticks after which a run that makes no progress is given up (an hour of simulated time).
const MAX_TICKS: u32 = 36_000;

/// Traffic counters of a [`MemoryCluster`]: what its coordinators sent (first transmissions
/// of sequenced messages, as `RG.INFOCLUSTER`'s `messagesSent`/`bytesSent`).
#[derive(Debug, Default)]
pub struct ClusterTraffic {
    /// Shard messages sent.
    pub messages: AtomicU64,
    /// Bytes of shard messages sent.
    pub bytes: AtomicU64,
}

struct Inner {
    shards: Vec<MemoryHost>,
    topology: Topology,
    traffic: ClusterTraffic,
    shared: Arc<Shared>,
    coordinators: RwLock<Vec<Arc<Coordinator>>>,
    /// Coordinators replaced by [`MemoryCluster::restart`] (their jobs may still run).
    retired: Mutex<Vec<Arc<Coordinator>>>,
    /// Held while a thread plays the shards' main threads.
    main: Mutex<()>,
    next: AtomicU64,
    /// Owned here (shards hold it weakly): the workers stop when the cluster goes.
    _executor: Arc<Executor>,
}

/// N [`MemoryHost`] shards splitting the hash slots, each running the production coordinator
/// ([`crate::distributed`]) over a simulated network whose faults tests control.
#[derive(Clone)]
pub struct MemoryCluster {
    inner: Arc<Inner>,
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

    /// The shard owning `key`.
    pub fn owner(&self, key: &str) -> &MemoryHost {
        &self.inner.shards[self.inner.topology.owner_of_key(key.as_bytes())]
    }

    /// `SET` on the owning shard.
    pub fn set(&self, key: &str, value: &str) {
        self.owner(key).set(key, value)
    }

    /// `GET` from the owning shard.
    pub fn get(&self, key: &str) -> Option<String> {
        self.owner(key).get(key)
    }

    /// `HSET` on the owning shard.
    pub fn hset(&self, key: &str, fields: &[(&str, &str)]) {
        self.owner(key).hset(key, fields)
    }

    /// `XADD` on the owning shard.
    pub fn xadd(&self, key: &str, fields: &[(&str, &str)]) -> StreamId {
        self.owner(key).xadd(key, fields)
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
        let execution = self.execute(typed.clone(), options)?;
        outcome_of(&execution, typed.take())
    }

    /// Runs a registered (type-erased) plan on every shard, like [`run_plan`](Self::run_plan).
    pub fn run_erased(
        &self,
        plan: &Arc<dyn ErasedPlan>,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError> {
        let erased = Arc::new(Erased::keeping(plan.clone()));
        let execution = self.execute(erased.clone(), options)?;
        outcome_of(&execution, erased.take())
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

    fn link(&self, shard: usize) -> MemoryLink<'_> {
        MemoryLink {
            shared: &self.inner.shared,
            from: shard,
        }
    }

    /// Starts `plan` from shard 0 and plays the main threads until it completed.
    fn execute(
        &self,
        plan: Arc<dyn ShardPlan>,
        options: &RunOptions,
    ) -> Result<Arc<Execution>, GearsError> {
        let inner = &self.inner;
        let _main = lock(&inner.main);
        let n = inner.next.fetch_add(1, Ordering::Relaxed) + 1;
        // The name every shard resolves the plan by (closures never travel).
        let name = format!("memory-cluster-plan-{n}");
        lock(&inner.shared.plans).insert(name.clone(), plan.clone());
        {
            let mut settings = lock(&inner.shared.settings);
            settings.message_bytes = options.message_bytes;
            settings.batch = options.batch;
        }
        while inner.shared.wake.1.try_recv().is_ok() {}
        let execution = Execution::new(ExecutionId::new(&inner.topology.shards()[0].id, n));
        let wake = inner.shared.wake.0.clone();
        let launch = Launch {
            function: name.clone(),
            args: Vec::new(),
            registration: false,
            plan,
            event: None,
            execution: execution.clone(),
            on_done: Some(Box::new(move |_: &Arc<Execution>| {
                let _ = wake.send(());
            })),
            profile: options.profile,
            keep: false,
            shards: inner.shared.wire_shards(),
            me: 0,
            topology: inner.topology.as_seen_by(0),
        };
        let result = self
            .coordinator(0)
            .launch(&self.link(0), launch)
            .map_err(GearsError::Distributed)
            .and_then(|()| self.drive(&execution, options));
        // Acknowledge what was delivered, so nothing waits in the outboxes.
        self.quiesce();
        self.tick_all();
        self.quiesce();
        lock(&inner.shared.plans).remove(&name);
        self.sync_traffic();
        result.map(|()| execution)
    }

    /// Delivers messages and ticks the idle cluster until `execution` completed.
    fn drive(&self, execution: &Execution, options: &RunOptions) -> Result<(), GearsError> {
        let shared = &self.inner.shared;
        let mut abort_sent = false;
        let mut ticks = 0;
        while !execution.is_finished() {
            if !abort_sent && options.abort.load(Ordering::Acquire) {
                abort_sent = true;
                self.coordinator(0).abort(&self.link(0), &execution.id().0);
                continue;
            }
            if self.step() {
                continue;
            }
            ticks += 1;
            if ticks > MAX_TICKS {
                return Err(GearsError::Internal(
                    "the in-memory cluster made no progress in an hour of simulated time".into(),
                ));
            }
            shared.clock.advance(TICK);
            self.tick_all();
        }
        Ok(())
    }

    /// Delivers one message or waits for a job; `false` once the cluster is idle (nothing in
    /// flight, no job queued or running, nothing delayed).
    fn step(&self) -> bool {
        let shared = &self.inner.shared;
        // Busy first: a job that ended before this check sent everything it sends.
        let busy = self.busy();
        if let Ok(packet) = shared.rx.try_recv() {
            self.deliver(packet);
            return true;
        }
        if busy {
            select! {
                recv(shared.rx) -> packet => if let Ok(packet) = packet {
                    self.deliver(packet);
                },
                recv(shared.wake.1) -> _ => {},
                default(Duration::from_millis(1)) => {},
            }
            return true;
        }
        shared.release_delayed()
    }

    fn quiesce(&self) {
        while self.step() {}
    }

    fn busy(&self) -> bool {
        let busy = |c: &Arc<Coordinator>| c.busy();
        self.inner
            .coordinators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(busy)
            || lock(&self.inner.retired).iter().any(busy)
    }

    fn deliver(&self, packet: Packet) {
        let from = &self.inner.shared.ids[packet.from];
        // Management messages (`RG.GETEXECUTION … CLUSTER`, registrations) are the module's.
        let _ = self
            .coordinator(packet.to)
            .receive(&self.link(packet.to), from, &packet.bytes);
    }

    fn tick_all(&self) {
        for i in 0..self.inner.shards.len() {
            self.coordinator(i).tick(&self.link(i));
        }
    }

    fn sync_traffic(&self) {
        let (mut messages, mut bytes) = (0, 0);
        let mut add = |c: &Arc<Coordinator>| {
            messages += c.counters().sent.load(Ordering::Relaxed);
            bytes += c.counters().sent_bytes.load(Ordering::Relaxed);
        };
        self.inner
            .coordinators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .for_each(&mut add);
        lock(&self.inner.retired).iter().for_each(&mut add);
        let traffic = &self.inner.traffic;
        traffic.messages.store(messages, Ordering::Relaxed);
        traffic.bytes.store(bytes, Ordering::Relaxed);
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
