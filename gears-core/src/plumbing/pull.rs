//! The plumbing every step shares: a plan-time [`Node`] opens a run-time [`Pull`]; a stage's
//! nodes are chained, and the last one is pulled in batches. A step sees a whole batch per call,
//! so there is one dynamic call per batch per step and a monomorphized loop per record.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{GearsError, StepError};
use crate::event::Event;
use crate::host::Host;

/// Index of a step in its plan.
pub(crate) type StepId = usize;

/// A step of a plan, as listed by `RG.GETEXECUTION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// The operation (`map`, `filter`, `repartition`, ...).
    pub kind: &'static str,
    /// The stage the step belongs to (stages are separated by global steps).
    pub stage: usize,
}

/// Counters of one step in one execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepStats {
    /// Records the step emitted.
    pub records_out: u64,
    /// Time spent in the step's own work (only measured when profiling is on).
    pub duration: Duration,
}

/// Per-stage run context handed down the pull chain (engine-internal).
#[doc(hidden)]
pub struct StageCx<'a> {
    pub(crate) host: &'a Arc<dyn Host>,
    pub(crate) errors: &'a mut Vec<StepError>,
    pub(crate) stats: &'a mut [StepStats],
    pub(crate) profile: bool,
    pub(crate) abort: &'a AtomicBool,
    pub(crate) batch: usize,
    /// Whether the stage's local output is kept (`false`: the final stage of a run for
    /// effects drops its records as they come).
    pub(crate) keep_output: bool,
}

impl StageCx<'_> {
    pub(crate) fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Starts the step's clock when profiling.
    pub(crate) fn clock(&self) -> Option<Instant> {
        if self.profile {
            Some(Instant::now())
        } else {
            None
        }
    }

    /// Books `records` emitted by `step` and the time since `clock`.
    pub(crate) fn book(&mut self, step: StepId, records: usize, clock: Option<Instant>) {
        if let Some(s) = self.stats.get_mut(step) {
            s.records_out += records as u64;
            if let Some(t) = clock {
                s.duration += t.elapsed();
            }
        }
    }
}

/// Records delivered to a stage by the previous exchange.
#[derive(Default)]
pub(crate) struct Inbox {
    /// Records that stayed on this shard: a `Vec<T>` of the exchanged type.
    pub(crate) local: Vec<Box<dyn Any + Send>>,
    /// Encoded batches received from other shards.
    pub(crate) remote: Vec<Vec<u8>>,
}

/// Everything a stage reads from.
pub(crate) struct StageInput {
    pub(crate) host: Arc<dyn Host>,
    pub(crate) event: Option<Event>,
    pub(crate) inbox: Option<Inbox>,
    pub(crate) initiator: bool,
}

/// A running step: appends its next batch of records to `out`.
pub(crate) trait Pull<T>: Send {
    /// Appends zero or more records to `out`; returns `Ok(false)` once the input is exhausted.
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<T>) -> Result<bool, GearsError>;
}

/// A step as planned: shared by every execution of the plan, opened once per stage run.
pub(crate) trait Node<T>: Send + Sync {
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<T>>, GearsError>;

    /// The node's only record when it is known without opening a run (a reader given an
    /// event it turns into one record); `None`: open it. Leaves `input` as it was on `None`.
    fn open_one(&self, _input: &mut StageInput) -> Option<T> {
        None
    }
}

/// Runs `body` over `items`, turning an `Err` or a panic into an error entry for `step` and
/// going on with the next item (the failing record is dropped).
pub(crate) fn guarded<It: Iterator>(
    step: &'static str,
    errors: &mut Vec<StepError>,
    items: &mut It,
    mut body: impl FnMut(&mut It) -> Result<(), String>,
) {
    loop {
        match catch_unwind(AssertUnwindSafe(|| body(items))) {
            Ok(Ok(())) => return,
            Ok(Err(message)) => errors.push(StepError::new(step, message)),
            Err(panic) => errors.push(StepError::panicked(step, panic)),
        }
    }
}

/// Like [`guarded`] for fused chains: the failing step is whatever `at` names when the `Err`
/// or the panic comes out.
pub(crate) fn guarded_fused<It: Iterator>(
    errors: &mut Vec<StepError>,
    items: &mut It,
    at: &Cell<&'static str>,
    mut body: impl FnMut(&mut It, &Cell<&'static str>) -> Result<(), String>,
) {
    loop {
        match catch_unwind(AssertUnwindSafe(|| body(items, at))) {
            Ok(Ok(())) => return,
            Ok(Err(message)) => errors.push(StepError::new(at.get(), message)),
            Err(panic) => errors.push(StepError::panicked(at.get(), panic)),
        }
    }
}

/// Runs `f` once, turning an `Err` or a panic into an error entry.
pub(crate) fn guarded_once<R>(
    step: &'static str,
    errors: &mut Vec<StepError>,
    f: impl FnOnce() -> Result<R, String>,
) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => Some(r),
        Ok(Err(message)) => {
            errors.push(StepError::new(step, message));
            None
        }
        Err(panic) => {
            errors.push(StepError::panicked(step, panic));
            None
        }
    }
}

/// Pulls `pull` to exhaustion, handing each non-empty batch to `sink`; checks for abort between
/// batches.
pub(crate) fn drain<T>(
    pull: &mut dyn Pull<T>,
    cx: &mut StageCx<'_>,
    mut sink: impl FnMut(&mut Vec<T>, &mut StageCx<'_>) -> Result<(), GearsError>,
) -> Result<(), GearsError> {
    // Grown by the first pull: a one-record event must not pay for a whole batch.
    let mut buf = Vec::new();
    loop {
        let more = pull.pull(cx, &mut buf)?;
        if cx.aborted() {
            return Err(GearsError::Aborted);
        }
        if !buf.is_empty() {
            sink(&mut buf, cx)?;
            buf.clear();
        }
        if !more {
            return Ok(());
        }
    }
}
