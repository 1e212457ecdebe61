//! [`RedisHost`]: the engine's [`Host`] over the Redis module API.
//!
//! Executions run on Gears' worker threads: every method takes the Redis lock (the GIL) for
//! one call or one page of keys, and never while user code runs.

pub(crate) mod keys;
pub(crate) mod scan;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use redis_module::logging::RedisLogLevel;
use redis_module::{CallOptions, CallOptionsBuilder, CallResult, Context, MODULE_CONTEXT};

use gears_core::bytes::RedisBytes;
use gears_core::error::HostError;
use gears_core::host::{
    Host, KeyScan, KeyType, KeyValue, LogLevel, ScanPage, ScannedKey, ShardId, StreamEntry,
    StreamId, Topology,
};
use gears_core::value::Value;

use crate::ffi::context::{lend, with_lent};
use crate::runtime::reply::from_call;

/// The local shard seen through the Redis module API.
#[derive(Clone)]
pub(crate) struct RedisHost {
    topology: Topology,
    /// Set for `sync` executions, which run on the main thread with the Redis lock held, inside
    /// the command or notification whose context [`RedisHost::run_inline`] lends.
    inline: bool,
}

impl RedisHost {
    pub(crate) fn new(topology: Topology) -> Self {
        Self {
            topology,
            inline: false,
        }
    }

    /// Runs `f` with a host for a `sync` execution inside `ctx` (the Redis lock is already
    /// held): its calls use `ctx` while `f` runs, on this thread. The host reports
    /// `thread_bound()`, so the engine keeps it on this thread; kept past `f` (nothing does),
    /// it would have no context to use and panic rather than touch a dead one.
    pub(crate) fn run_inline<R>(&self, ctx: &Context, f: impl FnOnce(Self) -> R) -> R {
        let host = Self {
            topology: self.topology.clone(),
            inline: true,
        };
        lend(ctx, || f(host))
    }

    /// Whether this host runs a `sync` execution on the main thread.
    pub(crate) fn is_inline(&self) -> bool {
        self.inline
    }

    /// One command of [`Host::call`] / [`Host::call_all`] / [`Host::call_bytes`] with `ctx`
    /// (the lock held).
    fn call_in<T: AsRef<[u8]> + ?Sized>(
        &self,
        ctx: &Context,
        args: &[&T],
    ) -> Result<Value, HostError> {
        let result =
            call(ctx, args, true).map_err(|e| explain_foreign_key(&self.topology(), args, e))?;
        if let (true, [cmd, key, ..]) = (self.inline, args) {
            // Redis does not deliver keyspace notifications raised inside a notification
            // callback: a `sync` execution's XADD must reach stream registrations here.
            if cmd.as_ref().eq_ignore_ascii_case(b"XADD") {
                if let Ok(rt) = crate::runtime::runtime() {
                    rt.hooks.stream_written(ctx, key.as_ref());
                }
            }
        }
        Ok(result)
    }

    /// Runs `f` with a context: the inline one, or the module context under the Redis lock.
    pub(crate) fn with_ctx<R>(&self, f: impl FnOnce(&Context) -> R) -> R {
        if !self.inline {
            return f(&MODULE_CONTEXT.lock());
        }
        with_lent(|ctx| {
            f(ctx.expect("a sync execution's host used outside its command or callback"))
        })
    }
}

/// Call options, built once: errors as replies, and replication for calls made by steps.
fn options(replicate: bool) -> &'static CallOptions {
    static READ: OnceLock<CallOptions> = OnceLock::new();
    static WRITE: OnceLock<CallOptions> = OnceLock::new();
    let build = move || {
        let b = CallOptionsBuilder::new().errors_as_replies();
        if replicate { b.replicate() } else { b }.build()
    };
    if replicate {
        WRITE.get_or_init(build)
    } else {
        READ.get_or_init(build)
    }
}

/// Calls a command (arguments of any bytes) with errors as replies (never hidden, see
/// platform notes).
pub(crate) fn call<T: AsRef<[u8]> + ?Sized>(
    ctx: &Context,
    args: &[&T],
    replicate: bool,
) -> Result<Value, HostError> {
    let (cmd, rest) = args
        .split_first()
        .ok_or_else(|| HostError::new("ERR empty command"))?;
    let cmd = std::str::from_utf8(cmd.as_ref())
        .map_err(|_| HostError::new("ERR a command name must be UTF-8"))?;
    let result: CallResult = ctx.call_ext(cmd, options(replicate), rest);
    from_call(&result).map_err(HostError::new)
}

/// The bytes of a bulk (or status) reply, unchanged.
fn bytes_of(v: Value) -> RedisBytes {
    match v {
        Value::Bulk(b) => b.into(),
        Value::Status(s) => s.into(),
        _ => RedisBytes::default(),
    }
}

fn bulk_strings(v: Value) -> Vec<RedisBytes> {
    match v {
        Value::Array(items) => items.into_iter().map(bytes_of).collect(),
        _ => Vec::new(),
    }
}

fn pairs(v: Value) -> Vec<(RedisBytes, RedisBytes)> {
    let mut flat = bulk_strings(v).into_iter();
    std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
}

