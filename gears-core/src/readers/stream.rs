use super::{Once, Reader, ReaderCx, ReaderRun};
use crate::bytes::RedisBytes;
use crate::error::GearsError;
use crate::event::Event;
use crate::host::{Host, StreamId};
use crate::value::{flat_pairs, IntoValue, Value};

/// One stream entry with its stream's key: the record of [`StreamReader`]. The key and the
/// fields are bytes, as Redis has them; [`field`](Self::field) is a string view.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct StreamRecord {
    /// The stream's key.
    pub key: RedisBytes,
    /// The entry id.
    pub id: StreamId,
    /// Field/value pairs.
    pub fields: Vec<(RedisBytes, RedisBytes)>,
}

impl StreamRecord {
    /// The value of field `name`, if it is UTF-8.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.field_bytes(name.as_bytes())?.as_str()
    }

    /// The value of field `name` (any bytes), as bytes.
    pub fn field_bytes(&self, name: &[u8]) -> Option<&RedisBytes> {
        crate::host::field_of(&self.fields, name)
    }
}

impl IntoValue for StreamRecord {
    fn into_value(self) -> Value {
        flat_pairs([
            ("key", self.key.into_value()),
            ("id", Value::bulk(self.id.to_string())),
            ("value", self.fields.into_value()),
        ])
    }
}

/// Entries of a stream (RedisGears 1.x `StreamReader`).
///
/// Batch mode reads the entries after `from_id` (exclusive, like `XREAD`; the default `0-0`
/// reads everything) in batches. As a trigger it receives the new entries.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let out = gears::testing::example(|host| {
///     host.xadd("s", &[("temp", "20")]);
///     host.xadd("s", &[("temp", "22")]);
///     GearsBuilder::new(StreamReader::new("s")).map(|e| e.field("temp").unwrap().to_string())
/// });
/// assert_eq!(out, ["20", "22"]);
/// ```
#[derive(Debug, Clone)]
pub struct StreamReader {
    key: String,
    from: StreamId,
    batch: usize,
    duration_ms: u64,
    on_failure: crate::trigger::FailurePolicy,
    trim: bool,
}

impl StreamReader {
    /// Entries of the stream at `key` (for triggers: a glob of stream keys).
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            from: StreamId::default(),
            batch: 1,
            duration_ms: 0,
            on_failure: crate::trigger::FailurePolicy::Continue,
            trim: false,
        }
    }

    /// Registrations: entries per execution (default 1); an execution starts once this many
    /// are waiting (1.x `batch`).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Registrations: start an execution for fewer than `batch` entries after this long
    /// (1.x `duration`, milliseconds; zero: never wait).
    pub fn duration(mut self, wait: std::time::Duration) -> Self {
        self.duration_ms = wait.as_millis() as u64;
        self
    }

    /// Registrations: what to do when an execution reports errors (1.x `onFailedPolicy`).
    pub fn on_failure(mut self, policy: crate::trigger::FailurePolicy) -> Self {
        self.on_failure = policy;
        self
    }

    /// Registrations: delete processed entries when no other consumer group reads the stream.
    /// Off by default (1.x trims by default, which loses entries other groups still need).
    pub fn trim(mut self, yes: bool) -> Self {
        self.trim = yes;
        self
    }

    /// Read entries with ids strictly greater than `id`.
    pub fn from_id(mut self, id: StreamId) -> Self {
        self.from = id;
        self
    }

    /// The key (or key pattern).
    pub fn key(&self) -> &str {
        &self.key
    }
}

struct StreamRun {
    host: std::sync::Arc<dyn Host>,
    key: RedisBytes,
    after: StreamId,
    done: bool,
}

impl ReaderRun<StreamRecord> for StreamRun {
    fn next_batch(&mut self, out: &mut Vec<StreamRecord>, max: usize) -> Result<bool, GearsError> {
        if self.done {
            return Ok(false);
        }
        let entries = self.host.stream_range(&self.key, self.after, max)?;
        if entries.len() < max {
            self.done = true;
        }
        if let Some(last) = entries.last() {
            self.after = last.id;
        }
        out.extend(entries.into_iter().map(|e| StreamRecord {
            key: self.key.clone(),
            id: e.id,
            fields: e.fields,
        }));
        Ok(!self.done)
    }
}

impl Reader for StreamReader {
    type Record = StreamRecord;

    fn name(&self) -> &'static str {
        "StreamReader"
    }

    fn trigger(&self) -> Option<crate::trigger::TriggerSpec> {
        Some(crate::trigger::TriggerSpec::Stream {
            pattern: self.key.clone(),
            batch: self.batch,
            duration_ms: self.duration_ms,
            on_failure: self.on_failure,
            trim: self.trim,
        })
    }

    fn open(&self, cx: &ReaderCx<'_>) -> Result<Box<dyn ReaderRun<StreamRecord>>, GearsError> {
        match cx.event {
            Some(Event::Stream { key, entries }) => {
                let records: Vec<_> = entries
                    .iter()
                    .map(|e| StreamRecord {
                        key: key.clone(),
                        id: e.id,
                        fields: e.fields.clone(),
                    })
                    .collect();
                Ok(Box::new(Once(Some(records.into_iter()))))
            }
            Some(_) => Err(GearsError::Reader {
                reader: "StreamReader",
                message: "fired by a non-stream event".into(),
            }),
            None => Ok(Box::new(StreamRun {
                host: cx.host.clone(),
                key: RedisBytes::from(self.key.as_str()),
                after: self.from,
                done: false,
            })),
        }
    }
}
