//! [`MemoryHost`]: one in-memory Redis-like keyspace implementing [`Host`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::keyspace::{wrong_type, Keyspace, Stored};
use crate::bytes::RedisBytes;
use crate::error::HostError;
use crate::host::{
    glob_match, Host, KeyType, KeyValue, LogLevel, ScanPage, ShardId, StreamEntry, StreamId,
    Topology,
};
use crate::value::Value;

struct Inner {
    keys: Mutex<Keyspace>,
    topology: Topology,
    outbox: Mutex<Vec<(ShardId, Vec<u8>)>>,
    log: Mutex<Vec<String>>,
}

/// One in-memory Redis-like keyspace implementing [`Host`]. Cheap to clone (shared state).
///
/// Keys, values and fields are bytes, as in Redis. `call` understands a subset of commands (`GET SET DEL EXISTS INCR INCRBY HSET HGET HGETALL
/// HDEL HLEN RPUSH LPUSH SADD ZADD XADD XLEN TYPE DBSIZE PING`) with Redis's error replies; as a
/// cluster shard it refuses keys of slots it does not own, as Redis Cluster does.
#[derive(Clone)]
pub struct MemoryHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHost")
            .field("shard", self.inner.topology.my_id())
            .finish()
    }
}

impl Default for MemoryHost {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryHost {
    /// A standalone host.
    pub fn new() -> Self {
        Self::with_topology(Topology::standalone())
    }

    /// A host that is shard `topology.me()` of `topology`.
    pub fn with_topology(topology: Topology) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: Mutex::new(Keyspace::default()),
                topology,
                outbox: Mutex::new(Vec::new()),
                log: Mutex::new(Vec::new()),
            }),
        }
    }

    pub(super) fn keys(&self) -> MutexGuard<'_, Keyspace> {
        lock(&self.inner.keys)
    }

    /// Runs `command key args...`, panicking on an error reply.
    fn command<A: AsRef<[u8]>>(&self, command: &str, key: &[u8], args: &[A]) -> Value {
        let mut all = vec![command.as_bytes(), key];
        all.extend(args.iter().map(AsRef::as_ref));
        match self.call_bytes(&all) {
            Ok(v) => v,
            Err(e) => panic!("{command} {:?} failed: {e}", RedisBytes::from(key)),
        }
    }

    /// `command key field value ...`.
    fn pairs<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        command: &str,
        key: &[u8],
        head: &[&[u8]],
        pairs: &[(F, V)],
    ) -> Value {
        let mut args: Vec<&[u8]> = head.to_vec();
        for (f, v) in pairs {
            args.extend([f.as_ref(), v.as_ref()]);
        }
        self.command(command, key, &args)
    }

    /// `SET key value` (text or bytes).
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.command("SET", key.as_ref(), &[value]);
    }

    /// `GET key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<RedisBytes> {
        match self.keys().get(key.as_ref()) {
            Some(Stored::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// `HSET key field value ...`.
    pub fn hset<F: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, fields: &[(F, V)]) {
        self.pairs("HSET", key.as_ref(), &[], fields);
    }

    /// `HGETALL key` as a map.
    pub fn hgetall(&self, key: impl AsRef<[u8]>) -> BTreeMap<RedisBytes, RedisBytes> {
        match self.keys().get(key.as_ref()) {
            Some(Stored::Hash(h)) => h.clone(),
            _ => BTreeMap::new(),
        }
    }

    /// `RPUSH key item ...`.
    pub fn rpush<T: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, items: &[T]) {
        self.command("RPUSH", key.as_ref(), items);
    }

    /// `SADD key member ...`.
    pub fn sadd<T: AsRef<[u8]>>(&self, key: impl AsRef<[u8]>, members: &[T]) {
        self.command("SADD", key.as_ref(), members);
    }

    /// `ZADD key score member`.
    pub fn zadd(&self, key: impl AsRef<[u8]>, score: f64, member: impl AsRef<[u8]>) {
        let s = score.to_string();
        self.command("ZADD", key.as_ref(), &[s.as_bytes(), member.as_ref()]);
    }

    /// `XADD key * field value ...`; returns the new id.
    pub fn xadd<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: impl AsRef<[u8]>,
        fields: &[(F, V)],
    ) -> StreamId {
        self.pairs("XADD", key.as_ref(), &[b"*"], fields)
            .as_str()
            .and_then(StreamId::parse)
            .expect("XADD returns an id")
    }

    /// Number of keys.
    pub fn dbsize(&self) -> usize {
        self.keys().index.len()
    }

    /// Messages this host sent with [`Host::send`].
    pub fn take_sent(&self) -> Vec<(ShardId, Vec<u8>)> {
        std::mem::take(&mut lock(&self.inner.outbox))
    }

    /// Lines logged through [`Host::log`].
    pub fn log_lines(&self) -> Vec<String> {
        lock(&self.inner.log).clone()
    }

    pub(super) fn check_local(&self, key: &[u8]) -> Result<(), HostError> {
        let t = &self.inner.topology;
        if t.len() > 1 && t.owner_of_key(key) != t.me() {
            return Err(HostError::new(
                "ERR Attempted to access a non local key in a cluster node",
            ));
        }
        Ok(())
    }
}

