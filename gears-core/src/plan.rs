//! Plans: a flow split into stages at its global steps, and how a shard runs one stage.
//!
//! A stage ends at an exchange (`collect`, `repartition`, or the implicit final collect to the
//! shard that started the execution). Records that stay on the shard are handed over as typed
//! vectors; records for other shards are encoded in batches by [`crate::codec`].

use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::chain::{drive_chain, drive_one, Chain};
use crate::codec::{decode_batch, BatchEncoder};
use crate::context;
use crate::error::{GearsError, StepError};
use crate::host::{Host, Topology};
use crate::pipeline::{drain, Inbox, Node, Pull, StageCx, StageInput, StepId, StepInfo, StepStats};
use crate::readers::Event;
use crate::record::{PartitionKey, Record};

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
    local: Box<dyn Any + Send>,
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
    inner: Inbox,
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
        input: StageInput,
        cx: &mut StageCx<'_>,
        route: &RouteCx,
    ) -> Result<StageOutput, GearsError>;
}

/// Decides the destination shard of a record at an exchange.
pub(crate) trait Router<T>: Send + Sync + 'static {
    const KIND: &'static str;
    fn route(&self, record: &T, route: &RouteCx, key: &mut Vec<u8>) -> Result<usize, String>;
}

/// Everything goes to the initiator (`collect`).
pub(crate) struct ToInitiator;

impl<T> Router<T> for ToInitiator {
    const KIND: &'static str = "collect";
    fn route(&self, _: &T, route: &RouteCx, _: &mut Vec<u8>) -> Result<usize, String> {
        Ok(route.initiator)
    }
}

/// Each record goes to the owner of its key's hash slot (`repartition`).
pub(crate) struct ByKey<F>(pub(crate) F);

impl<T, K, F> Router<T> for ByKey<F>
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: PartitionKey,
{
    const KIND: &'static str = "repartition";
    fn route(&self, record: &T, route: &RouteCx, key: &mut Vec<u8>) -> Result<usize, String> {
        key.clear();
        (self.0)(record).key_bytes(key);
        Ok(route.topology.owner_of_key(key))
    }
}

/// Pairs go to the owner of their first element (the key of grouping steps).
pub(crate) struct ByPairKey;

impl<K: PartitionKey, V> Router<(K, V)> for ByPairKey {
    const KIND: &'static str = "repartition";
    fn route(&self, record: &(K, V), route: &RouteCx, key: &mut Vec<u8>) -> Result<usize, String> {
        key.clear();
        record.0.key_bytes(key);
        Ok(route.topology.owner_of_key(key))
    }
}

pub(crate) struct ExchangeStage<C: Chain, R> {
    pub(crate) head: Arc<dyn Node<C::In>>,
    pub(crate) chain: Arc<C>,
    pub(crate) router: R,
    pub(crate) step: StepId,
}

impl<C, R> StageRunner for ExchangeStage<C, R>
where
    C: Chain,
    C::Out: Record,
    R: Router<C::Out>,
{
    fn run(
        &self,
        mut input: StageInput,
        cx: &mut StageCx<'_>,
        route: &RouteCx,
    ) -> Result<StageOutput, GearsError> {
        let shards = route.topology.len();
        // The per-event path of `sync` registrations: one record made from the event, its
        // effects only, on one shard, nobody reading step counters: no run to open, no batch.
        if shards == 1 && !cx.keep_output && !cx.profile && cx.stats.is_empty() {
            if let Some(record) = self.head.open_one(&mut input) {
                drive_one(&*self.chain, record, cx, |_, _| Ok(()));
                if cx.aborted() {
                    return Err(GearsError::Aborted);
                }
                return Ok(StageOutput {
                    local: Box::new(()),
                    remote: Vec::new(),
                });
            }
        }
        let mut pull = self.head.open(&mut input)?;
        let me = route.topology.me();
        let mut local: Vec<C::Out> = Vec::new();
        // One encoder slot per peer; none at all on a single shard (the per-event hot path).
        let mut encoders: Vec<Option<BatchEncoder>> = if shards > 1 {
            (0..shards).map(|_| None).collect()
        } else {
            Vec::new()
        };
        let mut remote = Vec::new();
        let mut key = Vec::new();
        let mut routed = 0usize;
        let keep = cx.keep_output;
        drain(&mut *pull, cx, |batch, cx| {
            drive_chain(&*self.chain, batch, cx, Some(self.step), |record, at| {
                routed += 1;
                if shards == 1 {
                    if keep {
                        local.push(record);
                    }
                    return Ok(());
                }
                at.set(R::KIND);
                let dest = self.router.route(&record, route, &mut key)?;
                if dest == me {
                    local.push(record);
                    return Ok(());
                }
                let encoder =
                    encoders[dest].get_or_insert_with(|| BatchEncoder::new(route.message_bytes));
                if let Some(full) = encoder.push(&record).map_err(|e| e.to_string())? {
                    remote.push((dest, full));
                }
                Ok(())
            });
            Ok(())
        })?;
        for (dest, encoder) in encoders.iter_mut().enumerate() {
            if let Some(last) = encoder.as_mut().and_then(BatchEncoder::finish) {
                remote.push((dest, last));
            }
        }
        cx.book(self.step, routed, None);
        Ok(StageOutput {
            // A dropped output is a unit box: no allocation.
            local: if keep || shards > 1 {
                Box::new(local)
            } else {
                Box::new(())
            },
            remote,
        })
    }
}

