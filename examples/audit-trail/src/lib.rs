//! Example Gears module: an audit trail. Every change to a `user:*` hash (`HSET`, `HDEL`,
//! `DEL`, expiry) appends an entry to the stream `{<key>}:audit` **inside the client's own
//! command** (`sync` mode): the change and its audit entry are one atomic write, replicated
//! together, and the client's reply comes after both. The stream name carries the key as its
//! hash tag, so on a cluster it lives on the key's shard.
//!
//! ```text
//! redis-server --loadmodule target/release/libgears_audit.so
//! redis-cli HSET user:1 name ann
//! redis-cli XRANGE {user:1}:audit - +    # event hset, state name=ann
//! ```

use gears::context;
use gears::prelude::*;

/// The audit stream of `key` (any bytes): same hash slot as the key.
pub fn audit_stream(key: &[u8]) -> RedisBytes {
    [b"{", key, b"}:audit"].concat().into()
}

/// The fields of a hash as `field=value&...` (fields in order, their bytes as they are); `-`
/// once the key is gone.
pub fn state(value: Option<&KeyValue>) -> RedisBytes {
    match value {
        Some(KeyValue::Hash(fields)) => {
            let mut out = Vec::new();
            for (f, v) in fields {
                if !out.is_empty() {
                    out.push(b'&');
                }
                out.extend([f.as_bytes(), b"=", v.as_bytes()].concat());
            }
            out.into()
        }
        _ => "-".into(),
    }
}

/// Appends `event` and the hash's state after it to `{key}:audit`, atomically with the write.
#[gears::register]
pub fn audit() -> Result<Registration, GearsError> {
    GearsBuilder::new(
        KeysReader::new("user:*")
            .event_types(["hset", "hdel", "del", "expired"])
            .key_types([KeyType::Hash, KeyType::Empty]),
    )
    .try_for_each(|r| {
        let event = r.event.as_deref().unwrap_or("?");
        let state = state(r.value.as_ref());
        context::stream_add(
            audit_stream(&r.key),
            &[("event", event.as_bytes()), ("state", &state)],
        )
        .map(|_| ())
    })
    .register(ExecutionMode::Sync)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn stream_names_and_states() {
        assert_eq!(audit_stream(b"user:1"), "{user:1}:audit");
        let hash: BTreeMap<RedisBytes, RedisBytes> =
            [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        assert_eq!(state(Some(&KeyValue::Hash(hash))), "a=1&b=2");
        assert_eq!(state(None), "-");
        assert_eq!(audit().unwrap().mode, ExecutionMode::Sync);
    }
}

gears::export! { name: "audit" }
