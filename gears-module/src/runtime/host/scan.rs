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
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver};

use redis_module::Context;

use gears_core::bytes::RedisBytes;
use gears_core::error::HostError;
use gears_core::host::{glob_match, KeyScan, KeyType, KeyValue, ScannedKey};

use crate::ffi::key::KeyRef;
use crate::ffi::scan::{scan_key_step, scan_step, ScanCursor};
use crate::runtime::host::{read_typed, RedisHost};

/// A scan of the local keyspace through `RedisModule_Scan`.
pub(crate) struct NativeScan {
    host: RedisHost,
    keys: ScanCursor,
    fields: ScanCursor,
    pattern: String,
    read_value: bool,
}

impl NativeScan {
    pub(crate) fn new(host: RedisHost, pattern: &str, read_value: bool) -> Option<Self> {
        Some(Self {
            host,
            keys: ScanCursor::new()?,
            fields: ScanCursor::new()?,
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
    fields: &'a mut ScanCursor,
    out: &'a mut Vec<ScannedKey>,
    /// Indexes into `out` whose value is read with a command after the scan step.
    deferred: Vec<usize>,
}

/// Reads a whole hash through `RedisModule_ScanKey`, fields and values as bytes (a field
/// whose callback panicked is left out).
fn read_hash(key: KeyRef<'_>, cursor: &mut ScanCursor) -> BTreeMap<RedisBytes, RedisBytes> {
    let mut map = BTreeMap::new();
    cursor.restart();
    let mut on_field = |field: &[u8], value: &[u8]| {
        map.insert(field.into(), value.into());
    };
    while scan_key_step(key, cursor, &mut on_field).more {}
    map
}

impl Page<'_> {
    /// One key of the scan, already opened for reading.
    fn visit(&mut self, name: &[u8], key: Option<KeyRef<'_>>) {
        let Some(key) = key else { return };
        if !self.match_all && !glob_match(self.pattern, name) {
            return;
        }
        // Logically expired but not yet deleted: invisible, as to SCAN.
        if key.ttl_ms() == 0 {
            return;
        }
        let key_type = key.key_type();
        let value = match key_type {
            _ if !self.read_value => None,
            KeyType::Hash => Some(KeyValue::Hash(read_hash(key, self.fields))),
            KeyType::Module | KeyType::Empty => None,
            _ => {
                self.deferred.push(self.out.len());
                None
            }
        };
        self.out.push((name.into(), key_type, value));
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
            fields: &mut self.fields,
            out,
            deferred: Vec::new(),
        };
        let keys = &mut self.keys;
        self.host.with_ctx(|ctx: &Context| {
            let mut more = true;
            let mut panicked = false;
            while more && page.out.len() - start < count {
                let step = scan_step(ctx, keys, &mut |name, key| page.visit(name, key));
                more = step.more;
                panicked |= step.panicked;
            }
            if panicked {
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
