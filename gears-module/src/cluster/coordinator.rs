//! Distributed executions over the cluster bus.
//!
//! The initiator (the master that got `RG.RUN`) sends `Start` (function name, ARGS, the
//! shards and their slots) to every other master; each rebuilds the plan from the registered
//! function (closures never travel) and runs its stages. A stage's records for other shards
//! leave as `Records` batches, then `StageDone(stage)` goes to every other shard; a shard runs
//! stage `k + 1` once it finished stage `k` and got `StageDone(k)` from all the others (the
//! cluster bus keeps per-link order, so every batch is in by then). The last stage sends
//! everything to the initiator, whose `StageDone` carries the shard's errors and counters.
//! The initiator decodes the results on a worker and completes the execution.
//!
//! There is no two-phase start: messages for an execution this shard has not seen started
//! are kept until its `Start` arrives (or dropped once idle). Stage jobs run on the executor's
//! workers (one lane per execution); the receiver callback only does bookkeeping. Nothing
//! blocks a worker while waiting for peers: a barrier that completes submits the next job.
//!
//! A shard that stops answering fails the execution after `ExecutionMaxIdleTime` with an
//! error naming it; shards running a long stage send `Progress` so they are not taken for
//! dead.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis_module::{Context, MODULE_CONTEXT};

use gears_core::error::{GearsError, StepError};
use gears_core::execution::{Execution, ExecutionId, ExecutionStatus, Outcome};
use gears_core::executor::{Lane, OnDone};
use gears_core::host::{Host, Topology};
use gears_core::plan::{RouteCx, RunOptions, ShardRunState, StageCall, StageInbox, DEFAULT_BATCH};
use gears_core::readers::Event;
use gears_core::registry::{self, Built, ErasedPlan};
use gears_core::StepStats;

use super::topology::{topology_of, View};
use super::wire::{Body, Report, Start};
use super::Cluster;
use crate::host_impl::RedisHost;
use crate::runtime::{runtime, Entry};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the initiator needs to start a distributed execution.
pub(crate) struct Launch {
    pub(crate) function: String,
    pub(crate) args: Vec<String>,
    /// An `async` registration's execution for one event.
    pub(crate) registration: bool,
    pub(crate) plan: Arc<dyn ErasedPlan>,
    pub(crate) event: Option<Event>,
    pub(crate) execution: Arc<Execution>,
    pub(crate) on_done: Option<OnDone>,
    pub(crate) profile: bool,
    /// Other shards keep their part listed after it finished (`UNBLOCKING` runs, which
    /// `RG.GETEXECUTION … CLUSTER` may ask about).
    pub(crate) keep: bool,
}

/// This shard's part of one distributed execution.
struct Part {
    shards: Vec<String>,
    me: usize,
    initiator: usize,
    topology: Topology,
    host: Arc<dyn Host>,
    plan: Arc<dyn ErasedPlan>,
    registration: bool,
    event: Option<Event>,
    options: RunOptions,
    execution: Arc<Execution>,
    on_done: Option<OnDone>,
    lane: Lane,
    state: Option<ShardRunState>,
    keep: bool,
}

impl Part {
    fn others(&self) -> impl Iterator<Item = &String> {
        self.shards
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != self.me)
            .map(|(_, id)| id)
    }

    fn is_initiator(&self) -> bool {
        self.me == self.initiator
    }
}

struct RunState {
    part: Option<Part>,
    /// The next stage this shard runs (`stage_count` once its last stage ran).
    next_stage: usize,
    /// A job of this execution is queued or running.
    running: bool,
    /// Records a stage left on this shard, by the stage that reads them.
    local: BTreeMap<usize, StageInbox>,
    /// Batches received, by reading stage, then sender (kept in shard order).
    remote: BTreeMap<usize, BTreeMap<String, Vec<Vec<u8>>>>,
    /// Who finished which stage.
    done: BTreeMap<usize, BTreeSet<String>>,
    /// Reports of the other shards (initiator).
    reports: BTreeMap<String, Report>,
    last_activity: Instant,
    last_progress: Instant,
    finished: bool,
}

