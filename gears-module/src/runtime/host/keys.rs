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
use std::mem::ManuallyDrop;

use redis_module::{Context, NotifyEvent};

use gears_core::bytes::RedisBytes;
use gears_core::error::HostError;
use gears_core::host::KeyType;

use crate::ffi::context::{notify_keyspace_event, replicate};
use crate::ffi::key::{self, Mode, OpenKey};
use crate::ffi::string::{ModuleString, Strings};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

const OUT_OF_MEMORY: &str = "ERR could not make a Redis string (out of memory)";

fn out_of_memory() -> HostError {
    HostError::new(OUT_OF_MEMORY)
}

/// The values of `fields` in hash `key`, `None` for a missing field (all `None` for a missing
/// key), like `HMGET`. `ctx` must hold the Redis lock.
pub(crate) fn hash_get(
    ctx: &Context,
    key: &[u8],
    fields: &[&[u8]],
) -> Result<Vec<Option<RedisBytes>>, HostError> {
    if !key::hash_api_available() {
        return Err(HostError::new("ERR the module hash API is not available"));
    }
    let name = ModuleString::new(key).ok_or_else(out_of_memory)?;
    let Some(hash) = OpenKey::open(ctx, &name, Mode::Read) else {
        return Ok(vec![None; fields.len()]); // no such key
    };
    match hash.key().key_type() {
        KeyType::Hash => {}
        KeyType::Empty => return Ok(vec![None; fields.len()]),
        _ => return Err(HostError::new(WRONGTYPE)),
    }
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let field = name_string(field).ok_or_else(out_of_memory)?;
        out.push(hash.hash_get(&field, |value| RedisBytes::from(value)));
    }
    Ok(out)
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
/// thread exit, when the Redis lock may not be held: hence `ManuallyDrop`).
struct KeptName {
    bytes: Box<[u8]>,
    string: ManuallyDrop<ModuleString>,
}

/// The thread's kept string for `bytes`, with one more reference for the caller (who drops it
/// like a made one: the cache's reference stays); `None` if `bytes` is too long.
fn kept_name(bytes: &[u8]) -> Option<ModuleString> {
    if bytes.len() > MAX_KEPT_NAME_BYTES {
        return None;
    }
    let at = bytes.as_ptr() as usize;
    let slot = (at ^ (at >> 7) ^ bytes.len()) % KEPT_SLOTS;
    KEPT_NAMES.with(|kept| {
        let mut kept = kept.try_borrow_mut().ok()?;
        let entry = kept.get_mut(slot)?;
        if !matches!(entry, Some(k) if *k.bytes == *bytes) {
            let string = ModuleString::new(bytes)?;
            let old = entry.replace(KeptName {
                bytes: bytes.into(),
                string: ManuallyDrop::new(string),
            });
            if let Some(old) = old {
                drop(ManuallyDrop::into_inner(old.string)); // Redis may hold its own references still
            }
        }
        entry.as_ref()?.string.retain()
    })
}

/// A string for a name used again and again (a field, a stream key): the thread's kept string
/// for it, or else a new one.
fn name_string(bytes: &[u8]) -> Option<ModuleString> {
    kept_name(bytes).or_else(|| ModuleString::new(bytes))
}

/// Appends an entry with an automatic id to stream `key` (created if missing) and returns the
/// id, like `XADD key * f v …`, replicated as `XADD key <id> f v …`. `ctx` must hold the Redis
/// lock and be the context of the running command or callback.
pub(crate) fn stream_add(
    ctx: &Context,
    key: &[u8],
    fields: &[(&[u8], &[u8])],
) -> Result<String, HostError> {
    if fields.is_empty() {
        return Err(HostError::new(
            "ERR wrong number of arguments for 'xadd' command",
        ));
    }
    if !key::stream_api_available() {
        return Err(HostError::new("ERR the module stream API is not available"));
    }
    // The replicated command's arguments: key, id (made once known), then the pairs, which
    // are also the entry's.
    let mut argv = Strings::with_capacity(2 + fields.len() * 2);
    argv.push(name_string(key));
    argv.push(None);
    for (f, v) in fields {
        argv.push(name_string(f));
        argv.push(ModuleString::new(v));
    }
    if argv.empty_slots() > 1 {
        return Err(out_of_memory());
    }
    let added = {
        // Closed (at the end of this block) before the replication and the event.
        let stream = argv
            .get(0)
            .and_then(|name| OpenKey::open(ctx, name, Mode::Write))
            .ok_or_else(|| {
                let key = RedisBytes::from(key);
                HostError::new(format!("ERR cannot open stream '{key}'"))
            })?;
        if !matches!(stream.key().key_type(), KeyType::Empty | KeyType::Stream) {
            return Err(HostError::new(WRONGTYPE));
        }
        stream.stream_add(&mut argv, 2)
    };
    let Some((ms, seq)) = added else {
        return Err(HostError::new(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        ));
    };
    let mut id_buf = [0u8; ID_CHARS];
    let id_text = format_id(ms, seq, &mut id_buf);
    argv.set(1, ModuleString::new(id_text.as_bytes()));
    if argv.empty_slots() > 0 {
        return Err(out_of_memory());
    }
    replicate(ctx, c"XADD", &argv);
    if let Some(name) = argv.get(0) {
        notify_keyspace_event(ctx, NotifyEvent::STREAM, c"xadd", name);
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
