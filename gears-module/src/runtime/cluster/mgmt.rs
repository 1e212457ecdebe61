//! Cluster-wide management: a request to every other master, the client blocked until all
//! answered (or `ExecutionMaxIdleTime` passed: a silent shard is reported, never waited on
//! forever). Used by `RG.GETEXECUTION <id> CLUSTER` and by the registration commands, which
//! are applied on every master and reported per shard.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_module::{
    BlockedClient, Context, RedisError, RedisResult, RedisValue, ThreadSafeContext,
};

use gears_core::codec::{decode_value, encode_value};

use super::results::{answer_when_finished, results_of, running, Results, BLOCKING_WAIT};
use super::Cluster;
use crate::runtime::runtime;
use gears_core::distributed::wire::{Body, Op};

/// One shard's part of an execution, as `RG.GETEXECUTION` shows it.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct ExecInfo {
    pub(crate) function: String,
    pub(crate) status: String,
    pub(crate) finished: bool,
    pub(crate) results: i64,
    pub(crate) errors: Vec<String>,
    pub(crate) total_ms: f64,
    pub(crate) read_ms: f64,
    /// Per step, in plan order: kind, milliseconds, records out.
    pub(crate) steps: Vec<(String, f64, u64)>,
}

/// This shard's part of execution `id`, if listed here.
pub(crate) fn local_info(id: &str) -> Option<ExecInfo> {
    let rt = runtime().ok()?;
    let executions = rt.executions();
    let entry = executions.get(id)?;
    let execution = &entry.execution;
    let outcome = execution.outcome();
    let stats = outcome
        .as_ref()
        .map(|o| o.steps.clone())
        .unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Some(ExecInfo {
        function: entry.function.clone(),
        status: execution.status().name().to_string(),
        finished: execution.is_finished(),
        results: outcome.as_ref().map_or(-1, |o| o.results.len() as i64),
        errors: outcome
            .as_ref()
            .map(|o| o.errors.clone())
            .unwrap_or_default(),
        total_ms: ms(outcome.as_ref().map(|o| o.duration).unwrap_or_default()),
        read_ms: ms(stats.first().map(|(_, s)| s.duration).unwrap_or_default()),
        steps: entry
            .steps
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let s = stats.get(i).map(|(_, s)| *s).unwrap_or_default();
                (info.kind.to_string(), ms(s.duration), s.records_out)
            })
            .collect(),
    })
}

/// `["shard_id", id, "execution_plan", [...]]`, 1.x's entry for one shard.
pub(crate) fn render(shard: &str, info: &ExecInfo, shards: i64) -> RedisValue {
    // Steps are listed last first, as 1.x does.
    let steps = info
        .steps
        .iter()
        .rev()
        .map(|(kind, ms, records)| {
            RedisValue::Array(vec![
                "type".into(),
                kind.as_str().into(),
                "duration".into(),
                RedisValue::Float(*ms),
                "name".into(),
                kind.as_str().into(),
                "arg".into(),
                info.function.as_str().into(),
                "records".into(),
                RedisValue::Integer(*records as i64),
            ])
        })
        .collect();
    let plan = RedisValue::Array(vec![
        "status".into(),
        info.status.as_str().into(),
        "shards_received".into(),
        RedisValue::Integer(shards),
        "shards_completed".into(),
        RedisValue::Integer(if info.finished { shards } else { 0 }),
        "results".into(),
        RedisValue::Integer(info.results),
        "errors".into(),
        RedisValue::Array(
            info.errors
                .iter()
                .map(|e| RedisValue::BulkString(e.clone()))
                .collect(),
        ),
        "total_duration".into(),
        RedisValue::Float(info.total_ms),
        "read_duration".into(),
        RedisValue::Float(info.read_ms),
        "steps".into(),
        RedisValue::Array(steps),
    ]);
    RedisValue::Array(vec![
        "shard_id".into(),
        shard.into(),
        "execution_plan".into(),
        plan,
    ])
}

/// What a pending request answers once complete.
enum Kind {
    /// `RG.GETEXECUTION … CLUSTER`: this shard's part.
    Execution(Option<ExecInfo>),
    /// A registration command: this shard's reply.
    Registration(String),
    /// `RG.GETRESULTS` of an execution another shard started.
    Results,
}

struct Pending {
    /// Answers so far, by node id (`None`: still waiting).
    answers: BTreeMap<String, Option<Result<Vec<u8>, String>>>,
    deadline: Instant,
    blocked: Option<BlockedClient>,
    kind: Kind,
    my_id: String,
}

