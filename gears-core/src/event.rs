//! [`Event`]: what fires an execution of a registration (a keyspace notification, new stream
//! entries, `RG.TRIGGER`), as the host reports it and as it crosses shards.

use crate::bytes::RedisBytes;
use crate::host::{KeyType, KeyValue, StreamEntry};

/// What triggered an execution of a registration.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub enum Event {
    /// A keyspace notification (`event` is its name: `set`, `hset`, `del`, ...).
    Key {
        /// The key, as bytes.
        key: RedisBytes,
        /// The event name.
        event: String,
        /// The key's type as the notification tells it (`Empty` when it does not, e.g. `del`).
        key_type: KeyType,
        /// The key's type and value read when the event happened (registrations with
        /// `KeysReader::snapshot(true)`); `None`: read when the execution runs.
        snapshot: Option<(KeyType, Option<KeyValue>)>,
    },
    /// New entries of a stream.
    Stream {
        /// The stream's key, as bytes.
        key: RedisBytes,
        /// The entries, oldest first.
        entries: Vec<StreamEntry>,
    },
    /// `RG.TRIGGER name arg...`: the trigger name followed by the arguments.
    Command {
        /// `[trigger, arg1, ...]`.
        args: Vec<String>,
    },
}
