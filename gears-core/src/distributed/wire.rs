//! The cluster wire format: what one Gears shard sends another over the Redis Cluster bus.
//!
//! Layout: `b"GC"`, wire version `u8`, then the bincode-2 encoded [`Envelope`] (the core's
//! codec configuration, so hostile length prefixes are bounded). Record batches inside
//! `Records` are [`gears_core::codec`] batches: records never travel one per message.
//!
//! Every envelope carries the sender's *run id* (random per process start), a *stream* number
//! and a sequence number per (sender, receiver) pair. [`PeerFilter`] delivers each stream in
//! order, once: a sequence number already delivered is a duplicate, one past a gap waits for
//! the sender's retransmission, and messages from a run id the peer had before it restarted
//! (or from a stream the sender gave up) are stale. Receivers acknowledge what they delivered
//! (`Ack`, unsequenced); senders retransmit what is not acknowledged.

use std::collections::HashMap;

use gears_core::codec::{decode_value, encode_value};
use gears_core::error::{GearsError, StepError};

/// Version of the cluster wire format spoken by this build.
pub(crate) const WIRE_VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"GC";
/// The Redis Cluster bus message type Gears registers its receiver for.
pub(crate) const MESSAGE_TYPE: u8 = 0x47;

/// One message between shards.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct Envelope {
    /// The sender's run id (new at every process start).
    pub(crate) run_id: u64,
    /// The sender's stream to this receiver (a new one after the sender gave up on messages).
    pub(crate) stream: u32,
    /// Sequence number in the stream, from 1; `0` for unsequenced messages (`Ack`).
    pub(crate) seq: u64,
    /// What the message says.
    pub(crate) body: Body,
}

/// A shard of a distributed execution, as the initiator saw the topology.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) struct WireShard {
    /// 40-character node id.
    pub(crate) id: String,
    /// Inclusive slot ranges.
    pub(crate) slots: Vec<(u16, u16)>,
}

/// The start of a distributed execution, sent by the initiator to every other master.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct Start {
    /// Execution id (`<initiator node id>-<n>`).
    pub(crate) execution: String,
    /// The registered function that builds the plan (closures never travel).
    pub(crate) function: String,
    /// Its ARGS.
    pub(crate) args: Vec<String>,
    /// The function is a registration (an `async` execution per event): other shards build
    /// its plan and run every stage but the reader.
    pub(crate) registration: bool,
    /// The shards taking part, in index order, and their slots.
    pub(crate) shards: Vec<WireShard>,
    /// Index of the initiator in `shards`.
    pub(crate) initiator: u32,
    /// Measure per-step durations.
    pub(crate) profile: bool,
    /// Payload bytes per record batch.
    pub(crate) message_bytes: u32,
    /// Keep this shard's part listed once finished (`UNBLOCKING` runs).
    pub(crate) keep: bool,
}

/// What a shard reports with its last `StageDone`: its step errors and counters.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) struct Report {
    /// Errors of user code on that shard.
    pub(crate) errors: Vec<StepError>,
    /// Per step: records emitted, nanoseconds spent.
    pub(crate) stats: Vec<(u64, u64)>,
}

/// A management request (answered with [`Body::Reply`]).
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub(crate) enum Op {
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
}

