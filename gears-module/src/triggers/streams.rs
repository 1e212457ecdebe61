//! `StreamReader` registrations. Each registration reads through **its own consumer group**
//! (`gears:<function>[:<args>]`), so two registrations on one stream each see every entry
//! (1.x shared one group: issues #380, #787). New entries are counted by the `xadd`
//! notification; once `batch` are waiting (or `duration` after the first one) a drain job is
//! queued on the registration's lane. A drain reads this consumer's pending entries first
//! (after a failure, a restart or a promotion), then new ones, `batch` at a time; each batch is
//! one execution, acknowledged (`XACK`) after it ran, per the failure policy.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis_module::{Context, ContextFlags};

use gears_core::bytes::RedisBytes;
use gears_core::error::GearsError;
use gears_core::execution::{Execution, Outcome};
use gears_core::host::{Host, StreamEntry, StreamId};
use gears_core::plan::RunOptions;
use gears_core::readers::Event;
use gears_core::trigger::{FailurePolicy, TriggerSpec};
use gears_core::value::Value;

use crate::runtime::host::{call, RedisHost};
use crate::runtime::registered::{Registered, STATUS_ABORTED, STATUS_OK, STATUS_RETRYING};
use crate::runtime::Runtime;

/// The consumer name inside each registration's group.
const CONSUMER: &str = "gears";

fn settings(reg: &Registered) -> (usize, u64, FailurePolicy, bool) {
    match &reg.registration.trigger {
        TriggerSpec::Stream {
            batch,
            duration_ms,
            on_failure,
            trim,
            ..
        } => (*batch, *duration_ms, *on_failure, *trim),
        _ => (1, 0, FailurePolicy::Continue, false),
    }
}

/// An `xadd` on `key` (main thread, inside the notification): count it, and queue a drain
/// or arm the duration timer.
pub(crate) fn on_new_entry(reg: &Arc<Registered>, rt: &Runtime, ctx: &Context, key: &[u8]) {
    let Some(consumer) = reg.stream.as_ref() else {
        return;
    };
    if consumer.status.load(Ordering::Acquire) == STATUS_ABORTED
        || reg.retired.load(Ordering::Acquire)
    {
        return;
    }
    let (batch, duration_ms, _, _) = settings(reg);
    let mut keys = consumer.keys();
    let state = keys.entry(key.into()).or_default();
    state.waiting += 1;
    if state.scheduled {
        return; // the running drain reads it
    }
    if state.waiting >= batch {
        state.scheduled = true;
        state.waiting = 0;
        drop(keys);
        schedule_drain(reg, rt, key);
    } else if duration_ms > 0 && !state.timer {
        state.timer = true;
        drop(keys);
        ctx.create_timer(
            Duration::from_millis(duration_ms),
            on_duration_elapsed,
            (reg.clone(), RedisBytes::from(key)),
        );
    }
}

/// The duration timer (main thread): drain whatever is waiting.
fn on_duration_elapsed(_: &Context, (reg, key): (Arc<Registered>, RedisBytes)) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        duration_elapsed(&reg, &key)
    }));
}

fn duration_elapsed(reg: &Arc<Registered>, key: &RedisBytes) {
    let Ok(rt) = crate::runtime::runtime() else {
        return;
    };
    let Some(consumer) = reg.stream.as_ref() else {
        return;
    };
    if reg.retired.load(Ordering::Acquire) {
        return;
    }
    let key = key.clone();
    let mut keys = consumer.keys();
    let state = keys.entry(key.clone()).or_default();
    state.timer = false;
    if !state.scheduled && state.waiting > 0 {
        state.scheduled = true;
        state.waiting = 0;
        drop(keys);
        schedule_drain(reg, rt, &key);
    }
}

