//! The module's state: configuration, the executor, the executions list. Set once at load.

pub(crate) mod aux_fields;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod hooks;
pub(crate) mod host;
pub(crate) mod info;
pub(crate) mod persist;
pub(crate) mod registered;
pub(crate) mod reply;
pub(crate) mod server_events;
pub(crate) mod write_guard;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use redis_module::{Context, RedisError, RedisString, Status};

use gears_core::execution::{Execution, ExecutionId};
use gears_core::executor::Executor;
use gears_core::host::{ShardId, Topology};
use gears_core::StepInfo;

use self::aux_fields::AuxFields;
use self::config::Config;
use self::hooks::{Hooks, StreamWritten};
use crate::runtime::host::RedisHost;
use crate::runtime::registered::Registered;
use gears_core::registry::{Built, FunctionKind};
use gears_core::trigger::Registration;

/// One execution known to `RG.DUMPEXECUTIONS` and friends.
pub(crate) struct Entry {
    pub(crate) execution: Arc<Execution>,
    pub(crate) function: String,
    pub(crate) steps: Vec<StepInfo>,
}

/// Executions in creation order, capped by `MaxExecutions` (finished ones are evicted first).
#[derive(Default)]
pub(crate) struct Executions {
    by_id: HashMap<String, Entry>,
    order: VecDeque<String>,
}

impl Executions {
    pub(crate) fn insert(&mut self, entry: Entry, max: usize) {
        let id = entry.execution.id().0.clone();
        self.order.push_back(id.clone());
        self.by_id.insert(id, entry);
        self.enforce(max);
    }

