//! The wire format: what one Gears shard sends another (over the Redis Cluster bus, or the
//! in-memory cluster's queues).
//!
//! Layout: `b"GC"`, wire version `u8`, then the bincode-2 encoded [`Envelope`] (the core's
//! codec configuration, so hostile length prefixes are bounded). Record batches inside
//! `Records` are [`crate::codec`] batches: records never travel one per message.
//!
//! Every envelope carries the sender's *run id* (random per process start), a *stream* number
//! and a sequence number per (sender, receiver) pair; [`super::delivery`] turns that into
//! in-order, once-only delivery with acknowledgements and retransmission.

use crate::codec::{decode_value, encode_value};
use crate::error::{GearsError, StepError};
use crate::host::{ShardId, ShardInfo, Topology};

/// Version of the cluster wire format spoken by this build.
pub const WIRE_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"GC";

/// One message between shards.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Envelope {
    /// The sender's run id (new at every process start).
    pub run_id: u64,
    /// The sender's stream to this receiver (a new one after the sender gave up on messages).
    pub stream: u32,
    /// Sequence number in the stream, from 1; `0` for unsequenced messages (`Ack`).
    pub seq: u64,
    /// What the message says.
    pub body: Body,
}

/// A shard of a distributed execution, as the initiator saw the topology.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct WireShard {
    /// 40-character node id.
    pub id: String,
    /// Inclusive slot ranges.
    pub slots: Vec<(u16, u16)>,
}

/// The engine topology for `shards` (as a `Start` lists them) seen from shard `me`.
pub fn topology_of(shards: &[WireShard], me: usize) -> Topology {
    Topology::new(
        shards
            .iter()
            .map(|s| ShardInfo {
                id: ShardId(s.id.clone()),
                slots: s.slots.clone(),
            })
            .collect(),
        me,
    )
}

/// The shards of `topology` as a `Start` lists them.
pub fn wire_shards(topology: &Topology) -> Vec<WireShard> {
    topology
        .shards()
        .iter()
        .map(|s| WireShard {
            id: s.id.0.clone(),
            slots: s.slots.clone(),
        })
        .collect()
}

/// The start of a distributed execution, sent by the initiator to every other master.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Start {
    /// Execution id (`<initiator node id>-<n>`).
    pub execution: String,
    /// The registered function that builds the plan (closures never travel).
    pub function: String,
    /// Its ARGS.
    pub args: Vec<String>,
    /// The function is a registration (an `async` execution per event): other shards build
    /// its plan and run every stage but the reader.
    pub registration: bool,
    /// The shards taking part, in index order, and their slots.
    pub shards: Vec<WireShard>,
    /// Index of the initiator in `shards`.
    pub initiator: u32,
    /// Measure per-step durations.
    pub profile: bool,
    /// Payload bytes per record batch.
    pub message_bytes: u32,
    /// Keep this shard's part listed once finished (`UNBLOCKING` runs).
    pub keep: bool,
}

/// What a shard reports with its last `StageDone`: its step errors and counters.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Report {
    /// Errors of user code on that shard.
    pub errors: Vec<StepError>,
    /// Per step: records emitted, nanoseconds spent.
    pub stats: Vec<(u64, u64)>,
}

/// A management request (answered with [`Body::Reply`]).
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Op {
    /// This shard's part of an execution, for `RG.GETEXECUTION <id> CLUSTER`.
    GetExecution(String),
    /// The results of an execution this shard started (`RG.GETRESULTS` sent to another).
    GetResults(String),
    /// Apply a registration command (`RG.REGISTER`, `RG.UNREGISTER`, ...) on this shard.
    Registration {
        /// The command as the client sent it.
        command: Vec<String>,
        /// `RG.REGISTER`: the id the origin gave the registration (the same on every shard).
        id: Option<String>,
        /// Registrations the command names: `(id, function, args)`, so a shard where the
        /// same registration has another id (loaded at module load) finds its own.
        named: Vec<(String, String, Vec<String>)>,
    },
    /// The results of an execution this shard started, once it finished
    /// (`RG.GETRESULTSBLOCKING` sent to another shard). Added last: the encodings of the
    /// other messages are unchanged.
    GetResultsBlocking(String),
}

