//! Native key access for the hot paths of steps: a hash's fields through `RM_HashGet` and a
//! stream entry through `RM_StreamAdd`, instead of `HMGET` / `XADD` through `RM_Call` (no
//! argument vector of command strings, no command lookup, no reply to build and parse).
//!
//! [`stream_add`] does what `XADD <key> * …` does: it is replicated (and written to the AOF) as
//! `XADD <key> <id> …` with the id it got, raises the `xadd` keyspace event, touches `WATCH`ers
//! when the key is closed, and Redis wakes clients blocked in `XREAD`/`XREADGROUP` on the
//! stream (`RedisModule_StreamAdd` marks the key ready; tested in `tests/triggers.rs`, on a
//! stream that exists and on one the append creates). `RedisHost` uses it only inside `sync`
//! executions (the running command's context).

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr;

use redis_module::{raw, Context};

use gears_core::error::HostError;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

const OUT_OF_MEMORY: &str = "ERR could not make a Redis string (out of memory)";

/// The values of `fields` in hash `key`, `None` for a missing field (all `None` for a missing
/// key), like `HMGET`. `ctx` must hold the Redis lock.
pub(crate) fn hash_get(
    ctx: &Context,
    key: &str,
    fields: &[&str],
) -> Result<Vec<Option<String>>, HostError> {
    // SAFETY: reading function pointers the module loader filled (never changed after).
    #[allow(unsafe_code)]
    let api = unsafe {
        (
            raw::RedisModule_OpenKey,
            raw::RedisModule_KeyType,
            raw::RedisModule_HashGet,
            raw::RedisModule_StringPtrLen,
            raw::RedisModule_FreeString,
        )
    };
    let (Some(open), Some(key_type), Some(get), Some(ptr_len), Some(free)) = api else {
        return Err(HostError::new("ERR the module hash API is not available"));
    };
    let name = OneString::new(key.as_bytes());
    if name.0.is_null() {
        return Err(HostError::new(OUT_OF_MEMORY));
    }
    // SAFETY: the caller holds the Redis lock with `ctx` (a live context); `name` outlives the
    // key, which the `OpenKey` guard closes before `name` is freed (declared after it).
    #[allow(unsafe_code)]
    let handle = unsafe { open(ctx.ctx, name.0, raw::REDISMODULE_READ as c_int) };
    if handle.is_null() {
        return Ok(vec![None; fields.len()]); // no such key
    }
    let handle = OpenKey(handle.cast());
    // SAFETY: `handle.0` is an open key.
    #[allow(unsafe_code)]
    let t = unsafe { key_type(handle.0) };
    if t == raw::REDISMODULE_KEYTYPE_EMPTY as c_int {
        return Ok(vec![None; fields.len()]);
    }
    if t != raw::REDISMODULE_KEYTYPE_HASH as c_int {
        return Err(HostError::new(WRONGTYPE));
    }
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let name = OneString::name(field.as_bytes());
        if name.0.is_null() {
            return Err(HostError::new(OUT_OF_MEMORY));
        }
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: `handle.0` is an open hash key; `name` a live Redis string; `value` a valid
        // out-pointer; the variadic list ends with a null pointer as required.
        #[allow(unsafe_code)]
        unsafe {
            get(
                handle.0,
                raw::REDISMODULE_HASH_NONE as c_int,
                name.0,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null::<c_char>(),
            );
        }
        if value.is_null() {
            out.push(None);
            continue;
        }
        let mut len = 0usize;
        // SAFETY: `value` is a live string Redis made for us; its bytes are copied before
        // it is freed, once, with the context of the running command or callback.
        #[allow(unsafe_code)]
        let text = unsafe {
            let at = ptr_len(value, &mut len);
            let text = String::from_utf8_lossy(std::slice::from_raw_parts(at.cast::<u8>(), len))
                .into_owned();
            free(ctx.ctx, value);
            text
        };
        out.push(Some(text));
    }
    Ok(out)
}

