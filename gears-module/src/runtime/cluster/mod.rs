//! Gears on a Redis Cluster: the adapter between the Redis Cluster and the coordinator of
//! [`gears_core::distributed`] (which owns the wire format, reliable delivery and distributed
//! executions, and is tested on the in-memory cluster).
//!
//! - [`crate::ffi::cluster_bus`]: the FFI of the bus (receiver, send, node ids, node list).
//! - [`topology`]: shards and slots read from the cluster, refreshed automatically.
//! - [`transport`]: the coordinator's [`Transport`](gears_core::distributed::Transport) over
//!   the bus (sending with the Redis lock held), plans from the registry, the module's
//!   settings and executions list.
//! - [`mgmt`]: cluster-wide management (`RG.GETEXECUTION … CLUSTER`, registration changes);
//!   [`results`]: the initiator's answer to another master's `RG.GETRESULTS[BLOCKING]`.

pub(crate) mod mgmt;
pub(crate) mod results;
pub(crate) mod topology;
pub(crate) mod transport;

use crate::ffi::cluster_bus;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis_module::{Context, ContextFlags};

use gears_core::distributed::wire::Body;
use gears_core::distributed::{Coordinator, Erased};
use gears_core::execution::Execution;
use gears_core::executor::OnDone;
use gears_core::readers::Event;
use gears_core::registry::ErasedPlan;

use self::topology::View;
use self::transport::{BusLink, BusTransport};

/// The local node in the cluster.
pub(crate) struct Cluster {
    pub(crate) my_id: String,
    /// The distributed engine of this node.
    pub(crate) node: Arc<Coordinator>,
    view: Mutex<Option<Arc<View>>>,
    pub(crate) requests: mgmt::Requests,
    /// Module commands declared cluster-wide (upper case): another master may ask this one
    /// to apply them (`gears::api::cluster_wide_command`).
    pub(crate) cluster_wide: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The cluster state, on a server running in cluster mode.
pub(crate) fn cluster() -> Option<&'static Cluster> {
    crate::runtime::runtime().ok()?.cluster.as_ref()
}

/// How often the timer runs: idle checks, retries, heartbeats.
const TICK: Duration = Duration::from_millis(100);
/// How often the timer re-reads the topology.
const REFRESH_EVERY: u32 = 10;

/// Module load: in cluster mode, registers the receiver and the timer and returns the node's
/// state for the runtime to own (its id is the shard id of execution ids); `None` on a
/// standalone server.
pub(crate) fn init(ctx: &Context) -> Option<Cluster> {
    if !ctx.get_flags().contains(ContextFlags::CLUSTER) {
        return None;
    }
    let my_id = cluster_bus::my_id()?;
    let cluster = Cluster {
        my_id: my_id.clone(),
        node: Coordinator::new(my_id.clone(), Arc::new(BusTransport)),
        view: Mutex::new(None),
        requests: mgmt::Requests::default(),
        cluster_wide: Mutex::new(Vec::new()),
    };
    cluster_bus::register_receiver(ctx, on_message);
    ctx.create_timer(TICK, tick, 0u32);
    ctx.log_notice(&format!("gears: cluster mode, node {my_id}"));
    Some(cluster)
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
                cluster_bus::disable_nagle(&peers);
            }
            c.node.tick(&BusLink(ctx));
            c.requests.tick();
        }
    }));
    ctx.create_timer(TICK, tick, n.wrapping_add(1));
}

