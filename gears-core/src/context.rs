//! What a step can reach while it runs: the current shard's Redis (through its [`Host`]),
//! the log, and the shard's identity. Outside an execution these return an error.

use std::cell::RefCell;
use std::sync::Arc;

use crate::bytes::RedisBytes;
use crate::error::GearsError;
use crate::host::{Host, LogLevel, ShardId};
use crate::slot::key_slot;
use crate::value::Value;

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Host>>> = const { RefCell::new(None) };
}

/// Makes `host` the current host of this thread until the guard is dropped.
pub(crate) struct HostGuard {
    previous: Option<Arc<dyn Host>>,
}

pub(crate) fn enter(host: &Arc<dyn Host>) -> HostGuard {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(host.clone()));
    HostGuard { previous }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn with_host<R>(f: impl FnOnce(&dyn Host) -> R) -> Result<R, GearsError> {
    let host = CURRENT.with(|c| c.borrow().clone());
    match host {
        Some(h) => Ok(f(&*h)),
        None => Err(GearsError::Invalid(
            "not inside a Gears execution: no Redis to call".into(),
        )),
    }
}

/// Calls a Redis command on the current shard; Redis errors come back as `Err`.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let host = gears::testing::MemoryHost::new();
/// let out = GearsBuilder::new(IterReader::new(|_| ["a", "b"].map(String::from)))
///     .try_map(|k| gears::context::call(&["SET", &k, "1"]).map(|_| k))
///     .run(&host);
/// assert_eq!(out.results, ["a", "b"]);
/// assert_eq!(host.get("a").unwrap(), "1");
/// ```
pub fn call(args: &[&str]) -> Result<Value, GearsError> {
    with_host(|h| h.call(args))?.map_err(GearsError::from)
}

/// [`call`] with arguments of any bytes: binary key names and values go to Redis unchanged.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let host = gears::testing::MemoryHost::new();
/// host.set(b"k\xff", b"v\0");
/// let out = GearsBuilder::new(KeysOnlyReader::new("k*"))
///     .try_map(|k| gears::context::call_bytes(&[b"GET", &k]))
///     .run(&host);
/// assert_eq!(out.results, [Value::Bulk(b"v\0".to_vec())]);
/// ```
pub fn call_bytes(args: &[&[u8]]) -> Result<Value, GearsError> {
    with_host(|h| h.call_bytes(args))?.map_err(GearsError::from)
}

