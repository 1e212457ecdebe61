//! What a key holds: its type, its typed value, stream entries and their ids.

use std::collections::BTreeMap;
use std::fmt;

use crate::bytes::RedisBytes;
use crate::value::{IntoValue, Value};

/// The Redis type of a key, as `TYPE` reports it (`Empty` for a missing key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum KeyType {
    /// A string.
    String,
    /// A hash.
    Hash,
    /// A list.
    List,
    /// A set.
    Set,
    /// A sorted set.
    ZSet,
    /// A stream.
    Stream,
    /// A module type.
    Module,
    /// The key does not exist.
    Empty,
}

impl KeyType {
    /// The name RedisGears 1.x gives this type (`string`, `hash`, ..., `empty`).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Stream => "stream",
            KeyType::Module => "module",
            KeyType::Empty => "empty",
        }
    }

    /// Parses a 1.x type name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "string" => KeyType::String,
            "hash" => KeyType::Hash,
            "list" => KeyType::List,
            "set" => KeyType::Set,
            "zset" => KeyType::ZSet,
            "stream" => KeyType::Stream,
            "module" => KeyType::Module,
            "empty" => KeyType::Empty,
            _ => return None,
        })
    }
}

/// A stream entry id `ms-seq`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    bincode::Encode,
    bincode::Decode,
)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// Parses `ms-seq` (or `ms`, meaning `ms-0`).
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = match s.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (s.parse().ok()?, 0),
        };
        Some(Self { ms, seq })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct StreamEntry {
    /// The entry id.
    pub id: StreamId,
    /// Field/value pairs in insertion order, as bytes.
    pub fields: Vec<(RedisBytes, RedisBytes)>,
}

impl StreamEntry {
    /// The value of field `name`, if it is text.
    pub fn field(&self, name: &str) -> Option<&str> {
        field_of(&self.fields, name.as_bytes())?.as_str()
    }
}

/// The value of the first field named `name` of stream fields.
pub(crate) fn field_of<'a>(
    fields: &'a [(RedisBytes, RedisBytes)],
    name: &[u8],
) -> Option<&'a RedisBytes> {
    fields.iter().find(|(f, _)| **f == *name).map(|(_, v)| v)
}

/// A key's value, typed by the key's type; every string in it is bytes, as Redis has them.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub enum KeyValue {
    /// A string value.
    String(RedisBytes),
    /// A hash, fields sorted by name.
    Hash(BTreeMap<RedisBytes, RedisBytes>),
    /// A list, head first.
    List(Vec<RedisBytes>),
    /// A set's members, sorted.
    Set(Vec<RedisBytes>),
    /// A sorted set's members with scores, in score order.
    ZSet(Vec<(RedisBytes, f64)>),
    /// A stream's entries, oldest first.
    Stream(Vec<StreamEntry>),
}

impl KeyValue {
    /// The key type this value belongs to.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyValue::String(_) => KeyType::String,
            KeyValue::Hash(_) => KeyType::Hash,
            KeyValue::List(_) => KeyType::List,
            KeyValue::Set(_) => KeyType::Set,
            KeyValue::ZSet(_) => KeyType::ZSet,
            KeyValue::Stream(_) => KeyType::Stream,
        }
    }
}

impl IntoValue for StreamEntry {
    fn into_value(self) -> Value {
        Value::Array(vec![
            Value::bulk(self.id.to_string()),
            self.fields.into_value(),
        ])
    }
}

impl IntoValue for KeyValue {
    fn into_value(self) -> Value {
        match self {
            KeyValue::String(s) => s.into_value(),
            KeyValue::Hash(h) => h.into_value(),
            KeyValue::List(l) | KeyValue::Set(l) => l.into_value(),
            KeyValue::ZSet(z) => z.into_value(),
            KeyValue::Stream(s) => s.into_value(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_parse() {
        assert_eq!(StreamId::parse("5-3"), Some(StreamId { ms: 5, seq: 3 }));
        assert_eq!(StreamId::parse("7"), Some(StreamId { ms: 7, seq: 0 }));
        assert_eq!(StreamId::parse("x-1"), None);
        assert_eq!(StreamId { ms: 1, seq: 2 }.to_string(), "1-2");
    }
}
