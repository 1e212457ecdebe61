//! The executions a shard takes part in: their state, how one starts (on the initiator, and on
//! a peer when its `Start` arrives) and what each execution message does to it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::coordinator::Coordinator;
use super::shard_plan::ShardPlan;
use super::transport::Link;
use super::wire::{Body, Report, Start, WireShard};
use crate::execution::{Execution, ExecutionId, ExecutionStatus, Outcome};
use crate::executor::{Lane, OnDone};
use crate::host::{Host, LogLevel, Topology};
use crate::plan::{RunOptions, ShardRunState, StageInbox};
use crate::readers::Event;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the initiator needs to start a distributed execution.
pub struct Launch {
    /// The registered function that builds the plan on every shard.
    pub function: String,
    /// Its ARGS.
    pub args: Vec<String>,
    /// An `async` registration's execution for one event: the other shards run every stage
    /// but the reader.
    pub registration: bool,
    /// The plan, built here.
    pub plan: Arc<dyn ShardPlan>,
    /// The event (for a registration's execution).
    pub event: Option<Event>,
    /// The execution, completed when every shard finished (or one failed).
    pub execution: Arc<Execution>,
    /// Called once it completed.
    pub on_done: Option<OnDone>,
    /// Measure per-step durations.
    pub profile: bool,
    /// Other shards keep their part listed after it finished (`UNBLOCKING` runs, which
    /// `RG.GETEXECUTION … CLUSTER` may ask about).
    pub keep: bool,
    /// The shards taking part, in index order, and their slots.
    pub shards: Vec<WireShard>,
    /// This shard's index in `shards`.
    pub me: usize,
    /// The routing table, seen from this shard.
    pub topology: Topology,
    /// Executions launched here with the same queue start one at a time, in launch order,
    /// each once the one before completed (an `async` registration's events: FIFO).
    pub queue: Option<String>,
}

/// This shard's part of one distributed execution.
pub(super) struct Part {
    pub(super) shards: Vec<String>,
    pub(super) me: usize,
    pub(super) initiator: usize,
    pub(super) topology: Topology,
    pub(super) host: Arc<dyn Host>,
    pub(super) plan: Arc<dyn ShardPlan>,
    pub(super) registration: bool,
    pub(super) event: Option<Event>,
    pub(super) options: RunOptions,
    pub(super) execution: Arc<Execution>,
    pub(super) on_done: Option<OnDone>,
    pub(super) lane: Lane,
    pub(super) state: Option<ShardRunState>,
    pub(super) keep: bool,
    /// The launch queue of this execution (initiator only).
    pub(super) queue: Option<String>,
}

impl Part {
    pub(super) fn others(&self) -> impl Iterator<Item = &String> {
        self.shards
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != self.me)
            .map(|(_, id)| id)
    }

    pub(super) fn is_initiator(&self) -> bool {
        self.me == self.initiator
    }
}

pub(super) struct RunState {
    pub(super) part: Option<Part>,
    /// The next stage this shard runs (`stage_count` once its last stage ran).
    pub(super) next_stage: usize,
    /// A job of this execution is queued or running.
    pub(super) running: bool,
    /// Records a stage left on this shard, by the stage that reads them.
    pub(super) local: BTreeMap<usize, StageInbox>,
    /// Batches received, by reading stage, then sender (kept in shard order).
    pub(super) remote: BTreeMap<usize, BTreeMap<String, Vec<Vec<u8>>>>,
    /// Who finished which stage.
    pub(super) done: BTreeMap<usize, BTreeSet<String>>,
    /// Reports of the other shards (initiator).
    pub(super) reports: BTreeMap<String, Report>,
    pub(super) last_activity: Instant,
    pub(super) last_progress: Instant,
    pub(super) finished: bool,
}

/// One distributed execution on this shard.
pub(super) struct Run {
    pub(super) id: String,
    pub(super) created: Instant,
    st: Mutex<RunState>,
}

impl Run {
    fn new(id: &str, now: Instant) -> Arc<Self> {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, RunState> {
        lock(&self.st)
    }
}

/// The distributed executions this shard takes part in.
#[derive(Default)]
pub(super) struct Runs {
    map: Mutex<HashMap<String, Arc<Run>>>,
    /// Ids of executions finished here: late messages about them are ignored.
    recent: Mutex<(VecDeque<String>, HashSet<String>)>,
}

const RECENT: usize = 4096;

impl Runs {
    pub(super) fn get(&self, id: &str) -> Option<Arc<Run>> {
        lock(&self.map).get(id).cloned()
    }

