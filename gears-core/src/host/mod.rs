//! The [`Host`] trait: the engine's only window on Redis.
//!
//! `gears-module` implements it over the Redis module API; [`crate::testing`] implements it
//! in memory, optionally as N simulated shards.

mod keys;
mod topology;

use crate::bytes::RedisBytes;
use crate::error::HostError;
pub use crate::glob::glob_match;
use crate::value::Value;
pub(crate) use keys::field_of;
pub use keys::{KeyType, KeyValue, StreamEntry, StreamId};
pub use topology::{ShardId, ShardInfo, Topology};

/// One page of a keyspace scan. `cursor == 0` means the scan is complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Cursor to pass to the next call; `0` when done.
    pub cursor: u64,
    /// Keys matching the pattern in this page, as bytes.
    pub keys: Vec<RedisBytes>,
}

/// One key read by a scan: its name, type and (if asked) typed value.
pub type ScannedKey = (RedisBytes, KeyType, Option<KeyValue>);

/// A scan in progress over one shard's keys, holding whatever cursor state the host needs
/// (Redis's native scan cursor is opaque, not a number). Made by [`Host::key_scan`].
pub trait KeyScan: Send {
    /// Appends the next keys (about `count`) to `out`; `Ok(false)` once the scan is complete.
    fn next_page(&mut self, count: usize, out: &mut Vec<ScannedKey>) -> Result<bool, HostError>;
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Verbose.
    Verbose,
    /// Notice.
    Notice,
    /// Warning.
    Warning,
}

/// The engine's only window on Redis.
///
/// Key names, values and fields cross it as bytes ([`RedisBytes`]), exactly as Redis has
/// them; only glob patterns and command names are text.
///
/// Implementations decide locking: the Redis implementation takes the Redis lock per call (or
/// per batch for the `*_batch`/scan methods) and never while user code runs.
pub trait Host: Send + Sync {
    /// Shard topology, including which shard this host is.
    fn topology(&self) -> Topology;

    /// One page of a keyspace scan for keys matching the glob `pattern`.
    fn scan(&self, pattern: &str, cursor: u64, count: usize) -> Result<ScanPage, HostError>;

    /// Reads keys: their type and, if `read_value`, their typed value (`None` for a missing
    /// key or a module type).
    fn read_keys(
        &self,
        keys: &[RedisBytes],
        read_value: bool,
    ) -> Result<Vec<(KeyType, Option<KeyValue>)>, HostError>;

    /// Entries of stream `key` with id strictly greater than `after`, at most `count`.
    fn stream_range(
        &self,
        key: &[u8],
        after: StreamId,
        count: usize,
    ) -> Result<Vec<StreamEntry>, HostError>;

    /// Calls a Redis command; errors come back as `Err`, never hidden.
    fn call(&self, args: &[&str]) -> Result<Value, HostError>;

    /// [`call`](Host::call) with arguments of any bytes (binary key names and values).
    fn call_bytes(&self, args: &[&[u8]]) -> Result<Value, HostError>;

    /// Calls several commands one after the other, each with its own result. The default
    /// calls [`Host::call`] for each; the Redis host takes its lock once for all of them, so a
    /// worker thread hands the lock back and forth with the main thread once, not per command.
    fn call_all(&self, commands: &[&[&str]]) -> Vec<Result<Value, HostError>> {
        commands.iter().map(|args| self.call(args)).collect()
    }

    /// The values of `fields` in hash `key` (`None` for a missing field, all `None` for a
    /// missing key), like `HMGET`. The default calls `HMGET`; the Redis host reads the hash
    /// natively.
    fn hash_get(&self, key: &[u8], fields: &[&[u8]]) -> Result<Vec<Option<RedisBytes>>, HostError> {
        hash_get_by_call(self, key, fields)
    }

    /// Appends an entry with an automatic id to stream `key` and returns the id, like
    /// `XADD key * field value …`. The default calls `XADD`; the Redis host appends natively
    /// inside `sync` executions.
    fn stream_add(&self, key: &[u8], fields: &[(&[u8], &[u8])]) -> Result<String, HostError> {
        stream_add_by_call(self, key, fields)
    }

    /// Sends an engine message to another shard (the cluster bus).
    fn send(&self, shard: &ShardId, payload: Vec<u8>) -> Result<(), HostError>;

    /// Writes a line to the server's log.
    fn log(&self, level: LogLevel, message: &str);

    /// Whether this host may only be used from the thread running the execution (a `sync`
    /// execution inside a Redis callback). Parallel steps then run on that thread.
    fn thread_bound(&self) -> bool {
        false
    }

    /// A stateful scan of the keys matching `pattern`, reading values if `read_value`: hosts
    /// with a faster native scan than [`scan_read`](Host::scan_read) return one (the Redis host
    /// walks the keyspace with the module key API, one lock per page). `None`: readers page
    /// with `scan_read`.
    fn key_scan(&self, _pattern: &str, _read_value: bool) -> Option<Box<dyn KeyScan>> {
        None
    }

    /// Scans one page and reads the values of its keys: readers use this so a host can take its
    /// lock once per page. The default calls [`scan`](Host::scan) then
    /// [`read_keys`](Host::read_keys).
    #[allow(clippy::type_complexity)]
    fn scan_read(
        &self,
        pattern: &str,
        cursor: u64,
        count: usize,
        read_value: bool,
    ) -> Result<(u64, Vec<ScannedKey>), HostError> {
        let page = self.scan(pattern, cursor, count)?;
        let values = self.read_keys(&page.keys, read_value)?;
        Ok((
            page.cursor,
            page.keys
                .into_iter()
                .zip(values)
                .map(|(k, (t, v))| (k, t, v))
                .collect(),
        ))
    }
}

/// [`Host::hash_get`] through `HMGET`.
pub fn hash_get_by_call<H: Host + ?Sized>(
    host: &H,
    key: &[u8],
    fields: &[&[u8]],
) -> Result<Vec<Option<RedisBytes>>, HostError> {
    let mut args = Vec::with_capacity(fields.len() + 2);
    args.extend([b"HMGET".as_slice(), key]);
    args.extend_from_slice(fields);
    match host.call_bytes(&args)? {
        Value::Array(values) => Ok(values
            .into_iter()
            .map(|v| match v {
                Value::Bulk(b) => Some(RedisBytes::from(b)),
                _ => None,
            })
            .collect()),
        other => Err(HostError::new(format!(
            "ERR unexpected HMGET reply {other:?}"
        ))),
    }
}

/// [`Host::stream_add`] through `XADD key * …`.
pub fn stream_add_by_call<H: Host + ?Sized>(
    host: &H,
    key: &[u8],
    fields: &[(&[u8], &[u8])],
) -> Result<String, HostError> {
    let mut args = Vec::with_capacity(fields.len() * 2 + 3);
    args.extend([b"XADD".as_slice(), key, b"*"]);
    for (f, v) in fields {
        args.push(f);
        args.push(v);
    }
    match host.call_bytes(&args)? {
        Value::Bulk(id) => Ok(String::from_utf8_lossy(&id).into_owned()),
        Value::Status(id) => Ok(id),
        other => Err(HostError::new(format!(
            "ERR unexpected XADD reply {other:?}"
        ))),
    }
}
