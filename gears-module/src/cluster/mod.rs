//! The Redis Cluster coordinator: Gears on a Redis Cluster, over its own cluster bus.
//!
//! - [`bus`]: the only FFI of this module (receiver, send, node ids, node list).
//! - [`wire`]: the versioned message format, duplicate/stale detection.
//! - [`topology`]: shards and slots read from the cluster, refreshed automatically.
//! - [`coordinator`]: distributed executions (stages on every master, record exchanges).
//! - [`mgmt`]: cluster-wide management (`RG.GETEXECUTION … CLUSTER`, registration changes).
//!
//! The transport here keeps, per destination, a sequence number and every message not yet
//! acknowledged. The bus may refuse a message (node not connected) or accept it into a link
//! that dies: either way the timer retransmits the unacknowledged messages in order once a
//! second, across reconnects, up to `SendMsgRetries` times; then it gives up, fails the
//! executions that needed them and starts a new stream to that node.

pub(crate) mod bus;
pub(crate) mod coordinator;
pub(crate) mod mgmt;
pub(crate) mod topology;
pub(crate) mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use redis_module::{Context, ContextFlags};

use gears_core::host::ShardId;

use self::topology::View;
use self::wire::{Body, Envelope, PeerFilter, Verdict};
use crate::runtime::runtime;

/// Traffic and rejection counters (shown by `RG.INFOCLUSTER`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) undelivered: AtomicU64,
}

/// A message sent and not yet acknowledged.
struct Unacked {
    seq: u64,
    bytes: Vec<u8>,
    /// The bus took it (else it waits for the next retransmission, in order).
    handed: bool,
    execution: Option<String>,
}

#[derive(Default)]
struct PeerOut {
    stream: u32,
    seq: u64,
    unacked: VecDeque<Unacked>,
    /// Messages in `unacked` the bus refused (they wait for a retransmission round).
    refused: usize,
    /// Retransmission rounds since the last acknowledged progress.
    attempts: u64,
    /// Last time the receiver acknowledged something (or the queue started, or a
    /// retransmission round): retransmit only when this is older than [`RTO`], so a slow but
    /// acknowledging receiver never gets duplicates piled on it.
    progress_at: Option<Instant>,
    /// The last message sent (the test hook replays it to check duplicate detection).
    last: Option<Vec<u8>>,
}

/// First retransmission timeout (doubled at each round without progress, up to 16 s).
const RTO: Duration = Duration::from_secs(2);

/// The local node in the cluster.
pub(crate) struct Cluster {
    pub(crate) my_id: String,
    pub(crate) run_id: u64,
    out: Mutex<HashMap<String, PeerOut>>,
    filter: Mutex<PeerFilter>,
    pub(crate) counters: Counters,
    view: Mutex<Option<Arc<View>>>,
    pub(crate) runs: coordinator::Runs,
    pub(crate) requests: mgmt::Requests,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The cluster state, on a server running in cluster mode.
pub(crate) fn cluster() -> Option<&'static Cluster> {
    CLUSTER.get()
}

/// How often the timer runs: idle checks, retries, heartbeats.
const TICK: Duration = Duration::from_millis(100);
/// How often the timer re-reads the topology.
const REFRESH_EVERY: u32 = 10;

fn random_run_id() -> u64 {
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

/// Module load: in cluster mode, registers the receiver and the timer and returns the node id
/// (the shard id of execution ids); `None` on a standalone server.
pub(crate) fn init(ctx: &Context) -> Option<ShardId> {
    if !ctx.get_flags().contains(ContextFlags::CLUSTER) {
        return None;
    }
    let my_id = bus::my_id()?;
    let cluster = Cluster {
        my_id: my_id.clone(),
        run_id: random_run_id(),
        out: Mutex::new(HashMap::new()),
        filter: Mutex::new(PeerFilter::default()),
        counters: Counters::default(),
        view: Mutex::new(None),
        runs: coordinator::Runs::default(),
        requests: mgmt::Requests::default(),
    };
    if CLUSTER.set(cluster).is_err() {
        return Some(ShardId(my_id));
    }
    bus::register_receiver(ctx, on_message);
    ctx.create_timer(TICK, tick, 0u32);
    ctx.log_notice(&format!("gears: cluster mode, node {my_id}"));
    Some(ShardId(my_id))
}

fn tick(ctx: &Context, n: u32) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(c) = cluster() {
            if n % REFRESH_EVERY == 0 {
                let view = c.refresh(ctx);
                let peers: Vec<std::net::SocketAddr> = view
                    .nodes
                    .iter()
                    .filter(|node| node.id != c.my_id)
                    .filter_map(|node| {
                        let cport = u16::try_from(node.port + 10000).ok()?;
                        format!("{}:{cport}", node.ip).parse().ok()
                    })
                    .collect();
                bus::disable_nagle(&peers);
            }
            c.send_acks(ctx);
            c.flush(ctx);
            c.runs.tick(ctx, c);
            c.requests.tick();
        }
    }));
    ctx.create_timer(TICK, tick, n.wrapping_add(1));
}

