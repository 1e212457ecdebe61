//! Batch key reads through the module key API: `RedisModule_Scan` walks the keyspace with
//! each key already opened, hashes are read with `RedisModule_ScanKey`, so a page of keys
//! costs one lock and no command parsing or reply building per key. Strings and the other
//! types are read with one `RM_Call` each after the page's scan step (a read-only string
//! access through `StringDMA` would re-encode shared strings in the keyspace).
//!
//! The scan cursor is opaque and lives as long as the [`NativeScan`]; the Redis lock is taken
//! per page, as `RedisModule_Scan` allows for a cursor used from a thread-safe context.
//! Keys whose time to live has passed but that Redis has not deleted yet are skipped, as
//! `SCAN` does.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver};

use redis_module::raw;
use redis_module::Context;

use gears_core::error::HostError;
use gears_core::host::{glob_match, KeyScan, KeyType, KeyValue, ScannedKey};

use crate::host_impl::{read_typed, RedisHost};

/// A `RedisModuleScanCursor`, destroyed on drop.
struct Cursor(*mut raw::RedisModuleScanCursor);

// SAFETY: a scan cursor is a small heap object owned by exactly one `Cursor`; it is only
// passed to the module API by the thread that owns the `NativeScan`, with the Redis lock
// held, and destroyed once (`RedisModule_ScanCursorDestroy` only frees memory).
#[allow(unsafe_code)]
unsafe impl Send for Cursor {}

impl Cursor {
    fn new() -> Result<Self, HostError> {
        // SAFETY: the function table is filled when the module loads and never changes.
        #[allow(unsafe_code)]
        let ptr = unsafe { raw::RedisModule_ScanCursorCreate.map(|create| create()) };
        match ptr {
            Some(p) if !p.is_null() => Ok(Self(p)),
            _ => Err(HostError::new("ERR cannot create a scan cursor")),
        }
    }

    fn restart(&self) {
        // SAFETY: `self.0` is a live cursor (created in `new`, destroyed only in `drop`).
        #[allow(unsafe_code)]
        unsafe {
            if let Some(restart) = raw::RedisModule_ScanCursorRestart {
                restart(self.0);
            }
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        // SAFETY: `self.0` is live and destroyed exactly once, here.
        #[allow(unsafe_code)]
        unsafe {
            if let Some(destroy) = raw::RedisModule_ScanCursorDestroy {
                destroy(self.0);
            }
        }
    }
}

/// A scan of the local keyspace through `RedisModule_Scan`.
pub(crate) struct NativeScan {
    host: RedisHost,
    keys: Cursor,
    fields: Cursor,
    pattern: String,
    read_value: bool,
}

impl NativeScan {
    pub(crate) fn new(host: RedisHost, pattern: &str, read_value: bool) -> Option<Self> {
        // SAFETY: reading function pointers the module loader filled.
        #[allow(unsafe_code)]
        let available = unsafe {
            let (scan, scan_key, ptr_len) = (
                raw::RedisModule_Scan,
                raw::RedisModule_ScanKey,
                raw::RedisModule_StringPtrLen,
            );
            let (key_type, expire) = (raw::RedisModule_KeyType, raw::RedisModule_GetExpire);
            scan.is_some()
                && scan_key.is_some()
                && ptr_len.is_some()
                && key_type.is_some()
                && expire.is_some()
        };
        if !available {
            return None;
        }
        Some(Self {
            host,
            keys: Cursor::new().ok()?,
            fields: Cursor::new().ok()?,
            pattern: pattern.to_string(),
            read_value,
        })
    }
}

/// What the scan callbacks fill.
struct Page<'a> {
    pattern: &'a str,
    match_all: bool,
    read_value: bool,
    fields: &'a Cursor,
    out: &'a mut Vec<ScannedKey>,
    /// Indexes into `out` whose value is read with a command after the scan step.
    deferred: Vec<usize>,
    panicked: bool,
}

