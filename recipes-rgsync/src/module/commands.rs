//! `RGSYNC.ADD`, `RGSYNC.REMOVE`, `RGSYNC.LIST`, `RGSYNC.STATUS`. Errors become `ERR …`
//! replies here, once; a panic becomes an error reply, never a crash.
//!
//! ```text
//! RGSYNC.ADD users KEY user:{id:integer} TABLE users COLUMNS "name age:integer" \
//!     CONNECTION "Driver={SQLite3};Database=/tmp/app.db" CREATE_TABLE yes   -> OK
//! RGSYNC.LIST            -> one [name, value, ...] array per job (connection secrets masked)
//! RGSYNC.STATUS [job]    -> backlog, lag, rows, dead letters, retries, last error ...
//! RGSYNC.REMOVE users    -> OK (the stream stays: adding the job again resumes it)
//! ```
//!
//! `RGSYNC.ADD` and `RGSYNC.REMOVE` are write commands replicated verbatim (replicas, AOF);
//! jobs are also saved with the RDB. On a Redis Cluster master they apply on every master
//! (`gears::api::fan_out`) and reply `[[shard id, OK or error], ...]`, this shard first.
//! `RGSYNC.ADD`'s arguments after the job name are redacted from SLOWLOG and MONITOR.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use gears::command::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::jobs::{self, Job};
use crate::config::JobConfig;

fn guarded(
    ctx: &Context,
    args: Vec<RedisString>,
    f: fn(&Context, Vec<String>) -> RedisResult,
) -> RedisResult {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    catch_unwind(AssertUnwindSafe(|| f(ctx, args))).unwrap_or_else(|_| {
        Err(RedisError::Str(
            "ERR internal error in rgsync (panic caught)",
        ))
    })
}

/// Redacts arguments 2.. of the command being run (0 is the command, 1 the job name).
fn redact_after_name(ctx: &Context, argc: usize) {
    for pos in 2..argc {
        // Before Redis 7.0 nothing can be redacted; the command still runs.
        if gears::api::redact_argument(ctx, pos).is_err() {
            break;
        }
    }
}

fn err(e: impl std::fmt::Display) -> RedisError {
    RedisError::String(format!("ERR {e}"))
}

/// `RGSYNC.ADD <job> KEY <pattern> TABLE <table> CONNECTION <odbc> [COLUMNS "<f[=col][:type]> ..."] [option value ...]`
pub fn rgsync_add(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    // Every word after the job name may be the connection string (CONNECTION's value, or a
    // misplaced word of a malformed command): SLOWLOG and MONITOR show `(redacted)` instead,
    // whether the command succeeds or not. Also when another master applies it (fan-out goes
    // through this handler). Replication and the AOF still carry the real arguments.
    redact_after_name(ctx, args.len());
    guarded(ctx, args, |ctx, args| {
        if args.len() < 2 {
            return Err(RedisError::WrongArity);
        }
        // An error may quote a misplaced word, the connection string included.
        let config = JobConfig::parse_args(&args[1..])
            .map_err(|e| err(crate::secrets::mask_secrets_in_text(&e.to_string())))?;
        // A command a master already accepted (replication, AOF) is not checked again: a
        // replica need not reach the database. Every master checks its own connection.
        if !gears::command::is_replayed(ctx) {
            crate::validate::check(&config)
                .map_err(|e| err(crate::secrets::mask_secrets_in_text(&e.to_string())))?;
        }
        let name = config.name.clone();
        jobs::add(config, false).map_err(err)?;
        jobs::resume(ctx, &name);
        ctx.replicate_verbatim();
        ctx.log_notice(&format!("rgsync: job '{name}' added"));
        gears::api::fan_out(ctx, &args, RedisValue::SimpleStringStatic("OK"))
    })
}

/// `RGSYNC.REMOVE <job>`
pub fn rgsync_remove(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, args, |ctx, args| {
        let [_, name] = args.as_slice() else {
            return Err(RedisError::WrongArity);
        };
        if !jobs::remove(name) {
            return Err(err(format!("no such job '{name}'")));
        }
        ctx.replicate_verbatim();
        ctx.log_notice(&format!("rgsync: job '{name}' removed"));
        gears::api::fan_out(ctx, &args, RedisValue::SimpleStringStatic("OK"))
    })
}

fn pairs(items: Vec<(&str, RedisValue)>) -> RedisValue {
    RedisValue::Array(
        items
            .into_iter()
            .flat_map(|(k, v)| [RedisValue::BulkString(k.to_string()), v])
            .collect(),
    )
}

