//! Stage jobs: when a shard may run its next stage (the barrier), the job that runs it on a
//! worker and ships its records, and the initiator's last job that decodes the results and
//! completes the execution.
//!
//! Every shard runs stage 0 (its reader over its own keys). Records for other shards leave as
//! `Records` batches, then `StageDone(k)` goes to every other shard; a shard runs stage `k + 1`
//! once it finished `k` and got `StageDone(k)` from all the others (delivery is in order, so
//! every batch is in by then). The last stage sends to the initiator, and its `StageDone`
//! carries the shard's step errors and counters.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::coordinator::Coordinator;
use super::run_state::{Part, Run, RunState};
use super::transport::{linked, Link};
use super::wire::{Body, Report};
use crate::error::{GearsError, StepError};
use crate::execution::{Execution, ExecutionId, ExecutionStatus, Outcome};
use crate::plan::{RouteCx, ShardRunState, StageCall};
use crate::StepStats;

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
pub(super) fn waiting_on(st: &RunState, part: &Part) -> Vec<String> {
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

/// Counts a job as queued or running until dropped.
struct Busy(Arc<Coordinator>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

fn busy(c: &Arc<Coordinator>) -> Busy {
    let counter: &AtomicUsize = &c.busy;
    counter.fetch_add(1, Ordering::AcqRel);
    Busy(c.clone())
}

/// Completes this shard's part: the initiator's execution (and its reply), or a peer's
/// local listing; then starts the next execution of its launch queue. `link`: the one the
/// caller holds, if any.
pub(super) fn complete(
    c: &Coordinator,
    link: Option<&dyn Link>,
    part: Part,
    status: ExecutionStatus,
    outcome: Outcome,
) {
    let Part {
        execution,
        on_done,
        keep,
        me,
        initiator,
        queue,
        ..
    } = part;
    execution.complete_external(status, outcome);
    if me != initiator && !keep {
        c.transport.unlist(&execution.id().0);
    }
    if let Some(on_done) = on_done {
        let _ = catch_unwind(AssertUnwindSafe(|| on_done(&execution)));
    }
    if let Some(queue) = queue {
        match link {
            Some(link) => c.next_queued(link, &queue),
            None => {
                linked(&*c.transport, |link| c.next_queued(link, &queue));
            }
        }
    }
}

impl Coordinator {
    /// Queues this shard's next job, if it can run one.
    pub(super) fn advance(&self, run: &Arc<Run>, st: &mut RunState) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let Some(next) = next(st) else { return };
        let Some(part) = st.part.as_ref() else { return };
        let run = run.clone();
        let guard = busy(&this);
        // The executor completes the execution it is given after each job: a throwaway
        // carrier, the real execution is completed by the coordinator.
        let carrier = Execution::new(ExecutionId(String::new()));
        part.lane.submit(
            carrier,
            Box::new(move |_| {
                let _guard = guard;
                match next {
                    Next::Stage(k) => this.stage_job(&run, k),
                    Next::Finish => this.finish_job(&run),
                }
                Ok(Outcome::default())
            }),
            None,
        );
    }

    /// Ends `run` from a worker thread (takes the link to send).
    fn end_from_worker(
        &self,
        run: &Arc<Run>,
        status: ExecutionStatus,
        error: Option<String>,
        notify: bool,
    ) {
        linked(&*self.transport, |link| {
            self.end(link, run, status, error, notify)
        });
    }

    /// Runs stage `k` on this shard (a worker), ships its records, and moves on.
    fn stage_job(&self, run: &Arc<Run>, k: usize) {
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
        let (
            inbox,
            mut state,
            plan,
            host,
            event,
            initiator,
            route,
            options,
            skip,
            shards,
            me,
            init,
        ) = prepared;
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
                self.end_from_worker(run, ExecutionStatus::Aborted, None, false);
                return;
            }
            Err(e) => {
                let who = self.describe(&shards[me]);
                self.end_from_worker(
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
        linked(&*self.transport, |link| {
            for (dest, batch) in remote {
                if let Some(id) = shards.get(dest) {
                    let execution = run.id.clone();
                    let stage = (k + 1) as u32;
                    let records = Body::Records {
                        execution,
                        stage,
                        batch,
                    };
                    self.send(link, id, records);
                }
            }
            for (i, id) in shards.iter().enumerate() {
                if i == me {
                    continue;
                }
                let report = (last && !initiator && i == init).then(|| report_of(&state));
                let done = Body::StageDone {
                    execution: run.id.clone(),
                    stage: k as u32,
                    report,
                };
                self.send(link, id, done);
            }
        });
        let mut st = run.lock();
        if st.finished {
            return;
        }
        if let Some(output) = output {
            st.local.entry(k + 1).or_default().add_local(output);
        }
        st.running = false;
        st.next_stage = k + 1;
        st.last_activity = self.transport.now();
        if last && !initiator {
            // This shard's part is done; the initiator has its records and report.
            st.finished = true;
            let part = st.part.take();
            drop(st);
            self.runs.forget(&run.id);
            if let Some(part) = part {
                let outcome = Outcome {
                    errors: state.errors.iter().map(ToString::to_string).collect(),
                    steps: part.plan.steps().iter().cloned().zip(state.stats).collect(),
                    duration: self.transport.now().saturating_duration_since(run.created),
                    ..Outcome::default()
                };
                complete(self, None, part, ExecutionStatus::Done, outcome);
            }
            return;
        }
        if let Some(part) = st.part.as_mut() {
            part.state = Some(state);
        }
        self.advance(run, &mut st);
    }

    /// The initiator's last step: decode the results, merge every shard's report, complete.
    fn finish_job(&self, run: &Arc<Run>) {
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
        self.runs.forget(&run.id);
        let mut states = vec![part
            .state
            .clone()
            .unwrap_or_else(|| part.plan.new_shard_state())];
        for id in part.others() {
            if let Some(report) = reports.get(id) {
                states.push(state_of(report.clone()));
            }
        }
        let result = catch_unwind(AssertUnwindSafe(|| part.plan.finish(inbox, states)))
            .unwrap_or_else(|p| Err(panic_message(p)));
        let aborted = part.execution.abort_requested();
        let duration = self.transport.now().saturating_duration_since(run.created);
        let (status, outcome) = match result {
            _ if aborted => (ExecutionStatus::Aborted, Outcome::default()),
            Ok(run_result) => (
                ExecutionStatus::Done,
                Outcome {
                    results: run_result.results,
                    errors: run_result.errors.iter().map(ToString::to_string).collect(),
                    steps: run_result.stats,
                    duration,
                },
            ),
            Err(e) => (
                ExecutionStatus::Done,
                Outcome {
                    errors: vec![format!("execution: {e}")],
                    duration,
                    ..Outcome::default()
                },
            ),
        };
        complete(self, None, part, status, outcome);
    }
}
