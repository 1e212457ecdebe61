//! Plans: a flow split into stages at its global steps, ready to run on one host or, stage by
//! stage, on the shards of a cluster (the running itself is the plumbing's).
//!
//! A stage ends at an exchange (`collect`, `repartition`, or the implicit final collect to the
//! shard that started the execution). Records that stay on the shard are handed over as typed
//! vectors; records for other shards are encoded in batches by [`crate::codec`].

use std::marker::PhantomData;
use std::sync::Arc;

use crate::codec::decode_batch;
use crate::error::{GearsError, StepError};
use crate::event::Event;
use crate::host::{Host, Topology};
use crate::plumbing::pull::{StageInput, StepInfo, StepStats};
use crate::plumbing::stage::{self, Shard, StageRunner};
pub use crate::plumbing::stage::{
    RouteCx, RunOptions, ShardRunState, StageCall, StageInbox, StageOutput, DEFAULT_BATCH,
    DEFAULT_MESSAGE_BYTES,
};
use crate::record::Record;
use crate::value::{IntoValue, Value};

/// The outcome of a run: results and the errors of user code (records dropped on the way).
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult<T> {
    /// The records that reached the end of the flow.
    pub results: Vec<T>,
    /// One entry per failed record: the step and the message.
    pub errors: Vec<StepError>,
    /// Per-step counters, in plan order.
    pub stats: Vec<(StepInfo, StepStats)>,
}

impl<T> RunResult<T> {
    /// `(results, errors)`, as RedisGears 1.x replies.
    pub fn into_parts(self) -> (Vec<T>, Vec<StepError>) {
        (self.results, self.errors)
    }
}

/// A flow ready to run: its stages and steps. Cheap to clone and to run many times.
pub struct Plan<T> {
    pub(crate) stages: Arc<[Arc<dyn StageRunner>]>,
    pub(crate) steps: Arc<[StepInfo]>,
    pub(crate) reader: &'static str,
    pub(crate) _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Plan<T> {
    fn clone(&self) -> Self {
        Self {
            stages: self.stages.clone(),
            steps: self.steps.clone(),
            reader: self.reader,
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Plan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("reader", &self.reader)
            .field("steps", &self.steps)
            .finish()
    }
}

impl<T: Record> Plan<T> {
    /// The plan's steps, in order (the reader is step 0).
    pub fn steps(&self) -> &[StepInfo] {
        &self.steps
    }

    /// Number of stages (exchanges + 1 for the final collect).
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// The reader's name.
    pub fn reader_name(&self) -> &'static str {
        self.reader
    }

    /// Runs the whole plan on one host, treating every exchange as local (RedisGears' `async_local`
    /// / standalone behaviour).
    pub fn run<H: Host + Clone + 'static>(&self, host: &H) -> RunResult<T> {
        self.run_with(Arc::new(host.clone()), None, &RunOptions::default())
            .unwrap_or_else(|e| self.failed(e))
    }