    /// Evicts the oldest finished executions while more than `max` are listed. Running ones
    /// are kept; this runs again whenever one finishes.
    pub(crate) fn enforce(&mut self, max: usize) {
        while self.by_id.len() > max {
            let finished = self
                .order
                .iter()
                .position(|id| self.by_id.get(id).is_none_or(|e| e.execution.is_finished()));
            match finished {
                Some(i) => {
                    if let Some(id) = self.order.remove(i) {
                        self.by_id.remove(&id);
                    }
                }
                None => break, // all running: they are dropped once finished
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.by_id.remove(id)?;
        self.order.retain(|x| x != id);
        Some(entry)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.order.iter().filter_map(|id| self.by_id.get(id))
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

pub(crate) struct Runtime {
    pub(crate) config: Mutex<Config>,
    pub(crate) executor: Executor,
    pub(crate) executions: Mutex<Executions>,
    pub(crate) host: RedisHost,
    pub(crate) shard: ShardId,
    counter: AtomicU64,
    pub(crate) executions_total: AtomicU64,
    /// The node's cluster state, on a server in cluster mode.
    pub(crate) cluster: Option<cluster::Cluster>,
    /// What the layers above and the libraries hooked in.
    pub(crate) hooks: Hooks,
    /// The libraries' fields in the RDB.
    pub(crate) aux_fields: AuxFields,
    /// Copy-on-write: an event takes one `Arc` of the list, never holds the lock while firing.
    registrations: RwLock<Arc<Vec<Arc<Registered>>>>,
    registration_counter: AtomicU64,
}

impl Runtime {
    pub(crate) fn next_id(&self) -> ExecutionId {
        ExecutionId::new(
            &self.shard,
            self.counter.fetch_add(1, Ordering::Relaxed) + 1,
        )
    }

    pub(crate) fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn executions(&self) -> MutexGuard<'_, Executions> {
        self.executions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live registrations (a snapshot: changes made meanwhile are not seen).
    pub(crate) fn registrations(&self) -> Arc<Vec<Arc<Registered>>> {
        self.registrations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the registration list (copy-on-write).
    pub(crate) fn with_registrations_mut<R>(
        &self,
        f: impl FnOnce(&mut Vec<Arc<Registered>>) -> R,
    ) -> R {
        let mut guard = self
            .registrations
            .write()
            .unwrap_or_else(|p| p.into_inner());
        f(Arc::make_mut(&mut guard))
    }

    /// Registers every `#[gears::register]` function that returns a registration.
    fn load_registrations(&self, ctx: &Context) -> Result<(), String> {
        for f in gears_core::registry::functions() {
            // Registrations that take ARGS are instantiated by `RG.REGISTER`.
            if f.kind != FunctionKind::Registration || f.takes_args {
                continue;
            }
            let Built::Registration(registration) =
                gears_core::registry::build(f.name, &[]).map_err(|e| format!("{}: {e}", f.name))?
            else {
                continue;
            };
            let summary = format!(
                "{} on {:?}, {}",
                registration.trigger.reader_name(),
                registration.trigger,
                registration.mode.name()
            );
            let id = self.add_load_time_registration(f.name, f.doc, registration);
            ctx.log_notice(&format!("gears: registered {} ({summary}) as {id}", f.name));
        }
        Ok(())
    }

    /// Adds a registration with the next id; returns the id.
    pub(crate) fn add_registration(
        &self,
        function: &'static str,
        doc: &'static str,
        registration: Registration,
        args: Vec<String>,
    ) -> String {
        let n = self.registration_counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}-{n}", self.shard);
        self.insert_registration(id, function, doc, registration, args, false)
    }

    /// Adds the registration of a load-time function (a `#[gears::register]` function taking
    /// no ARGS) under [`load_time_id`]: the same id on every node, so a replicated or
    /// cluster-wide `RG.UNREGISTER <id>` finds it everywhere.
    pub(crate) fn add_load_time_registration(
        &self,
        function: &'static str,
        doc: &'static str,
        registration: Registration,
    ) -> String {
        let id = load_time_id(function);
        self.insert_registration(id, function, doc, registration, Vec::new(), false)
    }

    /// Adds a registration under a given id (a cluster registration made on another shard
    /// keeps the id its origin gave it).
    pub(crate) fn insert_registration(
        &self,
        id: String,
        function: &'static str,
        doc: &'static str,
        registration: Registration,
        args: Vec<String>,
        paused: bool,
    ) -> String {
        let group = group_name(function, &args);
        let reg = Registered::new(
            id.clone(),
            function,
            doc,
            registration,
            self.executor.lane(),
            group,
            args,
        );
        reg.paused.store(paused, Ordering::Release);
        self.with_registrations_mut(|regs| regs.push(Arc::new(reg)));
        id
    }

    /// The live registration already reading stream group `group`, if any.
    pub(crate) fn group_in_use(&self, function: &str, args: &[String]) -> Option<String> {
        let group = group_name(function, args);
        self.registrations()
            .iter()
            .find(|r| r.stream.as_ref().is_some_and(|c| c.group == group))
            .map(|r| r.id.clone())
    }

    /// The last registration id number handed out.
    pub(crate) fn registration_counter(&self) -> u64 {
        self.registration_counter.load(Ordering::Relaxed)
    }

    /// Drops every registration and sets the id counter (before restoring a saved state).
    pub(crate) fn clear_registrations(&self, counter: u64) {
        for reg in self.with_registrations_mut(std::mem::take) {
            reg.retired.store(true, Ordering::Release);
        }
        self.registration_counter.store(counter, Ordering::Relaxed);
    }
}

/// The id of a load-time function's registration: node-independent (`RG.REGISTER` ids are
/// `<shard id>-<n>` of the node that made them), the function name after the standalone shard
/// id.
pub(crate) fn load_time_id(function: &str) -> String {
    format!("{}-{function}", ShardId::standalone())
}

/// The consumer group of a `StreamReader` registration: stable across restarts and
/// re-registration (the function name, plus the ARGS of `RG.REGISTER`).
fn group_name(function: &str, args: &[String]) -> String {
    if args.is_empty() {
        format!("gears:{function}")
    } else {
        format!("gears:{function}:{}", args.join(","))
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime, or an error if the module did not initialise.
pub(crate) fn runtime() -> Result<&'static Runtime, RedisError> {
    RUNTIME
        .get()
        .ok_or(RedisError::Str("ERR Gears is not initialised"))
}

/// Module initialisation: parses the load options and starts the workers. `stream_written`
/// is the triggers layer's [`StreamWritten`] hook.
pub(crate) fn init(ctx: &Context, args: &[RedisString], stream_written: StreamWritten) -> Status {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            ctx.log_warning(&format!("gears: bad module option: {e}"));
            return Status::Err;
        }
    };
    let threads = config.execution_threads;
    // In cluster mode the shard id (the prefix of execution ids) is the node id.
    let cluster = cluster::init(ctx);
    let shard = cluster
        .as_ref()
        .map_or_else(ShardId::standalone, |c| ShardId(c.my_id.clone()));
    let runtime = Runtime {
        executor: Executor::new(threads),
        config: Mutex::new(config),
        executions: Mutex::new(Executions::default()),
        host: RedisHost::new(Topology::standalone()),
        shard,
        counter: AtomicU64::new(0),
        executions_total: AtomicU64::new(0),
        registrations: RwLock::new(Arc::new(Vec::new())),
        registration_counter: AtomicU64::new(0),
        cluster,
        hooks: Hooks::new(stream_written),
        aux_fields: AuxFields::default(),
    };
    if RUNTIME.set(runtime).is_err() {
        ctx.log_warning("gears: already initialised (only one Gears module can be loaded)");
        return Status::Err;
    }
    if let Some(rt) = RUNTIME.get() {
        if let Err(e) = rt.load_registrations(ctx) {
            ctx.log_warning(&format!("gears: cannot register {e}"));
            return Status::Err;
        }
    }
    ctx.log_notice(&format!(
        "gears: ready, {threads} execution threads, {} registered functions, {} registrations",
        gears_core::registry::functions().len(),
        RUNTIME.get().map_or(0, |rt| rt.registrations().len())
    ));
    Status::Ok
}