/// The first node of a stage after an exchange: reads what the exchange delivered.
pub(crate) struct ExchangeSource<T> {
    pub(crate) _t: PhantomData<fn() -> T>,
}

struct ExchangePull<T> {
    local: Vec<std::vec::IntoIter<T>>,
    remote: std::vec::IntoIter<Vec<u8>>,
}

impl<T: Record> Node<T> for ExchangeSource<T> {
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<T>>, GearsError> {
        let inbox = input.inbox.take().unwrap_or_default();
        let local = inbox
            .local
            .into_iter()
            .map(|part| {
                part.downcast::<Vec<T>>()
                    .map(|v| v.into_iter())
                    .map_err(|_| GearsError::Internal("exchange carried the wrong type".into()))
            })
            .rev() // consumed from the back
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(ExchangePull {
            local,
            remote: inbox.remote.into_iter(),
        }))
    }
}

impl<T: Record> Pull<T> for ExchangePull<T> {
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<T>) -> Result<bool, GearsError> {
        while let Some(part) = self.local.last_mut() {
            let before = out.len();
            out.extend(part.by_ref().take(cx.batch));
            if part.len() == 0 {
                self.local.pop();
            }
            if out.len() > before {
                return Ok(true);
            }
        }
        match self.remote.next() {
            Some(batch) => {
                out.extend(decode_batch::<T>(&batch)?);
                Ok(true)
            }
            None => Ok(false),
        }
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

/// Per-shard bookkeeping of a run: errors and step counters.
#[derive(Debug, Clone, Default)]
pub struct ShardRunState {
    /// Errors of user code on this shard.
    pub errors: Vec<StepError>,
    /// Counters per step.
    pub stats: Vec<StepStats>,
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
            let output = self.run_stage_keeping(
                stage,
                &host,
                event.take(),
                std::mem::take(&mut inbox),
                true,
                route,
                options,
                &mut state,
                keep,
            )?;
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

    /// Runs stage `stage` on one shard: for shard coordinators (the in-memory cluster, the
    /// Redis Cluster coordinator). `event` is only read by stage 0.
    #[allow(clippy::too_many_arguments)]
    pub fn run_stage(
        &self,
        stage: usize,
        host: &Arc<dyn Host>,
        event: Option<Event>,
        inbox: StageInbox,
        initiator: bool,
        route: &RouteCx,
        options: &RunOptions,
        state: &mut ShardRunState,
    ) -> Result<StageOutput, GearsError> {
        self.run_stage_keeping(
            stage, host, event, inbox, initiator, route, options, state, true,
        )
    }

    /// [`run_stage`](Self::run_stage); `keep_output: false` drops the stage's local output
    /// (the final stage of a run for effects).
    #[allow(clippy::too_many_arguments)]
    fn run_stage_keeping(
        &self,
        stage: usize,
        host: &Arc<dyn Host>,
        event: Option<Event>,
        inbox: StageInbox,
        initiator: bool,
        route: &RouteCx,
        options: &RunOptions,
        state: &mut ShardRunState,
        keep_output: bool,
    ) -> Result<StageOutput, GearsError> {
        let runner = self
            .stages
            .get(stage)
            .ok_or_else(|| GearsError::Invalid(format!("plan has no stage {stage}")))?;
        let _current = context::enter(host);
        let input = StageInput {
            host: host.clone(),
            event,
            inbox: if stage == 0 { None } else { Some(inbox.inner) },
            initiator,
        };
        let mut cx = StageCx {
            host,
            errors: &mut state.errors,
            stats: &mut state.stats,
            profile: options.profile,
            abort: &options.abort,
            batch: options.batch.max(1),
            keep_output,
        };
        runner.run(input, &mut cx, route)
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
        use crate::host::KeyType;
        use crate::readers::Event;
        static SEEN: AtomicU32 = AtomicU32::new(0);
        let plan = GearsBuilder::new(KeysReader::new("user:*").read_value(false))
            .map(|r: KeyRecord| r.key)
            .try_for_each(|key: &String| {
                SEEN.fetch_add(1, Ordering::Relaxed);
                match key.as_str() {
                    "user:bad" => Err("bad key".to_string()),
                    "user:boom" => panic!("boom"),
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
        let before = SEEN.load(Ordering::Relaxed);
        let ok = plan
            .run_for_effects(host.clone(), Some(event("user:1", KeyType::Hash)), &options)
            .unwrap();
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
        assert_eq!(SEEN.load(Ordering::Relaxed) - before, 1);
        let bad = plan
            .run_for_effects(
                host.clone(),
                Some(event("user:bad", KeyType::Hash)),
                &options,
            )
            .unwrap();
        assert_eq!(bad.errors.len(), 1);
        assert!(
            bad.errors[0].to_string().contains("bad key"),
            "{:?}",
            bad.errors
        );
        let boom = plan
            .run_for_effects(
                host.clone(),
                Some(event("user:boom", KeyType::Hash)),
                &options,
            )
            .unwrap();
        assert_eq!(boom.errors.len(), 1);
        assert!(
            boom.errors[0].to_string().contains("boom"),
            "{:?}",
            boom.errors
        );
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
        let gone = plan
            .run_for_effects(host, Some(event("user:2", KeyType::Empty)), &options)
            .unwrap();
        assert!(gone.errors.is_empty());
        assert_eq!(SEEN.load(Ordering::Relaxed), seen + 1);
    }
}