/// What `RG.RUN` (or an `async` registration's event) needs to start a distributed execution.
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
    /// Executions of one queue (an `async` registration's id) start one at a time, in order.
    pub(crate) queue: Option<String>,
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
    /// The cluster's topology seen from this node, when it is a shard (for local
    /// executions).
    pub(crate) fn local_topology(&self) -> Option<gears_core::host::Topology> {
        let view = self.cached_view()?;
        view.me.map(|_| view.topology.clone())
    }

    pub(crate) fn cached_view(&self) -> Option<Arc<View>> {
        lock(&self.view).clone()
    }

    /// Sends `body` to node `dest`, reliably: kept until acknowledged, retransmitted in
    /// order. `ctx` must hold the Redis lock.
    pub(crate) fn send(&self, ctx: &Context, dest: &str, body: Body) {
        self.node.send(&BusLink(ctx), dest, body);
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
        self.node.peer_run_id(id)
    }

    /// Sends raw bytes (the test hook); `true` if the bus took them.
    pub(crate) fn send_raw(&self, ctx: &Context, dest: &str, bytes: &[u8]) -> bool {
        cluster_bus::send(ctx, dest, bytes)
    }

    /// The last message sent to `dest`, for the duplicate test hook.
    pub(crate) fn last_sent(&self, dest: &str) -> Option<Vec<u8>> {
        self.node.last_sent(dest)
    }

    /// Messages not yet acknowledged by `dest`.
    pub(crate) fn pending(&self, dest: &str) -> usize {
        self.node.pending(dest)
    }

    /// Starts a distributed execution from this node (the initiator). Main thread.
    pub(crate) fn launch(&self, ctx: &Context, view: &View, launch: Launch) -> Result<(), String> {
        // Callers check this before blocking a client; a failure here is a bug.
        let me = view.me.ok_or_else(|| {
            format!(
                "node {} is not a master owning slots: send the request to a master",
                self.my_id
            )
        })?;
        let launch = gears_core::distributed::Launch {
            function: launch.function,
            args: launch.args,
            registration: launch.registration,
            plan: Arc::new(Erased::new(launch.plan)),
            event: launch.event,
            execution: launch.execution,
            on_done: launch.on_done,
            profile: launch.profile,
            keep: launch.keep,
            shards: view.wire_shards(),
            me,
            topology: view.topology.as_seen_by(me),
            queue: launch.queue,
        };
        self.node.launch(&BusLink(ctx), launch)
    }

    /// `RG.ABORTEXECUTION` of a distributed execution: aborted on every shard. `false` if
    /// this node does not run it.
    pub(crate) fn abort(&self, ctx: &Context, id: &str) -> bool {
        self.node.abort(&BusLink(ctx), id)
    }
}

/// Whether this node is a shard of a cluster (a master owning slots).
pub(crate) fn is_shard(ctx: &Context) -> bool {
    cluster().is_some_and(|c| c.view(ctx).me.is_some())
}

/// Starts an `async` registration's execution for one event on every master (the caller
/// checked [`is_shard`]), once the registration's executions started before it from this
/// node completed (FIFO per registration, as its lane is on a standalone server).
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_event(
    ctx: &Context,
    registration: &str,
    function: &str,
    args: &[String],
    plan: Arc<dyn ErasedPlan>,
    event: Event,
    execution: Arc<Execution>,
    profile: bool,
    on_done: OnDone,
) {
    let Some(c) = cluster() else { return };
    let view = c.view(ctx);
    let launch = Launch {
        function: function.to_string(),
        args: args.to_vec(),
        registration: true,
        plan,
        event: Some(event),
        execution,
        on_done: Some(on_done),
        profile,
        keep: false,
        queue: Some(registration.to_string()),
    };
    if let Err(e) = c.launch(ctx, &view, launch) {
        ctx.log_warning(&format!("gears: cannot start an async execution: {e}"));
    }
}

/// The cluster-bus receiver: the coordinator decodes, drops duplicates and stale messages and
/// handles execution messages; management ones come back here. Runs on the main thread: it
/// never runs user steps, only bookkeeping and job submission.
fn on_message(ctx: &Context, sender: &str, payload: &[u8]) {
    let Some(c) = cluster() else { return };
    match c.node.receive(&BusLink(ctx), sender, payload) {
        Some(Body::Request { id, op }) => mgmt::on_request(ctx, c, sender, id, op),
        Some(Body::Reply { id, result }) => c.requests.on_reply(sender, id, result),
        _ => {}
    }
}