impl Cluster {
    /// Re-reads the topology from the cluster (cheap when nothing changed).
    pub(crate) fn refresh(&self, ctx: &Context) -> Arc<View> {
        let mut view = lock(&self.view);
        let fresh = topology::read(ctx, &self.my_id, view.as_ref());
        *view = Some(fresh.clone());
        fresh
    }

    /// The last topology read (reads it if none yet).
    pub(crate) fn view(&self, ctx: &Context) -> Arc<View> {
        if let Some(v) = lock(&self.view).as_ref() {
            return v.clone();
        }
        self.refresh(ctx)
    }

    /// The last topology read, without reading (for worker threads).
    pub(crate) fn cached_view(&self) -> Option<Arc<View>> {
        lock(&self.view).clone()
    }

    /// Sends `body` to node `dest`, reliably: kept until acknowledged, retransmitted in
    /// order. `ctx` must hold the Redis lock.
    pub(crate) fn send(&self, ctx: &Context, dest: &str, body: Body) {
        let execution = body.execution().map(str::to_string);
        let mut out = lock(&self.out);
        let peer = out.entry(dest.to_string()).or_default();
        peer.seq += 1;
        let envelope = Envelope {
            run_id: self.run_id,
            stream: peer.stream,
            seq: peer.seq,
            body,
        };
        let bytes = match wire::encode(&envelope) {
            Ok(b) => b,
            Err(e) => {
                ctx.log_warning(&format!("gears: cannot encode a cluster message: {e}"));
                return;
            }
        };
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.counters
            .sent_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if peer.unacked.is_empty() {
            peer.progress_at = Some(Instant::now());
        }
        // In order: only hand it to the bus if everything before it was.
        let handed = peer.refused == 0 && bus::send(ctx, dest, &bytes);
        if handed {
            peer.last = Some(bytes.clone());
        } else {
            peer.refused += 1;
        }
        peer.unacked.push_back(Unacked {
            seq: peer.seq,
            bytes,
            handed,
            execution,
        });
    }

    /// Sends an unsequenced message (an `Ack`): lost if the bus loses it.
    fn send_unsequenced(&self, ctx: &Context, dest: &str, body: Body) {
        let envelope = Envelope {
            run_id: self.run_id,
            stream: 0,
            seq: 0,
            body,
        };
        if let Ok(bytes) = wire::encode(&envelope) {
            bus::send(ctx, dest, &bytes);
        }
    }

    /// `dest` delivered its stream `stream` up to `upto`.
    fn on_ack(&self, dest: &str, stream: u32, upto: u64) {
        let mut out = lock(&self.out);
        let Some(peer) = out.get_mut(dest) else {
            return;
        };
        if stream != peer.stream {
            return;
        }
        let before = peer.unacked.len();
        while peer.unacked.front().is_some_and(|u| u.seq <= upto) {
            if peer.unacked.pop_front().is_some_and(|u| !u.handed) {
                peer.refused = peer.refused.saturating_sub(1);
            }
        }
        if peer.unacked.len() != before {
            peer.attempts = 0;
            peer.progress_at = Some(Instant::now());
        }
    }

    /// Acknowledges what this node delivered since the last tick.
    fn send_acks(&self, ctx: &Context) {
        let due = lock(&self.filter).acks_due();
        for (peer, stream, upto) in due {
            self.send_unsequenced(ctx, &peer, Body::Ack { stream, upto });
        }
    }