/// A Redis string holding a copy of `bytes` (any bytes, NUL included) that the module owns,
/// or null if Redis could not make it.
fn make_string(bytes: &[u8]) -> *mut raw::RedisModuleString {
    // SAFETY: reading a function pointer the module loader filled.
    #[allow(unsafe_code)]
    let create = unsafe { raw::RedisModule_CreateString };
    match create {
        // SAFETY: a null context makes a string the module owns (freed by `free_string`); the
        // pointer and length describe `bytes`, which Redis copies.
        #[allow(unsafe_code)]
        Some(create) => unsafe {
            create(
                ptr::null_mut(),
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        },
        None => ptr::null_mut(),
    }
}

/// Frees a string of [`make_string`] (nothing for null).
fn free_string(s: *mut raw::RedisModuleString) {
    // SAFETY: reading a function pointer the module loader filled.
    #[allow(unsafe_code)]
    let free = unsafe { raw::RedisModule_FreeString };
    if let (Some(free), false) = (free, s.is_null()) {
        // SAFETY: `s` was made with a null context by `make_string` and its owner frees it
        // once, here, while the function that made it still holds the Redis lock.
        #[allow(unsafe_code)]
        unsafe {
            free(ptr::null_mut(), s)
        };
    }
}

/// Slots of the per-thread name cache ...
const KEPT_SLOTS: usize = 64;
/// ... for names of at most this many bytes.
const MAX_KEPT_NAME_BYTES: usize = 64;

thread_local! {
    /// Redis strings for names written again and again (stream keys, field names), so that a
    /// capture makes strings for its values only. Direct-mapped by the name's address (names
    /// live in long-lived strings or literals: no hashing of the bytes), checked by content, a
    /// miss replaces the slot. Used only by the thread holding the Redis lock.
    static KEPT_NAMES: RefCell<Vec<Option<KeptName>>> =
        RefCell::new((0..KEPT_SLOTS).map(|_| None).collect());
}

/// A name and the Redis string made for it (one reference, held by the cache; left behind at
/// thread exit, when the Redis lock may not be held).
struct KeptName {
    bytes: Box<[u8]>,
    string: *mut raw::RedisModuleString,
}

/// The thread's kept string for `bytes`, with one more reference for the caller (who frees it
/// like a made one: the cache's reference stays); `None` if `bytes` is too long.
fn kept_name(bytes: &[u8]) -> Option<*mut raw::RedisModuleString> {
    if bytes.len() > MAX_KEPT_NAME_BYTES {
        return None;
    }
    // SAFETY: reading a function pointer the module loader filled.
    #[allow(unsafe_code)]
    let retain = unsafe { raw::RedisModule_RetainString }?;
    let at = bytes.as_ptr() as usize;
    let slot = (at ^ (at >> 7) ^ bytes.len()) % KEPT_SLOTS;
    KEPT_NAMES.with(|kept| {
        let mut kept = kept.try_borrow_mut().ok()?;
        let entry = kept.get_mut(slot)?;
        let string = match entry {
            Some(k) if *k.bytes == *bytes => k.string,
            _ => {
                let string = make_string(bytes);
                if string.is_null() {
                    return None;
                }
                let old = entry.replace(KeptName {
                    bytes: bytes.into(),
                    string,
                });
                if let Some(old) = old {
                    free_string(old.string); // Redis may hold its own references still
                }
                string
            }
        };
        // SAFETY: `string` is live (the cache holds a reference); a null context adds one
        // reference, for the caller, who frees it.
        #[allow(unsafe_code)]
        unsafe {
            retain(ptr::null_mut(), string)
        };
        Some(string)
    })
}

/// One string of [`make_string`], freed on drop.
struct OneString(*mut raw::RedisModuleString);

impl OneString {
    fn new(bytes: &[u8]) -> Self {
        OneString(make_string(bytes))
    }

    /// A name used again and again (a field, a stream key): the thread's kept string for it.
    fn name(bytes: &[u8]) -> Self {
        OneString(kept_name(bytes).unwrap_or_else(|| make_string(bytes)))
    }
}

impl Drop for OneString {
    fn drop(&mut self) {
        free_string(self.0);
    }
}

/// Strings of [`make_string`], freed on drop. A null slot is a place kept for a string made
/// later ([`Strings::set`]).
struct Strings(Vec<*mut raw::RedisModuleString>);

impl Strings {
    fn with_capacity(n: usize) -> Self {
        Strings(Vec::with_capacity(n))
    }

    /// Appends a copy of `bytes` (a null slot if Redis could not make it).
    fn push(&mut self, bytes: &[u8]) {
        self.0.push(make_string(bytes));
    }

    /// Appends a name used again and again (see [`OneString::name`]).
    fn push_name(&mut self, bytes: &[u8]) {
        self.0
            .push(kept_name(bytes).unwrap_or_else(|| make_string(bytes)));
    }

    fn push_empty_slot(&mut self) {
        self.0.push(ptr::null_mut());
    }

    fn set(&mut self, at: usize, bytes: &[u8]) {
        free_string(std::mem::replace(&mut self.0[at], make_string(bytes)));
    }

    fn get(&self, at: usize) -> *mut raw::RedisModuleString {
        self.0[at]
    }

    /// How many slots hold no string.
    fn missing(&self) -> usize {
        self.0.iter().filter(|s| s.is_null()).count()
    }
}

impl Drop for Strings {
    fn drop(&mut self) {
        for s in self.0.drain(..) {
            free_string(s);
        }
    }
}

/// An open key, closed on drop.
struct OpenKey(*mut raw::RedisModuleKey);

impl Drop for OpenKey {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `RedisModule_OpenKey` (non-null) and is closed once, here,
        // while the caller still holds the Redis lock (the guard lives inside the function).
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
    // The replicated command's arguments: key, id (made once known), then the pairs, which
    // are also the entry's.
    let mut argv = Strings::with_capacity(2 + fields.len() * 2);
    argv.push_name(key.as_bytes());
    argv.push_empty_slot();
    for (f, v) in fields {
        argv.push_name(f.as_bytes());
        argv.push(v.as_bytes());
    }
    if argv.missing() > 1 {
        return Err(HostError::new(OUT_OF_MEMORY));
    }
    let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
    // SAFETY: the caller holds the Redis lock with `ctx` (a live context); every string of
    // `argv` outlives these calls; the key is closed by the `OpenKey` guard before the strings
    // are freed (declared after `argv`); `id` is a valid out-pointer; the pairs start at
    // `argv[2]`, `fields.len()` of them.
    #[allow(unsafe_code)]
    let added = unsafe {
        let handle = open(ctx.ctx, argv.get(0), raw::REDISMODULE_WRITE as c_int);
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
            argv.0.as_mut_ptr().add(2),
            fields.len() as i64,
        )
    };
    if added != raw::REDISMODULE_OK as c_int {
        return Err(HostError::new(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ));
    }
    let mut id_buf = [0u8; ID_CHARS];
    let id_text = format_id(id.ms, id.seq, &mut id_buf);
    argv.set(1, id_text.as_bytes());
    if argv.missing() > 0 {
        return Err(HostError::new(OUT_OF_MEMORY));
    }
    const XADD: &CStr = c"XADD";
    const FORMAT: &CStr = c"v";
    const EVENT: &CStr = c"xadd";
    // SAFETY: as above; the `v` format takes the array pointer and its length (`size_t`),
    // every element a live string owned by `argv`.
    #[allow(unsafe_code)]
    unsafe {
        replicate(
            ctx.ctx,
            XADD.as_ptr(),
            FORMAT.as_ptr(),
            argv.0.as_ptr(),
            argv.0.len(),
        );
        notify(
            ctx.ctx,
            raw::REDISMODULE_NOTIFY_STREAM,
            EVENT.as_ptr(),
            argv.get(0),
        );
    }
    Ok(id_text.to_string())
}

/// The longest stream id: two 20-digit numbers and a dash.
const ID_CHARS: usize = 41;

/// `<ms>-<seq>` written into `buf` (no formatting machinery: once per captured write).
fn format_id(ms: u64, seq: u64, buf: &mut [u8; ID_CHARS]) -> &str {
    fn digits(mut n: u64, out: &mut [u8]) -> usize {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = tmp.len() - i;
        out[..len].copy_from_slice(&tmp[i..]);
        len
    }
    let mut at = digits(ms, &mut buf[..]);
    buf[at] = b'-';
    at += 1;
    at += digits(seq, &mut buf[at..]);
    std::str::from_utf8(&buf[..at]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_written_like_redis() {
        let mut buf = [0u8; ID_CHARS];
        assert_eq!(format_id(0, 0, &mut buf), "0-0");
        assert_eq!(format_id(1_700_000_000_123, 7, &mut buf), "1700000000123-7");
        assert_eq!(
            format_id(u64::MAX, u64::MAX, &mut buf),
            format!("{}-{}", u64::MAX, u64::MAX)
        );
    }
}
