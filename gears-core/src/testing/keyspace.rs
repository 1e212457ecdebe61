//! The in-memory keyspace: typed values by key, in insertion order (a scan cursor is a
//! position), with Redis's error replies for the wrong type and the wrong arity.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::bytes::RedisBytes;
use crate::error::HostError;
use crate::host::{KeyType, KeyValue, StreamEntry, StreamId};

#[derive(Debug, Clone)]
pub(super) enum Stored {
    String(RedisBytes),
    Hash(BTreeMap<RedisBytes, RedisBytes>),
    List(Vec<RedisBytes>),
    Set(BTreeSet<RedisBytes>),
    ZSet(Vec<(RedisBytes, f64)>),
    Stream(BTreeMap<StreamId, Vec<(RedisBytes, RedisBytes)>>),
}

impl Stored {
    pub(super) fn key_type(&self) -> KeyType {
        match self {
            Stored::String(_) => KeyType::String,
            Stored::Hash(_) => KeyType::Hash,
            Stored::List(_) => KeyType::List,
            Stored::Set(_) => KeyType::Set,
            Stored::ZSet(_) => KeyType::ZSet,
            Stored::Stream(_) => KeyType::Stream,
        }
    }

    pub(super) fn value(&self) -> KeyValue {
        match self {
            Stored::String(s) => KeyValue::String(s.clone()),
            Stored::Hash(h) => KeyValue::Hash(h.clone()),
            Stored::List(l) => KeyValue::List(l.clone()),
            Stored::Set(s) => KeyValue::Set(s.iter().cloned().collect()),
            Stored::ZSet(z) => KeyValue::ZSet(z.clone()),
            Stored::Stream(s) => KeyValue::Stream(
                s.iter()
                    .map(|(id, f)| StreamEntry {
                        id: *id,
                        fields: f.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

/// Keys (any bytes) in insertion order (cursor = position), with O(1) lookup.
#[derive(Default)]
pub(super) struct Keyspace {
    pub(super) index: HashMap<RedisBytes, usize>,
    pub(super) slots: Vec<Option<(RedisBytes, Stored)>>,
    pub(super) last_stream_id: StreamId,
}

impl Keyspace {
    pub(super) fn get(&self, key: &[u8]) -> Option<&Stored> {
        self.index
            .get(key)
            .and_then(|&i| self.slots[i].as_ref())
            .map(|(_, v)| v)
    }

    pub(super) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Stored> {
        let i = *self.index.get(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    pub(super) fn put(&mut self, key: &[u8], value: Stored) {
        match self.index.get(key) {
            Some(&i) => self.slots[i] = Some((key.into(), value)),
            None => {
                self.index.insert(key.into(), self.slots.len());
                self.slots.push(Some((key.into(), value)));
            }
        }
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> bool {
        match self.index.remove(key) {
            Some(i) => self.slots[i].take().is_some(),
            None => false,
        }
    }

    /// The value at `key`, created with `make` if missing; WRONGTYPE if `check` rejects it.
    pub(super) fn entry(
        &mut self,
        key: &[u8],
        make: impl FnOnce() -> Stored,
        check: fn(&Stored) -> bool,
    ) -> Result<&mut Stored, HostError> {
        if self.get(key).is_none() {
            self.put(key, make());
        }
        let v = self.get_mut(key).expect("just inserted");
        if check(v) {
            Ok(v)
        } else {
            Err(wrong_type())
        }
    }

    pub(super) fn next_stream_id(&mut self) -> StreamId {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let id = if now > self.last_stream_id.ms {
            StreamId { ms: now, seq: 0 }
        } else {
            StreamId {
                ms: self.last_stream_id.ms,
                seq: self.last_stream_id.seq + 1,
            }
        };
        self.last_stream_id = id;
        id
    }
}

pub(super) fn wrong_type() -> HostError {
    HostError::new("WRONGTYPE Operation against a key holding the wrong kind of value")
}

pub(super) fn arity(cmd: &str) -> HostError {
    HostError::new(format!(
        "ERR wrong number of arguments for '{}' command",
        cmd.to_ascii_lowercase()
    ))
}