    /// Sends `make(id)` to every other master.
    pub(crate) fn broadcast(&self, ctx: &Context, make: impl Fn(String) -> Body, id: &str) {
        let view = self.view(ctx);
        for shard in view.shards.iter().filter(|s| s.id != self.my_id) {
            self.send(ctx, &shard.id, make(id.to_string()));
        }
    }

    /// The run id last seen from node `id`.
    pub(crate) fn peer_run_id(&self, id: &str) -> Option<u64> {
        lock(&self.filter).run_id_of(id)
    }

    /// Sends raw bytes (the test hook); `true` if the bus took them.
    pub(crate) fn send_raw(&self, ctx: &Context, dest: &str, bytes: &[u8]) -> bool {
        bus::send(ctx, dest, bytes)
    }

    /// The last message sent to `dest`, for the duplicate test hook.
    pub(crate) fn last_sent(&self, dest: &str) -> Option<Vec<u8>> {
        lock(&self.out).get(dest).and_then(|p| p.last.clone())
    }

    /// Messages not yet acknowledged by `dest`.
    pub(crate) fn pending(&self, dest: &str) -> usize {
        lock(&self.out).get(dest).map_or(0, |p| p.unacked.len())
    }

    /// Retransmits, in order, what a node did not acknowledge within [`RTO`] (or what the bus
    /// refused); gives up after `SendMsgRetries` retransmissions of the oldest message.
    fn flush(&self, ctx: &Context) {
        let retries = runtime().map_or(3, |rt| rt.config().send_msg_retries);
        let now = Instant::now();
        let mut given_up: Vec<(String, Vec<String>)> = Vec::new();
        {
            let mut out = lock(&self.out);
            for (dest, peer) in out.iter_mut() {
                if peer.unacked.is_empty() {
                    continue;
                }
                // Exponential backoff: 2, 4, 8, 16 s without progress. A receiver busy
                // reading a burst (Redis reads a link until it is drained) is slow, not gone.
                let rto = RTO * (1u32 << peer.attempts.min(3));
                let stalled = peer
                    .progress_at
                    .is_none_or(|at| now.duration_since(at) >= rto);
                let refused = peer.refused > 0;
                // A refusal is retried at the next tick once; everything else waits until
                // the receiver acknowledged nothing for RTO.
                if !(stalled || refused && peer.attempts == 0) {
                    continue;
                }
                peer.attempts += 1;
                if peer.attempts > retries {
                    self.counters
                        .undelivered
                        .fetch_add(peer.unacked.len() as u64, Ordering::Relaxed);
                    let executions = peer.unacked.drain(..).filter_map(|u| u.execution).collect();
                    given_up.push((dest.clone(), executions));
                    // A new stream: the receiver stops waiting for what was given up.
                    peer.stream += 1;
                    peer.seq = 0;
                    peer.attempts = 0;
                    peer.refused = 0;
                    peer.progress_at = None;
                    continue;
                }
                peer.progress_at = Some(now);
                // Go back N: everything unacknowledged (stalled), or what the bus refused.
                for u in peer.unacked.iter_mut().filter(|u| stalled || !u.handed) {
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    u.handed = bus::send(ctx, dest, &u.bytes);
                    if !u.handed {
                        break;
                    }
                }
                peer.refused = peer.unacked.iter().filter(|u| !u.handed).count();
            }
        }
        for (dest, executions) in given_up {
            let view = self.view(ctx);
            let error = format!(
                "could not deliver a message to shard {} after {retries} retries (SendMsgRetries)",
                view.describe(&dest)
            );
            ctx.log_warning(&format!("gears: {error}"));
            let mut seen = std::collections::HashSet::new();
            for execution in executions {
                if seen.insert(execution.clone()) {
                    self.runs.fail_by_id(ctx, self, &execution, &error);
                }
            }
        }
    }
}

/// The cluster's topology seen from this node, when it is a shard (for local executions).
pub(crate) fn local_topology() -> Option<gears_core::host::Topology> {
    let view = cluster()?.cached_view()?;
    view.me.map(|_| view.topology.clone())
}

