//! The executor: a pool of worker threads fed by a lock-free queue of *lanes*.
//!
//! A lane is a FIFO of jobs (one lane per registration; each ad-hoc run gets its own). A
//! lane is put on the shared queue when it goes from empty to non-empty, and a worker that
//! finished one of its jobs puts it back if more are waiting; so at most one worker serves a
//! lane at a time (FIFO per registration) while different lanes run in parallel — the model
//! of RedisGears 1.x's per-registration worker.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{unbounded, Receiver, Sender};
use crossbeam::queue::SegQueue;

use crate::error::{GearsError, StepError};
use crate::event::Event;
use crate::execution::{Execution, ExecutionStatus, Outcome};
use crate::host::Host;
use crate::plan::ErasedPlan;
use crate::plan::RunOptions;

/// The work of one execution. It should check [`Execution::abort_requested`] (or run with its
/// abort flag) between batches.
pub type Job = Box<dyn FnOnce(&Execution) -> Result<Outcome, GearsError> + Send>;
/// Called on the worker once the execution finished (e.g. to reply to a blocked client).
pub type OnDone = Box<dyn FnOnce(&Arc<Execution>) + Send>;

/// A job running `plan` on `host` (every exchange local) for `event` (or in batch mode), with
/// the execution's abort flag, and per-step durations when `profile` is on.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use gears_core::prelude::*;
/// use gears_core::execution::{Execution, ExecutionId, ExecutionStatus};
/// use gears_core::executor::{plan_job, Executor};
/// use gears_core::registry::ErasedPlan;
///
/// let host = gears_core::testing::MemoryHost::new();
/// host.set("a", "1");
/// let plan: Arc<dyn ErasedPlan> = Arc::new(GearsBuilder::new(KeysOnlyReader::new("*")).count().build());
/// let executor = Executor::new(1);
/// let execution = Execution::new(ExecutionId::new(&ShardId::standalone(), 1));
/// executor.lane().submit(execution.clone(), plan_job(plan, Arc::new(host), None, true), None);
/// let outcome = execution.wait(Duration::from_secs(10)).unwrap();
/// assert_eq!(execution.status(), ExecutionStatus::Done);
/// assert_eq!(outcome.results, [Value::Int(1)]);
/// assert_eq!(outcome.steps[0].0.kind, "reader");
/// assert_eq!(outcome.steps[0].1.records_out, 1);
/// ```
pub fn plan_job(
    plan: Arc<dyn ErasedPlan>,
    host: Arc<dyn Host>,
    event: Option<Event>,
    profile: bool,
) -> Job {
    Box::new(move |execution: &Execution| {
        let options = RunOptions::for_execution(execution.abort_flag(), profile);
        let run = plan.run_with(host, event, &options)?;
        Ok(Outcome {
            results: run.results,
            errors: run.errors.iter().map(ToString::to_string).collect(),
            steps: run.stats,
            duration: std::time::Duration::ZERO,
        })
    })
}

struct Task {
    execution: Arc<Execution>,
    job: Job,
    on_done: Option<OnDone>,
}

struct LaneQueue {
    tasks: SegQueue<Task>,
    pending: AtomicUsize,
}

enum Message {
    Lane(Arc<LaneQueue>),
    Stop,
}

/// A FIFO of executions served by at most one worker at a time.
#[derive(Clone)]
pub struct Lane {
    queue: Arc<LaneQueue>,
    sender: Sender<Message>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("pending", &self.pending())
            .finish()
    }
}

impl Lane {
    /// Queues `job` for `execution`; `on_done` runs when it finishes.
    pub fn submit(&self, execution: Arc<Execution>, job: Job, on_done: Option<OnDone>) {
        self.queue.tasks.push(Task {
            execution,
            job,
            on_done,
        });
        if self.queue.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            // The lane was idle: hand it to a worker. A send only fails once the executor is
            // gone; the task then stays queued and is dropped with the lane.
            let _ = self.sender.send(Message::Lane(self.queue.clone()));
        }
    }

    /// Jobs queued or running in this lane.
    pub fn pending(&self) -> usize {
        self.queue.pending.load(Ordering::Acquire)
    }
}