/// The bytes of a module string.
///
/// # Safety
/// `s` must be a live `RedisModuleString` and the returned slice must not outlive it.
#[allow(unsafe_code)]
unsafe fn bytes<'s>(s: *const raw::RedisModuleString) -> &'s [u8] {
    let mut len = 0usize;
    // SAFETY: per the contract above; `StringPtrLen` was checked to be present.
    unsafe {
        let ptr = raw::RedisModule_StringPtrLen.unwrap_unchecked()(s, &mut len);
        if ptr.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(ptr.cast::<u8>(), len)
    }
}

fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn key_type(t: std::os::raw::c_int) -> KeyType {
    match t as isize {
        raw::REDISMODULE_KEYTYPE_STRING => KeyType::String,
        raw::REDISMODULE_KEYTYPE_LIST => KeyType::List,
        raw::REDISMODULE_KEYTYPE_HASH => KeyType::Hash,
        raw::REDISMODULE_KEYTYPE_SET => KeyType::Set,
        raw::REDISMODULE_KEYTYPE_ZSET => KeyType::ZSet,
        raw::REDISMODULE_KEYTYPE_STREAM => KeyType::Stream,
        raw::REDISMODULE_KEYTYPE_EMPTY => KeyType::Empty,
        _ => KeyType::Module,
    }
}

/// `RedisModule_ScanKey` callback: one hash field.
#[allow(unsafe_code)]
unsafe extern "C" fn on_field(
    _key: *mut raw::RedisModuleKey,
    field: *mut raw::RedisModuleString,
    value: *mut raw::RedisModuleString,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `BTreeMap` `read_hash` passes, alive for the whole `ScanKey` call;
    // `field` and `value` are live for this callback.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        let map = &mut *data.cast::<BTreeMap<String, String>>();
        map.insert(text(bytes(field)), text(bytes(value)));
    }));
}

/// Reads a whole hash through `RedisModule_ScanKey`.
///
/// # Safety
/// `key` must be an open hash key, with the Redis lock held.
#[allow(unsafe_code)]
unsafe fn read_hash(key: *mut raw::RedisModuleKey, cursor: &Cursor) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    cursor.restart();
    let data = (&mut map as *mut BTreeMap<String, String>).cast::<c_void>();
    // SAFETY: per the contract above; `map` outlives the calls; `ScanKey` was checked present.
    unsafe {
        let scan_key = raw::RedisModule_ScanKey.unwrap_unchecked();
        while scan_key(key, cursor.0, Some(on_field), data) != 0 {}
    }
    map
}

/// `RedisModule_Scan` callback: one key, already opened for reading.
#[allow(unsafe_code)]
unsafe extern "C" fn on_key(
    _ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
    key: *mut raw::RedisModuleKey,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `Page` `next_page` passes, alive for the whole `Scan` call; `name`
    // and `key` are live for this callback (Redis closes the key after it returns).
    let page = unsafe { &mut *data.cast::<Page<'_>>() };
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        if key.is_null() {
            return;
        }
        let name = bytes(name);
        let name = match std::str::from_utf8(name) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => std::borrow::Cow::Owned(text(name)),
        };
        if !page.match_all && !glob_match(page.pattern, &name) {
            return;
        }
        // Logically expired but not yet deleted: invisible, as to SCAN.
        if raw::RedisModule_GetExpire.unwrap_unchecked()(key) == 0 {
            return;
        }
        let key_type = key_type(raw::RedisModule_KeyType.unwrap_unchecked()(key));
        let value = match key_type {
            _ if !page.read_value => None,
            KeyType::Hash => Some(KeyValue::Hash(read_hash(key, page.fields))),
            KeyType::Module | KeyType::Empty => None,
            _ => {
                page.deferred.push(page.out.len());
                None
            }
        };
        page.out.push((name.into_owned(), key_type, value));
    }));
    if result.is_err() {
        page.panicked = true;
    }
}