/// `RGSYNC.LIST`
pub fn rgsync_list(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, args, |_, args| {
        if args.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        Ok(RedisValue::Array(
            jobs::all()
                .iter()
                .map(|j| {
                    pairs(
                        j.config
                            .describe()
                            .into_iter()
                            .map(|(k, v)| (k, RedisValue::BulkString(v)))
                            .collect(),
                    )
                })
                .collect(),
        ))
    })
}

fn int(ctx: &Context, cmd: &str, args: &[&str]) -> i64 {
    match ctx.call(cmd, args) {
        Ok(RedisValue::Integer(n)) => n,
        _ => 0,
    }
}

/// Age in ms of the oldest entry still in `stream` (0 if empty).
fn oldest_age_ms(ctx: &Context, stream: &str) -> u64 {
    let Ok(RedisValue::Array(entries)) = ctx.call("XRANGE", &[stream, "-", "+", "COUNT", "1"])
    else {
        return 0;
    };
    let id = match entries.first() {
        Some(RedisValue::Array(e)) => match e.first() {
            Some(RedisValue::BulkString(s)) | Some(RedisValue::SimpleString(s)) => s.clone(),
            Some(RedisValue::BulkRedisString(s)) => s.to_string_lossy(),
            _ => return 0,
        },
        _ => return 0,
    };
    let ms: u64 = id
        .split('-')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now.saturating_sub(ms)
}

fn opt(s: Option<String>) -> RedisValue {
    s.map_or(RedisValue::Null, RedisValue::BulkString)
}

fn status_of(ctx: &Context, job: &Job) -> RedisValue {
    let s = job.stats().clone();
    let cleared = s.last_error.is_some() && s.last_commit_at_ms >= s.last_error_at_ms;
    let tag = job.tag().unwrap_or("0").to_string();
    let stream = job.stream(&tag);
    let dlq = job.dead_letters(&tag);
    let backlog = int(ctx, "XLEN", &[&stream]);
    let capture = gears::api::find(jobs::CAPTURE, std::slice::from_ref(&job.config.name))
        .first()
        .and_then(|id| gears::api::stats(id));
    let state = if job.stopped() {
        "removed"
    } else if s.retrying && s.failed {
        "failed"
    } else if s.retrying {
        "retrying"
    } else if backlog > 0 {
        "draining"
    } else {
        "idle"
    };
    pairs(vec![
        ("name", RedisValue::BulkString(job.config.name.clone())),
        ("state", RedisValue::BulkString(state.into())),
        ("stream", RedisValue::BulkString(stream.clone())),
        ("backlog", RedisValue::Integer(backlog)),
        (
            "lag_ms",
            RedisValue::Integer(oldest_age_ms(ctx, &stream) as i64),
        ),
        (
            "last_commit_lag_ms",
            RedisValue::Integer(s.last_lag_ms as i64),
        ),
        ("captured", RedisValue::Integer(s.captured as i64)),
        ("batches", RedisValue::Integer(s.batches as i64)),
        ("rows", RedisValue::Integer(s.rows as i64)),
        ("skipped_replays", RedisValue::Integer(s.skipped as i64)),
        ("retries", RedisValue::Integer(s.retries as i64)),
        (
            "dead_letters",
            RedisValue::Integer(int(ctx, "XLEN", &[&dlq])),
        ),
        ("dead_letter_stream", RedisValue::BulkString(dlq)),
        ("last_applied", opt(s.last_applied.map(|i| i.to_string()))),
        ("last_error", opt(s.last_error)),
        // When it happened, and whether a batch was committed since (the error is history).
        (
            "last_error_at_ms",
            RedisValue::Integer(s.last_error_at_ms as i64),
        ),
        ("last_error_cleared", RedisValue::Integer(cleared as i64)),
        (
            "capture_failures",
            RedisValue::Integer(capture.as_ref().map_or(0, |c| c.failures as i64)),
        ),
        (
            "capture_last_error",
            opt(capture.and_then(|c| c.last_error)),
        ),
    ])
}

/// `RGSYNC.STATUS [job]`
pub fn rgsync_status(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, args, |ctx, args| match args.as_slice() {
        [_] => Ok(RedisValue::Array(
            jobs::all().iter().map(|j| status_of(ctx, j)).collect(),
        )),
        [_, name] => {
            let job = jobs::get(name).ok_or_else(|| err(format!("no such job '{name}'")))?;
            Ok(status_of(ctx, &job))
        }
        _ => Err(RedisError::WrongArity),
    })
}