/// The worker pool.
pub struct Executor {
    sender: Sender<Message>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Executor {
    /// Starts `threads` workers (RedisGears 1.x's `ExecutionThreads`, default 3).
    pub fn new(threads: usize) -> Self {
        let (sender, receiver) = unbounded();
        let workers = (0..threads.max(1))
            .map(|i| {
                let receiver: Receiver<Message> = receiver.clone();
                let sender = sender.clone();
                std::thread::Builder::new()
                    .name(format!("gears-worker-{i}"))
                    .spawn(move || worker(receiver, sender))
                    .expect("spawning a worker thread")
            })
            .collect();
        Self { sender, workers }
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// A new, empty lane.
    pub fn lane(&self) -> Lane {
        Lane {
            queue: Arc::new(LaneQueue {
                tasks: SegQueue::new(),
                pending: AtomicUsize::new(0),
            }),
            sender: self.sender.clone(),
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        for _ in &self.workers {
            let _ = self.sender.send(Message::Stop);
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Jobs a worker runs from one lane before handing the lane back (fairness vs. overhead).
const BURST: usize = 32;

fn worker(receiver: Receiver<Message>, sender: Sender<Message>) {
    while let Ok(Message::Lane(lane)) = receiver.recv() {
        for ran in 1.. {
            if let Some(task) = lane.tasks.pop() {
                run_task(task);
            }
            if lane.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                break; // the lane is empty: the next submit schedules it again
            }
            if ran == BURST {
                let _ = sender.send(Message::Lane(lane));
                break;
            }
        }
    }
}

fn run_task(task: Task) {
    let Task {
        execution,
        job,
        on_done,
    } = task;
    if execution.abort_requested() {
        execution.complete(ExecutionStatus::Aborted, Outcome::default());
    } else {
        execution.set_running();
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| job(&execution)));
        let (status, mut outcome) = match result {
            Ok(Ok(outcome)) => (ExecutionStatus::Done, outcome),
            Ok(Err(GearsError::Aborted)) => (ExecutionStatus::Aborted, Outcome::default()),
            Ok(Err(e)) => (
                ExecutionStatus::Done,
                Outcome {
                    errors: vec![StepError::new("execution", e.to_string()).to_string()],
                    ..Outcome::default()
                },
            ),
            Err(panic) => (
                ExecutionStatus::Done,
                Outcome {
                    errors: vec![StepError::panicked("execution", panic).to_string()],
                    ..Outcome::default()
                },
            ),
        };
        outcome.duration = started.elapsed();
        execution.complete(status, outcome);
    }
    if let Some(on_done) = on_done {
        let _ = catch_unwind(AssertUnwindSafe(|| on_done(&execution)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::execution::ExecutionId;
    use crate::host::ShardId;
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn profiled_runs_track_durations_and_counts() {
        let host = MemoryHost::new();
        let plan: Arc<dyn ErasedPlan> = Arc::new(
            GearsBuilder::new(IterReader::new(|_| 0..100_000u64))
                .map(|x| x * 2)
                .filter(|x| x % 3 == 0)
                .count()
                .build(),
        );
        let executor = Executor::new(2);
        let lane = executor.lane();
        let profiled = Execution::new(ExecutionId::new(&ShardId::standalone(), 1));
        let plain = Execution::new(ExecutionId::new(&ShardId::standalone(), 2));
        lane.submit(
            profiled.clone(),
            plan_job(plan.clone(), Arc::new(host.clone()), None, true),
            None,
        );
        lane.submit(
            plain.clone(),
            plan_job(plan, Arc::new(host), None, false),
            None,
        );
        let p = profiled.wait(Duration::from_secs(30)).expect("finished");
        let q = plain.wait(Duration::from_secs(30)).expect("finished");
        assert_eq!(p.results, [Value::Int(33_334)]);
        let kinds: Vec<_> = p.steps.iter().map(|(s, _)| s.kind).collect();
        assert_eq!(
            kinds,
            ["reader", "map", "filter", "count", "collect", "count", "collect"]
        );
        assert_eq!(p.steps[1].1.records_out, 100_000);
        assert_eq!(p.steps[2].1.records_out, 33_334);
        assert!(
            p.steps[1].1.duration > Duration::ZERO,
            "profiling measures steps"
        );
        assert!(
            q.steps.iter().all(|(_, s)| s.duration == Duration::ZERO),
            "no profiling, no timing"
        );
        // Without profiling the fused map→filter→count is one loop: counts are kept where the
        // data materializes (reader, folds, exchanges), not inside the fused loop.
        assert_eq!(q.steps[0].1.records_out, 100_000);
        assert_eq!(q.steps[1].1.records_out, 0);
        assert_eq!(q.steps[3].1.records_out, 1);
        assert_eq!(q.results, [Value::Int(33_334)]);
        assert!(p.duration > Duration::ZERO);
    }
}