/// Queues a drain of `key` on the registration's lane (also used to resume pending entries).
pub(crate) fn schedule_drain(reg: &Arc<Registered>, rt: &Runtime, key: &[u8]) {
    if reg.retired.load(Ordering::Acquire) {
        return;
    }
    let execution = Execution::new(rt.next_id());
    let host = rt.host.clone();
    let profile = rt.config().profile_executions;
    let key = RedisBytes::from(key);
    let (this, this2, key2) = (reg.clone(), reg.clone(), key.clone());
    reg.note_triggered();
    reg.lane.submit(
        execution,
        Box::new(move |execution: &Execution| drain(&this, &host, &key, execution, profile)),
        Some(Box::new(move |execution: &Arc<Execution>| {
            if let Some(outcome) = execution.outcome() {
                this2.record(execution.status(), &outcome);
            }
            let Some(consumer) = this2.stream.as_ref() else {
                return;
            };
            let again = {
                let mut keys = consumer.keys();
                let state = keys.entry(key2.clone()).or_default();
                state.scheduled = state.waiting > 0;
                if state.scheduled {
                    state.waiting = 0;
                }
                let again = state.scheduled;
                if !again && !state.timer {
                    keys.remove(&key2); // nothing waits: forget the key
                }
                again
            };
            // Entries that arrived while draining and were not read get their own drain.
            if again && consumer.status.load(Ordering::Acquire) != STATUS_ABORTED {
                if let Ok(rt) = crate::runtime::runtime() {
                    schedule_drain(&this2, rt, &key2);
                }
            }
        })),
    );
}

/// The entries of an XREADGROUP reply, and the ids of pending entries deleted since they
/// were read (`[id, nil]`: nothing to run, only to acknowledge).
fn entries_of(reply: Value) -> (Vec<StreamEntry>, Vec<String>) {
    let bytes = |v: &Value| match v {
        Value::Bulk(b) => RedisBytes::from(b.as_slice()),
        _ => RedisBytes::default(),
    };
    // [[key, [[id, [f, v, ...] | nil], ...]]] or nil
    let Value::Array(streams) = reply else {
        return (Vec::new(), Vec::new());
    };
    let mut out = Vec::new();
    let mut deleted = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        let Some(Value::Array(entries)) = parts.pop() else {
            continue;
        };
        for entry in entries {
            let Value::Array(mut e) = entry else { continue };
            if e.len() != 2 {
                continue;
            }
            let fields = match e.pop() {
                Some(Value::Nil) => {
                    if let Some(id) = e.pop().and_then(|v| v.as_str().map(str::to_string)) {
                        deleted.push(id);
                    }
                    continue;
                }
                Some(Value::Array(f)) => f
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| (bytes(&c[0]), bytes(&c[1])))
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(id) = e.pop().and_then(|v| v.as_str().and_then(StreamId::parse)) {
                out.push(StreamEntry { id, fields });
            }
        }
    }
    (out, deleted)
}

/// `XREADGROUP` for this registration's consumer: `from` is `0` (its pending entries) or `>`
/// (new ones).
fn read_group(
    ctx: &Context,
    key: &[u8],
    group: &str,
    count: &str,
    from: &str,
) -> Result<Value, GearsError> {
    Ok(call::<[u8]>(
        ctx,
        &[
            b"XREADGROUP",
            b"GROUP",
            group.as_bytes(),
            CONSUMER.as_bytes(),
            b"COUNT",
            count.as_bytes(),
            b"STREAMS",
            key,
            from.as_bytes(),
        ],
        true,
    )?)
}

/// `XACK`s `ids` (and `XDEL`s them when the registration trims and its group is the only one
/// on `key`). `ctx` holds the Redis lock.
fn ack(
    ctx: &Context,
    key: &[u8],
    group: &str,
    ids: &[String],
    trim: bool,
) -> Result<(), GearsError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut args: Vec<&[u8]> = vec![b"XACK", key, group.as_bytes()];
    args.extend(ids.iter().map(String::as_bytes));
    call(ctx, &args, true)?;
    if trim && only_group(ctx, key)? {
        args[0] = b"XDEL";
        args.remove(2);
        call(ctx, &args, true)?;
    }
    Ok(())
}

