//! Registrations: `RG.TRIGGER`, `RG.TRIGGERONKEY`, `RG.DUMPREGISTRATIONS`, `RG.UNREGISTER`,
//! `RG.PAUSEREGISTRATIONS`, `RG.UNPAUSEREGISTRATIONS`, `RG.CLEARREGISTRATIONSSTATS`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisValue, ThreadSafeContext};

use gears_core::execution::{Execution, ExecutionStatus, Outcome};
use gears_core::readers::Event;
use gears_core::trigger::{ExecutionMode, TriggerSpec};

use crate::runtime::cluster::mgmt::after_registration_change;
use crate::runtime::registered::Registered;
use crate::runtime::reply::to_redis;
use crate::runtime::{runtime, Runtime};
use crate::triggers::keyspace::find_trigger;

/// 1.x's `RG.TRIGGER` reply: the results, or the first error.
fn trigger_reply(execution: &Execution) -> RedisResult {
    if execution.status() == ExecutionStatus::Aborted {
        return Err(RedisError::Str("ERR execution was aborted"));
    }
    let outcome: Arc<Outcome> = execution
        .outcome()
        .ok_or(RedisError::Str("ERR execution finished without an outcome"))?;
    if let Some(first) = outcome.errors.first() {
        return Err(RedisError::String(format!("ERR {first}")));
    }
    Ok(RedisValue::Array(
        outcome.results.iter().cloned().map(to_redis).collect(),
    ))
}

fn trigger(ctx: &Context, name: &str, args: Vec<String>) -> RedisResult {
    let rt = runtime()?;
    let reg = find_trigger(rt, name).ok_or(RedisError::Str("ERR subcommand not found"))?;
    if reg.paused.load(Ordering::Acquire) {
        return Err(RedisError::String(format!(
            "ERR registration {} is paused",
            reg.id
        )));
    }
    let event = Event::Command { args };
    if reg.registration.mode == ExecutionMode::Sync {
        let execution = reg.fire(rt, ctx, event, None);
        return trigger_reply(&execution);
    }
    if ctx
        .get_flags()
        .intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING)
    {
        return Err(RedisError::Str(
            "ERR can not run a non-sync execution inside a MULTI/LUA or from a client that cannot block",
        ));
    }
    let blocked = ctx.block_client();
    reg.fire(
        rt,
        ctx,
        event,
        Some(Box::new(move |execution: &Arc<Execution>| {
            ThreadSafeContext::with_blocked_client(blocked).reply(trigger_reply(execution));
        })),
    );
    Ok(RedisValue::NoReply)
}

pub(crate) fn rg_trigger(ctx: &Context, args: Vec<String>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let name = args[1].clone();
    trigger(ctx, &name, args[1..].to_vec())
}

pub(crate) fn rg_triggeronkey(ctx: &Context, args: Vec<String>) -> RedisResult {
    if args.len() < 3 {
        return Err(RedisError::WrongArity);
    }
    let name = args[1].clone();
    trigger(ctx, &name, args[1..].to_vec())
}

