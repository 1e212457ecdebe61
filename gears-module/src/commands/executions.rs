//! Executions: `RG.GETRESULTS`, `RG.GETRESULTSBLOCKING`, `RG.GETEXECUTION`,
//! `RG.DUMPEXECUTIONS`, `RG.DROPEXECUTION`, `RG.ABORTEXECUTION`.

use std::sync::Arc;

use redis_module::{Context, RedisError, RedisResult, RedisValue, ThreadSafeContext};

use gears_core::execution::{Execution, ExecutionStatus};

use crate::runtime::cluster::results::BLOCKING_WAIT;
use crate::runtime::reply::results_reply;
use crate::runtime::runtime;

fn one_id(args: &[String]) -> Result<&str, RedisError> {
    match args {
        [_, id] => Ok(id),
        _ => Err(RedisError::WrongArity),
    }
}

fn find(id: &str) -> Result<Arc<Execution>, RedisError> {
    runtime()?
        .executions()
        .get(id)
        .map(|e| e.execution.clone())
        .ok_or(RedisError::Str("ERR execution plan does not exist"))
}

fn finished_reply(execution: &Execution) -> RedisResult {
    if execution.status() == ExecutionStatus::Aborted {
        return Err(RedisError::Str("ERR execution was aborted"));
    }
    let outcome = execution
        .outcome()
        .ok_or(RedisError::Str("ERR execution is still running"))?;
    Ok(results_reply(&outcome))
}

/// Results of an execution another master started are there: asked of it (`blocking`: it
/// answers once the execution finished). `None` for this node's executions.
fn from_origin(ctx: &Context, id: &str, blocking: bool) -> Option<RedisResult> {
    let cluster = crate::runtime::cluster::cluster()?;
    crate::runtime::cluster::mgmt::get_results_remote(ctx, cluster, id, blocking)
}

pub(crate) fn rg_getresults(ctx: &Context, args: Vec<String>) -> RedisResult {
    let id = one_id(&args)?;
    if let Some(reply) = from_origin(ctx, id, false) {
        return reply;
    }
    let execution = find(id)?;
    if !execution.is_finished() {
        return Err(RedisError::Str("ERR execution is still running"));
    }
    finished_reply(&execution)
}

pub(crate) fn rg_getresultsblocking(ctx: &Context, args: Vec<String>) -> RedisResult {
    let id = one_id(&args)?;
    if let Some(reply) = from_origin(ctx, id, true) {
        return reply;
    }
    let execution = find(id)?;
    if execution.is_finished() {
        return finished_reply(&execution);
    }
    if ctx.get_flags().intersects(
        redis_module::ContextFlags::MULTI
            | redis_module::ContextFlags::LUA
            | redis_module::ContextFlags::DENY_BLOCKING,
    ) {
        return Err(RedisError::Str(
            "ERR execution is still running; this client cannot block (MULTI/Lua/module call): use RG.GETRESULTS",
        ));
    }
    let blocked = ctx.block_client();
    std::thread::Builder::new()
        .name("gears-wait".into())
        .spawn(move || {
            let reply = match execution.wait(BLOCKING_WAIT) {
                Some(_) => finished_reply(&execution),
                None => Err(RedisError::Str("ERR timed out waiting for the execution")),
            };
            ThreadSafeContext::with_blocked_client(blocked).reply(reply);
        })
        .map_err(|e| RedisError::String(format!("ERR cannot start a waiting thread: {e}")))?;
    Ok(RedisValue::NoReply)
}

pub(crate) fn rg_getexecution(ctx: &Context, args: Vec<String>) -> RedisResult {
    let (id, cluster_mode) = match args.as_slice() {
        [_, id] => (id, false),
        [_, id, mode] if mode.eq_ignore_ascii_case("SHARD") => (id, false),
        [_, id, mode] if mode.eq_ignore_ascii_case("CLUSTER") => (id, true),
        [_, _, mode] => {
            return Err(RedisError::String(format!(
                "ERR unknown mode '{mode}': expected SHARD or CLUSTER"
            )))
        }
        _ => return Err(RedisError::WrongArity),
    };
    let rt = runtime()?;
    if let (true, Some(cluster)) = (cluster_mode, crate::runtime::cluster::cluster()) {
        return crate::runtime::cluster::mgmt::get_execution(ctx, cluster, id);
    }
    let info = crate::runtime::cluster::mgmt::local_info(id)
        .ok_or(RedisError::Str("ERR execution plan does not exist"))?;
    Ok(RedisValue::Array(vec![
        crate::runtime::cluster::mgmt::render(&rt.shard.0, &info, 1),
    ]))
}

pub(crate) fn rg_dumpexecutions(_: &Context, args: Vec<String>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    let rt = runtime()?;
    let list = rt
        .executions()
        .iter()
        .map(|e| {
            RedisValue::Array(vec![
                "executionId".into(),
                e.execution.id().0.as_str().into(),
                "status".into(),
                e.execution.status().name().into(),
                "registered".into(),
                RedisValue::Integer(0),
            ])
        })
        .collect();
    Ok(RedisValue::Array(list))
}

pub(crate) fn rg_dropexecution(ctx: &Context, args: Vec<String>) -> RedisResult {
    let id = one_id(&args)?;
    let rt = runtime()?;
    let mut executions = rt.executions();
    let entry = executions
        .get(id)
        .ok_or(RedisError::Str("ERR execution plan does not exist"))?;
    if !entry.execution.is_finished() {
        return Err(RedisError::Str(
            "ERR can not drop a not yet finished execution, abort it first.",
        ));
    }
    executions.remove(id);
    drop(executions);
    if let Some(cluster) = crate::runtime::cluster::cluster() {
        // Every other master forgets its part too.
        cluster.broadcast(
            ctx,
            |execution| gears_core::distributed::wire::Body::Drop { execution },
            id,
        );
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub(crate) fn rg_abortexecution(ctx: &Context, args: Vec<String>) -> RedisResult {
    let id = one_id(&args)?;
    if let Some(cluster) = crate::runtime::cluster::cluster() {
        // A distributed execution is aborted on every shard.
        if cluster.abort(ctx, id) {
            return Ok(RedisValue::SimpleStringStatic("OK"));
        }
    }
    let execution = find(id).map_err(|_| RedisError::Str("ERR execution does not exist"))?;
    execution.abort();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
