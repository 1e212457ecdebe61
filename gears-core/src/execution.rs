//! An [`Execution`]: one run of a flow, with its id, status, counters and outcome.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::host::ShardId;
use crate::plumbing::pull::{StepInfo, StepStats};
use crate::value::Value;

/// `<40-character shard id>-<counter>`, as RedisGears 1.x.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutionId(pub String);

impl ExecutionId {
    /// The id of the `counter`-th execution started on `shard`.
    pub fn new(shard: &ShardId, counter: u64) -> Self {
        ExecutionId(format!("{shard}-{counter}"))
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Queued, not started.
    Created,
    /// Running on a worker.
    Running,
    /// Finished (possibly with errors).
    Done,
    /// Aborted before or while running.
    Aborted,
}

impl ExecutionStatus {
    /// The 1.x status name.
    pub fn name(self) -> &'static str {
        match self {
            ExecutionStatus::Created => "created",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Done => "done",
            ExecutionStatus::Aborted => "aborted",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ExecutionStatus::Created,
            1 => ExecutionStatus::Running,
            2 => ExecutionStatus::Done,
            _ => ExecutionStatus::Aborted,
        }
    }
}

/// What a finished execution produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Results, converted to reply values.
    pub results: Vec<Value>,
    /// Error entries (`step: message`).
    pub errors: Vec<String>,
    /// Per-step counters.
    pub steps: Vec<(StepInfo, StepStats)>,
    /// Time from start to finish.
    pub duration: Duration,
}

/// The outcome once set, and how many threads wait for it (notify only when someone does:
/// a condvar notification is a system call).
#[derive(Default)]
struct Slot {
    outcome: Option<Arc<Outcome>>,
    waiters: usize,
}

/// One execution. Shared (`Arc`) between its creator, the executor and whoever waits on it.
pub struct Execution {
    id: ExecutionId,
    status: AtomicU8,
    abort: Arc<AtomicBool>,
    slot: Mutex<Slot>,
    finished: Condvar,
    created: Instant,
}

impl fmt::Debug for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Execution")
            .field("id", &self.id)
            .field("status", &self.status())
            .finish()
    }
}

impl Execution {
    /// A new, queued execution.
    pub fn new(id: ExecutionId) -> Arc<Self> {
        Arc::new(Self {
            id,
            status: AtomicU8::new(0),
            abort: Arc::new(AtomicBool::new(false)),
            slot: Mutex::new(Slot::default()),
            finished: Condvar::new(),
            created: Instant::now(),
        })
    }

    /// Its id.
    pub fn id(&self) -> &ExecutionId {
        &self.id
    }

    /// Its status.
    pub fn status(&self) -> ExecutionStatus {
        ExecutionStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    /// Finished or aborted.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status(),
            ExecutionStatus::Done | ExecutionStatus::Aborted
        )
    }

    /// When it was created.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// The flag the run checks between batches.
    pub fn abort_flag(&self) -> Arc<AtomicBool> {
        self.abort.clone()
    }

    /// Asks the execution to stop: a queued one never starts, a running one stops at its next
    /// batch boundary. Returns `false` if it had already finished.
    pub fn abort(&self) -> bool {
        if self.is_finished() {
            return false;
        }
        self.abort.store(true, Ordering::Release);
        true
    }

    /// Whether an abort was requested.
    pub fn abort_requested(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    pub(crate) fn set_running(&self) {
        self.status.store(1, Ordering::Release);
    }

    /// Marks an execution driven outside the executor (a distributed run's coordinator) as
    /// running.
    pub fn mark_running(&self) {
        self.set_running();
    }

    /// Completes an execution driven outside the executor (a distributed run's coordinator)
    /// with `status` (`Done` or `Aborted`) and wakes its waiters.
    pub fn complete_external(&self, status: ExecutionStatus, outcome: Outcome) {
        self.complete(status, outcome);
    }

    /// Marks an execution that ran outside the executor (a `sync` one, run inline) as done.
    pub fn finish_inline(&self, outcome: Outcome) {
        self.complete(ExecutionStatus::Done, outcome);
    }

    pub(crate) fn complete(&self, status: ExecutionStatus, outcome: Outcome) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.outcome = Some(Arc::new(outcome));
        self.status.store(
            match status {
                ExecutionStatus::Aborted => 3,
                _ => 2,
            },
            Ordering::Release,
        );
        let waiters = slot.waiters;
        drop(slot);
        if waiters > 0 {
            self.finished.notify_all();
        }
    }

    /// The outcome, once finished.
    pub fn outcome(&self) -> Option<Arc<Outcome>> {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .outcome
            .clone()
    }

    /// Blocks until finished or `timeout`; returns the outcome if finished.
    pub fn wait(&self, timeout: Duration) -> Option<Arc<Outcome>> {
        let deadline = Instant::now() + timeout;
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        while slot.outcome.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            slot.waiters += 1;
            slot = self
                .finished
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            slot.waiters -= 1;
        }
        slot.outcome.clone()
    }
}
