//! How a distributed execution ends other than by finishing: a failure (a stage error, a peer
//! that failed, restarted, went silent, or could not be reached), or an abort. The initiator
//! completes the execution with the error and aborts the others; another shard completes its
//! part and tells the initiator why.
//!
//! The timer finds silent peers: a shard running a long stage sends `Progress`; a shard
//! waiting on peers fails the execution after `ExecutionMaxIdleTime` without news, or at once
//! when a peer is flagged failing, with an error naming the shards it waited for.

use std::sync::Arc;

use super::coordinator::Coordinator;
use super::run_state::Run;
use super::stages::{complete, waiting_on};
use super::transport::Link;
use super::wire::Body;
use crate::execution::{ExecutionStatus, Outcome};
use crate::host::LogLevel;

impl Coordinator {
    /// Ends an execution on this shard. The initiator completes it (the error, if any, in its
    /// errors) and, with `notify`, aborts it on the other shards; another shard completes its
    /// part and, with `notify`, tells the initiator why it failed.
    pub(super) fn end(
        &self,
        link: &dyn Link,
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
        self.runs.forget(&run.id);
        let Some(part) = part else { return };
        let outcome = Outcome {
            errors: error.iter().map(|e| format!("execution: {e}")).collect(),
            duration: self.transport.now().saturating_duration_since(run.created),
            ..Outcome::default()
        };
        if notify {
            if part.is_initiator() {
                for dest in part.others() {
                    let execution = run.id.clone();
                    self.send(link, dest, Body::Abort { execution });
                }
            } else if let Some(error) = &error {
                let fail = Body::Fail {
                    execution: run.id.clone(),
                    error: error.clone(),
                };
                self.send(link, &part.shards[part.initiator], fail);
            }
        }
        complete(self, Some(link), part, status, outcome);
    }

    pub(super) fn abort_run(&self, link: &dyn Link, run: &Arc<Run>, notify: bool) {
        let running = {
            let st = run.lock();
            if let Some(part) = &st.part {
                part.execution.abort();
                if notify {
                    for dest in part.others() {
                        let execution = run.id.clone();
                        self.send(link, dest, Body::Abort { execution });
                    }
                }
            }
            st.running
        };
        // A running job stops at its next batch and ends the execution itself.
        if !running {
            self.end(link, run, ExecutionStatus::Aborted, None, false);
        }
    }

    /// `RG.ABORTEXECUTION` of a distributed execution: aborted on every shard. `false` if
    /// this shard does not run it.
    pub fn abort(&self, link: &dyn Link, id: &str) -> bool {
        match self.runs.get(id) {
            Some(run) => {
                self.abort_run(link, &run, true);
                true
            }
            None => false,
        }
    }

    /// Fails the execution `id` (a message for it could not be delivered).
    pub(super) fn fail_by_id(&self, link: &dyn Link, id: &str, error: &str) {
        if let Some(run) = self.runs.get(id) {
            let error = Some(error.to_string());
            self.end(link, &run, ExecutionStatus::Done, error, true);
        }
    }

    /// A peer restarted: its executions in flight cannot finish.
    pub(super) fn peer_lost(&self, link: &dyn Link, peer: &str, why: &str) {
        let who = self.describe(peer);
        for run in self.runs.all() {
            let involved = run
                .lock()
                .part
                .as_ref()
                .is_some_and(|p| p.shards.iter().any(|s| s == peer));
            if involved {
                let error = Some(format!("shard {who} {why}"));
                self.end(link, &run, ExecutionStatus::Done, error, true);
            }
        }
    }

    /// Heartbeats for running jobs, idle and failing-peer detection, orphan cleanup.
    pub(super) fn tick_runs(&self, link: &dyn Link) {
        let idle = self.transport.settings().max_idle;
        let idle_ms = idle.as_millis();
        let progress_every = (idle / 3).min(std::time::Duration::from_secs(1));
        let now = self.transport.now();
        for run in self.runs.all() {
            let mut failure = None;
            let mut orphan = false;
            {
                let mut st = run.lock();
                if st.finished {
                    continue;
                }
                let silent = now.saturating_duration_since(st.last_activity);
                match &st.part {
                    None => orphan = silent > idle * 2,
                    Some(part) if st.running => {
                        if now.saturating_duration_since(st.last_progress) >= progress_every {
                            for dest in part.others() {
                                let execution = run.id.clone();
                                self.send(link, dest, Body::Progress { execution });
                            }
                            st.last_progress = now;
                        }
                    }
                    Some(part) => {
                        // Flagged failing: it will not answer. (A peer missing from this
                        // node's view is not enough: the initiator may know a newer topology;
                        // the idle time covers it.)
                        let failing: Vec<String> = part
                            .others()
                            .map(|id| self.transport.peer(id))
                            .filter(|peer| peer.failing)
                            .map(|peer| peer.description)
                            .collect();
                        if !failing.is_empty() {
                            failure = Some(format!(
                                "shard {} is failing (flagged by the cluster)",
                                failing.join(", ")
                            ));
                        } else if silent > idle {
                            let missing: Vec<String> = waiting_on(&st, part)
                                .iter()
                                .map(|id| self.describe(id))
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
                self.runs.remove(&run.id);
            } else if let Some(error) = failure {
                self.log(
                    LogLevel::Warning,
                    &format!("gears: execution {} failed: {error}", run.id),
                );
                self.end(link, &run, ExecutionStatus::Done, Some(error), true);
            }
        }
    }
}