    /// Runs the plan on one host for one event (a triggered execution).
    pub fn run_event<H: Host + Clone + 'static>(&self, host: &H, event: Event) -> RunResult<T> {
        self.run_with(Arc::new(host.clone()), Some(event), &RunOptions::default())
            .unwrap_or_else(|e| self.failed(e))
    }

    fn failed(&self, e: GearsError) -> RunResult<T> {
        RunResult {
            results: Vec::new(),
            errors: vec![StepError::new("execution", e.to_string())],
            stats: Vec::new(),
        }
    }

    /// Runs the plan on one host with explicit options; engine failures (abort, host errors,
    /// codec errors) are `Err`.
    pub fn run_with(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
    ) -> Result<RunResult<T>, GearsError> {
        self.run_local(host, event, options, true)
    }

    /// [`run_with`](Self::run_with) for the steps' effects only: the final records are dropped
    /// as they come (never collected), and unless profiling, no per-step statistics are
    /// returned. The per-event path of `sync` registrations.
    pub fn run_for_effects(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
    ) -> Result<RunResult<T>, GearsError> {
        self.run_local(host, event, options, false)
    }

    fn run_local(
        &self,
        host: Arc<dyn Host>,
        event: Option<Event>,
        options: &RunOptions,
        keep_results: bool,
    ) -> Result<RunResult<T>, GearsError> {
        // The standalone route of the default options is made once (every local run uses it).
        static STANDALONE: std::sync::OnceLock<RouteCx> = std::sync::OnceLock::new();
        let owned;
        let route = if options.message_bytes == DEFAULT_MESSAGE_BYTES {
            STANDALONE.get_or_init(|| RouteCx {
                topology: Topology::standalone(),
                initiator: 0,
                message_bytes: DEFAULT_MESSAGE_BYTES,
            })
        } else {
            owned = RouteCx {
                topology: Topology::standalone(),
                initiator: 0,
                message_bytes: options.message_bytes,
            };
            &owned
        };
        let mut state = if keep_results || options.profile {
            self.new_shard_state()
        } else {
            // Step statistics nobody will read: none kept.
            ShardRunState {
                errors: Vec::new(),
                stats: Vec::new(),
            }
        };
        let mut event = event;
        let mut inbox = StageInbox::default();
        let last = self.stages.len().saturating_sub(1);
        for stage in 0..self.stages.len() {
            let keep = keep_results || stage < last;
            let input = StageInput {
                host: host.clone(),
                event: event.take(),
                inbox: (stage > 0).then(|| std::mem::take(&mut inbox).inner),
                initiator: true,
            };
            let on = Shard {
                host: &host,
                route,
                options,
                state: &mut state,
                keep_output: keep,
            };
            let output = stage::run_stage(&self.stages, stage, input, on)?;
            if keep {
                inbox.add_local(output);
            }
        }
        if !keep_results && !options.profile {
            return Ok(RunResult {
                results: Vec::new(),
                errors: state.errors,
                stats: Vec::new(),
            });
        }
        let results = self.results_from(inbox)?;
        Ok(self.finish(results, vec![state]))
    }

    /// Fresh per-shard bookkeeping for this plan.
    pub fn new_shard_state(&self) -> ShardRunState {
        ShardRunState {
            errors: Vec::new(),
            stats: vec![StepStats::default(); self.steps.len()],
        }
    }

    /// Runs one stage on one shard: for shard coordinators (the in-memory cluster, the Redis
    /// Cluster coordinator), which hand each shard's output to the next stage's inboxes.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use std::sync::Arc;
    /// use gears::host::{Host, Topology};
    /// use gears::plan::{RouteCx, RunOptions, StageCall, StageInbox};
    /// use gears::prelude::*;
    /// let plan = GearsBuilder::new(IterReader::new(|_| 1..=3u32)).map(|x| x * 2).build();
    /// let host: Arc<dyn Host> = Arc::new(gears::testing::MemoryHost::new());
    /// let route = RouteCx { topology: Topology::standalone(), initiator: 0, message_bytes: 1024 };
    /// let (options, mut state) = (RunOptions::default(), plan.new_shard_state());
    /// let mut inbox = StageInbox::default();
    /// for stage in 0..plan.stage_count() {
    ///     let inbox_now = std::mem::take(&mut inbox);
    ///     let output = plan.run_stage(StageCall {
    ///         stage,
    ///         host: &host,
    ///         event: None,
    ///         inbox: inbox_now,
    ///         initiator: true,
    ///         route: &route,
    ///         options: &options,
    ///         state: &mut state,
    ///     })?;
    ///     inbox.add_local(output);
    /// }
    /// assert_eq!(plan.results_from(inbox)?, [2, 4, 6]);
    /// # Ok::<(), gears::error::GearsError>(())
    /// ```
    pub fn run_stage(&self, call: StageCall<'_>) -> Result<StageOutput, GearsError> {
        call.run(&self.stages)
    }

    /// Decodes what the initiator received from the last stage: the run's results.
    pub fn results_from(&self, inbox: StageInbox) -> Result<Vec<T>, GearsError> {
        let mut results = Vec::new();
        for part in inbox.inner.local {
            let part = part
                .downcast::<Vec<T>>()
                .map_err(|_| GearsError::Internal("final stage carried the wrong type".into()))?;
            if results.is_empty() {
                results = *part;
            } else {
                results.extend(*part);
            }
        }
        for batch in inbox.inner.remote {
            results.extend(decode_batch::<T>(&batch)?);
        }
        Ok(results)
    }

    /// Combines per-shard bookkeeping into a [`RunResult`].
    pub fn finish(&self, results: Vec<T>, mut shards: Vec<ShardRunState>) -> RunResult<T> {
        if shards.len() == 1 {
            // One shard (every standalone run): its bookkeeping is the total.
            let shard = shards.pop().unwrap_or_else(|| self.new_shard_state());
            return RunResult {
                results,
                errors: shard.errors,
                stats: self.steps.iter().cloned().zip(shard.stats).collect(),
            };
        }
        let mut errors = Vec::new();
        let mut totals = vec![StepStats::default(); self.steps.len()];
        for shard in shards {
            errors.extend(shard.errors);
            for (total, s) in totals.iter_mut().zip(shard.stats) {
                total.records_out += s.records_out;
                total.duration += s.duration;
            }
        }
        RunResult {
            results,
            errors,
            stats: self.steps.iter().cloned().zip(totals).collect(),
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::prelude::*;
    use crate::testing::MemoryHost;

    use super::*;

    #[test]
    fn a_run_for_effects_drops_the_final_records_and_keeps_the_errors() {
        static SEEN: AtomicU32 = AtomicU32::new(0);
        let plan = GearsBuilder::new(IterReader::new(|_| 0..10u32))
            .try_for_each(|x: &u32| {
                SEEN.fetch_add(1, Ordering::Relaxed);
                if *x == 3 {
                    Err("three")
                } else {
                    Ok(())
                }
            })
            .build();
        let host: Arc<dyn Host> = Arc::new(MemoryHost::new());
        let effects = plan
            .run_for_effects(host.clone(), None, &RunOptions::default())
            .unwrap();
        assert_eq!(
            SEEN.load(Ordering::Relaxed),
            10,
            "every record's effect ran"
        );
        assert!(effects.results.is_empty());
        assert!(effects.stats.is_empty());
        assert_eq!(effects.errors.len(), 1, "{:?}", effects.errors);
        assert!(effects.errors[0].to_string().contains("three"));
        // The same plan run for its results keeps them (and the stats).
        let full = plan.run_with(host, None, &RunOptions::default()).unwrap();
        assert_eq!(full.results, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(full.errors.len(), 1);
        assert!(!full.stats.is_empty());
        // Profiling keeps the step statistics of a run for effects.
        let profiled = RunOptions {
            profile: true,
            ..RunOptions::default()
        };
        let host: Arc<dyn Host> = Arc::new(MemoryHost::new());
        let effects = plan.run_for_effects(host, None, &profiled).unwrap();
        assert!(effects.results.is_empty());
        assert!(!effects.stats.is_empty());
    }

    /// The per-event path (one record made from a keyspace event, run for its effects) runs
    /// the chain once and keeps errors and panics like a batch run; a run for results of the
    /// same event, and an event the reader must read for, take the ordinary path and agree.
    #[test]
    fn one_event_run_for_effects_runs_once_and_keeps_errors_and_panics() {
        use crate::event::Event;
        use crate::host::KeyType;
        static SEEN: AtomicU32 = AtomicU32::new(0);
        let plan = GearsBuilder::new(KeysReader::new("user:*").read_value(false))
            .map(|r: KeyRecord| r.key)
            .try_for_each(|key: &RedisBytes| {
                SEEN.fetch_add(1, Ordering::Relaxed);
                match key.as_bytes() {
                    b"user:bad" => Err("bad key".to_string()),
                    b"user:boom" => panic!("boom"),
                    _ => Ok(()),
                }
            })
            .build();
        let host: Arc<dyn Host> = Arc::new(MemoryHost::new());
        let event = |key: &str, key_type| Event::Key {
            key: key.into(),
            event: "hset".into(),
            key_type,
            snapshot: None,
        };
        let options = RunOptions::default();
        let effects = |key: &str, key_type| {
            plan.run_for_effects(host.clone(), Some(event(key, key_type)), &options)
                .unwrap()
        };
        let one_error = |run: RunResult<RedisBytes>, text: &str| {
            assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
            assert!(run.errors[0].to_string().contains(text), "{:?}", run.errors);
        };
        let before = SEEN.load(Ordering::Relaxed);
        let ok = effects("user:1", KeyType::Hash);
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
        assert_eq!(SEEN.load(Ordering::Relaxed) - before, 1);
        one_error(effects("user:bad", KeyType::Hash), "bad key");
        one_error(effects("user:boom", KeyType::Hash), "boom");
        // Kept results: the ordinary path, same outcome.
        let full = plan
            .run_with(
                host.clone(),
                Some(event("user:bad", KeyType::Hash)),
                &options,
            )
            .unwrap();
        assert_eq!(full.errors.len(), 1);
        assert!(!full.stats.is_empty());
        // An event without the key's type: the reader reads the key first (ordinary path).
        let seen = SEEN.load(Ordering::Relaxed);
        let gone = effects("user:2", KeyType::Empty);
        assert!(gone.errors.is_empty());
        assert_eq!(SEEN.load(Ordering::Relaxed), seen + 1);
    }
}
