//! Native key access for the hot paths of steps: a hash's fields through `RM_HashGet` and a
//! stream entry through `RM_StreamAdd`, instead of `HMGET` / `XADD` through `RM_Call` (no
//! argument vector of command strings, no command lookup, no reply to build and parse).
//!
//! [`stream_add`] does what `XADD <key> * …` does for everything but clients blocked in
//! `XREAD`/`XREADGROUP` on that stream: it is replicated (and written to the AOF) as `XADD <key>
//! <id> …` with the id it got, raises the `xadd` keyspace event, and touches `WATCH`ers when
//! the key is closed. Redis 7.0's module stream API cannot wake blocked stream readers
//! (`RM_SignalKeyAsReady` signals module types only); they see the entry with the next `XADD`
//! or at their timeout. `RedisHost` uses it only inside `sync` executions.

use std::ffi::CStr;
use std::os::raw::c_int;

use redis_module::{raw, Context, KeyType as RawKeyType, RedisString};

use gears_core::error::HostError;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// The values of `fields` in hash `key`, `None` for a missing field (all `None` for a missing
/// key), like `HMGET`. `ctx` must hold the Redis lock.
pub(crate) fn hash_get(
    ctx: &Context,
    key: &str,
    fields: &[&str],
) -> Result<Vec<Option<String>>, HostError> {
    let mut out = vec![None; fields.len()];
    let name = owned(key);
    let open = ctx.open_key(&name);
    match open.key_type() {
        RawKeyType::Empty => return Ok(out),
        RawKeyType::Hash => {}
        _ => return Err(HostError::new(WRONGTYPE)),
    }
    let Some(found) = open
        .hash_get_multi::<&str, RedisString>(fields)
        .map_err(|e| HostError::new(format!("ERR reading hash '{key}': {e}")))?
    else {
        return Ok(out);
    };
    // The pairs come in field order, missing fields skipped: walk the fields alongside.
    let mut at = 0;
    for (field, value) in found {
        while at < fields.len() && !std::ptr::eq(fields[at], field) {
            at += 1;
        }
        if let Some(slot) = out.get_mut(at) {
            *slot = Some(value.to_string_lossy());
            at += 1;
        }
    }
    Ok(out)
}

/// A Redis string holding a copy of `s` (any bytes, NUL included), freed on drop.
fn owned(s: &str) -> RedisString {
    RedisString::create_from_slice(std::ptr::null_mut(), s.as_bytes())
}

/// An open key, closed on drop.
struct OpenKey(*mut raw::RedisModuleKey);

impl Drop for OpenKey {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `RedisModule_OpenKey` (non-null) and is closed once, here,
        // while the caller still holds the Redis lock (the guard lives inside `stream_add`).
        #[allow(unsafe_code)]
        unsafe {
            if let Some(close) = raw::RedisModule_CloseKey {
                close(self.0);
            }
        }
    }
}

/// Appends an entry with an automatic id to stream `key` (created if missing) and returns the
/// id, like `XADD key * f v …`, replicated as `XADD key <id> f v …`. `ctx` must hold the Redis
/// lock and be the context of the running command or callback.
pub(crate) fn stream_add(
    ctx: &Context,
    key: &str,
    fields: &[(&str, &str)],
) -> Result<String, HostError> {
    if fields.is_empty() {
        return Err(HostError::new(
            "ERR wrong number of arguments for 'xadd' command",
        ));
    }
    // SAFETY: reading function pointers the module loader filled (never changed after).
    #[allow(unsafe_code)]
    let api = unsafe {
        (
            raw::RedisModule_OpenKey,
            raw::RedisModule_KeyType,
            raw::RedisModule_StreamAdd,
            raw::RedisModule_Replicate,
            raw::RedisModule_NotifyKeyspaceEvent,
        )
    };
    let (Some(open), Some(key_type), Some(add), Some(replicate), Some(notify)) = api else {
        return Err(HostError::new("ERR the module stream API is not available"));
    };
    let name = owned(key);
    let mut argv: Vec<RedisString> = Vec::with_capacity(fields.len() * 2);
    for (f, v) in fields {
        argv.push(owned(f));
        argv.push(owned(v));
    }
    let mut raw_argv: Vec<*mut raw::RedisModuleString> = argv.iter().map(|s| s.inner).collect();
    let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
    // SAFETY: the caller holds the Redis lock with `ctx` (a live context); `name` and every
    // string of `raw_argv` outlive these calls (`argv` owns them); the key is closed by the
    // `OpenKey` guard before the strings are freed; `id` is a valid out-pointer.
    #[allow(unsafe_code)]
    let added = unsafe {
        let handle = open(ctx.ctx, name.inner, raw::REDISMODULE_WRITE as c_int);
        if handle.is_null() {
            return Err(HostError::new(format!("ERR cannot open stream '{key}'")));
        }
        let handle = OpenKey(handle.cast());
        let t = key_type(handle.0);
        if t != raw::REDISMODULE_KEYTYPE_EMPTY as c_int
            && t != raw::REDISMODULE_KEYTYPE_STREAM as c_int
        {
            return Err(HostError::new(WRONGTYPE));
        }
        add(
            handle.0,
            raw::REDISMODULE_STREAM_ADD_AUTOID as c_int,
            &mut id,
            raw_argv.as_mut_ptr(),
            fields.len() as i64,
        )
    };
    if added != raw::REDISMODULE_OK as c_int {
        return Err(HostError::new(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ));
    }
    let id_text = format!("{}-{}", id.ms, id.seq);
    let id_string = owned(&id_text);
    const XADD: &CStr = c"XADD";
    const FORMAT: &CStr = c"ssv";
    const EVENT: &CStr = c"xadd";
    // SAFETY: as above; the `v` format takes the array pointer and its length (`size_t`),
    // every element a live string owned by `argv`.
    #[allow(unsafe_code)]
    unsafe {
        replicate(
            ctx.ctx,
            XADD.as_ptr(),
            FORMAT.as_ptr(),
            name.inner,
            id_string.inner,
            raw_argv.as_ptr(),
            raw_argv.len(),
        );
        notify(
            ctx.ctx,
            raw::REDISMODULE_NOTIFY_STREAM,
            EVENT.as_ptr(),
            name.inner,
        );
    }
    Ok(id_text)
}
