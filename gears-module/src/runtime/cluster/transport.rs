//! The coordinator's environment on a Redis Cluster: messages over the cluster bus, plans
//! from the `#[gears::register]` registry, the module's settings and executions list.
//!
//! The bus may only be used with the Redis lock held: on the main thread (commands, the
//! receiver, the timer) with the callback's context ([`BusLink`]); from a worker through
//! [`Transport::with_link`], which takes the lock once for everything a stage job sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_module::{Context, MODULE_CONTEXT};

use gears_core::distributed::wire::{topology_of, WireShard};
use gears_core::distributed::{Link, Peer, Settings, Transport};
use gears_core::execution::Execution;
use gears_core::executor::Lane;
use gears_core::host::{Host, LogLevel, Topology};
use gears_core::StepInfo;

use super::cluster;
use crate::ffi::cluster_bus;
use crate::runtime::host::RedisHost;
use crate::runtime::{runtime, Entry};

/// The cluster bus with a context holding the Redis lock.
pub(crate) struct BusLink<'a>(pub(crate) &'a Context);

impl Link for BusLink<'_> {
    fn send(&self, to: &str, bytes: &[u8]) -> bool {
        cluster_bus::send(self.0, to, bytes)
    }

    fn topology(&self, shards: &[WireShard], me: usize) -> Topology {
        let Some(c) = cluster() else {
            return topology_of(shards, me);
        };
        let mut view = c.view(self.0);
        if !view.same_shards(shards) {
            // The initiator read the topology just now; catch up before comparing.
            view = c.refresh(self.0);
        }
        if view.same_shards(shards) {
            view.topology.as_seen_by(me)
        } else {
            topology_of(shards, me)
        }
    }
}

/// The Redis Cluster transport (its state is the module's: the cluster view, the runtime).
pub(crate) struct BusTransport;

impl Transport for BusTransport {
    fn with_link(&self, f: &mut dyn FnMut(&dyn Link)) {
        let ctx = MODULE_CONTEXT.lock();
        f(&BusLink(&ctx));
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn lane(&self) -> Result<Lane, String> {
        runtime()
            .map(|rt| rt.executor.lane())
            .map_err(|e| e.to_string())
    }

    fn host(&self, topology: Topology) -> Arc<dyn Host> {
        Arc::new(RedisHost::new(topology))
    }

    fn settings(&self) -> Settings {
        let defaults = Settings::default();
        match runtime() {
            Ok(rt) => {
                let config = rt.config();
                Settings {
                    max_idle: Duration::from_millis(config.execution_max_idle_time_ms),
                    message_bytes: config.shuffle_batch_bytes,
                    send_retries: config.send_msg_retries,
                    ..defaults
                }
            }
            Err(_) => defaults,
        }
    }

    fn peer(&self, id: &str) -> Peer {
        match cluster().and_then(|c| c.cached_view()) {
            Some(view) => Peer {
                description: view.describe(id),
                failing: view.nodes.iter().any(|n| n.id == id && n.is_failing()),
            },
            None => Peer {
                description: id.to_string(),
                failing: false,
            },
        }
    }

    fn record(&self, execution: &Arc<Execution>, function: &str, steps: &[StepInfo]) {
        if let Ok(rt) = runtime() {
            let max = rt.config().max_executions;
            rt.executions().insert(
                Entry {
                    execution: execution.clone(),
                    function: function.to_string(),
                    steps: steps.to_vec(),
                },
                max,
            );
        }
    }

    fn unlist(&self, id: &str) {
        if let Ok(rt) = runtime() {
            let mut executions = rt.executions();
            if executions
                .get(id)
                .is_some_and(|e| e.execution.is_finished())
            {
                executions.remove(id);
            }
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        crate::runtime::host::log(level, message);
    }
}