impl NativeScan {
    /// Scans about `count` keys into `out` under one lock; `Ok(false)` once complete.
    fn scan_page(&mut self, count: usize, out: &mut Vec<ScannedKey>) -> Result<bool, HostError> {
        let start = out.len();
        let mut page = Page {
            pattern: &self.pattern,
            match_all: self.pattern == "*",
            read_value: self.read_value,
            fields: &self.fields,
            out,
            deferred: Vec::new(),
            panicked: false,
        };
        let keys = &self.keys;
        self.host.with_ctx(|ctx: &Context| {
            let mut more = true;
            while more && page.out.len() - start < count {
                let data = (&mut page as *mut Page<'_>).cast::<c_void>();
                // SAFETY: the Redis lock is held (`with_ctx`); the cursor is live; `page`
                // outlives the call and is only reached through `data` during it.
                #[allow(unsafe_code)]
                let step = unsafe {
                    raw::RedisModule_Scan.unwrap_unchecked()(ctx.ctx, keys.0, Some(on_key), data)
                };
                more = step != 0;
            }
            if page.panicked {
                return Err(HostError::new("ERR internal error while scanning keys"));
            }
            for i in std::mem::take(&mut page.deferred) {
                let (key, key_type, value) = &mut page.out[i];
                *value = read_typed(ctx, key, *key_type)?;
            }
            Ok(more)
        })
    }
}

/// A [`NativeScan`] that, once the first page shows there is more, reads the next pages on a
/// thread of its own while the execution processes the current one: reading under the Redis
/// lock and running the flow overlap. Dropping it stops the reader at its next page.
pub(crate) struct PrefetchingScan {
    state: Prefetch,
}

enum Prefetch {
    Direct(Option<NativeScan>),
    Ahead(Receiver<PageRead>),
}

/// A page read ahead, and whether more follow.
type PageRead = Result<(Vec<ScannedKey>, bool), HostError>;

/// Pages read ahead of the execution.
const PAGES_AHEAD: usize = 2;

impl PrefetchingScan {
    pub(crate) fn new(scan: NativeScan) -> Self {
        Self {
            state: Prefetch::Direct(Some(scan)),
        }
    }
}

fn read_ahead(mut scan: NativeScan, count: usize) -> std::io::Result<Receiver<PageRead>> {
    let (pages, receiver) = sync_channel(PAGES_AHEAD);
    std::thread::Builder::new()
        .name("gears-scan".into())
        .spawn(move || loop {
            let mut page = Vec::with_capacity(count);
            let read = catch_unwind(AssertUnwindSafe(|| scan.scan_page(count, &mut page)))
                .unwrap_or_else(|_| Err(HostError::new("ERR internal error while scanning keys")));
            let last = !matches!(read, Ok(true));
            if pages.send(read.map(|more| (page, more))).is_err() || last {
                return;
            }
        })?;
    Ok(receiver)
}

impl KeyScan for PrefetchingScan {
    fn next_page(&mut self, count: usize, out: &mut Vec<ScannedKey>) -> Result<bool, HostError> {
        match &mut self.state {
            Prefetch::Direct(slot) => {
                let Some(scan) = slot.as_mut() else {
                    return Ok(false);
                };
                let more = scan.scan_page(count, out)?;
                // Not for `sync` executions: they run on the main thread inside a command.
                if more && !scan.host.is_inline() {
                    if let Some(scan) = slot.take() {
                        let ahead = read_ahead(scan, count).map_err(|e| {
                            HostError::new(format!("ERR cannot start a scan thread: {e}"))
                        })?;
                        self.state = Prefetch::Ahead(ahead);
                    }
                }
                Ok(more)
            }
            Prefetch::Ahead(pages) => match pages.recv() {
                Ok(Ok((page, more))) => {
                    out.extend(page);
                    Ok(more)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(false),
            },
        }
    }
}
