//! [`Value`]: a Redis reply, independent of Redis. Flow results become values through
//! [`IntoValue`]; `gears-module` turns values into replies.

use std::collections::{BTreeMap, HashMap};

use crate::error::StepError;

/// A reply value, as Redis would send it.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub enum Value {
    /// Nil.
    Nil,
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// A simple (status) string such as `OK`.
    Status(String),
    /// An error reply.
    Error(String),
    /// An array.
    Array(Vec<Value>),
}

impl Value {
    /// A bulk string from text.
    pub fn bulk(s: impl Into<String>) -> Self {
        Value::Bulk(s.into().into_bytes())
    }

    /// The value as text, if it is a bulk or status string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bulk(b) => std::str::from_utf8(b).ok(),
            Value::Status(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, if it is one (or a bulk string holding one).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bulk(_) => self.as_str()?.parse().ok(),
            _ => None,
        }
    }
}

/// Converts a flow's result record into a reply [`Value`].
pub trait IntoValue {
    /// Performs the conversion.
    fn into_value(self) -> Value;
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Bulk(self.into_bytes())
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Bulk(self.as_bytes().to_vec())
    }
}

impl IntoValue for bool {
    fn into_value(self) -> Value {
        Value::Int(self as i64)
    }
}

impl IntoValue for () {
    fn into_value(self) -> Value {
        Value::Nil
    }
}

macro_rules! int_into_value {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::Int(self as i64)
            }
        }
    )*};
}
int_into_value!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Double(self)
    }
}

impl IntoValue for f32 {
    fn into_value(self) -> Value {
        Value::Double(self as f64)
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Nil, IntoValue::into_value)
    }
}

impl<T: IntoValue> IntoValue for Vec<T> {
    fn into_value(self) -> Value {
        Value::Array(self.into_iter().map(IntoValue::into_value).collect())
    }
}

impl<A: IntoValue, B: IntoValue> IntoValue for (A, B) {
    fn into_value(self) -> Value {
        Value::Array(vec![self.0.into_value(), self.1.into_value()])
    }
}

impl<A: IntoValue, B: IntoValue, C: IntoValue> IntoValue for (A, B, C) {
    fn into_value(self) -> Value {
        Value::Array(vec![
            self.0.into_value(),
            self.1.into_value(),
            self.2.into_value(),
        ])
    }
}

/// A map as Redis replies one: a flat array of keys and values.
pub(crate) fn flat_pairs<K: IntoValue, V: IntoValue>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Value {
    Value::Array(
        pairs
            .into_iter()
            .flat_map(|(k, v)| [k.into_value(), v.into_value()])
            .collect(),
    )
}

impl<K: IntoValue, V: IntoValue> IntoValue for BTreeMap<K, V> {
    fn into_value(self) -> Value {
        flat_pairs(self)
    }
}

impl<K: IntoValue, V: IntoValue> IntoValue for HashMap<K, V> {
    fn into_value(self) -> Value {
        flat_pairs(self)
    }
}

impl IntoValue for StepError {
    fn into_value(self) -> Value {
        Value::Error(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!("a".into_value(), Value::bulk("a"));
        assert_eq!(3u64.into_value(), Value::Int(3));
        assert_eq!(None::<i64>.into_value(), Value::Nil);
        assert_eq!(
            ("k".to_string(), 2u64).into_value(),
            Value::Array(vec![Value::bulk("k"), Value::Int(2)])
        );
        assert_eq!(Value::bulk("12").as_i64(), Some(12));
        assert_eq!(Value::Status("OK".into()).as_str(), Some("OK"));
    }
}
