//! The state of the executions a shard takes part in: what starts one ([`Launch`]), each
//! execution's parts and stage state ([`Run`]), and the table of them ([`Runs`]) with the
//! recently finished ids that late messages are checked against.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::shard_plan::ShardPlan;
use super::wire::{Report, WireShard};
use crate::execution::Execution;
use crate::executor::{Lane, OnDone};
use crate::host::{Host, Topology};
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
    pub(super) fn new(id: &str, now: Instant) -> Arc<Self> {
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

    pub(super) fn get_or_create(&self, id: &str, now: Instant) -> Option<Arc<Run>> {
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

    /// Adds an execution this shard starts.
    pub(super) fn insert(&self, run: Arc<Run>) {
        lock(&self.map).insert(run.id.clone(), run);
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
