//! The registry of `#[gears::register]` functions: the names `RG.RUN` and triggers resolve,
//! and the way every shard rebuilds the same plan (closures never travel, names do).

use std::sync::Arc;

use crate::builder::GearsBuilder;
use crate::error::GearsError;
use crate::host::Host;
use crate::plan::{Plan, RunOptions, RunResult, ShardRunState, StageCall, StageInbox, StageOutput};
use crate::plumbing::chain::Chain;
use crate::plumbing::pull::StepInfo;
use crate::readers::Event;
use crate::record::Record;
use crate::value::{IntoValue, Value};

pub use linkme;

/// What a registered function builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// A runnable flow (`RG.RUN <name>`).
    Flow,
    /// A registration: a flow fired by events, registered when the module loads.
    Registration,
}

impl FunctionKind {
    /// The name shown by `RG.DUMPFUNCTIONS`.
    pub fn name(self) -> &'static str {
        match self {
            FunctionKind::Flow => "flow",
            FunctionKind::Registration => "registration",
        }
    }
}

/// A plan whose results are reply values, with its record type erased.
pub trait ErasedPlan: Send + Sync {
    /// The steps, in order.
    fn steps(&self) -> &[StepInfo];
    /// Number of stages.
    fn stage_count(&self) -> usize;
    /// The reader's name.
    fn reader_name(&self) -> &'static str;
    /// Runs the whole plan on one host (every exchange local).
    fn run_with(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError>;
    /// Like [`run_with`](ErasedPlan::run_with) for the run's effects only: the results are
    /// dropped, never converted (executions fired by keyspace events, read by nobody).
    fn run_for_effects(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError>;
    /// Fresh per-shard bookkeeping.
    fn new_shard_state(&self) -> ShardRunState;
    /// Runs one stage on one shard (see [`Plan::run_stage`]).
    fn run_stage(&self, call: StageCall<'_>) -> Result<StageOutput, GearsError>;
    /// The results the initiator received from the last stage, as values.
    fn results_from(&self, inbox: StageInbox) -> Result<Vec<Value>, GearsError>;
    /// Combines per-shard bookkeeping into a [`RunResult`].
    fn finish(&self, results: Vec<Value>, shards: Vec<ShardRunState>) -> RunResult<Value>;
}

fn into_values<T: IntoValue>(r: RunResult<T>) -> RunResult<Value> {
    RunResult {
        results: r.results.into_iter().map(IntoValue::into_value).collect(),
        errors: r.errors,
        stats: r.stats,
    }
}

impl<T: Record + IntoValue> ErasedPlan for Plan<T> {
    fn steps(&self) -> &[StepInfo] {
        Plan::steps(self)
    }
    fn stage_count(&self) -> usize {
        Plan::stage_count(self)
    }
    fn reader_name(&self) -> &'static str {
        Plan::reader_name(self)
    }
    fn run_with(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError> {
        Plan::run_with(self, host, event, options).map(into_values)
    }
    fn run_for_effects(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError> {
        Plan::run_for_effects(self, host, event, options).map(|r| RunResult {
            results: Vec::new(),
            errors: r.errors,
            stats: r.stats,
        })
    }
    fn new_shard_state(&self) -> ShardRunState {
        Plan::new_shard_state(self)
    }
    fn run_stage(&self, call: StageCall<'_>) -> Result<StageOutput, GearsError> {
        Plan::run_stage(self, call)
    }
    fn results_from(&self, inbox: StageInbox) -> Result<Vec<Value>, GearsError> {
        Ok(Plan::results_from(self, inbox)?
            .into_iter()
            .map(IntoValue::into_value)
            .collect())
    }
    fn finish(&self, results: Vec<Value>, shards: Vec<ShardRunState>) -> RunResult<Value> {
        let r = Plan::finish(self, Vec::new(), shards);
        RunResult {
            results,
            errors: r.errors,
            stats: r.stats,
        }
    }
}

/// What a registered function returned, ready for the engine.
#[derive(Clone)]
pub enum Registered {
    /// A runnable flow.
    Flow(Arc<dyn ErasedPlan>),
    /// A registration.
    Registration(crate::registration::Registration),
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registered::Flow(p) => f.debug_tuple("Flow").field(&p.steps()).finish(),
            Registered::Registration(r) => f.debug_tuple("Registration").field(r).finish(),
        }
    }
}

/// Return types a `#[gears::register]` function may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not something Gears can register",
    label = "a #[gears::register] function must return a flow or a registration",
    note = "return a `GearsBuilder<T>` / `impl Flow<T>` (records implementing `IntoValue`), a `Registration` (`.register(mode)`), or a `Result` of one"
)]
pub trait IntoRegistered {
    /// The kind of function this return type makes.
    const KIND: FunctionKind;
    /// Converts the function's return value.
    fn into_registered(self) -> Result<Registered, GearsError>;
}

