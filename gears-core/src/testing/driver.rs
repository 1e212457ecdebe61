//! How a [`MemoryCluster`] is played: the calling thread is every shard's main thread. It
//! delivers the messages in flight one at a time while stage jobs run on the executor's
//! workers; when nothing is in flight and no job runs, the fake clock moves 100 ms and every
//! coordinator ticks (acknowledgements, retransmissions, idle peers), so timeouts take no
//! real time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::select;

use super::network::{lock, MemoryLink, Packet};
use super::MemoryCluster;
use crate::distributed::{Coordinator, Launch, ShardPlan};
use crate::error::GearsError;
use crate::execution::{Execution, ExecutionId};
use crate::plan::RunOptions;

/// Simulated time between two ticks of an idle cluster.
pub(super) const TICK: Duration = Duration::from_millis(100);
/// Ticks after which a run that makes no progress is given up (an hour of simulated time).
const MAX_TICKS: u32 = 36_000;

/// A run launched from shard 0.
pub(super) struct Started {
    pub(super) execution: Arc<Execution>,
    name: String,
    options: RunOptions,
}

impl MemoryCluster {
    pub(super) fn link(&self, shard: usize) -> MemoryLink<'_> {
        MemoryLink {
            shared: &self.inner.shared,
            from: shard,
        }
    }

    /// Launches `plan` from shard 0 (nothing delivered yet).
    pub(super) fn begin(
        &self,
        plan: Arc<dyn ShardPlan>,
        options: &RunOptions,
        queue: Option<&str>,
    ) -> Result<Started, GearsError> {
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
            queue: queue.map(str::to_string),
        };
        if let Err(e) = self.coordinator(0).launch(&self.link(0), launch) {
            lock(&inner.shared.plans).remove(&name);
            return Err(GearsError::Distributed(e));
        }
        Ok(Started {
            execution,
            name,
            options: options.clone(),
        })
    }

    /// Plays the cluster until the run completed, then lets the acknowledgements through.
    pub(super) fn complete(&self, started: &Started) -> Result<(), GearsError> {
        let _main = lock(&self.inner.main);
        let result = self.drive(&started.execution, &started.options);
        // Acknowledge what was delivered, so nothing waits in the outboxes.
        self.quiesce();
        self.tick_all();
        self.quiesce();
        self.forget_plan(started);
        self.sync_traffic();
        result
    }

    pub(super) fn forget_plan(&self, started: &Started) {
        lock(&self.inner.shared.plans).remove(&started.name);
    }

    /// Plays the cluster for `by` of simulated time.
    pub(super) fn play(&self, by: Duration) {
        let _main = lock(&self.inner.main);
        for _ in 0..(by.as_nanos() / TICK.as_nanos()) {
            self.quiesce();
            self.inner.shared.clock.advance(TICK);
            self.tick_all();
        }
        self.quiesce();
        self.sync_traffic();
    }

    /// Delivers messages and ticks the idle cluster until `execution` completed.
    fn drive(&self, execution: &Execution, options: &RunOptions) -> Result<(), GearsError> {
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
            self.inner.shared.clock.advance(TICK);
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

    pub(super) fn quiesce(&self) {
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

    pub(super) fn sync_traffic(&self) {
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
