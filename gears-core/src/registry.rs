//! The registry of `#[gears::register]` functions: the names `RG.RUN` and triggers resolve,
//! and the way every shard rebuilds the same plan (closures never travel, names do).

use std::sync::Arc;

use crate::builder::GearsBuilder;
use crate::error::GearsError;
pub use crate::plan::ErasedPlan;
use crate::plan::Plan;
use crate::plumbing::chain::Chain;
use crate::record::Record;
use crate::trigger::Registration;
use crate::value::IntoValue;

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

/// What a registered function built ([`build`]'s result), ready for the engine.
#[derive(Clone)]
pub enum Built {
    /// A runnable flow.
    Flow(Arc<dyn ErasedPlan>),
    /// A registration.
    Registration(Registration),
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Built::Flow(p) => f.debug_tuple("Flow").field(&p.steps()).finish(),
            Built::Registration(r) => f.debug_tuple("Registration").field(r).finish(),
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
    fn into_registered(self) -> Result<Built, GearsError>;
}

impl<T: Record + IntoValue, C: Chain<Out = T>> IntoRegistered for GearsBuilder<T, C> {
    const KIND: FunctionKind = FunctionKind::Flow;
    fn into_registered(self) -> Result<Built, GearsError> {
        Ok(Built::Flow(Arc::new(self.build())))
    }
}

impl<R: IntoRegistered, E: std::fmt::Display> IntoRegistered for Result<R, E> {
    const KIND: FunctionKind = R::KIND;
    fn into_registered(self) -> Result<Built, GearsError> {
        self.map_err(|e| GearsError::Invalid(e.to_string()))?
            .into_registered()
    }
}

impl IntoRegistered for Registration {
    const KIND: FunctionKind = FunctionKind::Registration;
    fn into_registered(self) -> Result<Built, GearsError> {
        Ok(Built::Registration(self))
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
    pub build: fn(&[String]) -> Result<Built, GearsError>,
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
pub fn build(name: &str, args: &[String]) -> Result<Built, GearsError> {
    let entry =
        find(name).ok_or_else(|| GearsError::Invalid(format!("unknown function '{name}'")))?;
    std::panic::catch_unwind(|| (entry.build)(args)).unwrap_or_else(|panic| {
        Err(GearsError::Invalid(format!(
            "function '{name}' panicked while building its flow: {}",
            crate::error::StepError::panicked(name, panic).message
        )))
    })
}