impl<T: Record + IntoValue, C: Chain<Out = T>> IntoRegistered for GearsBuilder<T, C> {
    const KIND: FunctionKind = FunctionKind::Flow;
    fn into_registered(self) -> Result<Registered, GearsError> {
        Ok(Registered::Flow(Arc::new(self.build())))
    }
}

impl<R: IntoRegistered, E: std::fmt::Display> IntoRegistered for Result<R, E> {
    const KIND: FunctionKind = R::KIND;
    fn into_registered(self) -> Result<Registered, GearsError> {
        self.map_err(|e| GearsError::Invalid(e.to_string()))?
            .into_registered()
    }
}

impl IntoRegistered for crate::registration::Registration {
    const KIND: FunctionKind = FunctionKind::Registration;
    fn into_registered(self) -> Result<Registered, GearsError> {
        Ok(Registered::Registration(self))
    }
}

/// A finished flow producing `T` records: what a `#[gears::register]` function can return
/// as `impl Flow<T>` when its last step is a per-record one (`map`, `filter`, ...), whose
/// builder type names the fused steps.
pub trait Flow<T>: IntoRegistered {
    /// Builds the plan.
    fn build_plan(self) -> Plan<T>;
}

impl<T: Record + IntoValue, C: Chain<Out = T>> Flow<T> for GearsBuilder<T, C> {
    fn build_plan(self) -> Plan<T> {
        self.build()
    }
}

/// The kind of a function taking no argument (used by `#[gears::register]`).
pub const fn kind_of_nullary<R: IntoRegistered>(_: fn() -> R) -> FunctionKind {
    R::KIND
}

/// The kind of a function taking `ARGS` (used by `#[gears::register]`).
pub const fn kind_of_with_args<R: IntoRegistered>(_: fn(&[String]) -> R) -> FunctionKind {
    R::KIND
}

/// One `#[gears::register]` function.
#[derive(Debug)]
pub struct FunctionEntry {
    /// The name `RG.RUN` uses (the Rust function's name).
    pub name: &'static str,
    /// The first line of its documentation.
    pub doc: &'static str,
    /// What it builds.
    pub kind: FunctionKind,
    /// Whether it takes `ARGS` (registrations that do are registered with `RG.REGISTER`).
    pub takes_args: bool,
    /// Calls the function with the `ARGS` of the request.
    pub build: fn(&[String]) -> Result<Registered, GearsError>,
}

/// Every function registered in the running binary.
#[linkme::distributed_slice]
pub static FUNCTIONS: [FunctionEntry];

/// All registered functions, sorted by name.
pub fn functions() -> Vec<&'static FunctionEntry> {
    let mut all: Vec<_> = FUNCTIONS.iter().collect();
    all.sort_by_key(|f| f.name);
    all
}

/// The registered function called `name`.
pub fn find(name: &str) -> Option<&'static FunctionEntry> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Builds the registered function `name` with `args`; unknown names are a clear error.
pub fn build(name: &str, args: &[String]) -> Result<Registered, GearsError> {
    let entry =
        find(name).ok_or_else(|| GearsError::Invalid(format!("unknown function '{name}'")))?;
    std::panic::catch_unwind(|| (entry.build)(args)).unwrap_or_else(|panic| {
        Err(GearsError::Invalid(format!(
            "function '{name}' panicked while building its flow: {}",
            crate::error::StepError::panicked(name, panic).message
        )))
    })
}