/// Calls several Redis commands on the current shard, one after the other, each with its own
/// result. On Redis they run under one hold of the server's lock: from a background
/// execution, one handoff with the main thread instead of one per command.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let host = gears::testing::MemoryHost::new();
/// let out = GearsBuilder::new(IterReader::new(|_| ["a"].map(String::from)))
///     .map(|k| {
///         let replies = gears::context::call_all(&[&["SET", &k, "1"], &["NOSUCH"], &["GET", &k]]);
///         replies
///             .into_iter()
///             .map(|r| match r {
///                 Ok(v) => v.as_str().unwrap_or_default().to_string(),
///                 Err(_) => "error".to_string(),
///             })
///             .collect::<Vec<_>>()
///     })
///     .run(&host);
/// assert_eq!(out.results, [["OK", "error", "1"]]);
/// ```
pub fn call_all(commands: &[&[&str]]) -> Vec<Result<Value, GearsError>> {
    match with_host(|h| h.call_all(commands)) {
        Ok(results) => results
            .into_iter()
            .map(|r| r.map_err(GearsError::from))
            .collect(),
        Err(e) => commands.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// The values of `fields` (`&str`s, `String`s, byte strings, ...) in hash `key` on the current
/// shard, like `HMGET` (`None` for a missing field; all `None` for a missing key), as bytes. On
/// Redis the hash is read natively, without a command round trip.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let host = gears::testing::MemoryHost::new();
/// host.hset("user:1", &[("name", "ada"), ("city", "paris")]);
/// let out = GearsBuilder::new(IterReader::new(|_| ["user:1", "user:2"].map(String::from)))
///     .try_map(|k| gears::context::hash_get(&k, &["city", "age"]))
///     .run(&host);
/// assert_eq!(
///     out.results,
///     [vec![Some(RedisBytes::from("paris")), None], vec![None, None]]
/// );
/// ```
pub fn hash_get<S: AsRef<[u8]>>(
    key: impl AsRef<[u8]>,
    fields: &[S],
) -> Result<Vec<Option<RedisBytes>>, GearsError> {
    // The names as slices, on the stack for the usual few (no allocation per call).
    const ON_STACK: usize = 16;
    let mut stack: [&[u8]; ON_STACK] = [b""; ON_STACK];
    let heap: Vec<&[u8]>;
    let names: &[&[u8]] = if fields.len() <= ON_STACK {
        for (slot, f) in stack.iter_mut().zip(fields) {
            *slot = f.as_ref();
        }
        &stack[..fields.len()]
    } else {
        heap = fields.iter().map(AsRef::as_ref).collect();
        &heap
    };
    with_host(|h| h.hash_get(key.as_ref(), names))?.map_err(GearsError::from)
}

/// Appends an entry with an automatic id to stream `key` on the current shard and returns
/// its id, like `XADD key * field value …` (names and values of any bytes). Inside a `sync` execution on Redis the entry is
/// appended natively (replicated as `XADD key <id> …`, `xadd` event raised; clients blocked
/// in `XREAD` on that stream see it with the next `XADD` — a Redis 7.0 limit of the module
/// stream API).
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let host = gears::testing::MemoryHost::new();
/// let out = GearsBuilder::new(IterReader::new(|_| ["a", "b"].map(String::from)))
///     .try_map(|k| gears::context::stream_add("log", &[("key", k.as_str())]))
///     .run(&host);
/// assert_eq!(out.results.len(), 2);
/// assert!(out.results[0] < out.results[1], "{:?}", out.results);
/// ```
pub fn stream_add<F: AsRef<[u8]>, V: AsRef<[u8]>>(
    key: impl AsRef<[u8]>,
    fields: &[(F, V)],
) -> Result<String, GearsError> {
    let pairs: smallvec::SmallVec<[(&[u8], &[u8]); 8]> = fields
        .iter()
        .map(|(f, v)| (f.as_ref(), v.as_ref()))
        .collect();
    with_host(|h| h.stream_add(key.as_ref(), &pairs))?.map_err(GearsError::from)
}

/// Writes a notice line to the server log (stderr outside an execution).
pub fn log(message: &str) {
    log_at(LogLevel::Notice, message)
}

/// Writes a line to the server log at `level` (stderr outside an execution).
pub fn log_at(level: LogLevel, message: &str) {
    if with_host(|h| h.log(level, message)).is_err() {
        eprintln!("gears: {message}");
    }
}

/// The id of the shard this step runs on.
pub fn shard_id() -> Result<ShardId, GearsError> {
    with_host(|h| h.topology().my_id().clone())
}

/// A hashtag (`{…}` content) whose slot this shard owns: keys written as `{tag}rest` from a step
/// are local to the shard, which Redis Cluster requires.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let cluster = gears::testing::MemoryCluster::new(3);
/// let tags = cluster.run(GearsBuilder::new(ShardsIdReader).try_map(|_| gears::context::hashtag()));
/// assert_eq!(tags.results.len(), 3);
/// ```
pub fn hashtag() -> Result<String, GearsError> {
    with_host(|h| {
        let topo = h.topology();
        local_hashtag(&topo)
    })
}

/// A hashtag whose slot belongs to the local shard of `topology`.
pub fn local_hashtag(topology: &crate::host::Topology) -> String {
    let me = topology.me();
    (0u64..1_000_000)
        .map(|i| i.to_string())
        .find(|tag| topology.owner_of_slot(key_slot(tag.as_bytes())) == me)
        .unwrap_or_default()
}