    fn get_or_create(&self, id: &str, now: Instant) -> Option<Arc<Run>> {
        if lock(&self.recent).1.contains(id) {
            return None;
        }
        Some(
            lock(&self.map)
                .entry(id.to_string())
                .or_insert_with(|| Run::new(id, now))
                .clone(),
        )
    }

    pub(super) fn forget(&self, id: &str) {
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

    /// Drops an execution that never started here (no `Start` came), without remembering it.
    pub(super) fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }

    pub(super) fn all(&self) -> Vec<Arc<Run>> {
        lock(&self.map).values().cloned().collect()
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

impl Coordinator {
    /// Starts a distributed execution from this shard (the initiator): sends `Start` to every
    /// other shard and queues stage 0 here. With a [`queue`](Launch::queue) that has an
    /// execution in flight, it waits for its turn instead.
    pub fn launch(&self, link: &dyn Link, launch: Launch) -> Result<(), String> {
        if let Some(key) = &launch.queue {
            let mut queues = lock(&self.queues);
            match queues.get_mut(key) {
                Some(waiting) => {
                    waiting.push_back(launch);
                    return Ok(());
                }
                None => {
                    queues.insert(key.clone(), VecDeque::new());
                }
            }
        }
        match self.ready(&launch) {
            Ok(lane) => {
                self.start_now(link, launch, lane);
                Ok(())
            }
            Err(e) => {
                if let Some(key) = &launch.queue {
                    self.next_queued(link, key);
                }
                Err(e)
            }
        }
    }

    /// Starts the next execution waiting in `queue`, if any (the one before it completed).
    pub(super) fn next_queued(&self, link: &dyn Link, queue: &str) {
        loop {
            let next = {
                let mut queues = lock(&self.queues);
                let Some(waiting) = queues.get_mut(queue) else {
                    return;
                };
                match waiting.pop_front() {
                    Some(next) => next,
                    None => {
                        queues.remove(queue);
                        return;
                    }
                }
            };
            match self.ready(&next) {
                Ok(lane) => return self.start_now(link, next, lane),
                Err(e) => {
                    let id = next.execution.id().0.clone();
                    self.log(
                        LogLevel::Warning,
                        &format!("gears: cannot start execution {id}: {e}"),
                    );
                    let outcome = Outcome {
                        errors: vec![format!("execution: {e}")],
                        ..Outcome::default()
                    };
                    next.execution
                        .complete_external(ExecutionStatus::Done, outcome);
                    if let Some(on_done) = next.on_done {
                        let _ = catch_unwind(AssertUnwindSafe(|| on_done(&next.execution)));
                    }
                }
            }
        }
    }

    /// The lane for `launch`, if it can start here.
    fn ready(&self, launch: &Launch) -> Result<Lane, String> {
        if launch.me >= launch.shards.len() || launch.shards[launch.me].id != self.my_id {
            return Err(format!(
                "node {} is not a shard of this execution",
                self.my_id
            ));
        }
        self.transport.lane()
    }

    fn start_now(&self, link: &dyn Link, launch: Launch, lane: Lane) {
        let settings = self.transport.settings();
        let message_bytes = settings.message_bytes.max(1);
        let run = Run::new(&launch.execution.id().0, self.transport.now());
        let start = Start {
            execution: run.id.clone(),
            function: launch.function,
            args: launch.args,
            registration: launch.registration,
            shards: launch.shards.clone(),
            initiator: launch.me as u32,
            profile: launch.profile,
            message_bytes: message_bytes.min(u32::MAX as usize) as u32,
            keep: launch.keep,
        };
        launch.execution.mark_running();
        let part = Part {
            shards: launch.shards.into_iter().map(|s| s.id).collect(),
            me: launch.me,
            initiator: launch.me,
            host: self.transport.host(launch.topology.clone()),
            topology: launch.topology,
            plan: launch.plan,
            registration: launch.registration,
            event: launch.event,
            options: RunOptions {
                batch: settings.batch,
                profile: launch.profile,
                abort: launch.execution.abort_flag(),
                message_bytes,
            },
            execution: launch.execution,
            on_done: launch.on_done,
            lane,
            state: None,
            keep: launch.keep,
            queue: launch.queue,
        };
        lock(&self.runs.map).insert(run.id.clone(), run.clone());
        for dest in part.others() {
            self.send(link, dest, Body::Start(start.clone()));
        }
        let mut st = run.lock();
        st.part = Some(part);
        self.advance(&run, &mut st);
    }

    /// A message about an execution.
    pub(super) fn on_run_message(&self, link: &dyn Link, sender: &str, body: Body) {
        let now = self.transport.now();
        match body {
            Body::Start(start) => self.on_start(link, sender, start),
            Body::Records {
                execution,
                stage,
                batch,
            } => {
                // A run learns of records before its Start when messages overtake it.
                let Some(run) = self.runs.get_or_create(&execution, now) else {
                    return;
                };
                let mut st = run.lock();
                let from_sender = st.remote.entry(stage as usize).or_default();
                from_sender
                    .entry(sender.to_string())
                    .or_default()
                    .push(batch);
                st.last_activity = now;
            }
            Body::StageDone {
                execution,
                stage,
                report,
            } => {
                let Some(run) = self.runs.get_or_create(&execution, now) else {
                    return;
                };
                let mut st = run.lock();
                let done = st.done.entry(stage as usize).or_default();
                done.insert(sender.to_string());
                if let Some(report) = report {
                    st.reports.insert(sender.to_string(), report);
                }
                st.last_activity = now;
                self.advance(&run, &mut st);
            }
            Body::Progress { execution } => {
                if let Some(run) = self.runs.get(&execution) {
                    run.lock().last_activity = now;
                }
            }
            Body::Fail { execution, error } => {
                if let Some(run) = self.runs.get(&execution) {
                    let who = self.describe(sender);
                    self.end(
                        link,
                        &run,
                        ExecutionStatus::Done,
                        Some(format!("shard {who}: {error}")),
                        true,
                    );
                }
            }
            Body::Abort { execution } => {
                if let Some(run) = self.runs.get(&execution) {
                    self.abort_run(link, &run, false);
                }
            }
            Body::Drop { execution } => self.transport.unlist(&execution),
            Body::Request { .. } | Body::Reply { .. } | Body::Ack { .. } => {}
        }
    }

    fn on_start(&self, link: &dyn Link, sender: &str, start: Start) {
        let Some(run) = self
            .runs
            .get_or_create(&start.execution, self.transport.now())
        else {
            return;
        };
        let mut st = run.lock();
        if st.part.is_some() || st.finished {
            return;
        }
        let fail = |st: &mut RunState, error: String| {
            st.finished = true;
            self.send(
                link,
                sender,
                Body::Fail {
                    execution: start.execution.clone(),
                    error,
                },
            );
        };
        let Some(me) = start.shards.iter().position(|s| s.id == self.my_id) else {
            fail(
                &mut st,
                format!("node {} is not a shard of this execution", self.my_id),
            );
            drop(st);
            self.runs.forget(&run.id);
            return;
        };
        let initiator = start.initiator as usize;
        if initiator >= start.shards.len() || start.shards[initiator].id != sender {
            fail(&mut st, "Start names another initiator".into());
            drop(st);
            self.runs.forget(&run.id);
            return;
        }
        let topology = link.topology(&start.shards, me);
        let ready = self
            .transport
            .resolve(&start.function, &start.args, start.registration)
            .and_then(|plan| Ok((plan, self.transport.lane()?)));
        let (plan, lane) = match ready {
            Ok(ready) => ready,
            Err(e) => {
                fail(&mut st, e);
                drop(st);
                self.runs.forget(&run.id);
                return;
            }
        };
        let execution = Execution::new(ExecutionId(start.execution.clone()));
        execution.mark_running();
        if !start.registration {
            self.transport
                .record(&execution, &start.function, plan.steps());
        }
        st.part = Some(Part {
            shards: start.shards.into_iter().map(|s| s.id).collect(),
            me,
            initiator,
            host: self.transport.host(topology.clone()),
            topology,
            plan,
            registration: start.registration,
            event: None,
            options: RunOptions {
                batch: self.transport.settings().batch,
                profile: start.profile,
                abort: execution.abort_flag(),
                message_bytes: start.message_bytes.max(1) as usize,
            },
            execution,
            on_done: None,
            lane,
            state: None,
            keep: start.keep,
            queue: None,
        });
        st.last_activity = self.transport.now();
        self.advance(&run, &mut st);
    }
}
