//! What the coordinator needs of a plan: its stages, one stage run on one shard, and the
//! initiator's final step. [`Erased`] adapts a registered (type-erased) plan, results as
//! reply values; [`Typed`] adapts a typed [`Plan`] and keeps its typed results at the
//! initiator (the in-memory cluster's `run(flow)`).
//!
//! The `run_stage` forwarder below is the coordinator's only call into stage running.

use std::sync::{Arc, Mutex};

use crate::error::GearsError;
use crate::plan::{Plan, RunResult, ShardRunState, StageCall, StageInbox, StageOutput};
use crate::record::Record;
use crate::registry::{Built, ErasedPlan};
use crate::value::Value;
use crate::StepInfo;

/// A plan as a shard's coordinator runs it.
pub trait ShardPlan: Send + Sync {
    /// The steps, in order.
    fn steps(&self) -> &[StepInfo];
    /// Number of stages.
    fn stage_count(&self) -> usize;
    /// Fresh per-shard bookkeeping.
    fn new_shard_state(&self) -> ShardRunState;
    /// Runs stage `stage` on one shard (see [`Plan::run_stage`]).
    fn run_stage(&self, call: StageCall<'_>) -> Result<StageOutput, GearsError>;
    /// The initiator's end: the results it received from the last stage, with every shard's
    /// bookkeeping merged (initiator first).
    fn finish(
        &self,
        inbox: StageInbox,
        shards: Vec<ShardRunState>,
    ) -> Result<RunResult<Value>, GearsError>;
}

/// The calls both adapters below hand to their plan unchanged, and `finish`, where
/// `$summary` makes what the coordinator gets of the initiator's run.
macro_rules! forward_stages {
    ($summary:expr) => {
        fn steps(&self) -> &[StepInfo] {
            self.plan.steps()
        }
        fn stage_count(&self) -> usize {
            self.plan.stage_count()
        }
        fn new_shard_state(&self) -> ShardRunState {
            self.plan.new_shard_state()
        }
        fn run_stage(&self, call: StageCall<'_>) -> Result<StageOutput, GearsError> {
            self.plan.run_stage(call)
        }
        fn finish(
            &self,
            inbox: StageInbox,
            shards: Vec<ShardRunState>,
        ) -> Result<RunResult<Value>, GearsError> {
            let results = self.plan.results_from(inbox)?;
            Ok($summary(self, self.plan.finish(results, shards)))
        }
    };
}

/// Keeps the initiator's whole `run` in `slot`; the coordinator gets only its errors and
/// counters.
fn keep<T>(slot: &Mutex<Option<RunResult<T>>>, run: RunResult<T>) -> RunResult<Value> {
    let summary = RunResult {
        results: Vec::new(),
        errors: run.errors.clone(),
        stats: run.stats.clone(),
    };
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
    summary
}

/// A registered plan (results as reply values), as the Redis Cluster coordinator runs it.
pub struct Erased {
    plan: Arc<dyn ErasedPlan>,
    /// Keeps the initiator's whole result (errors as [`StepError`](crate::error::StepError)s).
    kept: Option<Mutex<Option<RunResult<Value>>>>,
}

impl Erased {
    /// Wraps `plan`.
    pub fn new(plan: Arc<dyn ErasedPlan>) -> Self {
        Self { plan, kept: None }
    }

    /// Wraps `plan`, keeping the initiator's result for [`take`](Erased::take).
    pub fn keeping(plan: Arc<dyn ErasedPlan>) -> Self {
        Self {
            plan,
            kept: Some(Mutex::new(None)),
        }
    }

    /// The result kept by a [`keeping`](Erased::keeping) plan, once the initiator finished.
    pub fn take(&self) -> Option<RunResult<Value>> {
        let kept = self.kept.as_ref()?;
        kept.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A shard's plan of a function, or why it cannot be built.
pub type PlanOrError = Result<Arc<dyn ShardPlan>, String>;

/// The plan of a `#[gears::register]` function as a shard builds it from a `Start`: a flow,
/// or with `registration` a registration's plan (an `async` execution).
pub fn from_registry(function: &str, args: &[String], registration: bool) -> PlanOrError {
    match crate::registry::build(function, args) {
        Ok(Built::Flow(plan)) if !registration => Ok(Arc::new(Erased::new(plan))),
        Ok(Built::Registration(r)) if registration => Ok(Arc::new(Erased::new(r.plan))),
        Ok(_) => Err(format!(
            "'{function}' is not the same kind of function on this shard"
        )),
        Err(e) => Err(e.to_string()),
    }
}

impl ShardPlan for Erased {
    forward_stages!(|this: &Self, run| match &this.kept {
        Some(slot) => keep(slot, run),
        None => run,
    });
}

/// A typed plan whose results stay typed at the initiator: [`finish`](ShardPlan::finish)
/// keeps them for [`take`](Typed::take) and hands the coordinator only the errors and
/// counters.
pub struct Typed<T> {
    plan: Plan<T>,
    results: Mutex<Option<RunResult<T>>>,
}

impl<T: Record> Typed<T> {
    /// Wraps `plan`.
    pub fn new(plan: Plan<T>) -> Self {
        Self {
            plan,
            results: Mutex::new(None),
        }
    }

    /// The typed results, once the initiator finished.
    pub fn take(&self) -> Option<RunResult<T>> {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl<T: Record> ShardPlan for Typed<T> {
    forward_stages!(|this: &Self, run| keep(&this.results, run));
}
