//! Running one stage on one shard: what a stage reads (its inbox, the route, the options)
//! and what it produces (local records and encoded batches for other shards). Shard
//! coordinators drive stages through [`Plan::run_stage`](crate::plan::Plan::run_stage).

use std::any::Any;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::pull::{Inbox, StageCx, StageInput, StepStats};
use crate::context;
use crate::error::{GearsError, StepError};
use crate::event::Event;
use crate::host::{Host, Topology};

/// Default number of records a step handles per batch.
pub const DEFAULT_BATCH: usize = 1024;
/// Default payload size at which a cross-shard batch is closed.
pub const DEFAULT_MESSAGE_BYTES: usize = 32 * 1024;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Records per batch.
    pub batch: usize,
    /// Measure per-step durations.
    pub profile: bool,
    /// Set to abort the run between batches.
    pub abort: Arc<AtomicBool>,
    /// Payload bytes per cross-shard batch.
    pub message_bytes: usize,
}

impl RunOptions {
    /// Default options for a run that `abort` can stop, profiled or not.
    pub fn for_execution(abort: Arc<AtomicBool>, profile: bool) -> Self {
        Self {
            batch: DEFAULT_BATCH,
            profile,
            abort,
            message_bytes: DEFAULT_MESSAGE_BYTES,
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch: DEFAULT_BATCH,
            profile: false,
            abort: Arc::new(AtomicBool::new(false)),
            message_bytes: DEFAULT_MESSAGE_BYTES,
        }
    }
}

/// Where a stage's records go, and the shard that collects.
#[derive(Debug, Clone)]
pub struct RouteCx {
    /// The topology, seen from the running shard.
    pub topology: Topology,
    /// Index of the shard that started the execution.
    pub initiator: usize,
    /// Payload bytes per cross-shard batch.
    pub message_bytes: usize,
}

/// What one stage run on one shard produced.
pub struct StageOutput {
    pub(crate) local: Box<dyn Any + Send>,
    /// Encoded batches for other shards: `(shard index, batch)`.
    pub remote: Vec<(usize, Vec<u8>)>,
}

impl std::fmt::Debug for StageOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageOutput")
            .field("remote_batches", &self.remote.len())
            .finish()
    }
}

/// The records a shard received for its next stage.
#[derive(Default)]
pub struct StageInbox {
    pub(crate) inner: Inbox,
}

impl std::fmt::Debug for StageInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageInbox")
            .field("local_parts", &self.inner.local.len())
            .field("remote_batches", &self.inner.remote.len())
            .finish()
    }
}

impl StageInbox {
    /// Keeps the records a stage left on this shard.
    pub fn add_local(&mut self, output: StageOutput) {
        self.inner.local.push(output.local);
    }

    /// Adds an encoded batch received from another shard.
    pub fn add_remote(&mut self, batch: Vec<u8>) {
        self.inner.remote.push(batch);
    }
}

/// A stage as the engine runs it, whatever its record type.
pub(crate) trait StageRunner: Send + Sync {
    fn run(
        &self,
        input: &mut StageInput,
        cx: &mut StageCx<'_>,
        route: &RouteCx,
    ) -> Result<StageOutput, GearsError>;
}

/// Per-shard bookkeeping of a run: errors and step counters.
#[derive(Debug, Clone, Default)]
pub struct ShardRunState {
    /// Errors of user code on this shard.
    pub errors: Vec<StepError>,
    /// Counters per step.
    pub stats: Vec<StepStats>,
}

/// One stage to run on one shard: everything [`Plan::run_stage`](crate::plan::Plan::run_stage)
/// reads, built by a shard coordinator (the in-memory cluster, the Redis Cluster
/// coordinator) for each stage of an execution.
pub struct StageCall<'a> {
    /// The stage's index in the plan (0: the stage that starts at the reader).
    pub stage: usize,
    /// The shard's host.
    pub host: &'a Arc<dyn Host>,
    /// The event of a triggered execution; only stage 0 reads it.
    pub event: Option<Event>,
    /// What the previous stage's exchange delivered to this shard (empty for stage 0).
    pub inbox: StageInbox,
    /// Whether this shard started the execution.
    pub initiator: bool,
    /// Where the stage's records go.
    pub route: &'a RouteCx,
    /// Batch size, profiling and the abort flag.
    pub options: &'a RunOptions,
    /// This shard's errors and step counters, which the stage adds to.
    pub state: &'a mut ShardRunState,
}

impl std::fmt::Debug for StageCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageCall")
            .field("stage", &self.stage)
            .field("initiator", &self.initiator)
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

impl StageCall<'_> {
    /// Runs the call's stage of `stages`.
    pub(crate) fn run(self, stages: &[Arc<dyn StageRunner>]) -> Result<StageOutput, GearsError> {
        let input = StageInput {
            host: self.host.clone(),
            event: self.event,
            inbox: (self.stage > 0).then_some(self.inbox.inner),
            initiator: self.initiator,
        };
        let on = Shard {
            host: self.host,
            route: self.route,
            options: self.options,
            state: self.state,
            keep_output: true,
        };
        run_stage(stages, self.stage, input, on)
    }
}

/// The shard a stage runs on, apart from what the stage reads.
pub(crate) struct Shard<'a> {
    pub(crate) host: &'a Arc<dyn Host>,
    pub(crate) route: &'a RouteCx,
    pub(crate) options: &'a RunOptions,
    pub(crate) state: &'a mut ShardRunState,
    /// `false`: the stage's local output is dropped (the final stage of a run for effects).
    pub(crate) keep_output: bool,
}

/// Runs stage `stage` of `stages` over `input` on shard `on`. Local runs build `input`
/// themselves rather than a [`StageCall`]: moving the event through one more value costs the
/// per-event path of `sync` registrations a copy.
#[inline(always)]
pub(crate) fn run_stage(
    stages: &[Arc<dyn StageRunner>],
    stage: usize,
    mut input: StageInput,
    on: Shard<'_>,
) -> Result<StageOutput, GearsError> {
    let runner = stages
        .get(stage)
        .ok_or_else(|| GearsError::Invalid(format!("plan has no stage {stage}")))?;
    let _current = context::enter(on.host);
    let mut cx = StageCx {
        host: on.host,
        errors: &mut on.state.errors,
        stats: &mut on.state.stats,
        profile: on.options.profile,
        abort: &on.options.abort,
        batch: on.options.batch.max(1),
        keep_output: on.keep_output,
    };
    // By reference: a dynamic call taking the input by value copies it (a `memcpy` on the
    // per-event path of `sync` registrations).
    runner.run(&mut input, &mut cx, on.route)
}
