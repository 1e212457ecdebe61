//! The bounds records must satisfy, stated once.

use std::hash::Hash;

/// Data that can flow through a flow and cross shards: bincode-2 encodable, `Send`, `'static`.
///
/// Implemented automatically for every such type. Derive it for your own types with
/// `#[derive(bincode::Encode, bincode::Decode)]`.
pub trait Record: bincode::Encode + bincode::Decode<()> + Send + 'static {}

impl<T> Record for T where T: bincode::Encode + bincode::Decode<()> + Send + 'static {}

/// A key that decides which shard a record goes to in `repartition` and the grouping steps.
///
/// Its [`key_bytes`](PartitionKey::key_bytes) are hashed like a Redis key (CRC16 of the
/// `{hashtag}` if any), so a record keyed `"user:1"` lands on the shard owning key `user:1`.
pub trait PartitionKey: Record + Hash + Eq + Clone {
    /// Appends the bytes that stand for this key, as Redis would see it, to `buf`.
    fn key_bytes(&self, buf: &mut Vec<u8>);
}

impl PartitionKey for String {
    fn key_bytes(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.as_bytes());
    }
}

impl PartitionKey for Vec<u8> {
    fn key_bytes(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self);
    }
}

impl PartitionKey for bool {
    fn key_bytes(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(if *self { b"1" } else { b"0" });
    }
}

impl PartitionKey for char {
    fn key_bytes(&self, buf: &mut Vec<u8>) {
        let mut tmp = [0u8; 4];
        buf.extend_from_slice(self.encode_utf8(&mut tmp).as_bytes());
    }
}

macro_rules! decimal_partition_key {
    ($($t:ty),*) => {$(
        impl PartitionKey for $t {
            fn key_bytes(&self, buf: &mut Vec<u8>) {
                use std::io::Write;
                // Writing to a Vec cannot fail.
                let _ = write!(buf, "{}", self);
            }
        }
    )*};
}
decimal_partition_key!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl<A: PartitionKey, B: PartitionKey> PartitionKey for (A, B) {
    fn key_bytes(&self, buf: &mut Vec<u8>) {
        self.0.key_bytes(buf);
        buf.push(b':');
        self.1.key_bytes(buf);
    }
}
