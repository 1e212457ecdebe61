//! Conversions between the engine's [`Value`] and Redis replies.

use redis_module::{CallReply, CallResult, RedisValue};

use gears_core::execution::Outcome;
use gears_core::value::Value;

/// A reply for a client.
pub(crate) fn to_redis(value: Value) -> RedisValue {
    match value {
        Value::Nil => RedisValue::Null,
        Value::Int(i) => RedisValue::Integer(i),
        Value::Double(d) => RedisValue::Float(d),
        Value::Bulk(b) => RedisValue::StringBuffer(b),
        // A status line cannot hold NUL, CR or LF: send such text as a bulk string.
        Value::Status(s) if s.contains(['\0', '\r', '\n']) => RedisValue::BulkString(s),
        Value::Status(s) => RedisValue::SimpleString(s),
        // Errors inside arrays are sent as bulk strings, as RedisGears 1.x lists its errors.
        Value::Error(e) => RedisValue::BulkString(e),
        Value::Array(items) => RedisValue::Array(items.into_iter().map(to_redis).collect()),
    }
}

/// What an `RM_Call` returned, as a value; error replies are `Err`.
pub(crate) fn from_call(result: &CallResult<'_>) -> Result<Value, String> {
    match result {
        Ok(reply) => Ok(from_reply(reply)),
        Err(e) => Err(e
            .to_utf8_string()
            .unwrap_or_else(|| "ERR (non-UTF-8 error)".into())),
    }
}

fn from_nested(result: Option<CallResult<'_>>) -> Value {
    match result {
        Some(Ok(reply)) => from_reply(&reply),
        Some(Err(e)) => Value::Error(e.to_utf8_string().unwrap_or_default()),
        None => Value::Nil,
    }
}

fn from_reply(reply: &CallReply<'_>) -> Value {
    match reply {
        CallReply::I64(i) => Value::Int(i.to_i64()),
        CallReply::String(s) => Value::Bulk(s.as_bytes().to_vec()),
        CallReply::Null(_) | CallReply::Unknown => Value::Nil,
        CallReply::Bool(b) => Value::Int(b.to_bool() as i64),
        CallReply::Double(d) => Value::Double(d.to_double()),
        CallReply::BigNumber(n) => Value::bulk(n.to_string().unwrap_or_default()),
        CallReply::VerbatimString(v) => {
            Value::Bulk(v.to_parts().map(|(_, b)| b).unwrap_or_default())
        }
        CallReply::Array(a) => Value::Array((0..a.len()).map(|i| from_nested(a.get(i))).collect()),
        CallReply::Set(s) => Value::Array((0..s.len()).map(|i| from_nested(s.get(i))).collect()),
        CallReply::Map(m) => Value::Array(
            (0..m.len())
                .filter_map(|i| m.get(i))
                .flat_map(|(k, v)| [from_nested(Some(k)), from_nested(Some(v))])
                .collect(),
        ),
    }
}

/// `[[results...], [errors...]]`, the 1.x reply of a finished execution.
pub(crate) fn results_reply(outcome: &Outcome) -> RedisValue {
    RedisValue::Array(vec![
        RedisValue::Array(outcome.results.iter().cloned().map(to_redis).collect()),
        RedisValue::Array(
            outcome
                .errors
                .iter()
                .map(|e| RedisValue::BulkString(e.clone()))
                .collect(),
        ),
    ])
}