impl Host for MemoryHost {
    fn topology(&self) -> Topology {
        self.inner.topology.clone()
    }

    fn scan(&self, pattern: &str, cursor: u64, count: usize) -> Result<ScanPage, HostError> {
        let ks = self.keys();
        let start = cursor as usize;
        let end = start.saturating_add(count.max(1)).min(ks.slots.len());
        let keys = ks.slots[start.min(end)..end]
            .iter()
            .flatten()
            .filter(|(k, _)| glob_match(pattern, k))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(ScanPage {
            cursor: if end >= ks.slots.len() { 0 } else { end as u64 },
            keys,
        })
    }

    fn read_keys(
        &self,
        keys: &[RedisBytes],
        read_value: bool,
    ) -> Result<Vec<(KeyType, Option<KeyValue>)>, HostError> {
        let ks = self.keys();
        Ok(keys
            .iter()
            .map(|k| match ks.get(k) {
                None => (KeyType::Empty, None),
                Some(v) => (v.key_type(), read_value.then(|| v.value())),
            })
            .collect())
    }

    fn stream_range(
        &self,
        key: &[u8],
        after: StreamId,
        count: usize,
    ) -> Result<Vec<StreamEntry>, HostError> {
        let ks = self.keys();
        match ks.get(key) {
            None => Ok(Vec::new()),
            Some(Stored::Stream(s)) => Ok(s
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(count)
                .map(|(id, f)| StreamEntry {
                    id: *id,
                    fields: f.clone(),
                })
                .collect()),
            Some(_) => Err(wrong_type()),
        }
    }

    fn call(&self, args: &[&str]) -> Result<Value, HostError> {
        let args: smallvec::SmallVec<[&[u8]; 8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.execute(&args)
    }

    fn call_bytes(&self, args: &[&[u8]]) -> Result<Value, HostError> {
        self.execute(args)
    }

    fn send(&self, shard: &ShardId, payload: Vec<u8>) -> Result<(), HostError> {
        lock(&self.inner.outbox).push((shard.clone(), payload));
        Ok(())
    }

    fn log(&self, level: LogLevel, message: &str) {
        lock(&self.inner.log).push(format!("{level:?}: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_errors() {
        let h = MemoryHost::new();
        assert_eq!(
            h.call(&["SET", "a", "1"]).unwrap(),
            Value::Status("OK".into())
        );
        assert_eq!(h.call(&["INCRBY", "a", "4"]).unwrap(), Value::Int(5));
        assert!(h
            .call(&["HSET", "a", "f", "v"])
            .unwrap_err()
            .message
            .starts_with("WRONGTYPE"));
        assert!(h
            .call(&["GET"])
            .unwrap_err()
            .message
            .contains("wrong number"));
        assert!(h
            .call(&["NOPE"])
            .unwrap_err()
            .message
            .contains("unknown command"));
        h.hset("h", &[("f", "v")]);
        assert_eq!(h.call(&["HDEL", "h", "f"]).unwrap(), Value::Int(1));
        assert_eq!(h.call(&["EXISTS", "h"]).unwrap(), Value::Int(0));
        let id1 = h.xadd("s", &[("a", "1")]);
        let id2 = h.xadd("s", &[("a", "2")]);
        assert!(id2 > id1);
        assert_eq!(h.stream_range(b"s", id1, 10).unwrap().len(), 1);
    }

    #[test]
    fn scan_pages_cover_everything_once() {
        let h = MemoryHost::new();
        for i in 0..2500 {
            h.set(format!("k{i}"), "v");
        }
        h.call(&["DEL", "k7"]).unwrap();
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let page = h.scan("*", cursor, 100).unwrap();
            seen.extend(page.keys);
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 2499);
    }
}
