//! How the executions a shard takes part in start (on the initiator, and on a peer when its
//! `Start` arrives) and what each execution message does to them.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::coordinator::Coordinator;
use super::run_state::{lock, Launch, Part, Run, RunState};
use super::transport::Link;
use super::wire::{Body, Start};
use crate::execution::{Execution, ExecutionId, ExecutionStatus, Outcome};
use crate::executor::Lane;
use crate::host::LogLevel;
use crate::plan::RunOptions;

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
        self.runs.insert(run.clone());
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
            } => self.touch(&execution, now, |_, st| {
                let from_sender = st.remote.entry(stage as usize).or_default();
                from_sender
                    .entry(sender.to_string())
                    .or_default()
                    .push(batch);
            }),
            Body::StageDone {
                execution,
                stage,
                report,
            } => self.touch(&execution, now, |run, st| {
                let done = st.done.entry(stage as usize).or_default();
                done.insert(sender.to_string());
                if let Some(report) = report {
                    st.reports.insert(sender.to_string(), report);
                }
                self.advance(run, st);
            }),
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

    /// Applies a message about `execution` to its state and marks it active. A run learns of
    /// records and stage ends before its `Start` when messages overtake it: it is created then.
    fn touch(&self, execution: &str, now: Instant, apply: impl FnOnce(&Arc<Run>, &mut RunState)) {
        let Some(run) = self.runs.get_or_create(execution, now) else {
            return;
        };
        let mut st = run.lock();
        st.last_activity = now;
        apply(&run, &mut st);
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
