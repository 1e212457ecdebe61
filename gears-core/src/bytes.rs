//! [`RedisBytes`]: a Redis string as Redis has it, bytes that need not be UTF-8.
//!
//! Key names, string values, hash fields, list, set and sorted-set members and stream fields
//! are binary-safe in Redis; records carry them as `RedisBytes` so a flow hands them back
//! byte for byte. [`as_str`](RedisBytes::as_str) is the string view for the common case
//! (text); [`Display`](std::fmt::Display) is lossy (invalid UTF-8 shows as `U+FFFD`) and
//! [`Debug`](std::fmt::Debug) escapes what is not printable.
//!
//! ```
//! use gears_core::bytes::RedisBytes;
//! let text = RedisBytes::from("user:1");
//! assert_eq!(text, "user:1");
//! assert_eq!(text.as_str(), Some("user:1"));
//! let raw = RedisBytes::from(&b"a\0b\xff"[..]);
//! assert_eq!(raw.as_str(), None);
//! assert_eq!(raw.as_bytes(), b"a\0b\xff");
//! assert_eq!(raw.to_string(), "a\0b\u{fffd}");
//! assert_eq!(format!("{raw:?}"), r#"b"a\x00b\xff""#);
//! assert_eq!(gears_core::value::IntoValue::into_value(raw).as_str(), None);
//! ```

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

use crate::record::PartitionKey;
use crate::value::{IntoValue, Value};

/// A Redis string: bytes, with a string view when they are UTF-8.
#[derive(
    Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct RedisBytes(Vec<u8>);

impl RedisBytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, if they are UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The bytes as text, invalid UTF-8 replaced by `U+FFFD` (for logs and messages, never for
    /// data written back).
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// The bytes as a `String` if they are UTF-8, else themselves back.
    pub fn into_string(self) -> Result<String, RedisBytes> {
        String::from_utf8(self.0).map_err(|e| RedisBytes(e.into_bytes()))
    }
}

impl fmt::Display for RedisBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for RedisBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "b\"{}\"", self.0.escape_ascii()),
        }
    }
}

impl Deref for RedisBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for RedisBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Borrow<[u8]> for RedisBytes {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for RedisBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for RedisBytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for RedisBytes {
    fn from(bytes: &[u8; N]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<String> for RedisBytes {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl From<&str> for RedisBytes {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl From<&String> for RedisBytes {
    fn from(text: &String) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl From<RedisBytes> for Vec<u8> {
    fn from(bytes: RedisBytes) -> Self {
        bytes.0
    }
}

macro_rules! eq_both_ways {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for RedisBytes {
            fn eq(&self, other: &$other) -> bool {
                self.0 == AsRef::<[u8]>::as_ref(other)
            }
        }
        impl PartialEq<RedisBytes> for $other {
            fn eq(&self, other: &RedisBytes) -> bool {
                AsRef::<[u8]>::as_ref(self) == other.0
            }
        }
    )*};
}
eq_both_ways!(str, &str, String, [u8], &[u8], Vec<u8>);

impl<const N: usize> PartialEq<[u8; N]> for RedisBytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for RedisBytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == *other
    }
}

impl IntoValue for RedisBytes {
    fn into_value(self) -> Value {
        Value::Bulk(self.0)
    }
}

impl From<RedisBytes> for Value {
    fn from(bytes: RedisBytes) -> Self {
        Value::Bulk(bytes.0)
    }
}

impl PartitionKey for RedisBytes {
    fn key_bytes(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn views_comparisons_and_codec() {
        let raw = RedisBytes::from(b"\xff\xfe");
        assert_eq!(raw.to_string_lossy(), "\u{fffd}\u{fffd}");
        assert_eq!(raw.clone().into_string(), Err(raw.clone()));
        assert_eq!(RedisBytes::from("ok").into_string().as_deref(), Ok("ok"));
        assert_eq!(format!("{:?}", RedisBytes::from("a\0b")), r#""a\0b""#);
        let x = RedisBytes::from("x");
        assert!("x" == x && x == *b"x" && x == b"x".as_slice());
        // Maps keyed by bytes are looked up by slices.
        let map = BTreeMap::from([(RedisBytes::from(b"f\0"), 1)]);
        assert_eq!(map.get(&b"f\0"[..]), Some(&1));
        // The codec keeps every byte.
        let bytes = crate::codec::encode_value(&raw).unwrap();
        assert_eq!(
            crate::codec::decode_value::<RedisBytes>(&bytes).unwrap(),
            raw
        );
        assert_eq!(raw.into_value(), Value::Bulk(vec![0xff, 0xfe]));
    }
}