/// The body of a message.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub enum Body {
    /// Start a distributed execution.
    Start(Start),
    /// A record batch for stage `stage` (the stage that reads it).
    Records {
        /// Execution id.
        execution: String,
        /// The stage that reads these records.
        stage: u32,
        /// A [`crate::codec`] batch.
        batch: Vec<u8>,
    },
    /// The sender finished `stage` and sent all its records for `stage + 1`; the last stage's
    /// `StageDone` to the initiator carries the sender's report.
    StageDone {
        /// Execution id.
        execution: String,
        /// The finished stage.
        stage: u32,
        /// Step errors and counters (last stage, to the initiator).
        report: Option<Report>,
    },
    /// The sender is still working on the execution (keeps it from being idle).
    Progress {
        /// Execution id.
        execution: String,
    },
    /// The execution failed on the sender.
    Fail {
        /// Execution id.
        execution: String,
        /// Why.
        error: String,
    },
    /// Abort the execution.
    Abort {
        /// Execution id.
        execution: String,
    },
    /// Forget the (finished) execution.
    Drop {
        /// Execution id.
        execution: String,
    },
    /// A management request.
    Request {
        /// Request id (per sender).
        id: u64,
        /// What to do.
        op: Op,
    },
    /// Everything of stream `stream` up to `upto` was delivered (unsequenced).
    Ack {
        /// The acknowledged stream.
        stream: u32,
        /// The last sequence number delivered.
        upto: u64,
    },
    /// The answer to a request: an encoded value, or an error message.
    Reply {
        /// The request id.
        id: u64,
        /// The answer.
        result: Result<Vec<u8>, String>,
    },
}

impl Body {
    /// The execution a message is about, if any.
    pub fn execution(&self) -> Option<&str> {
        match self {
            Body::Start(s) => Some(&s.execution),
            Body::Records { execution, .. }
            | Body::StageDone { execution, .. }
            | Body::Progress { execution }
            | Body::Fail { execution, .. }
            | Body::Abort { execution }
            | Body::Drop { execution } => Some(execution),
            Body::Request { .. } | Body::Reply { .. } | Body::Ack { .. } => None,
        }
    }
}

/// Encodes an envelope for the wire.
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, GearsError> {
    let body = encode_value(envelope)?;
    let mut out = Vec::with_capacity(3 + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an envelope; malformed, truncated, foreign or future bytes are an error, never a
/// panic.
pub fn decode(bytes: &[u8]) -> Result<Envelope, GearsError> {
    if bytes.len() < 3 || bytes[0..2] != MAGIC {
        return Err(GearsError::Codec("not a Gears cluster message".into()));
    }
    if bytes[2] != WIRE_VERSION {
        return Err(GearsError::Codec(format!(
            "cluster wire version {} is not supported (this build speaks {WIRE_VERSION})",
            bytes[2]
        )));
    }
    decode_value(&bytes[3..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            run_id: 7,
            stream: 0,
            seq: 3,
            body: Body::Start(Start {
                execution: format!("{}-1", "a".repeat(40)),
                function: "word_count".into(),
                args: vec!["x".into()],
                registration: false,
                shards: vec![WireShard {
                    id: "a".repeat(40),
                    slots: vec![(0, 16383)],
                }],
                initiator: 0,
                profile: false,
                message_bytes: 32768,
                keep: true,
            }),
        }
    }

    #[test]
    fn the_encoding_is_the_one_of_wire_version_1() {
        // What every build speaking version 1 sends: a change here needs a new version
        // (variants are only ever appended, so older messages keep their bytes).
        let request = Envelope {
            run_id: 7,
            stream: 1,
            seq: 3,
            body: Body::Request {
                id: 9,
                op: Op::GetResults("x-1".into()),
            },
        };
        assert_eq!(
            encode(&request).unwrap(),
            [71, 67, 1, 7, 1, 3, 7, 9, 1, 3, 120, 45, 49]
        );
        let ack = Envelope {
            run_id: 7,
            stream: 0,
            seq: 0,
            body: Body::Ack {
                stream: 2,
                upto: 300,
            },
        };
        assert_eq!(
            encode(&ack).unwrap(),
            [71, 67, 1, 7, 0, 0, 8, 2, 251, 44, 1]
        );
        let done = Envelope {
            run_id: u64::MAX,
            stream: 0,
            seq: 1,
            body: Body::StageDone {
                execution: "e".into(),
                stage: 1,
                report: None,
            },
        };
        let mut want = vec![71, 67, 1, 253];
        want.extend([255; 8]);
        want.extend([0, 1, 2, 1, 101, 1, 0]);
        assert_eq!(encode(&done).unwrap(), want);
        for wire in [request, ack, done] {
            assert_eq!(decode(&encode(&wire).unwrap()).unwrap(), wire);
        }
    }

    #[test]
    fn roundtrip_and_every_truncation_is_an_error() {
        let wire = encode(&sample()).unwrap();
        assert_eq!(decode(&wire).unwrap(), sample());
        for cut in 0..wire.len() {
            assert!(decode(&wire[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..wire.len() {
            let mut b = wire.clone();
            b[i] ^= 0xA5;
            let _ = decode(&b); // an error or another value, never a panic
        }
        let mut future = wire.clone();
        future[2] = 99;
        assert!(decode(&future).unwrap_err().to_string().contains("99"));
        assert!(decode(b"garbage").is_err());
    }
}
