//! `RG.RUN <function> [UNBLOCKING] [ARGS arg ...]`: runs a registered flow.

use std::sync::Arc;

use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisValue, ThreadSafeContext};

use gears_core::execution::{Execution, ExecutionStatus};
use gears_core::executor::{plan_job, OnDone};
use gears_core::registry::{self, Built};

use crate::runtime::reply::results_reply;
use crate::runtime::{runtime, Entry};

struct RunRequest {
    function: String,
    unblocking: bool,
    args: Vec<String>,
}

fn parse(args: Vec<String>) -> Result<RunRequest, RedisError> {
    let mut it = args.into_iter().skip(1);
    let function = it.next().ok_or(RedisError::WrongArity)?;
    let mut unblocking = false;
    let mut fargs = Vec::new();
    while let Some(word) = it.next() {
        match word.to_ascii_uppercase().as_str() {
            "UNBLOCKING" if !unblocking => unblocking = true,
            "ARGS" => {
                fargs.extend(it.by_ref());
            }
            _ => {
                return Err(RedisError::String(format!(
                    "ERR unexpected argument '{word}': usage RG.RUN <function> [UNBLOCKING] [ARGS arg ...]"
                )))
            }
        }
    }
    Ok(RunRequest {
        function,
        unblocking,
        args: fargs,
    })
}

pub(crate) fn rg_run(ctx: &Context, args: Vec<String>) -> RedisResult {
    let request = parse(args)?;
    let rt = runtime()?;
    if !request.unblocking
        && ctx
            .get_flags()
            .intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING)
    {
        return Err(RedisError::Str(
            "ERR can not run a blocking execution inside MULTI/Lua; use RG.RUN <function> UNBLOCKING",
        ));
    }
    let Built::Flow(plan) = registry::build(&request.function, &request.args)? else {
        return Err(RedisError::String(format!(
            "ERR '{}' is a registration (fired by its events), not a flow to run",
            request.function
        )));
    };
    // On a Redis Cluster every master runs the flow (see `gears_core::distributed`); the
    // topology is read now, so a failover needs no manual refresh.
    let cluster = match crate::runtime::cluster::cluster() {
        Some(c) => {
            let view = c.refresh(ctx);
            if view.me.is_none() {
                return Err(RedisError::String(format!(
                    "ERR node {} is not a master owning slots: send RG.RUN to a master",
                    c.my_id
                )));
            }
            Some((c, view))
        }
        None => None,
    };
    let execution = Execution::new(rt.next_id());
    let id = execution.id().0.clone();
    let (profile, max) = {
        let c = rt.config();
        (c.profile_executions, c.max_executions)
    };
    rt.executions().insert(
        Entry {
            execution: execution.clone(),
            function: request.function.clone(),
            steps: plan.steps().to_vec(),
        },
        max,
    );
    rt.executions_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let on_done: OnDone = if request.unblocking {
        Box::new(|_: &Arc<Execution>| {
            if let Ok(rt) = runtime() {
                let max = rt.config().max_executions;
                rt.executions().enforce(max);
            }
        })
    } else {
        let blocked = ctx.block_client();
        Box::new(move |execution: &Arc<Execution>| {
            // A blocking run is dropped once its client has the reply (1.x behaviour).
            if let Ok(rt) = runtime() {
                rt.executions().remove(&execution.id().0);
            }
            let reply = match execution.outcome() {
                _ if execution.status() == ExecutionStatus::Aborted => {
                    Err(RedisError::Str("ERR execution was aborted"))
                }
                Some(outcome) => Ok(results_reply(&outcome)),
                None => Err(RedisError::Str("ERR execution finished without an outcome")),
            };
            let tctx = ThreadSafeContext::with_blocked_client(blocked);
            tctx.reply(reply);
        })
    };
    let reply = if request.unblocking {
        RedisValue::BulkString(id)
    } else {
        RedisValue::NoReply
    };
    if let Some((cluster, view)) = cluster {
        let launch = crate::runtime::cluster::Launch {
            function: request.function,
            args: request.args,
            registration: false,
            plan,
            event: None,
            execution,
            on_done: Some(on_done),
            profile,
            keep: request.unblocking,
            queue: None,
        };
        cluster
            .launch(ctx, &view, launch)
            .map_err(|e| RedisError::String(format!("ERR {e}")))?;
        return Ok(reply);
    }
    let job = plan_job(plan, Arc::new(rt.host.clone()), None, profile);
    rt.executor.lane().submit(execution, job, Some(on_done));
    Ok(reply)
}