/// What one turn of a drain found.
enum Turn {
    /// Unregistered, paused or demoted: stop; what is unread or pending stays for later.
    Stop,
    /// Nothing pending, nothing new.
    Empty,
    /// Pending entries deleted since they were read, acknowledged; read again.
    OnlyDeleted,
    /// Entries to run.
    Entries(Vec<StreamEntry>),
}

/// One turn of a drain, under **one** hold of the Redis lock (each hold from a worker thread
/// is a handoff with the main thread, which waits meanwhile): acknowledge the batch that just
/// ran (`done`), check the registration is still to drain here, then read this consumer's
/// pending entries (after a failure, a restart, a promotion) or else new ones.
#[allow(clippy::too_many_arguments)]
fn turn(
    reg: &Registered,
    host: &RedisHost,
    key: &[u8],
    group: &str,
    count: &str,
    done: &[String],
    trim: bool,
    create_group: bool,
) -> Result<Turn, GearsError> {
    host.with_ctx(|ctx| {
        if create_group {
            if let Err(e) = call::<[u8]>(
                ctx,
                &[
                    b"XGROUP",
                    b"CREATE",
                    key,
                    group.as_bytes(),
                    b"0",
                    b"MKSTREAM",
                ],
                true,
            ) {
                if !e.message.starts_with("BUSYGROUP") {
                    return Err(e.into());
                }
            }
        }
        ack(ctx, key, group, done, trim)?;
        if reg.retired.load(Ordering::Acquire)
            || reg.paused.load(Ordering::Acquire)
            || ctx.get_flags().contains(ContextFlags::SLAVE)
        {
            return Ok(Turn::Stop);
        }
        let (entries, deleted) = entries_of(read_group(ctx, key, group, count, "0")?);
        ack(ctx, key, group, &deleted, false)?;
        if !entries.is_empty() {
            return Ok(Turn::Entries(entries));
        }
        if !deleted.is_empty() {
            return Ok(Turn::OnlyDeleted);
        }
        let entries = entries_of(read_group(ctx, key, group, count, ">")?).0;
        Ok(if entries.is_empty() {
            Turn::Empty
        } else {
            Turn::Entries(entries)
        })
    })
}

/// Reads and runs batches until nothing is pending or new (worker thread).
fn drain(
    reg: &Registered,
    host: &RedisHost,
    key: &RedisBytes,
    execution: &Execution,
    profile: bool,
) -> Result<Outcome, GearsError> {
    let Some(consumer) = reg.stream.as_ref() else {
        return Ok(Outcome::default());
    };
    let (batch, _, policy, trim) = settings(reg);
    let group = consumer.group.as_str();
    let count = batch.to_string();
    let mut outcome = Outcome::default();
    // The ids of the batch that ran, acknowledged at the start of the next turn.
    let mut done: Vec<String> = Vec::new();
    let mut first = true;
    loop {
        if execution.abort_requested() {
            host.with_ctx(|ctx| ack(ctx, key, group, &done, trim))?;
            return Err(GearsError::Aborted);
        }
        let entries = match turn(reg, host, key, group, &count, &done, trim, first)? {
            Turn::Stop | Turn::Empty => return Ok(outcome),
            Turn::OnlyDeleted => {
                done.clear();
                first = false;
                continue;
            }
            Turn::Entries(entries) => entries,
        };
        done.clear();
        first = false;
        let ids: Vec<String> = entries.iter().map(|e| e.id.to_string()).collect();
        let options = RunOptions::for_execution(execution.abort_flag(), profile);
        let event = Event::Stream {
            key: key.clone(),
            entries,
        };
        // An engine failure (a host error, say) counts as a failed batch under the policy.
        let run =
            match reg
                .registration
                .plan
                .run_with(Arc::new(host.clone()), Some(event), &options)
            {
                Ok(run) => run,
                Err(GearsError::Aborted) => return Err(GearsError::Aborted),
                Err(e) => gears_core::plan::RunResult {
                    results: Vec::new(),
                    errors: vec![gears_core::error::StepError::new(
                        "execution",
                        e.to_string(),
                    )],
                    stats: Vec::new(),
                },
            };
        let failed = !run.errors.is_empty();
        outcome.results.extend(run.results);
        outcome
            .errors
            .extend(run.errors.iter().map(ToString::to_string));
        if failed {
            match policy {
                FailurePolicy::Continue => {}
                FailurePolicy::Abort => {
                    consumer.status.store(STATUS_ABORTED, Ordering::Release);
                    return Ok(outcome); // the batch stays pending
                }
                FailurePolicy::Retry(interval) => {
                    consumer.status.store(STATUS_RETRYING, Ordering::Release);
                    std::thread::sleep(interval);
                    consumer.status.store(STATUS_OK, Ordering::Release);
                    continue; // re-read the same pending batch
                }
            }
        }
        done = ids;
    }
}

