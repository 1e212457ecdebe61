//! The cross-shard record codec: records travel in batches (never one message per record),
//! bincode 2 encoded, behind a versioned header. A bad batch is an error, never a panic.
//!
//! Layout of a batch: `b"GB"`, version `u8`, record count `u32` LE, payload length `u32` LE,
//! then the records back to back (bincode standard configuration).

use crate::error::GearsError;
use crate::record::Record;

/// Version of the batch format written by this build.
pub const BATCH_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"GB";
const HEADER_LEN: usize = 2 + 1 + 4 + 4;
/// Largest single record the decoder accepts (a guard against hostile length prefixes).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// Most zero-sized records (e.g. `()`) one batch may claim.
const MAX_ZERO_SIZED_RECORDS: usize = 1 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_RECORD_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes one value with the engine's bincode configuration.
pub fn encode_value<T: bincode::Encode>(value: &T) -> Result<Vec<u8>, GearsError> {
    bincode::encode_to_vec(value, config()).map_err(|e| GearsError::Codec(e.to_string()))
}

/// Decodes one value written by [`encode_value`]; trailing bytes are an error.
pub fn decode_value<T: bincode::Decode<()>>(bytes: &[u8]) -> Result<T, GearsError> {
    let (v, used) = bincode::decode_from_slice(bytes, config())
        .map_err(|e| GearsError::Codec(e.to_string()))?;
    if used != bytes.len() {
        return Err(GearsError::Codec(format!(
            "{} trailing bytes after value",
            bytes.len() - used
        )));
    }
    Ok(v)
}

/// Builds batches incrementally, closing one whenever it reaches `max_bytes`.
///
/// ```
/// use gears_core::codec::{decode_batch, BatchEncoder};
/// let mut enc = BatchEncoder::new(4);
/// let mut batches = Vec::new();
/// for i in 0..10u64 {
///     batches.extend(enc.push(&i).unwrap());
/// }
/// batches.extend(enc.finish());
/// assert!(batches.len() > 1);
/// let all: Vec<u64> = batches.iter().flat_map(|b| decode_batch::<u64>(b).unwrap()).collect();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// ```
#[derive(Debug)]
pub struct BatchEncoder {
    buf: Vec<u8>,
    count: u32,
    max_bytes: usize,
}

impl BatchEncoder {
    /// A new encoder closing batches at about `max_bytes` of payload.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            buf: Self::fresh(),
            count: 0,
            max_bytes: max_bytes.max(1),
        }
    }

    fn fresh() -> Vec<u8> {
        let mut buf = Vec::with_capacity(HEADER_LEN + 1024);
        buf.extend_from_slice(&[0u8; HEADER_LEN]);
        buf
    }

    /// Appends a record; returns a finished batch when this one is full.
    pub fn push<T: Record>(&mut self, record: &T) -> Result<Option<Vec<u8>>, GearsError> {
        let start = self.buf.len();
        if let Err(e) = bincode::encode_into_std_write(record, &mut self.buf, config()) {
            // Drop the partly written record so the batch stays well-formed.
            self.buf.truncate(start);
            return Err(GearsError::Codec(e.to_string()));
        }
        self.count += 1;
        if self.buf.len() - HEADER_LEN >= self.max_bytes || self.count == u32::MAX {
            Ok(self.finish())
        } else {
            Ok(None)
        }
    }

    /// Closes the current batch, if it holds any record.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let mut buf = std::mem::replace(&mut self.buf, Self::fresh());
        let payload = (buf.len() - HEADER_LEN) as u32;
        buf[0..2].copy_from_slice(&MAGIC);
        buf[2] = BATCH_VERSION;
        buf[3..7].copy_from_slice(&self.count.to_le_bytes());
        buf[7..11].copy_from_slice(&payload.to_le_bytes());
        self.count = 0;
        Some(buf)
    }
}

/// Encodes `records` as one batch.
pub fn encode_batch<T: Record>(records: &[T]) -> Result<Vec<u8>, GearsError> {
    let mut enc = BatchEncoder::new(usize::MAX);
    for r in records {
        enc.push(r)?;
    }
    Ok(enc.finish().unwrap_or_else(|| {
        let mut empty = vec![0u8; HEADER_LEN];
        empty[0..2].copy_from_slice(&MAGIC);
        empty[2] = BATCH_VERSION;
        empty
    }))
}

