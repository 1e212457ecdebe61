use std::collections::BTreeMap;
use std::sync::Arc;

use super::scan::KeyPages;
use super::{Once, OneRecord, Reader, ReaderCx, ReaderRun};
use crate::bytes::RedisBytes;
use crate::error::GearsError;
use crate::event::Event;
use crate::host::{Host, KeyType, KeyValue};
use crate::value::{flat_pairs, IntoValue, Value};

/// A key and (optionally) its value: the record of [`KeysReader`].
///
/// The name and the value are bytes, exactly as Redis has them; [`key_str`](Self::key_str),
/// [`string`](Self::string) and [`field`](Self::field) are their string views (`None` when
/// not UTF-8), the `*_bytes` accessors the bytes themselves.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct KeyRecord {
    /// The key name.
    pub key: RedisBytes,
    /// The key's type (`Empty` if it does not exist).
    pub key_type: KeyType,
    /// The value, when read (`None` for a missing key, a module type, or `read_value(false)`).
    pub value: Option<KeyValue>,
    /// The event that fired the execution, `None` in batch runs.
    pub event: Option<String>,
}

impl KeyRecord {
    /// The key name, if it is UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key.as_str()
    }

    /// The value of a string key, if it is UTF-8.
    pub fn string(&self) -> Option<&str> {
        self.string_bytes()?.as_str()
    }

    /// The value of a string key, as bytes.
    pub fn string_bytes(&self) -> Option<&RedisBytes> {
        match &self.value {
            Some(KeyValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The fields of a hash key.
    pub fn hash(&self) -> Option<&BTreeMap<RedisBytes, RedisBytes>> {
        match &self.value {
            Some(KeyValue::Hash(h)) => Some(h),
            _ => None,
        }
    }

    /// One field of a hash key, if its value is UTF-8.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.field_bytes(name.as_bytes())?.as_str()
    }

    /// One field of a hash key (a name of any bytes), as bytes.
    pub fn field_bytes(&self, name: &[u8]) -> Option<&RedisBytes> {
        self.hash()?.get(name)
    }

    /// The elements of a list key (or the members of a set key).
    pub fn list(&self) -> Option<&[RedisBytes]> {
        match &self.value {
            Some(KeyValue::List(l)) | Some(KeyValue::Set(l)) => Some(l),
            _ => None,
        }
    }
}

impl IntoValue for KeyRecord {
    fn into_value(self) -> Value {
        flat_pairs([
            ("key", self.key.into_value()),
            ("type", Value::bulk(self.key_type.name())),
            ("value", self.value.into_value()),
            ("event", self.event.into_value()),
        ])
    }
}

/// Keys matching a glob pattern, with their typed values (RedisGears 1.x `KeysReader`).
///
/// Batch mode scans the shard's keyspace page by page (not a point-in-time view, as in 1.x).
/// As a trigger it fires for keyspace events on matching keys; the pattern is a full glob
/// (1.x only honours a trailing `*`).
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let out = gears::testing::example(|host| {
///     host.set("a", "1");
///     host.hset("user:1", &[("name", "ann")]);
///     GearsBuilder::new(KeysReader::new("user:*")).map(|r| r.field("name").unwrap().to_string())
/// });
/// assert_eq!(out, ["ann"]);
/// ```
#[derive(Debug, Clone)]
pub struct KeysReader {
    pattern: String,
    no_scan: bool,
    read_value: bool,
    page: usize,
    event_types: Option<Vec<String>>,
    key_types: Option<Vec<KeyType>>,
    snapshot: bool,
}

impl KeysReader {
    /// Keys matching `pattern` (`*` for all).
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            no_scan: false,
            read_value: true,
            page: 1000,
            event_types: None,
            key_types: None,
            snapshot: false,
        }
    }

    /// Registrations in background modes: read the key's value when the event happens (in
    /// the notification) instead of when the execution runs, so a later write cannot change
    /// what the execution sees (1.x always read late).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// use gears::trigger::TriggerSpec;
    /// let reg = GearsBuilder::new(KeysReader::new("k:*").snapshot(true))
    ///     .register(ExecutionMode::AsyncLocal)
    ///     .unwrap();
    /// assert!(matches!(reg.trigger, TriggerSpec::Keys { snapshot: true, .. }));
    /// ```
    pub fn snapshot(mut self, yes: bool) -> Self {
        self.snapshot = yes;
        self
    }

    /// Treat the pattern as one exact key name: read it without scanning (1.x `noScan`).
    pub fn no_scan(mut self, yes: bool) -> Self {
        self.no_scan = yes;
        self
    }

    /// Read values (default) or only key names and types (1.x `readValue`).
    pub fn read_value(mut self, yes: bool) -> Self {
        self.read_value = yes;
        self
    }

    /// Keys per scan page (default 1000).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }

    /// Only fire for these keyspace events (case-insensitive), e.g. `["hset", "del"]`.
    pub fn event_types<S: AsRef<str>>(mut self, events: impl IntoIterator<Item = S>) -> Self {
        self.event_types = Some(
            events
                .into_iter()
                .map(|e| e.as_ref().to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// Only fire for keys of these types.
    pub fn key_types(mut self, types: impl IntoIterator<Item = KeyType>) -> Self {
        self.key_types = Some(types.into_iter().collect());
        self
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the event `event` on `key` (of type `key_type`) should fire this reader.
    pub fn accepts(&self, key: &[u8], event: &str, key_type: KeyType) -> bool {
        self.trigger()
            .is_some_and(|t| t.accepts_key_event(key, event, key_type))
    }
}

fn read_one(
    host: &dyn Host,
    key: &RedisBytes,
    read_value: bool,
    event: Option<String>,
) -> Result<KeyRecord, GearsError> {
    let mut read = host.read_keys(std::slice::from_ref(key), read_value)?;
    let (key_type, value) = read.pop().unwrap_or((KeyType::Empty, None));
    Ok(KeyRecord {
        key: key.clone(),
        key_type,
        value,
        event,
    })
}

impl Reader for KeysReader {
    type Record = KeyRecord;

    fn name(&self) -> &'static str {
        "KeysReader"
    }

    fn trigger(&self) -> Option<crate::trigger::TriggerSpec> {
        Some(crate::trigger::TriggerSpec::Keys {
            pattern: self.pattern.clone(),
            exact: self.no_scan,
            event_types: self.event_types.clone(),
            key_types: self.key_types.clone(),
            snapshot: self.snapshot,
        })
    }

    fn event_record(&self, event: Event) -> Result<KeyRecord, Event> {
        match event {
            // Nothing to read: the record is the event's key and name, moved.
            Event::Key {
                key,
                event,
                key_type,
                snapshot: None,
            } if !self.read_value && key_type != KeyType::Empty => Ok(KeyRecord {
                key,
                key_type,
                value: None,
                event: Some(event),
            }),
            other => Err(other),
        }
    }

    fn open_owned(
        &self,
        host: &Arc<dyn Host>,
        event: Option<Event>,
    ) -> Result<Box<dyn ReaderRun<KeyRecord>>, GearsError> {
        match event.map(|e| self.event_record(e)) {
            Some(Ok(record)) => Ok(Box::new(OneRecord(Some(record)))),
            Some(Err(event)) => self.open(&ReaderCx {
                host,
                event: Some(&event),
            }),
            None => self.open(&ReaderCx { host, event: None }),
        }
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<KeyRecord>>, GearsError> {
        match cx.event {
            Some(Event::Key {
                key,
                event,
                key_type,
                snapshot,
            }) => {
                // A snapshot taken at event time wins; without the value, the type the
                // notification gave is enough: no read.
                let record = if let Some((snap_type, snap_value)) = snapshot {
                    KeyRecord {
                        key: key.clone(),
                        key_type: *snap_type,
                        value: if self.read_value {
                            snap_value.clone()
                        } else {
                            None
                        },
                        event: Some(event.clone()),
                    }
                } else if !self.read_value && *key_type != KeyType::Empty {
                    KeyRecord {
                        key: key.clone(),
                        key_type: *key_type,
                        value: None,
                        event: Some(event.clone()),
                    }
                } else {
                    read_one(&**cx.host, key, self.read_value, Some(event.clone()))?
                };
                Ok(Box::new(OneRecord(Some(record))))
            }
            Some(_) => Err(GearsError::Reader {
                reader: "KeysReader",
                message: "fired by a non-keyspace event".into(),
            }),
            None if self.no_scan => {
                let key = RedisBytes::from(self.pattern.as_str());
                let record = read_one(&**cx.host, &key, self.read_value, None)?;
                let records = if record.key_type == KeyType::Empty {
                    vec![]
                } else {
                    vec![record]
                };
                Ok(Box::new(Once(Some(records.into_iter()))))
            }
            None => Ok(Box::new(KeyPages::new(
                cx.host,
                &self.pattern,
                Some(self.read_value),
                self.page,
                |(key, key_type, value)| KeyRecord {
                    key,
                    key_type,
                    value,
                    event: None,
                },
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryHost;

    fn all(mut run: Box<dyn ReaderRun<KeyRecord>>) -> Vec<KeyRecord> {
        let mut out = Vec::new();
        while run.next_batch(&mut out, 10).unwrap() {}
        out
    }

    fn key_event(event: &str, key_type: KeyType, snapshot: bool) -> Event {
        Event::Key {
            key: "user:1".into(),
            event: event.into(),
            key_type,
            snapshot: snapshot.then(|| {
                let mut fields = BTreeMap::new();
                fields.insert("name".into(), "then".into());
                (KeyType::Hash, Some(KeyValue::Hash(fields)))
            }),
        }
    }

    #[test]
    fn an_event_gives_the_same_record_lent_or_given() {
        let memory = MemoryHost::new();
        memory.hset("user:1", &[("name", "now")]);
        let host: Arc<dyn Host> = Arc::new(memory);
        let events = [
            key_event("hset", KeyType::Hash, false),
            key_event("hset", KeyType::Hash, true),
            key_event("del", KeyType::Empty, false),
        ];
        for reader in [
            KeysReader::new("user:*").read_value(false),
            KeysReader::new("user:*"),
        ] {
            for event in &events {
                let lent = all(reader
                    .open(&ReaderCx {
                        host: &host,
                        event: Some(event),
                    })
                    .unwrap());
                let given = all(reader.open_owned(&host, Some(event.clone())).unwrap());
                assert_eq!(lent, given, "{event:?}");
                assert_eq!(given.len(), 1);
                assert_eq!(given[0].key, "user:1");
                assert_eq!(given[0].event.as_deref(), event_name(event));
            }
        }
        // Without values, the record of the hset event (moved) says hash and carries none.
        let keys_only = KeysReader::new("user:*").read_value(false);
        let given = all(keys_only
            .open_owned(&host, Some(events[0].clone()))
            .unwrap());
        assert_eq!((given[0].key_type, &given[0].value), (KeyType::Hash, &None));
        // With values, the snapshot wins over the value now.
        let with_value = KeysReader::new("user:*");
        let given = all(with_value
            .open_owned(&host, Some(events[1].clone()))
            .unwrap());
        let Some(KeyValue::Hash(fields)) = &given[0].value else {
            panic!("a hash value expected: {given:?}");
        };
        assert_eq!(fields[&b"name"[..]], "then");
    }

    fn event_name(event: &Event) -> Option<&str> {
        match event {
            Event::Key { event, .. } => Some(event),
            _ => None,
        }
    }
}