fn stream_entries(v: Value) -> Vec<StreamEntry> {
    let Value::Array(entries) = v else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|e| match e {
            Value::Array(mut parts) if parts.len() == 2 => {
                let fields = pairs(parts.pop()?);
                let id = StreamId::parse(parts.pop()?.as_str()?)?;
                Some(StreamEntry { id, fields })
            }
            _ => None,
        })
        .collect()
}

/// Reads a key's type and, if `read_value`, its value, with commands.
pub(crate) fn read_one(
    ctx: &Context,
    key: &[u8],
    read_value: bool,
) -> Result<(KeyType, Option<KeyValue>), HostError> {
    let kind = call::<[u8]>(ctx, &[b"TYPE", key], false)?;
    let key_type = match kind.as_str() {
        Some("none") => return Ok((KeyType::Empty, None)),
        Some(name) => KeyType::parse(name).unwrap_or(KeyType::Module),
        None => KeyType::Module,
    };
    if !read_value {
        return Ok((key_type, None));
    }
    Ok((key_type, read_typed(ctx, key, key_type)?))
}

/// Reads the value of `key`, known to be of `key_type`, with one command.
pub(crate) fn read_typed(
    ctx: &Context,
    key: &[u8],
    key_type: KeyType,
) -> Result<Option<KeyValue>, HostError> {
    let value = match key_type {
        KeyType::String => match call::<[u8]>(ctx, &[b"GET", key], false)? {
            Value::Nil => None,
            v => Some(KeyValue::String(bytes_of(v))),
        },
        KeyType::Hash => Some(KeyValue::Hash(
            pairs(call::<[u8]>(ctx, &[b"HGETALL", key], false)?)
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
        )),
        KeyType::List => Some(KeyValue::List(bulk_strings(call::<[u8]>(
            ctx,
            &[b"LRANGE", key, b"0", b"-1"],
            false,
        )?))),
        KeyType::Set => {
            let mut members = bulk_strings(call::<[u8]>(ctx, &[b"SMEMBERS", key], false)?);
            members.sort();
            Some(KeyValue::Set(members))
        }
        KeyType::ZSet => Some(KeyValue::ZSet(
            pairs(call::<[u8]>(
                ctx,
                &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"],
                false,
            )?)
            .into_iter()
            .map(|(m, s)| {
                (
                    m,
                    s.as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
                )
            })
            .collect(),
        )),
        KeyType::Stream => Some(KeyValue::Stream(stream_entries(call::<[u8]>(
            ctx,
            &[b"XRANGE", key, b"-", b"+"],
            false,
        )?))),
        KeyType::Module | KeyType::Empty => None,
    };
    Ok(value)
}

/// One `SCAN` page: the next cursor and the keys.
fn scan_page(
    ctx: &Context,
    pattern: &str,
    cursor: u64,
    count: usize,
) -> Result<(u64, Vec<RedisBytes>), HostError> {
    let (cursor, count) = (cursor.to_string(), count.to_string());
    let reply = call(
        ctx,
        &["SCAN", &cursor, "MATCH", pattern, "COUNT", &count],
        false,
    )?;
    let Value::Array(mut parts) = reply else {
        return Err(HostError::new("ERR unexpected SCAN reply"));
    };
    let keys = bulk_strings(parts.pop().unwrap_or(Value::Nil));
    let next = parts
        .pop()
        .and_then(|c| c.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| HostError::new("ERR unexpected SCAN cursor"))?;
    Ok((next, keys))
}

/// Makes Redis's "non local key" refusal say which key, which slot and which shard, and
/// what to do instead.
pub(crate) fn explain_foreign_key<T: AsRef<[u8]> + ?Sized>(
    topology: &gears_core::host::Topology,
    args: &[&T],
    error: gears_core::error::HostError,
) -> gears_core::error::HostError {
    if topology.len() < 2 || !error.message.contains("non local key") {
        return error;
    }
    let foreign = args.iter().skip(1).find_map(|arg| {
        let slot = gears_core::slot::key_slot(arg.as_ref());
        let owner = topology.owner_of_slot(slot);
        let key = String::from_utf8_lossy(arg.as_ref()); // for the message only
        (owner != topology.me()).then(|| (key, slot, &topology.shards()[owner].id))
    });
    match foreign {
        Some((key, slot, owner)) => gears_core::error::HostError::new(format!(
            "{}: key '{key}' hashes to slot {slot}, owned by shard {owner}, not by this shard \
             ({}); write keys sharing a {{hashtag}} this shard owns (gears::context::hashtag()) \
             or repartition the records to the key's owner first",
            error.message,
            topology.my_id()
        )),
        None => error,
    }
}

impl RedisHost {
    /// On a cluster, an error naming the slot and its owner if `key` is not this shard's (the
    /// module key API would not refuse it, `RM_Call` would).
    fn check_local(&self, key: &[u8]) -> Result<(), HostError> {
        if crate::runtime::runtime().is_ok_and(|rt| rt.cluster.is_none()) {
            return Ok(());
        }
        let topology = self.topology();
        if topology.len() < 2 || topology.owner_of_key(key) == topology.me() {
            return Ok(());
        }
        Err(explain_foreign_key(
            &topology,
            &[b"".as_slice(), key],
            HostError::new("ERR Attempted to access a non local key in a cluster node"),
        ))
    }
}