/// Requests waiting for answers.
#[derive(Default)]
pub(crate) struct Requests {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Requests {
    /// An answer from `sender`.
    pub(crate) fn on_reply(&self, sender: &str, id: u64, result: Result<Vec<u8>, String>) {
        let done = {
            let mut pending = lock(&self.pending);
            let Some(p) = pending.get_mut(&id) else {
                return;
            };
            if let Some(slot) = p.answers.get_mut(sender) {
                *slot = Some(result);
            }
            if p.answers.values().all(Option::is_some) {
                pending.remove(&id)
            } else {
                None
            }
        };
        if let Some(p) = done {
            finish(p);
        }
    }

    /// Answers requests whose shards did not all answer in time.
    pub(crate) fn tick(&self) {
        let now = Instant::now();
        let expired: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        for p in expired {
            finish(p);
        }
    }
}

/// Sends request `op` to each of `to`; with `blocked`, the client waits for every answer (or
/// `wait`, else `ExecutionMaxIdleTime`) and `kind` says how they become its reply.
fn ask(ctx: &Context, c: &Cluster, to: &[String], op: Op, blocked: Option<(Kind, Duration)>) {
    let id = c.requests.next.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some((kind, extra)) = blocked {
        let idle = runtime().map_or(5000, |rt| rt.config().execution_max_idle_time_ms);
        lock(&c.requests.pending).insert(
            id,
            Pending {
                answers: to.iter().map(|o| (o.clone(), None)).collect(),
                deadline: Instant::now() + Duration::from_millis(idle) + extra,
                blocked: Some(ctx.block_client()),
                kind,
                my_id: c.my_id.clone(),
            },
        );
    }
    for dest in to {
        c.send(ctx, dest, Body::Request { id, op: op.clone() });
    }
}

/// The ids of the other masters in `view`.
fn other_masters(c: &Cluster, view: &super::topology::View) -> Vec<String> {
    view.shards
        .iter()
        .map(|s| s.id.clone())
        .filter(|i| *i != c.my_id)
        .collect()
}

fn finish(mut p: Pending) {
    let local = match std::mem::replace(&mut p.kind, Kind::Execution(None)) {
        Kind::Execution(local) => local,
        Kind::Registration(mine) => return finish_registration(p, mine),
        Kind::Results => return finish_results(p),
    };
    let total = p.answers.len() as i64 + 1;
    let mut entries = Vec::new();
    if let Some(local) = &local {
        entries.push(render(&p.my_id, local, total));
    }
    for (shard, answer) in &p.answers {
        entries.push(match answer {
            Some(Ok(bytes)) => match decode_value::<Option<ExecInfo>>(bytes) {
                Ok(Some(info)) => render(shard, &info, total),
                Ok(None) => shard_error(shard, "execution plan does not exist on this shard"),
                Err(e) => shard_error(shard, &e.to_string()),
            },
            Some(Err(e)) => shard_error(shard, e),
            None => shard_error(shard, "did not answer within ExecutionMaxIdleTime"),
        });
    }
    if let Some(blocked) = p.blocked.take() {
        let reply: RedisResult = if local.is_none() && entries.is_empty() {
            Err(RedisError::Str("ERR execution plan does not exist"))
        } else {
            Ok(RedisValue::Array(entries))
        };
        ThreadSafeContext::with_blocked_client(blocked).reply(reply);
    }
}

fn shard_error(shard: &str, error: &str) -> RedisValue {
    RedisValue::Array(vec![
        "shard_id".into(),
        shard.into(),
        "error".into(),
        RedisValue::BulkString(error.to_string()),
    ])
}

/// A request from another shard. Main thread: answers at once (a blocking results request
/// for a running execution: once it finished).
pub(crate) fn on_request(ctx: &Context, c: &Cluster, sender: &str, id: u64, op: Op) {
    let result = match op {
        Op::GetExecution(execution) => {
            encode_value(&local_info(&execution)).map_err(|e| e.to_string())
        }
        Op::GetResults(execution) => {
            encode_value(&results_of(&execution)).map_err(|e| e.to_string())
        }
        Op::GetResultsBlocking(execution) => match running(&execution) {
            Some(running) => return answer_when_finished(sender, id, running),
            None => encode_value(&results_of(&execution)).map_err(|e| e.to_string()),
        },
        Op::Registration { command, id, named } => apply_registration(ctx, command, id, &named)
            .and_then(|reply| encode_value(&reply).map_err(|e| e.to_string())),
    };
    c.send(ctx, sender, Body::Reply { id, result });
}

thread_local! {
    /// Set while a registration command from another shard is applied here: the command
    /// does not fan out again, and `RG.REGISTER` takes the origin's id.
    static REMOTE: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// The origin's id for the registration being created, when applying another shard's
/// `RG.REGISTER`.
pub(crate) fn forced_registration_id() -> Option<String> {
    REMOTE.with(|r| r.borrow().clone().flatten())
}

/// Whether a registration command from another shard (or its replication) is being applied.
pub(crate) fn applying_remote() -> bool {
    REMOTE.with(|r| r.borrow().is_some())
}

/// Runs `f` with `id` as the id `RG.REGISTER` gives (and no fan-out to other masters).
pub(crate) fn with_forced_id<R>(id: String, f: impl FnOnce() -> R) -> R {
    let previous = REMOTE.with(|r| r.borrow_mut().replace(Some(id)));
    let result = f();
    REMOTE.with(|r| *r.borrow_mut() = previous);
    result
}

/// Runs another shard's registration command here, through the command itself (same checks,
/// same replication to this shard's replicas). Ids it names are translated to this shard's.
fn apply_registration(
    ctx: &Context,
    mut command: Vec<String>,
    id: Option<String>,
    named: &[(String, String, Vec<String>)],
) -> Result<String, String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    let regs = rt.registrations();
    for arg in command.iter_mut().skip(1) {
        if regs.iter().any(|r| r.id == *arg) {
            continue;
        }
        if let Some((_, function, args)) = named.iter().find(|(i, ..)| i == arg) {
            if let Some(local) = regs
                .iter()
                .find(|r| r.function == function && r.args == *args)
            {
                *arg = local.id.clone();
            }
        }
    }
    let (cmd, rest) = command.split_first().ok_or("empty command")?;
    if !super::cluster().is_some_and(|c| applies_for_peers(c, cmd)) {
        return Err(format!(
            "'{cmd}' is not a registration command nor a command declared cluster-wide"
        ));
    }
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let options = redis_module::CallOptionsBuilder::new()
        .errors_as_replies()
        .build();
    REMOTE.with(|r| *r.borrow_mut() = Some(id));
    let result: redis_module::CallResult = ctx.call_ext(cmd.as_str(), &options, rest.as_slice());
    REMOTE.with(|r| *r.borrow_mut() = None);
    match crate::runtime::reply::from_call(&result) {
        Ok(v) => {
            // What a command replicates inside RM_Call from this (cluster message) context
            // does not reach the replicas: replicate the command from here.
            ctx.replicate(cmd.as_str(), rest.as_slice());
            Ok(v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{v:?}")))
        }
        Err(e) => Err(e),
    }
}

/// Whether another master may ask this one to apply `cmd`: the registration commands and the
/// module commands declared cluster-wide.
fn applies_for_peers(c: &Cluster, cmd: &str) -> bool {
    let upper = cmd.to_ascii_uppercase();
    matches!(
        upper.as_str(),
        "RG.REGISTER"
            | "RG.INNERREGISTER"
            | "RG.UNREGISTER"
            | "RG.PAUSEREGISTRATIONS"
            | "RG.UNPAUSEREGISTRATIONS"
            | "RG.CLEARREGISTRATIONSSTATS"
    ) || lock(&c.cluster_wide).contains(&upper)
}

/// Declares `command` cluster-wide (nothing to do on a standalone server).
pub(crate) fn declare_cluster_wide(command: &str) {
    let Some(c) = super::cluster() else { return };
    let upper = command.to_ascii_uppercase();
    let mut list = lock(&c.cluster_wide);
    if !list.contains(&upper) {
        list.push(upper);
    }
}

/// After a registration command succeeded here: on a cluster, applies it on every other
/// master and replies `[[shard, reply], ...]` (this shard first) once all answered. `id` is
/// the id `RG.REGISTER` gave the new registration.
pub(crate) fn after_registration_change(
    ctx: &Context,
    command: &[String],
    local: RedisValue,
    id: Option<String>,
) -> RedisResult {
    let Some(c) = super::cluster() else {
        return Ok(local);
    };
    // Applied for another master, replayed from replication or the AOF, or on a replica:
    // the change is already on its way everywhere it needs to go.
    if applying_remote()
        || ctx.get_flags().intersects(
            redis_module::ContextFlags::REPLICATED | redis_module::ContextFlags::LOADING,
        )
    {
        return Ok(local);
    }
    let view = c.refresh(ctx);
    if view.me.is_none() {
        return Ok(local);
    }
    let others = other_masters(c, &view);
    if others.is_empty() {
        return Ok(local);
    }
    let named = runtime()
        .map(|rt| {
            rt.registrations()
                .iter()
                .filter(|r| command.iter().skip(1).any(|a| *a == r.id))
                .map(|r| (r.id.clone(), r.function.to_string(), r.args.clone()))
                .collect()
        })
        .unwrap_or_default();
    let op = Op::Registration {
        command: command.to_vec(),
        id,
        named,
    };
    let can_block = !ctx.get_flags().intersects(
        redis_module::ContextFlags::MULTI
            | redis_module::ContextFlags::LUA
            | redis_module::ContextFlags::DENY_BLOCKING,
    );
    let blocked = can_block.then(|| {
        let mine = match &local {
            RedisValue::SimpleStringStatic(s) => s.to_string(),
            RedisValue::SimpleString(s) | RedisValue::BulkString(s) => s.clone(),
            other => format!("{other:?}"),
        };
        (Kind::Registration(mine), Duration::ZERO)
    });
    ask(ctx, c, &others, op, blocked);
    if can_block {
        Ok(RedisValue::NoReply)
    } else {
        // Inside MULTI/Lua: applied everywhere, reported here only.
        Ok(local)
    }
}

fn finish_registration(mut p: Pending, mine: String) {
    let mut entries = vec![RedisValue::Array(vec![
        p.my_id.as_str().into(),
        RedisValue::BulkString(mine),
    ])];
    for (shard, answer) in &p.answers {
        let reply = match answer {
            Some(Ok(bytes)) => match decode_value::<String>(bytes) {
                Ok(s) => RedisValue::BulkString(s),
                Err(e) => RedisValue::BulkString(format!("ERR {e}")),
            },
            Some(Err(e)) => RedisValue::BulkString(format!("ERR {e}")),
            None => {
                RedisValue::BulkString("ERR did not answer within ExecutionMaxIdleTime".to_string())
            }
        };
        entries.push(RedisValue::Array(vec![shard.as_str().into(), reply]));
    }
    if let Some(blocked) = p.blocked.take() {
        ThreadSafeContext::with_blocked_client(blocked).reply(Ok(RedisValue::Array(entries)));
    }
}

fn finish_results(mut p: Pending) {
    let answer = p.answers.values().next().cloned().flatten();
    let reply: RedisResult = match answer {
        Some(Ok(bytes)) => match decode_value::<Results>(&bytes) {
            Ok(Ok((results, errors))) => Ok(crate::runtime::reply::results_reply(
                &gears_core::execution::Outcome {
                    results,
                    errors,
                    ..Default::default()
                },
            )),
            Ok(Err(e)) => Err(RedisError::String(format!("ERR {e}"))),
            Err(e) => Err(RedisError::String(format!("ERR {e}"))),
        },
        Some(Err(e)) => Err(RedisError::String(format!("ERR {e}"))),
        None => Err(RedisError::Str(
            "ERR the shard that started the execution did not answer",
        )),
    };
    if let Some(blocked) = p.blocked.take() {
        ThreadSafeContext::with_blocked_client(blocked).reply(reply);
    }
}

/// `RG.GETRESULTS[BLOCKING] <id>` sent to a shard that did not start `id`: asks the one that
/// did (the node id its id starts with); `blocking` waits there until it finished. `None`
/// when `id` is not another master's.
pub(crate) fn get_results_remote(
    ctx: &Context,
    c: &Cluster,
    id: &str,
    blocking: bool,
) -> Option<RedisResult> {
    let origin = id.get(..crate::ffi::cluster_bus::NODE_ID_LEN)?;
    if origin == c.my_id || id.as_bytes().get(crate::ffi::cluster_bus::NODE_ID_LEN) != Some(&b'-') {
        return None;
    }
    let view = c.view(ctx);
    if !view.nodes.iter().any(|n| n.id == origin) {
        return None;
    }
    if ctx.get_flags().intersects(
        redis_module::ContextFlags::MULTI
            | redis_module::ContextFlags::LUA
            | redis_module::ContextFlags::DENY_BLOCKING,
    ) {
        return Some(Err(RedisError::String(format!(
            "ERR execution {id} was started on shard {origin}: ask it there"
        ))));
    }
    let op = if blocking {
        Op::GetResultsBlocking(id.to_string())
    } else {
        Op::GetResults(id.to_string())
    };
    let extra = if blocking {
        BLOCKING_WAIT
    } else {
        Duration::ZERO
    };
    ask(
        ctx,
        c,
        &[origin.to_string()],
        op,
        Some((Kind::Results, extra)),
    );
    Some(Ok(RedisValue::NoReply))
}

/// `RG.GETEXECUTION <id> CLUSTER`: this shard's part and every other master's.
pub(crate) fn get_execution(ctx: &Context, c: &Cluster, execution: &str) -> RedisResult {
    let view = c.refresh(ctx);
    let others = other_masters(c, &view);
    let local = local_info(execution);
    if others.is_empty() {
        return match local {
            Some(info) => Ok(RedisValue::Array(vec![render(&c.my_id, &info, 1)])),
            None => Err(RedisError::Str("ERR execution plan does not exist")),
        };
    }
    let op = Op::GetExecution(execution.to_string());
    ask(
        ctx,
        c,
        &others,
        op,
        Some((Kind::Execution(local), Duration::ZERO)),
    );
    Ok(RedisValue::NoReply)
}
