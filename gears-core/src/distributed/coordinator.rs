//! One shard's [`Coordinator`]: receives and sends messages reliably, runs its part of each
//! distributed execution, and keeps time (acknowledgements, retransmissions, idle peers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::delivery::{send_unsequenced, Counters, Outbox, PeerFilter, Verdict};
use super::run_state::{Launch, Runs};
use super::transport::{Link, Transport};
use super::wire::{self, Body};
use crate::host::LogLevel;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The distributed engine of one shard.
///
/// Everything but the stage jobs runs where the transport delivers messages and ticks (on
/// Redis: the main thread); stage jobs run on executor workers and take the link only to send.
/// Nothing blocks a worker while waiting for peers: a barrier that completes queues the next
/// job. Call [`tick`](Coordinator::tick) about every 100 ms.
pub struct Coordinator {
    pub(super) my_id: String,
    pub(super) run_id: u64,
    pub(super) transport: Arc<dyn Transport>,
    outbox: Outbox,
    filter: Mutex<PeerFilter>,
    pub(super) counters: Counters,
    pub(super) runs: Runs,
    /// Launches waiting for their turn, by queue (see [`Launch::queue`](super::Launch::queue)).
    pub(super) queues: Mutex<HashMap<String, VecDeque<Launch>>>,
    /// Stage jobs queued or running.
    pub(super) busy: AtomicUsize,
    pub(super) this: Weak<Coordinator>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("my_id", &self.my_id)
            .field("run_id", &self.run_id)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// A run id for this process: random enough that a restarted peer never reuses one.
pub fn random_run_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() | 1
}

impl Coordinator {
    /// The coordinator of shard `my_id` (its 40-character node id), with a fresh run id.
    pub fn new(my_id: impl Into<String>, transport: Arc<dyn Transport>) -> Arc<Self> {
        Self::with_run_id(my_id, random_run_id(), transport)
    }

    /// [`new`](Self::new) with a given run id (nonzero; new at every process start).
    pub fn with_run_id(
        my_id: impl Into<String>,
        run_id: u64,
        transport: Arc<dyn Transport>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Coordinator {
            my_id: my_id.into(),
            run_id,
            transport,
            outbox: Outbox::default(),
            filter: Mutex::new(PeerFilter::default()),
            counters: Counters::default(),
            runs: Runs::default(),
            queues: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            this: this.clone(),
        })
    }

    /// This shard's id.
    pub fn my_id(&self) -> &str {
        &self.my_id
    }

    /// This incarnation's run id.
    pub fn run_id(&self) -> u64 {
        self.run_id
    }

    /// Traffic counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Distributed executions in flight on this shard.
    pub fn in_flight(&self) -> usize {
        self.runs.len()
    }

    /// Whether stage jobs are queued or running here.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// Messages `dest` did not acknowledge yet.
    pub fn pending(&self, dest: &str) -> usize {
        self.outbox.pending(dest)
    }

    /// The last message handed to the link for `dest` (the duplicate test hook).
    pub fn last_sent(&self, dest: &str) -> Option<Vec<u8>> {
        self.outbox.last_sent(dest)
    }

    /// The run id last seen from shard `id`.
    pub fn peer_run_id(&self, id: &str) -> Option<u64> {
        lock(&self.filter).run_id_of(id)
    }

    pub(super) fn log(&self, level: LogLevel, message: &str) {
        self.transport.log(level, message);
    }

    pub(super) fn describe(&self, id: &str) -> String {
        self.transport.peer(id).description
    }

    /// Sends `body` to shard `dest` reliably: kept until acknowledged, retransmitted in order.
    pub fn send(&self, link: &dyn Link, dest: &str, body: Body) {
        let now = self.transport.now();
        if let Err(e) = self
            .outbox
            .send(link, self.run_id, dest, body, now, &self.counters)
        {
            self.log(
                LogLevel::Warning,
                &format!("gears: cannot encode a cluster message: {e}"),
            );
        }
    }

    /// A message from shard `sender`: decoded, duplicates and stale ones dropped, execution
    /// messages handled. Management messages (`Request`, `Reply`) are returned to the caller.
    pub fn receive(&self, link: &dyn Link, sender: &str, payload: &[u8]) -> Option<Body> {
        Counters::add(&self.counters.received, 1);
        let envelope = match wire::decode(payload) {
            Ok(e) => e,
            Err(e) => {
                Counters::add(&self.counters.malformed, 1);
                self.log(
                    LogLevel::Warning,
                    &format!(
                        "gears: rejected a malformed cluster message from {sender} ({} bytes): {e}",
                        payload.len()
                    ),
                );
                return None;
            }
        };
        if envelope.seq == 0 {
            // Unsequenced: acknowledgements.
            if let Body::Ack { stream, upto } = envelope.body {
                self.outbox
                    .on_ack(sender, stream, upto, self.transport.now());
            }
            return None;
        }
        let verdict =
            lock(&self.filter).check(sender, envelope.run_id, envelope.stream, envelope.seq);
        match verdict {
            Verdict::Duplicate => {
                Counters::add(&self.counters.duplicates, 1);
                self.log(
                    LogLevel::Verbose,
                    &format!(
                        "gears: dropped a duplicate cluster message from {sender} (seq {})",
                        envelope.seq
                    ),
                );
                return None;
            }
            // An earlier message was lost: the sender retransmits from it, in order.
            Verdict::Gap => return None,
            Verdict::Stale => {
                Counters::add(&self.counters.stale, 1);
                self.log(
                    LogLevel::Verbose,
                    &format!(
                        "gears: dropped a stale cluster message from {sender} (old run id or stream)"
                    ),
                );
                return None;
            }
            Verdict::AcceptRestarted => {
                self.log(
                    LogLevel::Notice,
                    &format!("gears: node {sender} restarted: its executions in flight are failed"),
                );
                self.peer_lost(link, sender, "restarted");
            }
            Verdict::Accept => {}
        }
        match envelope.body {
            body @ (Body::Request { .. } | Body::Reply { .. }) => Some(body),
            body => {
                self.on_run_message(link, sender, body);
                None
            }
        }
    }

    /// The timer: acknowledgements, retransmissions, heartbeats of running jobs, idle and
    /// failing peers.
    pub fn tick(&self, link: &dyn Link) {
        let due = lock(&self.filter).acks_due();
        for (peer, stream, upto) in due {
            send_unsequenced(link, self.run_id, &peer, Body::Ack { stream, upto });
        }
        self.flush(link);
        self.tick_runs(link);
    }

    /// Retransmits what was not acknowledged; fails the executions whose messages were given up.
    fn flush(&self, link: &dyn Link) {
        let retries = self.transport.settings().send_retries;
        let given_up = self
            .outbox
            .flush(link, self.transport.now(), retries, &self.counters);
        for (dest, executions) in given_up {
            let error = format!(
                "could not deliver a message to shard {} after {retries} retries (SendMsgRetries)",
                self.describe(&dest)
            );
            self.log(LogLevel::Warning, &format!("gears: {error}"));
            let mut seen = HashSet::new();
            for execution in executions {
                if seen.insert(execution.clone()) {
                    self.fail_by_id(link, &execution, &error);
                }
            }
        }
    }
}
