//! Executions: `RG.GETRESULTS`, `RG.GETRESULTSBLOCKING`, `RG.GETEXECUTION`,
//! `RG.DUMPEXECUTIONS`, `RG.DROPEXECUTION`, `RG.ABORTEXECUTION`.

use std::sync::Arc;
use std::time::Duration;

use redis_module::{Context, RedisError, RedisResult, RedisValue, ThreadSafeContext};

use gears_core::execution::{Execution, ExecutionStatus};

use super::results_reply;
use crate::runtime::runtime;

/// How long `RG.GETRESULTSBLOCKING` waits (1.x waits about as long).
const BLOCKING_WAIT: Duration = Duration::from_secs(1000);

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

pub(crate) fn rg_getresults(_: &Context, args: Vec<String>) -> RedisResult {
    let execution = find(one_id(&args)?)?;
    if !execution.is_finished() {
        return Err(RedisError::Str("ERR execution is still running"));
    }
    finished_reply(&execution)
}

pub(crate) fn rg_getresultsblocking(ctx: &Context, args: Vec<String>) -> RedisResult {
    let execution = find(one_id(&args)?)?;
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

fn ms(d: Duration) -> RedisValue {
    RedisValue::Float(d.as_secs_f64() * 1000.0)
}

pub(crate) fn rg_getexecution(_: &Context, args: Vec<String>) -> RedisResult {
    let id = match args.as_slice() {
        [_, id] => id,
        [_, id, mode] if matches!(mode.to_ascii_uppercase().as_str(), "SHARD" | "CLUSTER") => id,
        [_, _, mode] => {
            return Err(RedisError::String(format!(
                "ERR unknown mode '{mode}': expected SHARD or CLUSTER"
            )))
        }
        _ => return Err(RedisError::WrongArity),
    };
    let rt = runtime()?;
    let executions = rt.executions();
    let entry = executions
        .get(id)
        .ok_or(RedisError::Str("ERR execution plan does not exist"))?;
    let execution = &entry.execution;
    let outcome = execution.outcome();
    let stats = outcome
        .as_ref()
        .map(|o| o.steps.clone())
        .unwrap_or_default();
    // Steps are listed last first, as 1.x does.
    let steps: Vec<RedisValue> = entry
        .steps
        .iter()
        .enumerate()
        .rev()
        .map(|(i, info)| {
            let s = stats.get(i).map(|(_, s)| *s).unwrap_or_default();
            RedisValue::Array(vec![
                "type".into(),
                info.kind.into(),
                "duration".into(),
                ms(s.duration),
                "name".into(),
                info.kind.into(),
                "arg".into(),
                entry.function.as_str().into(),
                "records".into(),
                RedisValue::Integer(s.records_out as i64),
            ])
        })
        .collect();
    let plan = RedisValue::Array(vec![
        "status".into(),
        execution.status().name().into(),
        "shards_received".into(),
        RedisValue::Integer(1),
        "shards_completed".into(),
        RedisValue::Integer(execution.is_finished() as i64),
        "results".into(),
        RedisValue::Integer(outcome.as_ref().map_or(-1, |o| o.results.len() as i64)),
        "errors".into(),
        RedisValue::Array(
            outcome
                .as_ref()
                .map(|o| {
                    o.errors
                        .iter()
                        .map(|e| RedisValue::BulkString(e.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "total_duration".into(),
        ms(outcome.as_ref().map(|o| o.duration).unwrap_or_default()),
        "read_duration".into(),
        ms(stats.first().map(|(_, s)| s.duration).unwrap_or_default()),
        "steps".into(),
        RedisValue::Array(steps),
    ]);
    Ok(RedisValue::Array(vec![RedisValue::Array(vec![
        "shard_id".into(),
        rt.shard.0.as_str().into(),
        "execution_plan".into(),
        plan,
    ])]))
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

pub(crate) fn rg_dropexecution(_: &Context, args: Vec<String>) -> RedisResult {
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
    Ok(RedisValue::SimpleStringStatic("OK"))
}

pub(crate) fn rg_abortexecution(_: &Context, args: Vec<String>) -> RedisResult {
    let id = one_id(&args)?;
    let execution = find(id).map_err(|_| RedisError::Str("ERR execution does not exist"))?;
    execution.abort();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