impl Host for RedisHost {
    fn topology(&self) -> Topology {
        // The module's own host (local executions) follows the cluster's current topology,
        // so shard ids and hashtags are right on a cluster; a distributed run's host keeps the
        // topology its execution started with.
        if self.topology.len() == 1 {
            if let Some(current) = crate::runtime::runtime()
                .ok()
                .and_then(|rt| rt.cluster.as_ref()?.local_topology())
            {
                return current;
            }
        }
        self.topology.clone()
    }

    fn key_scan(&self, pattern: &str, read_value: bool) -> Option<Box<dyn KeyScan>> {
        crate::runtime::host::scan::NativeScan::new(self.clone(), pattern, read_value).map(|scan| {
            Box::new(crate::runtime::host::scan::PrefetchingScan::new(scan)) as Box<dyn KeyScan>
        })
    }

    fn scan(&self, pattern: &str, cursor: u64, count: usize) -> Result<ScanPage, HostError> {
        let (cursor, keys) = self.with_ctx(|ctx| scan_page(ctx, pattern, cursor, count))?;
        Ok(ScanPage { cursor, keys })
    }

    fn read_keys(
        &self,
        keys: &[RedisBytes],
        read_value: bool,
    ) -> Result<Vec<(KeyType, Option<KeyValue>)>, HostError> {
        self.with_ctx(|ctx| keys.iter().map(|k| read_one(ctx, k, read_value)).collect())
    }

    fn scan_read(
        &self,
        pattern: &str,
        cursor: u64,
        count: usize,
        read_value: bool,
    ) -> Result<(u64, Vec<ScannedKey>), HostError> {
        // One lock for the page and its values.
        self.with_ctx(|ctx| {
            let (next, keys) = scan_page(ctx, pattern, cursor, count)?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let (t, v) = read_one(ctx, &key, read_value)?;
                if t != KeyType::Empty {
                    out.push((key, t, v));
                }
            }
            Ok((next, out))
        })
    }

    fn stream_range(
        &self,
        key: &[u8],
        after: StreamId,
        count: usize,
    ) -> Result<Vec<StreamEntry>, HostError> {
        let start = format!("({after}");
        let count = count.to_string();
        let args = [
            b"XRANGE".as_slice(),
            key,
            start.as_bytes(),
            b"+",
            b"COUNT",
            count.as_bytes(),
        ];
        let reply = self.with_ctx(|ctx| call(ctx, &args, false))?;
        Ok(stream_entries(reply))
    }

    fn call(&self, args: &[&str]) -> Result<Value, HostError> {
        self.with_ctx(|ctx| self.call_in(ctx, args))
    }

    fn call_bytes(&self, args: &[&[u8]]) -> Result<Value, HostError> {
        self.with_ctx(|ctx| self.call_in(ctx, args))
    }

    fn call_all(&self, commands: &[&[&str]]) -> Vec<Result<Value, HostError>> {
        self.with_ctx(|ctx| {
            commands
                .iter()
                .map(|args| self.call_in(ctx, args))
                .collect()
        })
    }

    fn hash_get(&self, key: &[u8], fields: &[&[u8]]) -> Result<Vec<Option<RedisBytes>>, HostError> {
        self.check_local(key)?;
        self.with_ctx(|ctx| crate::runtime::host::keys::hash_get(ctx, key, fields))
    }

    fn stream_add(&self, key: &[u8], fields: &[(&[u8], &[u8])]) -> Result<String, HostError> {
        // Natively only inside a `sync` execution (the running command's context); elsewhere
        // (another thread, a callback without a command) through `XADD`.
        if !self.inline {
            return gears_core::host::stream_add_by_call(self, key, fields);
        }
        self.check_local(key)?;
        self.with_ctx(|ctx| {
            let id = crate::runtime::host::keys::stream_add(ctx, key, fields)?;
            // Redis does not deliver keyspace events raised inside a notification callback to
            // the module that is running it: stream registrations are told here.
            if let Ok(rt) = crate::runtime::runtime() {
                rt.hooks.stream_written(ctx, key);
            }
            Ok(id)
        })
    }

    fn send(&self, shard: &ShardId, _payload: Vec<u8>) -> Result<(), HostError> {
        Err(HostError::new(format!(
            "ERR cannot send to shard {shard}: cluster execution is not available on this server"
        )))
    }

    fn thread_bound(&self) -> bool {
        self.inline
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(level, message);
    }
}

/// Writes `message` to the server's log at `level`.
pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => RedisLogLevel::Debug,
        LogLevel::Verbose => RedisLogLevel::Verbose,
        LogLevel::Notice => RedisLogLevel::Notice,
        LogLevel::Warning => RedisLogLevel::Warning,
    };
    MODULE_CONTEXT.log(level, message);
}