/// Whether this node is a shard of a cluster (a master owning slots).
pub(crate) fn is_shard(ctx: &Context) -> bool {
    cluster().is_some_and(|c| c.view(ctx).me.is_some())
}

/// Starts an `async` registration's execution for one event on every master (the caller
/// checked [`is_shard`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_event(
    ctx: &Context,
    function: &str,
    args: &[String],
    plan: Arc<dyn gears_core::registry::ErasedPlan>,
    event: gears_core::readers::Event,
    execution: Arc<gears_core::execution::Execution>,
    profile: bool,
    on_done: gears_core::executor::OnDone,
) {
    let Some(c) = cluster() else { return };
    let view = c.view(ctx);
    let launch = coordinator::Launch {
        function: function.to_string(),
        args: args.to_vec(),
        registration: true,
        plan,
        event: Some(event),
        execution,
        on_done: Some(on_done),
        profile,
        keep: false,
    };
    if let Err(e) = c.runs.launch(ctx, c, &view, launch) {
        ctx.log_warning(&format!("gears: cannot start an async execution: {e}"));
    }
}

/// Makes Redis's "non local key" refusal say which key, which slot and which shard, and
/// what to do instead.
pub(crate) fn explain_foreign_key(
    topology: &gears_core::host::Topology,
    args: &[&str],
    error: gears_core::error::HostError,
) -> gears_core::error::HostError {
    if topology.len() < 2 || !error.message.contains("non local key") {
        return error;
    }
    let foreign = args.iter().skip(1).find_map(|arg| {
        let slot = gears_core::slot::key_slot(arg.as_bytes());
        let owner = topology.owner_of_slot(slot);
        (owner != topology.me()).then(|| (arg, slot, &topology.shards()[owner].id))
    });
    match foreign {
        Some((key, slot, owner)) => gears_core::error::HostError::new(format!(
            "{}: key '{key}' hashes to slot {slot}, owned by shard {owner}, not by this shard \
             ({}); write keys sharing a {{hashtag}} this shard owns (gears::context::hashtag()) \
             or repartition the records to the key's owner first",
            error.message,
            topology.my_id()
        )),
        None => error,
    }
}

/// The cluster-bus receiver: decode, drop duplicates and stale messages, dispatch. Runs on
/// the main thread: it never runs user steps, only bookkeeping and job submission.
fn on_message(ctx: &Context, sender: &str, payload: &[u8]) {
    let Some(c) = cluster() else { return };
    c.counters.received.fetch_add(1, Ordering::Relaxed);
    let envelope = match wire::decode(payload) {
        Ok(e) => e,
        Err(e) => {
            c.counters.malformed.fetch_add(1, Ordering::Relaxed);
            ctx.log_warning(&format!(
                "gears: rejected a malformed cluster message from {sender} ({} bytes): {e}",
                payload.len()
            ));
            return;
        }
    };
    if envelope.seq == 0 {
        // Unsequenced: acknowledgements.
        if let Body::Ack { stream, upto } = envelope.body {
            c.on_ack(sender, stream, upto);
        }
        return;
    }
    let verdict = lock(&c.filter).check(sender, envelope.run_id, envelope.stream, envelope.seq);
    match verdict {
        Verdict::Duplicate => {
            c.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            ctx.log_verbose(&format!(
                "gears: dropped a duplicate cluster message from {sender} (seq {})",
                envelope.seq
            ));
            return;
        }
        Verdict::Gap => {
            // An earlier message was lost: the sender retransmits from it, in order.
            return;
        }
        Verdict::Stale => {
            c.counters.stale.fetch_add(1, Ordering::Relaxed);
            ctx.log_verbose(&format!(
                "gears: dropped a stale cluster message from {sender} (old run id or stream)"
            ));
            return;
        }
        Verdict::AcceptRestarted => {
            ctx.log_notice(&format!(
                "gears: node {sender} restarted: its executions in flight are failed"
            ));
            c.runs.peer_lost(ctx, c, sender, "restarted");
        }
        Verdict::Accept => {}
    }
    match envelope.body {
        Body::Request { id, op } => mgmt::on_request(ctx, c, sender, id, op),
        Body::Reply { id, result } => c.requests.on_reply(sender, id, result),
        body => c.runs.on_message(ctx, c, sender, body),
    }
}