/// The body of a message.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub(crate) enum Body {
    /// Start a distributed execution.
    Start(Start),
    /// A record batch for stage `stage` (the stage that reads it).
    Records {
        /// Execution id.
        execution: String,
        /// The stage that reads these records.
        stage: u32,
        /// A [`gears_core::codec`] batch.
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
    pub(crate) fn execution(&self) -> Option<&str> {
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
pub(crate) fn encode(envelope: &Envelope) -> Result<Vec<u8>, GearsError> {
    let body = encode_value(envelope)?;
    let mut out = Vec::with_capacity(3 + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(WIRE_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an envelope; malformed, truncated, foreign or future bytes are an error, never a
/// panic.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, GearsError> {
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

/// What to do with an incoming envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Next in its stream: handle it.
    Accept,
    /// The first message of a new run id of a known peer: the peer restarted. Handle it, and
    /// forget what was in flight with the old incarnation.
    AcceptRestarted,
    /// Already delivered (a retransmission): drop it, acknowledge again.
    Duplicate,
    /// Past a gap (an earlier message was lost): drop it, the sender retransmits in order.
    Gap,
    /// From a run id the peer no longer has, or a stream its sender gave up.
    Stale,
}

#[derive(Debug, Default)]
struct PeerSeen {
    run_id: u64,
    stream: u32,
    /// Next sequence number to deliver.
    expected: u64,
    /// Last sequence number acknowledged to the sender.
    acked: u64,
    /// A duplicate arrived: the sender missed an `Ack`.
    reack: bool,
    retired: Vec<u64>,
}

/// In-order, once-only delivery per sender.
#[derive(Debug, Default)]
pub(crate) struct PeerFilter {
    peers: HashMap<String, PeerSeen>,
}

impl PeerFilter {
    /// Checks (and records) a sequenced envelope from `sender`.
    pub(crate) fn check(&mut self, sender: &str, run_id: u64, stream: u32, seq: u64) -> Verdict {
        let fresh = |retired| PeerSeen {
            run_id,
            stream,
            expected: seq + 1,
            acked: 0,
            reack: false,
            retired,
        };
        let Some(peer) = self.peers.get_mut(sender) else {
            self.peers.insert(sender.to_string(), fresh(Vec::new()));
            return Verdict::Accept;
        };
        if peer.run_id != run_id {
            if peer.retired.contains(&run_id) {
                return Verdict::Stale;
            }
            let mut retired = std::mem::take(&mut peer.retired);
            retired.push(peer.run_id);
            if retired.len() > 16 {
                retired.remove(0);
            }
            *peer = fresh(retired);
            return Verdict::AcceptRestarted;
        }
        if stream < peer.stream {
            return Verdict::Stale;
        }
        if stream > peer.stream {
            // The sender gave up on the rest of the old stream: start over with this one.
            peer.stream = stream;
            peer.expected = seq + 1;
            peer.acked = 0;
            return Verdict::Accept;
        }
        if seq < peer.expected {
            peer.reack = true;
            return Verdict::Duplicate;
        }
        if seq > peer.expected {
            return Verdict::Gap;
        }
        peer.expected += 1;
        Verdict::Accept
    }

    /// The run id last seen from `sender`.
    pub(crate) fn run_id_of(&self, sender: &str) -> Option<u64> {
        self.peers.get(sender).map(|p| p.run_id)
    }

    /// `(peer, stream, upto)` for every peer owed an acknowledgement; marks them acknowledged.
    pub(crate) fn acks_due(&mut self) -> Vec<(String, u32, u64)> {
        self.peers
            .iter_mut()
            .filter(|(_, p)| p.expected > 0 && (p.expected - 1 > p.acked || p.reack))
            .map(|(id, p)| {
                p.acked = p.expected - 1;
                p.reack = false;
                (id.clone(), p.stream, p.acked)
            })
            .collect()
    }
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

    #[test]
    fn delivery_is_in_order_and_once() {
        let mut f = PeerFilter::default();
        assert_eq!(f.check("p", 1, 0, 1), Verdict::Accept);
        assert_eq!(f.check("p", 1, 0, 2), Verdict::Accept);
        assert_eq!(f.check("p", 1, 0, 2), Verdict::Duplicate);
        assert_eq!(f.check("p", 1, 0, 1), Verdict::Duplicate);
        // 3 was lost: 4 waits for the retransmission of 3.
        assert_eq!(f.check("p", 1, 0, 4), Verdict::Gap);
        assert_eq!(f.check("p", 1, 0, 3), Verdict::Accept);
        assert_eq!(f.check("p", 1, 0, 4), Verdict::Accept);
        assert_eq!(f.acks_due(), vec![("p".to_string(), 0, 4)]);
        assert!(f.acks_due().is_empty());
        assert_eq!(f.check("p", 1, 0, 2), Verdict::Duplicate);
        assert_eq!(f.acks_due(), vec![("p".to_string(), 0, 4)], "re-acked");
        // The sender gave up on stream 0: stream 1 starts over.
        assert_eq!(f.check("p", 1, 1, 1), Verdict::Accept);
        assert_eq!(f.check("p", 1, 0, 5), Verdict::Stale);
        // The peer restarted: new run id, sequence from 1 again.
        assert_eq!(f.check("p", 9, 0, 1), Verdict::AcceptRestarted);
        assert_eq!(f.check("p", 9, 0, 2), Verdict::Accept);
        assert_eq!(f.check("p", 1, 1, 3), Verdict::Stale);
        assert_eq!(f.check("q", 1, 0, 7), Verdict::Accept);
        assert_eq!(f.run_id_of("p"), Some(9));
    }
}
