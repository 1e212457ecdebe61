//! Messages between shards. Closures never travel: each shard rebuilds the plan from the
//! registered function's name and arguments; only records (in [`crate::codec`] batches) and
//! control messages do.
//!
//! Wire layout: `b"GM"`, protocol version `u8`, then the bincode-encoded [`ShardMessage`].

use crate::codec::{decode_value, encode_value};
use crate::error::GearsError;

/// Version of the shard protocol spoken by this build.
pub const PROTOCOL_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"GM";

/// One message between shards.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum ShardMessage {
    /// A batch of records for stage `stage` of an execution.
    Records {
        /// Execution id.
        execution: String,
        /// The stage that will read the records.
        stage: u32,
        /// Index of the sending shard.
        from: u32,
        /// A record batch (see [`crate::codec`]).
        batch: Vec<u8>,
    },
    /// The sender finished `stage` and sent all its records for it.
    StageDone {
        /// Execution id.
        execution: String,
        /// The finished stage.
        stage: u32,
        /// Index of the sending shard.
        from: u32,
    },
}

/// Encodes a message for the wire.
pub fn encode_message(message: &ShardMessage) -> Result<Vec<u8>, GearsError> {
    let body = encode_value(message)?;
    let mut out = Vec::with_capacity(3 + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a message; malformed, truncated or foreign bytes are an error, never a panic.
///
/// ```
/// use gears_core::protocol::{decode_message, encode_message, ShardMessage};
/// let msg = ShardMessage::StageDone { execution: "x-1".into(), stage: 2, from: 1 };
/// let wire = encode_message(&msg).unwrap();
/// assert_eq!(decode_message(&wire).unwrap(), msg);
/// assert!(decode_message(&wire[..wire.len() - 1]).is_err());
/// assert!(decode_message(b"nonsense").is_err());
/// ```
pub fn decode_message(bytes: &[u8]) -> Result<ShardMessage, GearsError> {
    if bytes.len() < 3 || bytes[0..2] != MAGIC {
        return Err(GearsError::Codec("not a Gears shard message".into()));
    }
    if bytes[2] != PROTOCOL_VERSION {
        return Err(GearsError::Codec(format!(
            "shard protocol version {} is not supported (this build speaks {PROTOCOL_VERSION})",
            bytes[2]
        )));
    }
    decode_value(&bytes[3..])
}
