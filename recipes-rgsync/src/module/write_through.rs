//! Write-through on the write-behind pipeline:
//!
//! ```text
//! RGSYNC.WRITETHROUGH <key> <field> <value> [<field> <value> ...] [TIMEOUT <ms>]
//! RGSYNC.WRITETHROUGH <key> # ~ [TIMEOUT <ms>]          (delete key and row)
//! ```
//!
//! The command does the `HSET` (so the capture queues the change as usual, with an ack id of
//! its own), then **blocks the client** — not the server — until the writer has committed the
//! change (`OK`) or dead-lettered it (`ERR <error>`). After `TIMEOUT` (default 5000 ms) it
//! replies `ERR timeout …`: the change is in Redis and queued, not yet confirmed.
//! Not available inside `MULTI` or scripts (they cannot block).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use gears::command::{
    can_block, Blocked, Context, RedisError, RedisResult, RedisString, RedisValue,
};

use super::jobs;

static WAITERS: Mutex<Option<HashMap<(String, String), Blocked>>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(1);

fn waiters<R>(f: impl FnOnce(&mut HashMap<(String, String), Blocked>) -> R) -> R {
    let mut guard = WAITERS.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Called by the writer for every ack: answers a waiting client, if any. Returns whether
/// one was waiting (then no ack stream is written).
pub(crate) fn complete(key: &str, ack: &str, result: Result<(), &str>) -> bool {
    if !ack.starts_with("wt-") {
        return false;
    }
    let Some(blocked) = waiters(|w| w.remove(&(key.to_string(), ack.to_string()))) else {
        return false;
    };
    let reply: RedisResult = match result {
        Ok(()) => Ok(RedisValue::SimpleStringStatic("OK")),
        Err(e) => Err(RedisError::String(format!("ERR not written: {e}"))),
    };
    blocked.reply(reply);
    true
}

/// `RGSYNC.WRITETHROUGH`
pub fn rgsync_writethrough(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    std::panic::catch_unwind(|| write_through(ctx, args)).unwrap_or_else(|_| {
        Err(RedisError::Str(
            "ERR internal error in rgsync (panic caught)",
        ))
    })
}

fn write_through(ctx: &Context, args: Vec<String>) -> RedisResult {
    let (key, mut rest) = match args.as_slice() {
        [_, key, rest @ ..] if !rest.is_empty() => (key.clone(), rest.to_vec()),
        _ => return Err(RedisError::WrongArity),
    };
    let mut timeout_ms = 5000u64;
    if rest.len() >= 2 && rest[rest.len() - 2].eq_ignore_ascii_case("TIMEOUT") {
        timeout_ms = rest[rest.len() - 1]
            .parse()
            .map_err(|_| RedisError::Str("ERR TIMEOUT must be milliseconds"))?;
        rest.truncate(rest.len() - 2);
    }
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(RedisError::WrongArity);
    }
    if !can_block(ctx) {
        return Err(RedisError::Str(
            "ERR RGSYNC.WRITETHROUGH blocks the client: not inside MULTI or a script",
        ));
    }
    let glob_match =
        |j: &std::sync::Arc<jobs::Job>| gears::host::glob_match(&j.config.key.glob(), &key);
    if !jobs::all().iter().any(glob_match) {
        return Err(RedisError::String(format!(
            "ERR no rgsync job covers '{key}'"
        )));
    }
    // The op: `=` unless the client gave `# ~`.
    let mut op = '=';
    let mut hset: Vec<String> = vec![key.clone()];
    for pair in rest.chunks(2) {
        if pair[0] == "#" {
            op = match pair[1].as_str() {
                "=" => '=',
                "~" => '~',
                _ => {
                    return Err(RedisError::Str(
                        "ERR RGSYNC.WRITETHROUGH takes '# =' or '# ~' only",
                    ))
                }
            };
        } else {
            hset.extend(pair.iter().cloned());
        }
    }
    let id = format!("wt-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    hset.push("#".into());
    hset.push(format!("{op}{id}"));
    let refs: Vec<&str> = hset.iter().map(String::as_str).collect();
    gears::command::call_replicated(ctx, "HSET", &refs).map_err(RedisError::String)?;
    // The writer cannot have seen the change yet: it needs the lock this command holds.
    let blocked = Blocked::new(ctx);
    waiters(|w| w.insert((key.clone(), id.clone()), blocked));
    ctx.create_timer(
        Duration::from_millis(timeout_ms.max(1)),
        move |_ctx: &Context, (key, id): (String, String)| {
            if let Some(blocked) = waiters(|w| w.remove(&(key, id))) {
                blocked.reply(Err(RedisError::String(
                    format!(
                        "ERR timeout after {timeout_ms} ms: the change is in Redis and queued, not yet confirmed by the database"
                    ),
                )));
            }
        },
        (key, id),
    );
    Ok(RedisValue::NoReply)
}