fn describe(rt: &Runtime, reg: &Registered) -> RedisValue {
    let stats = reg.stats().clone();
    let args = match &reg.registration.trigger {
        TriggerSpec::Keys {
            pattern,
            event_types,
            key_types,
            ..
        } => RedisValue::Array(vec![
            "regex".into(),
            pattern.as_str().into(),
            "eventTypes".into(),
            event_types.as_ref().map_or(RedisValue::Null, |e| {
                RedisValue::Array(e.iter().map(|s| s.as_str().into()).collect())
            }),
            "keyTypes".into(),
            key_types.as_ref().map_or(RedisValue::Null, |k| {
                RedisValue::Array(k.iter().map(|t| t.name().into()).collect())
            }),
        ]),
        TriggerSpec::Stream {
            pattern,
            batch,
            duration_ms,
            on_failure,
            trim,
        } => RedisValue::Array(vec![
            "batchSize".into(),
            RedisValue::Integer(*batch as i64),
            "durationMS".into(),
            RedisValue::Integer(*duration_ms as i64),
            "stream".into(),
            pattern.as_str().into(),
            "trimStream".into(),
            RedisValue::Integer(*trim as i64),
            "onFailedPolicy".into(),
            on_failure.name().into(),
            "retryInterval".into(),
            RedisValue::Integer(match on_failure {
                gears_core::trigger::FailurePolicy::Retry(d) => d.as_millis() as i64,
                _ => 0,
            }),
            "consumerGroup".into(),
            reg.stream.as_ref().map_or("", |c| c.group.as_str()).into(),
        ]),
        TriggerSpec::Command { trigger, in_order } => RedisValue::Array(vec![
            "trigger".into(),
            trigger.as_str().into(),
            "inorder".into(),
            RedisValue::Integer(*in_order as i64),
        ]),
    };
    let paused = reg.paused.load(Ordering::Acquire);
    RedisValue::Array(vec![
        "id".into(),
        reg.id.as_str().into(),
        "reader".into(),
        reg.registration.trigger.reader_name().into(),
        "desc".into(),
        if reg.doc.is_empty() {
            RedisValue::Null
        } else {
            reg.doc.into()
        },
        "RegistrationData".into(),
        RedisValue::Array(vec![
            "mode".into(),
            reg.registration.mode.name().into(),
            "numTriggered".into(),
            RedisValue::Integer(stats.triggered as i64),
            "numSuccess".into(),
            RedisValue::Integer(stats.success as i64),
            "numFailures".into(),
            RedisValue::Integer(stats.failures as i64),
            "numAborted".into(),
            RedisValue::Integer(stats.aborted as i64),
            "lastRunDurationMS".into(),
            RedisValue::Float(stats.last_run_ms),
            "totalRunDurationMS".into(),
            RedisValue::Float(stats.total_run_ms),
            "avgRunDurationMS".into(),
            RedisValue::Float(stats.avg_run_ms()),
            "lastError".into(),
            stats
                .last_error
                .map_or(RedisValue::Null, RedisValue::BulkString),
            "status".into(),
            if paused {
                "PAUSED"
            } else {
                reg.stream.as_ref().map_or("OK", |c| c.status_name())
            }
            .into(),
            "args".into(),
            args,
            "extra".into(),
            rt.hooks
                .status(reg.function, &reg.args)
                .map_or(RedisValue::Null, |pairs| {
                    RedisValue::Array(
                        pairs
                            .into_iter()
                            .flat_map(|(k, v)| {
                                [RedisValue::BulkString(k), RedisValue::BulkString(v)]
                            })
                            .collect(),
                    )
                }),
        ]),
        "PD".into(),
        reg.function.into(),
        "ExecutionThreadPool".into(),
        "DefaultPool".into(),
    ])
}

pub(crate) fn rg_dumpregistrations(_: &Context, args: Vec<String>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    let rt = runtime()?;
    Ok(RedisValue::Array(
        rt.registrations().iter().map(|r| describe(rt, r)).collect(),
    ))
}

pub(crate) fn rg_unregister(ctx: &Context, args: Vec<String>) -> RedisResult {
    let id = match args.as_slice() {
        [_, id] => id,
        [_, id, flag] if flag.eq_ignore_ascii_case("abortpending") => id,
        _ => return Err(RedisError::WrongArity),
    };
    let rt = runtime()?;
    let removed = rt.with_registrations_mut(|regs| {
        let before = regs.len();
        regs.retain(|r| {
            let keep = r.id != *id;
            if !keep {
                r.retired.store(true, Ordering::Release);
            }
            keep
        });
        regs.len() != before
    });
    if !removed {
        return Err(RedisError::Str("ERR execution is not registered"));
    }
    ctx.replicate_verbatim();
    after_registration_change(ctx, &args, RedisValue::SimpleStringStatic("OK"), None)
}

fn set_paused(ctx: &Context, args: Vec<String>, paused: bool) -> RedisResult {
    let ids: Vec<&String> = args[1..]
        .iter()
        .filter(|a| !a.eq_ignore_ascii_case("abortpending"))
        .collect();
    if ids.is_empty() {
        return Err(RedisError::WrongArity);
    }
    let rt = runtime()?;
    let regs = rt.registrations();
    // All or nothing: check every id first.
    let found: Vec<&Arc<Registered>> = ids
        .iter()
        .map(|id| {
            regs.iter()
                .find(|r| &r.id == *id)
                .ok_or_else(|| RedisError::String(format!("ERR registration {id} does not exist")))
        })
        .collect::<Result<_, _>>()?;
    for reg in &found {
        reg.paused.store(paused, Ordering::Release);
    }
    if !paused {
        // Entries added to streams while paused were not counted: drain what waits.
        for reg in found {
            crate::triggers::streams::schedule_recovery(reg, rt);
        }
    }
    ctx.replicate_verbatim();
    after_registration_change(ctx, &args, RedisValue::SimpleStringStatic("OK"), None)
}