/// Whether this registration's group is the only one on `key` (trimming is safe then).
fn only_group(ctx: &Context, key: &[u8]) -> Result<bool, GearsError> {
    match call::<[u8]>(ctx, &[b"XINFO", b"GROUPS", key], false)? {
        Value::Array(groups) => Ok(groups.len() == 1),
        _ => Ok(false),
    }
}

/// Drains the pending entries of every stream this registration reads (after a restart or a
/// promotion): scans for matching streams on the registration's lane, then drains each.
pub(crate) fn schedule_recovery(reg: &Arc<Registered>, rt: &Runtime) {
    let TriggerSpec::Stream { pattern, .. } = &reg.registration.trigger else {
        return;
    };
    if reg.retired.load(Ordering::Acquire) {
        return;
    };
    let pattern = pattern.clone();
    let execution = Execution::new(rt.next_id());
    let host = rt.host.clone();
    let profile = rt.config().profile_executions;
    let this = reg.clone();
    reg.lane.submit(
        execution,
        Box::new(move |execution: &Execution| {
            let mut outcome = Outcome::default();
            let mut cursor = "0".to_string();
            loop {
                let reply = host.call(&[
                    "SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000", "TYPE", "stream",
                ])?;
                let Value::Array(mut parts) = reply else {
                    break;
                };
                let keys = match parts.pop() {
                    Some(Value::Array(keys)) => keys,
                    _ => Vec::new(),
                };
                for key in keys {
                    let Value::Bulk(key) = key else { continue };
                    let drained = drain(&this, &host, &key.into(), execution, profile)?;
                    outcome.results.extend(drained.results);
                    outcome.errors.extend(drained.errors);
                }
                cursor = parts
                    .pop()
                    .and_then(|c| c.as_str().map(str::to_string))
                    .unwrap_or_default();
                if cursor == "0" || cursor.is_empty() {
                    break;
                }
            }
            Ok(outcome)
        }),
        None,
    );
}

/// Schedules recovery for every stream registration, on a primary only.
pub(crate) fn recover_all(ctx: &Context) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Ok(rt) = crate::runtime::runtime() else {
            return;
        };
        if ctx.get_flags().contains(redis_module::ContextFlags::SLAVE) {
            return;
        }
        for reg in rt.registrations().iter() {
            if reg.stream.is_some()
                && reg
                    .stream
                    .as_ref()
                    .is_some_and(|c| c.status.load(Ordering::Acquire) != STATUS_ABORTED)
            {
                schedule_recovery(reg, rt);
            }
        }
    }));
}

#[redis_module_macros::loading_event_handler]
fn on_loading(ctx: &Context, subevent: redis_module::server_events::LoadingSubevent) {
    if subevent == redis_module::server_events::LoadingSubevent::Ended {
        recover_all(ctx);
    }
}

#[redis_module_macros::role_changed_event_handler]
fn on_role_changed(ctx: &Context, role: redis_module::server_events::ServerRole) {
    if role == redis_module::server_events::ServerRole::Primary {
        recover_all(ctx);
    }
}