/// Decodes a batch written by [`BatchEncoder`] or [`encode_batch`].
///
/// ```
/// use gears_core::codec::{decode_batch, encode_batch};
/// let bytes = encode_batch(&["a".to_string(), "b".to_string()]).unwrap();
/// assert_eq!(decode_batch::<String>(&bytes).unwrap(), ["a", "b"]);
/// assert!(decode_batch::<String>(&bytes[..bytes.len() - 1]).is_err());
/// ```
pub fn decode_batch<T: Record>(bytes: &[u8]) -> Result<Vec<T>, GearsError> {
    if bytes.len() < HEADER_LEN {
        return Err(GearsError::Codec(format!(
            "batch of {} bytes is shorter than its header",
            bytes.len()
        )));
    }
    if bytes[0..2] != MAGIC {
        return Err(GearsError::Codec("not a Gears record batch".into()));
    }
    if bytes[2] != BATCH_VERSION {
        return Err(GearsError::Codec(format!(
            "batch version {} is not supported (this build reads version {BATCH_VERSION})",
            bytes[2]
        )));
    }
    let count = u32::from_le_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]) as usize;
    let len = u32::from_le_bytes([bytes[7], bytes[8], bytes[9], bytes[10]]) as usize;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(GearsError::Codec(format!(
            "batch payload is {} bytes, header says {len}",
            payload.len()
        )));
    }
    // Every record but a zero-sized one takes at least one byte: a count beyond the payload
    // length is corrupt (and would otherwise spin on an 11-byte message).
    if count > len && (std::mem::size_of::<T>() != 0 || count > MAX_ZERO_SIZED_RECORDS) {
        return Err(GearsError::Codec(format!(
            "batch claims {count} records in {len} bytes"
        )));
    }
    let mut out = Vec::with_capacity(count.min(len + 1));
    let mut offset = 0;
    for i in 0..count {
        let (record, used): (T, usize) =
            bincode::decode_from_slice(&payload[offset..], config())
                .map_err(|e| GearsError::Codec(format!("record {i} of {count}: {e}")))?;
        offset += used;
        out.push(record);
    }
    if offset != len {
        return Err(GearsError::Codec(format!(
            "{} trailing bytes after {count} records",
            len - offset
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let records: Vec<(String, u64)> = (0..1000).map(|i| (format!("k{i}"), i)).collect();
        let bytes = encode_batch(&records).unwrap();
        assert_eq!(decode_batch::<(String, u64)>(&bytes).unwrap(), records);

        // Every truncation is an error, never a panic.
        for cut in 0..bytes.len().min(300) {
            assert!(decode_batch::<(String, u64)>(&bytes[..cut]).is_err());
        }
        // Flipped bytes are an error or a different value, never a panic.
        for i in 0..bytes.len().min(300) {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode_batch::<(String, u64)>(&b);
        }
        let mut wrong_version = bytes.clone();
        wrong_version[2] = 9;
        let err = decode_batch::<(String, u64)>(&wrong_version).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn hostile_length_prefix_is_rejected() {
        // One record claiming a 2^62-element vector.
        let mut payload = Vec::new();
        payload.push(253u8); // varint marker for u64
        payload.extend_from_slice(&(1u64 << 62).to_le_bytes());
        let mut bytes = vec![b'G', b'B', BATCH_VERSION];
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&payload);
        assert!(decode_batch::<Vec<u64>>(&bytes).is_err());
    }

    #[test]
    fn a_record_that_fails_to_encode_leaves_the_batch_intact() {
        use std::time::{Duration, UNIX_EPOCH};
        let mut enc = BatchEncoder::new(usize::MAX);
        enc.push(&(1u32, UNIX_EPOCH)).unwrap();
        // bincode writes the u32, then refuses a time before the epoch.
        assert!(enc
            .push(&(2u32, UNIX_EPOCH - Duration::from_secs(1)))
            .is_err());
        enc.push(&(3u32, UNIX_EPOCH)).unwrap();
        let batch = enc.finish().unwrap();
        let records = decode_batch::<(u32, std::time::SystemTime)>(&batch).unwrap();
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn absurd_counts_are_rejected_at_once() {
        let mut bytes = vec![b'G', b'B', BATCH_VERSION];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let started = std::time::Instant::now();
        assert!(decode_batch::<()>(&bytes).is_err());
        assert!(decode_batch::<u8>(&bytes).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Legitimate zero-sized records still work.
        let units = encode_batch(&[(), (), ()]).unwrap();
        assert_eq!(decode_batch::<()>(&units).unwrap().len(), 3);
    }

    #[test]
    fn empty_batch() {
        let bytes = encode_batch::<u8>(&[]).unwrap();
        assert!(decode_batch::<u8>(&bytes).unwrap().is_empty());
    }
}