pub(crate) fn rg_pauseregistrations(ctx: &Context, args: Vec<String>) -> RedisResult {
    set_paused(ctx, args, true)
}

pub(crate) fn rg_unpauseregistrations(ctx: &Context, args: Vec<String>) -> RedisResult {
    set_paused(ctx, args, false)
}

pub(crate) fn rg_clearregistrationsstats(ctx: &Context, args: Vec<String>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    for reg in runtime()?.registrations().iter() {
        *reg.stats() = Default::default();
    }
    after_registration_change(ctx, &args, RedisValue::SimpleStringStatic("OK"), None)
}

/// `RG.REGISTER <function> [ARGS arg ...]`: instantiates a registration function with
/// arguments; replies the registration id.
pub(crate) fn rg_register(ctx: &Context, args: Vec<String>) -> RedisResult {
    let (function, fargs) = match args.as_slice() {
        [_, function] => (function, &[][..]),
        [_, function, kw, rest @ ..] if kw.eq_ignore_ascii_case("ARGS") => (function, rest),
        [_, _, ..] => {
            return Err(RedisError::Str(
                "ERR usage: RG.REGISTER <function> [ARGS arg ...]",
            ))
        }
        _ => return Err(RedisError::WrongArity),
    };
    let entry = gears_core::registry::find(function)
        .ok_or_else(|| RedisError::String(format!("ERR unknown function '{function}'")))?;
    let gears_core::registry::Built::Registration(registration) =
        gears_core::registry::build(function, fargs)?
    else {
        return Err(RedisError::String(format!(
            "ERR '{function}' is a flow, not a registration: run it with RG.RUN"
        )));
    };
    let rt = runtime()?;
    if matches!(registration.trigger, TriggerSpec::Stream { .. }) {
        if let Some(existing) = rt.group_in_use(entry.name, fargs) {
            return Err(RedisError::String(format!(
                "ERR registration {existing} already reads these streams with the same function and ARGS"
            )));
        }
    }
    let id = match crate::runtime::cluster::mgmt::forced_registration_id() {
        // Applied from another master: the same id as there.
        Some(id) => rt.insert_registration(
            id,
            entry.name,
            entry.doc,
            registration,
            fargs.to_vec(),
            false,
        ),
        None => rt.add_registration(entry.name, entry.doc, registration, fargs.to_vec()),
    };
    if crate::runtime::cluster::cluster().is_some()
        && crate::runtime::cluster::mgmt::forced_registration_id().is_none()
    {
        // On a cluster the id travels: replicas and the other masters register it as is.
        let mut inner = vec![id.clone(), entry.name.to_string()];
        if !fargs.is_empty() {
            inner.push("ARGS".to_string());
            inner.extend(fargs.iter().cloned());
        }
        let refs: Vec<&str> = inner.iter().map(String::as_str).collect();
        ctx.replicate("RG.INNERREGISTER", refs.as_slice());
        let mut command = vec!["RG.INNERREGISTER".to_string()];
        command.extend(inner);
        return after_registration_change(ctx, &command, RedisValue::BulkString(id), None);
    }
    ctx.replicate_verbatim();
    after_registration_change(ctx, &args, RedisValue::BulkString(id.clone()), Some(id))
}

/// `RG.INNERREGISTER <id> <function> [ARGS ...]`: `RG.REGISTER` with the id its origin gave
/// it, as replicas and other masters of a cluster receive it. Refused from clients.
pub(crate) fn rg_innerregister(ctx: &Context, args: Vec<String>) -> RedisResult {
    let [_, id, function, rest @ ..] = args.as_slice() else {
        return Err(RedisError::WrongArity);
    };
    let trusted = ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
        || crate::runtime::cluster::mgmt::applying_remote();
    if !trusted {
        return Err(RedisError::Str(
            "ERR RG.INNERREGISTER is internal (replication and cluster messages only)",
        ));
    }
    let mut register = vec!["RG.REGISTER".to_string(), function.clone()];
    register.extend(rest.iter().cloned());
    crate::runtime::cluster::mgmt::with_forced_id(id.clone(), || rg_register(ctx, register))
}