/// One distributed execution on this shard.
pub(crate) struct Run {
    id: String,
    created: Instant,
    st: Mutex<RunState>,
}

impl Run {
    fn new(id: &str) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Run {
            id: id.to_string(),
            created: now,
            st: Mutex::new(RunState {
                part: None,
                next_stage: 0,
                running: false,
                local: BTreeMap::new(),
                remote: BTreeMap::new(),
                done: BTreeMap::new(),
                reports: BTreeMap::new(),
                last_activity: now,
                last_progress: now,
                finished: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        lock(&self.st)
    }
}

enum Next {
    Stage(usize),
    Finish,
}

fn barrier_passed(st: &RunState, part: &Part, stage: usize) -> bool {
    let done = st.done.get(&stage);
    part.others().all(|id| done.is_some_and(|d| d.contains(id)))
}

/// What this shard can do next, if anything (marks it running).
fn next(st: &mut RunState) -> Option<Next> {
    if st.finished || st.running {
        return None;
    }
    let part = st.part.as_ref()?;
    let stages = part.plan.stage_count();
    let k = st.next_stage;
    let ready = if k < stages {
        (k == 0 || barrier_passed(st, part, k - 1)).then_some(Next::Stage(k))
    } else if part.is_initiator() && barrier_passed(st, part, stages - 1) {
        Some(Next::Finish)
    } else {
        None
    };
    if ready.is_some() {
        st.running = true;
    }
    ready
}

/// The shards a waiting execution waits for.
fn waiting_on(st: &RunState, part: &Part) -> Vec<String> {
    if st.next_stage == 0 {
        return Vec::new();
    }
    let stage = st.next_stage - 1;
    let done = st.done.get(&stage);
    part.others()
        .filter(|id| !done.is_some_and(|d| d.contains(*id)))
        .cloned()
        .collect()
}

fn report_of(state: &ShardRunState) -> Report {
    Report {
        errors: state.errors.clone(),
        stats: state
            .stats
            .iter()
            .map(|s| (s.records_out, s.duration.as_nanos() as u64))
            .collect(),
    }
}

fn state_of(report: Report) -> ShardRunState {
    ShardRunState {
        errors: report.errors,
        stats: report
            .stats
            .into_iter()
            .map(|(records_out, nanos)| StepStats {
                records_out,
                duration: Duration::from_nanos(nanos),
            })
            .collect(),
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> GearsError {
    GearsError::Internal(StepError::panicked("stage", panic).message)
}

/// The distributed executions this shard takes part in.
#[derive(Default)]
pub(crate) struct Runs {
    map: Mutex<HashMap<String, Arc<Run>>>,
    /// Ids of executions finished here: late messages about them are ignored.
    recent: Mutex<(VecDeque<String>, HashSet<String>)>,
}

const RECENT: usize = 4096;

impl Runs {
    fn get(&self, id: &str) -> Option<Arc<Run>> {
        lock(&self.map).get(id).cloned()
    }

    fn get_or_create(&self, id: &str) -> Option<Arc<Run>> {
        if lock(&self.recent).1.contains(id) {
            return None;
        }
        Some(
            lock(&self.map)
                .entry(id.to_string())
                .or_insert_with(|| Run::new(id))
                .clone(),
        )
    }

    fn forget(&self, id: &str) {
        lock(&self.map).remove(id);
        let mut recent = lock(&self.recent);
        if recent.1.insert(id.to_string()) {
            recent.0.push_back(id.to_string());
            if recent.0.len() > RECENT {
                if let Some(old) = recent.0.pop_front() {
                    recent.1.remove(&old);
                }
            }
        }
    }

    /// Executions in flight on this shard.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Starts a distributed execution from this shard (the initiator). Main thread.
    pub(crate) fn launch(
        &self,
        ctx: &Context,
        c: &Cluster,
        view: &View,
        launch: Launch,
    ) -> Result<(), String> {
        // Callers check this before blocking a client; a failure here is a bug.
        let me = view.me.ok_or_else(|| {
            format!(
                "node {} is not a master owning slots: send the request to a master",
                c.my_id
            )
        })?;
        let message_bytes = runtime().map_or(gears_core::plan::DEFAULT_MESSAGE_BYTES, |rt| {
            rt.config().shuffle_batch_bytes
        });
        let shards: Vec<String> = view.shards.iter().map(|s| s.id.clone()).collect();
        let topology = view.topology.as_seen_by(me);
        let run = Run::new(&launch.execution.id().0);
        let start = Start {
            execution: run.id.clone(),
            function: launch.function,
            args: launch.args,
            registration: launch.registration,
            shards: view.wire_shards(),
            initiator: me as u32,
            profile: launch.profile,
            message_bytes: message_bytes.min(u32::MAX as usize) as u32,
            keep: launch.keep,
        };
        launch.execution.mark_running();
        let part = Part {
            me,
            initiator: me,
            host: Arc::new(RedisHost::new(topology.clone())),
            topology,
            plan: launch.plan,
            registration: launch.registration,
            event: launch.event,
            options: RunOptions {
                batch: DEFAULT_BATCH,
                profile: launch.profile,
                abort: launch.execution.abort_flag(),
                message_bytes,
            },
            execution: launch.execution,
            on_done: launch.on_done,
            lane: runtime().map_err(|e| e.to_string())?.executor.lane(),
            state: None,
            keep: launch.keep,
            shards,
        };
        lock(&self.map).insert(run.id.clone(), run.clone());
        for dest in part.others() {
            c.send(ctx, dest, Body::Start(start.clone()));
        }
        let mut st = run.lock();
        st.part = Some(part);
        advance(&run, &mut st);
        Ok(())
    }

    /// A message about an execution. Main thread.
    pub(crate) fn on_message(&self, ctx: &Context, c: &Cluster, sender: &str, body: Body) {
        match body {
            Body::Start(start) => self.on_start(ctx, c, sender, start),
            Body::Records {
                execution,
                stage,
                batch,
            } => {
                let Some(run) = self.get_or_create(&execution) else {
                    return;
                };
                let mut st = run.lock();
                st.remote
                    .entry(stage as usize)
                    .or_default()
                    .entry(sender.to_string())
                    .or_default()
                    .push(batch);
                st.last_activity = Instant::now();
            }
            Body::StageDone {
                execution,
                stage,
                report,
            } => {
                let Some(run) = self.get_or_create(&execution) else {
                    return;
                };
                let mut st = run.lock();
                st.done
                    .entry(stage as usize)
                    .or_default()
                    .insert(sender.to_string());
                if let Some(report) = report {
                    st.reports.insert(sender.to_string(), report);
                }
                st.last_activity = Instant::now();
                advance(&run, &mut st);
            }
            Body::Progress { execution } => {
                if let Some(run) = self.get(&execution) {
                    run.lock().last_activity = Instant::now();
                }
            }
            Body::Fail { execution, error } => {
                if let Some(run) = self.get(&execution) {
                    let who = c.view(ctx).describe(sender);
                    self.end(
                        ctx,
                        c,
                        &run,
                        ExecutionStatus::Done,
                        Some(format!("shard {who}: {error}")),
                        true,
                    );
                }
            }
            Body::Abort { execution } => {
                if let Some(run) = self.get(&execution) {
                    self.abort_run(ctx, c, &run, false);
                }
            }
            Body::Drop { execution } => {
                if let Ok(rt) = runtime() {
                    let mut executions = rt.executions();
                    if executions
                        .get(&execution)
                        .is_some_and(|e| e.execution.is_finished())
                    {
                        executions.remove(&execution);
                    }
                }
            }
            Body::Request { .. } | Body::Reply { .. } | Body::Ack { .. } => {}
        }
    }

    fn on_start(&self, ctx: &Context, c: &Cluster, sender: &str, start: Start) {
        let Some(run) = self.get_or_create(&start.execution) else {
            return;
        };
        let mut st = run.lock();
        if st.part.is_some() || st.finished {
            return;
        }
        let fail = |st: &mut RunState, error: String| {
            st.finished = true;
            c.send(
                ctx,
                sender,
                Body::Fail {
                    execution: start.execution.clone(),
                    error,
                },
            );
        };
        let Some(me) = start.shards.iter().position(|s| s.id == c.my_id) else {
            fail(
                &mut st,
                format!("node {} is not a shard of this execution", c.my_id),
            );
            drop(st);
            self.forget(&run.id);
            return;
        };
        let initiator = start.initiator as usize;
        if initiator >= start.shards.len() || start.shards[initiator].id != sender {
            fail(&mut st, "Start names another initiator".into());
            drop(st);
            self.forget(&run.id);
            return;
        }
        let mut view = c.view(ctx);
        if !view.same_shards(&start.shards) {
            // The initiator read the topology just now; catch up before comparing.
            view = c.refresh(ctx);
        }
        let topology = if view.same_shards(&start.shards) {
            view.topology.as_seen_by(me)
        } else {
            topology_of(&start.shards, me)
        };
        let plan = match registry::build(&start.function, &start.args) {
            Ok(Built::Flow(plan)) if !start.registration => Ok(plan),
            Ok(Built::Registration(r)) if start.registration => Ok(r.plan),
            Ok(_) => Err(format!(
                "'{}' is not the same kind of function on this shard",
                start.function
            )),
            Err(e) => Err(e.to_string()),
        };
        let (plan, rt) = match (plan, runtime()) {
            (Ok(plan), Ok(rt)) => (plan, rt),
            (Err(e), _) => {
                fail(&mut st, e);
                drop(st);
                self.forget(&run.id);
                return;
            }
            (_, Err(e)) => {
                fail(&mut st, e.to_string());
                drop(st);
                self.forget(&run.id);
                return;
            }
        };
        let execution = Execution::new(ExecutionId(start.execution.clone()));
        execution.mark_running();
        if !start.registration {
            let max = rt.config().max_executions;
            rt.executions().insert(
                Entry {
                    execution: execution.clone(),
                    function: start.function.clone(),
                    steps: plan.steps().to_vec(),
                },
                max,
            );
        }
        st.part = Some(Part {
            shards: start.shards.into_iter().map(|s| s.id).collect(),
            me,
            initiator,
            host: Arc::new(RedisHost::new(topology.clone())),
            topology,
            plan,
            registration: start.registration,
            event: None,
            options: RunOptions {
                batch: DEFAULT_BATCH,
                profile: start.profile,
                abort: execution.abort_flag(),
                message_bytes: start.message_bytes.max(1) as usize,
            },
            execution,
            on_done: None,
            lane: rt.executor.lane(),
            state: None,
            keep: start.keep,
        });
        st.last_activity = Instant::now();
        advance(&run, &mut st);
    }

    /// Ends an execution on this shard. The initiator completes it (the error, if any, in its
    /// errors) and, with `notify`, aborts it on the other shards; another shard completes its
    /// part and, with `notify`, tells the initiator why it failed.
    fn end(
        &self,
        ctx: &Context,
        c: &Cluster,
        run: &Arc<Run>,
        status: ExecutionStatus,
        error: Option<String>,
        notify: bool,
    ) {
        let part = {
            let mut st = run.lock();
            if st.finished {
                return;
            }
            st.finished = true;
            st.part.take()
        };
        self.forget(&run.id);
        let Some(part) = part else { return };
        let outcome = Outcome {
            errors: error.iter().map(|e| format!("execution: {e}")).collect(),
            duration: run.created.elapsed(),
            ..Outcome::default()
        };
        if notify {
            if part.is_initiator() {
                for dest in part.others() {
                    c.send(
                        ctx,
                        dest,
                        Body::Abort {
                            execution: run.id.clone(),
                        },
                    );
                }
            } else if let Some(error) = &error {
                c.send(
                    ctx,
                    &part.shards[part.initiator],
                    Body::Fail {
                        execution: run.id.clone(),
                        error: error.clone(),
                    },
                );
            }
        }
        complete(part, status, outcome);
    }

    fn abort_run(&self, ctx: &Context, c: &Cluster, run: &Arc<Run>, notify: bool) {
        let running = {
            let st = run.lock();
            if let Some(part) = &st.part {
                part.execution.abort();
                if notify {
                    for dest in part.others() {
                        c.send(
                            ctx,
                            dest,
                            Body::Abort {
                                execution: run.id.clone(),
                            },
                        );
                    }
                }
            }
            st.running
        };
        // A running job stops at its next batch and ends the execution itself.
        if !running {
            self.end(ctx, c, run, ExecutionStatus::Aborted, None, false);
        }
    }

    /// `RG.ABORTEXECUTION` of a distributed execution: aborted on every shard. `false` if
    /// this shard does not run it.
    pub(crate) fn abort(&self, ctx: &Context, c: &Cluster, id: &str) -> bool {
        match self.get(id) {
            Some(run) => {
                self.abort_run(ctx, c, &run, true);
                true
            }
            None => false,
        }
    }

    /// Fails the execution `id` (a message for it could not be delivered).
    pub(crate) fn fail_by_id(&self, ctx: &Context, c: &Cluster, id: &str, error: &str) {
        if let Some(run) = self.get(id) {
            self.end(
                ctx,
                c,
                &run,
                ExecutionStatus::Done,
                Some(error.to_string()),
                true,
            );
        }
    }

    /// A peer restarted or left: its executions in flight cannot finish.
    pub(crate) fn peer_lost(&self, ctx: &Context, c: &Cluster, peer: &str, why: &str) {
        let runs: Vec<Arc<Run>> = lock(&self.map).values().cloned().collect();
        let who = c.view(ctx).describe(peer);
        for run in runs {
            let involved = run
                .lock()
                .part
                .as_ref()
                .is_some_and(|p| p.shards.iter().any(|s| s == peer));
            if involved {
                self.end(
                    ctx,
                    c,
                    &run,
                    ExecutionStatus::Done,
                    Some(format!("shard {who} {why}")),
                    true,
                );
            }
        }
    }

    /// The timer: heartbeats for running jobs, idle and failed-shard detection, orphan
    /// cleanup. Main thread.
    pub(crate) fn tick(&self, ctx: &Context, c: &Cluster) {
        let idle_ms = runtime().map_or(5000, |rt| rt.config().execution_max_idle_time_ms);
        let idle = Duration::from_millis(idle_ms);
        let progress_every = (idle / 3).min(Duration::from_secs(1));
        let view = c.view(ctx);
        let runs: Vec<Arc<Run>> = lock(&self.map).values().cloned().collect();
        for run in runs {
            let mut failure = None;
            let mut orphan = false;
            {
                let mut st = run.lock();
                if st.finished {
                    continue;
                }
                let now = Instant::now();
                match &st.part {
                    None => orphan = st.last_activity.elapsed() > idle * 2,
                    Some(part) if st.running => {
                        if st.last_progress.elapsed() >= progress_every {
                            for dest in part.others() {
                                c.send(
                                    ctx,
                                    dest,
                                    Body::Progress {
                                        execution: run.id.clone(),
                                    },
                                );
                            }
                            st.last_progress = now;
                        }
                    }
                    Some(part) => {
                        // Flagged PFAIL/FAIL by the cluster: it will not answer. (A peer
                        // missing from this node's view is not enough: the initiator may
                        // know a newer topology; the idle time covers it.)
                        let failing: Vec<String> = part
                            .others()
                            .filter(|id| view.nodes.iter().any(|n| &n.id == *id && n.is_failing()))
                            .map(|id| view.describe(id))
                            .collect();
                        if !failing.is_empty() {
                            failure = Some(format!(
                                "shard {} is failing (flagged by the cluster)",
                                failing.join(", ")
                            ));
                        } else if st.last_activity.elapsed() > idle {
                            let missing: Vec<String> = waiting_on(&st, part)
                                .iter()
                                .map(|id| view.describe(id))
                                .collect();
                            failure = Some(if missing.is_empty() {
                                format!("no progress within ExecutionMaxIdleTime ({idle_ms} ms)")
                            } else {
                                format!(
                                    "shard {} did not answer within ExecutionMaxIdleTime ({idle_ms} ms)",
                                    missing.join(", ")
                                )
                            });
                        }
                    }
                }
            }
            if orphan {
                lock(&self.map).remove(&run.id);
            } else if let Some(error) = failure {
                ctx.log_warning(&format!("gears: execution {} failed: {error}", run.id));
                self.end(ctx, c, &run, ExecutionStatus::Done, Some(error), true);
            }
        }
    }
}

/// Completes this shard's part: the initiator's execution (and its reply), or a peer's
/// local listing.
fn complete(part: Part, status: ExecutionStatus, outcome: Outcome) {
    let Part {
        execution,
        on_done,
        keep,
        me,
        initiator,
        ..
    } = part;
    execution.complete_external(status, outcome);
    if me != initiator && !keep {
        if let Ok(rt) = runtime() {
            rt.executions().remove(&execution.id().0);
        }
    }
    if let Some(on_done) = on_done {
        let _ = catch_unwind(AssertUnwindSafe(|| on_done(&execution)));
    }
}

/// Queues this shard's next job, if it can run one.
fn advance(run: &Arc<Run>, st: &mut RunState) {
    let Some(next) = next(st) else { return };
    let Some(part) = st.part.as_ref() else { return };
    let run = run.clone();
    // The executor completes the execution it is given after each job: a throwaway carrier,
    // the real execution is completed by the coordinator.
    let carrier = Execution::new(ExecutionId(String::new()));
    part.lane.submit(
        carrier,
        Box::new(move |_| {
            match next {
                Next::Stage(k) => stage_job(&run, k),
                Next::Finish => finish_job(&run),
            }
            Ok(Outcome::default())
        }),
        None,
    );
}

/// Ends `run` from a worker thread (takes the Redis lock to send).
fn end_from_worker(run: &Arc<Run>, status: ExecutionStatus, error: Option<String>, notify: bool) {
    let Some(c) = super::cluster() else { return };
    let ctx = MODULE_CONTEXT.lock();
    c.runs.end(&ctx, c, run, status, error, notify);
}

/// Runs stage `k` on this shard (a worker), ships its records, and moves on.
fn stage_job(run: &Arc<Run>, k: usize) {
    let Some(c) = super::cluster() else { return };
    let prepared = {
        let mut st = run.lock();
        if st.finished {
            return;
        }
        let mut inbox = st.local.remove(&k).unwrap_or_default();
        for (_, batches) in st.remote.remove(&k).unwrap_or_default() {
            for batch in batches {
                inbox.add_remote(batch);
            }
        }
        let Some(part) = st.part.as_mut() else { return };
        let state = part
            .state
            .take()
            .unwrap_or_else(|| part.plan.new_shard_state());
        (
            inbox,
            state,
            part.plan.clone(),
            part.host.clone(),
            if k == 0 { part.event.take() } else { None },
            part.is_initiator(),
            RouteCx {
                topology: part.topology.clone(),
                initiator: part.initiator,
                message_bytes: part.options.message_bytes,
            },
            part.options.clone(),
            part.registration && !part.is_initiator() && k == 0,
            part.shards.clone(),
            part.me,
            part.initiator,
        )
    };
    let (inbox, mut state, plan, host, event, initiator, route, options, skip, shards, me, init) =
        prepared;
    let stages = plan.stage_count();
    let result = if skip {
        // An `async` registration's event is on the initiator: the reader has nothing here.
        Ok(None)
    } else {
        catch_unwind(AssertUnwindSafe(|| {
            plan.run_stage(StageCall {
                stage: k,
                host: &host,
                event,
                inbox,
                initiator,
                route: &route,
                options: &options,
                state: &mut state,
            })
        }))
        .unwrap_or_else(|p| Err(panic_message(p)))
        .map(Some)
    };
    let mut output = match result {
        Ok(output) => output,
        Err(GearsError::Aborted) => {
            end_from_worker(run, ExecutionStatus::Aborted, None, false);
            return;
        }
        Err(e) => {
            let who = super::cluster()
                .and_then(|c| c.cached_view())
                .map_or_else(|| shards[me].clone(), |v| v.describe(&shards[me]));
            end_from_worker(
                run,
                ExecutionStatus::Done,
                Some(format!("shard {who}: {e}")),
                true,
            );
            return;
        }
    };
    let remote = output
        .as_mut()
        .map(|o| std::mem::take(&mut o.remote))
        .unwrap_or_default();
    let last = k + 1 == stages;
    {
        let ctx = MODULE_CONTEXT.lock();
        for (dest, batch) in remote {
            if let Some(id) = shards.get(dest) {
                c.send(
                    &ctx,
                    id,
                    Body::Records {
                        execution: run.id.clone(),
                        stage: (k + 1) as u32,
                        batch,
                    },
                );
            }
        }
        for (i, id) in shards.iter().enumerate() {
            if i == me {
                continue;
            }
            let report = (last && !initiator && i == init).then(|| report_of(&state));
            c.send(
                &ctx,
                id,
                Body::StageDone {
                    execution: run.id.clone(),
                    stage: k as u32,
                    report,
                },
            );
        }
    }
    let mut st = run.lock();
    if st.finished {
        return;
    }
    if let Some(output) = output {
        st.local.entry(k + 1).or_default().add_local(output);
    }
    st.running = false;
    st.next_stage = k + 1;
    st.last_activity = Instant::now();
    if last && !initiator {
        // This shard's part is done; the initiator has its records and report.
        st.finished = true;
        let part = st.part.take();
        drop(st);
        c.runs.forget(&run.id);
        if let Some(part) = part {
            let outcome = Outcome {
                errors: state.errors.iter().map(ToString::to_string).collect(),
                steps: part.plan.steps().iter().cloned().zip(state.stats).collect(),
                duration: run.created.elapsed(),
                ..Outcome::default()
            };
            complete(part, ExecutionStatus::Done, outcome);
        }
        return;
    }
    if let Some(part) = st.part.as_mut() {
        part.state = Some(state);
    }
    advance(run, &mut st);
}

/// The initiator's last step: decode the results, merge every shard's report, complete.
fn finish_job(run: &Arc<Run>) {
    let Some(c) = super::cluster() else { return };
    let (part, inbox, reports) = {
        let mut st = run.lock();
        if st.finished {
            return;
        }
        let Some(part) = st.part.take() else { return };
        st.finished = true;
        let stages = part.plan.stage_count();
        let mut inbox = st.local.remove(&stages).unwrap_or_default();
        for (_, batches) in st.remote.remove(&stages).unwrap_or_default() {
            for batch in batches {
                inbox.add_remote(batch);
            }
        }
        (part, inbox, std::mem::take(&mut st.reports))
    };
    c.runs.forget(&run.id);
    let mut states = vec![part
        .state
        .clone()
        .unwrap_or_else(|| part.plan.new_shard_state())];
    for id in part.others() {
        if let Some(report) = reports.get(id) {
            states.push(state_of(report.clone()));
        }
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        part.plan
            .results_from(inbox)
            .map(|results| part.plan.finish(results, states))
    }))
    .unwrap_or_else(|p| Err(panic_message(p)));
    let aborted = part.execution.abort_requested();
    let (status, outcome) = match result {
        _ if aborted => (ExecutionStatus::Aborted, Outcome::default()),
        Ok(run_result) => (
            ExecutionStatus::Done,
            Outcome {
                results: run_result.results,
                errors: run_result.errors.iter().map(ToString::to_string).collect(),
                steps: run_result.stats,
                duration: run.created.elapsed(),
            },
        ),
        Err(e) => (
            ExecutionStatus::Done,
            Outcome {
                errors: vec![format!("execution: {e}")],
                duration: run.created.elapsed(),
                ..Outcome::default()
            },
        ),
    };
    complete(part, status, outcome);
}
