//! Reliable, in-order delivery between shards, over a transport that may lose, duplicate or
//! reorder messages and whose peers may restart.
//!
//! - Receiving: [`PeerFilter`] delivers each (sender, stream) in order, once: a sequence number
//!   already delivered is a **duplicate** (dropped, acknowledged again), one past a gap is
//!   dropped until the sender retransmits from the gap, one from a run id the peer had before
//!   it restarted (or from a stream the sender gave up) is **stale**. What was delivered is
//!   acknowledged at each tick (`Ack`, unsequenced).
//! - Sending: [`Outbox`] numbers each message per destination and keeps it until acknowledged.
//!   The link may refuse it (node not connected) or accept it and lose it: when the receiver
//!   acknowledged nothing for [`RTO`] (then 2, 4, 8 × as long) the outbox retransmits what is
//!   unacknowledged, in order, up to `SendMsgRetries` times; then it gives up, reports the
//!   executions that needed those messages, and starts a new stream to that peer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::transport::Link;
use super::wire::{self, Body, Envelope};
use crate::error::GearsError;

/// Traffic and rejection counters of one shard (shown by `RG.INFOCLUSTER`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Sequenced messages sent (first transmissions).
    pub sent: AtomicU64,
    /// Bytes of those.
    pub sent_bytes: AtomicU64,
    /// Messages received, of any kind.
    pub received: AtomicU64,
    /// Messages that did not decode.
    pub malformed: AtomicU64,
    /// Messages delivered before (dropped).
    pub duplicates: AtomicU64,
    /// Messages of an old run id or a given-up stream (dropped).
    pub stale: AtomicU64,
    /// Retransmissions.
    pub retried: AtomicU64,
    /// Messages given up after `SendMsgRetries` retransmissions.
    pub undelivered: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What to do with an incoming envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
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
pub struct PeerFilter {
    peers: HashMap<String, PeerSeen>,
}

impl PeerFilter {
    /// Checks (and records) a sequenced envelope from `sender`.
    pub fn check(&mut self, sender: &str, run_id: u64, stream: u32, seq: u64) -> Verdict {
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
    pub fn run_id_of(&self, sender: &str) -> Option<u64> {
        self.peers.get(sender).map(|p| p.run_id)
    }

    /// `(peer, stream, upto)` for every peer owed an acknowledgement; marks them acknowledged.
    pub fn acks_due(&mut self) -> Vec<(String, u32, u64)> {
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

/// First retransmission timeout (doubled at each round without progress, up to 16 s).
pub const RTO: Duration = Duration::from_secs(2);

/// A message sent and not yet acknowledged.
struct Unacked {
    seq: u64,
    bytes: Vec<u8>,
    /// The link took it (else it waits for the next retransmission, in order).
    handed: bool,
    execution: Option<String>,
}

#[derive(Default)]
struct PeerOut {
    stream: u32,
    seq: u64,
    unacked: VecDeque<Unacked>,
    /// Messages in `unacked` the link refused (they wait for a retransmission round).
    refused: usize,
    /// Retransmission rounds since the last acknowledged progress.
    attempts: u64,
    /// Last time the receiver acknowledged something (or the queue started, or a
    /// retransmission round): retransmit only when this is older than [`RTO`], so a slow but
    /// acknowledging receiver never gets duplicates piled on it.
    progress_at: Option<Instant>,
    /// The last message sent (the test hook replays it to check duplicate detection).
    last: Option<Vec<u8>>,
}

/// Messages given up for one peer: the peer and the executions they were about.
pub type GivenUp = (String, Vec<String>);

/// Per destination: a sequence number and every message not yet acknowledged.
#[derive(Default)]
pub struct Outbox {
    peers: Mutex<HashMap<String, PeerOut>>,
}

impl Outbox {
    /// Sends `body` to `dest` reliably: numbered, handed to `link` if everything before it
    /// was, kept until acknowledged.
    pub fn send(
        &self,
        link: &dyn Link,
        run_id: u64,
        dest: &str,
        body: Body,
        now: Instant,
        counters: &Counters,
    ) -> Result<(), GearsError> {
        let execution = body.execution().map(str::to_string);
        let mut peers = lock(&self.peers);
        let peer = peers.entry(dest.to_string()).or_default();
        let envelope = Envelope {
            run_id,
            stream: peer.stream,
            seq: peer.seq + 1,
            body,
        };
        let bytes = wire::encode(&envelope)?;
        peer.seq += 1;
        Counters::add(&counters.sent, 1);
        Counters::add(&counters.sent_bytes, bytes.len() as u64);
        if peer.unacked.is_empty() {
            peer.progress_at = Some(now);
        }
        // In order: only hand it to the link if everything before it was.
        let handed = peer.refused == 0 && link.send(dest, &bytes);
        if handed {
            peer.last = Some(bytes.clone());
        } else {
            peer.refused += 1;
        }
        peer.unacked.push_back(Unacked {
            seq: peer.seq,
            bytes,
            handed,
            execution,
        });
        Ok(())
    }

    /// `dest` delivered its stream `stream` up to `upto`.
    pub fn on_ack(&self, dest: &str, stream: u32, upto: u64, now: Instant) {
        let mut peers = lock(&self.peers);
        let Some(peer) = peers.get_mut(dest) else {
            return;
        };
        if stream != peer.stream {
            return;
        }
        let before = peer.unacked.len();
        while peer.unacked.front().is_some_and(|u| u.seq <= upto) {
            if peer.unacked.pop_front().is_some_and(|u| !u.handed) {
                peer.refused = peer.refused.saturating_sub(1);
            }
        }
        if peer.unacked.len() != before {
            peer.attempts = 0;
            peer.progress_at = Some(now);
        }
    }

    /// Messages not yet acknowledged by `dest`.
    pub fn pending(&self, dest: &str) -> usize {
        lock(&self.peers).get(dest).map_or(0, |p| p.unacked.len())
    }

    /// The last message handed to the link for `dest`.
    pub fn last_sent(&self, dest: &str) -> Option<Vec<u8>> {
        lock(&self.peers).get(dest).and_then(|p| p.last.clone())
    }

    /// Retransmits, in order, what a peer did not acknowledge within [`RTO`] (with backoff)
    /// and what the link refused; gives up after `retries` rounds without progress. Returns
    /// the peers given up on, with the executions their messages were about.
    pub fn flush(
        &self,
        link: &dyn Link,
        now: Instant,
        retries: u64,
        counters: &Counters,
    ) -> Vec<GivenUp> {
        let mut given_up = Vec::new();
        let mut peers = lock(&self.peers);
        for (dest, peer) in peers.iter_mut() {
            if peer.unacked.is_empty() {
                continue;
            }
            // Exponential backoff: 2, 4, 8, 16 s without progress. A receiver busy reading a
            // burst (Redis reads a link until it is drained) is slow, not gone.
            let rto = RTO * (1u32 << peer.attempts.min(3));
            let stalled = peer
                .progress_at
                .is_none_or(|at| now.saturating_duration_since(at) >= rto);
            let refused = peer.refused > 0;
            // A refusal is retried at the next tick once; everything else waits until the
            // receiver acknowledged nothing for the timeout.
            if !(stalled || refused && peer.attempts == 0) {
                continue;
            }
            peer.attempts += 1;
            if peer.attempts > retries {
                Counters::add(&counters.undelivered, peer.unacked.len() as u64);
                let executions = peer.unacked.drain(..).filter_map(|u| u.execution).collect();
                given_up.push((dest.clone(), executions));
                // A new stream: the receiver stops waiting for what was given up.
                peer.stream += 1;
                peer.seq = 0;
                peer.attempts = 0;
                peer.refused = 0;
                peer.progress_at = None;
                continue;
            }
            peer.progress_at = Some(now);
            // Go back N: everything unacknowledged (stalled), or what the link refused.
            for u in peer.unacked.iter_mut().filter(|u| stalled || !u.handed) {
                Counters::add(&counters.retried, 1);
                u.handed = link.send(dest, &u.bytes);
                if !u.handed {
                    break;
                }
            }
            peer.refused = peer.unacked.iter().filter(|u| !u.handed).count();
        }
        given_up
    }
}

/// Sends an unsequenced message (an `Ack`): lost if the link loses it.
pub fn send_unsequenced(link: &dyn Link, run_id: u64, dest: &str, body: Body) {
    let envelope = Envelope {
        run_id,
        stream: 0,
        seq: 0,
        body,
    };
    if let Ok(bytes) = wire::encode(&envelope) {
        link.send(dest, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::distributed::wire::WireShard;
    use crate::host::Topology;

    /// A link that records what it is handed and refuses while `down`.
    #[derive(Default)]
    struct Wire {
        sent: RefCell<Vec<(String, u64)>>,
        down: std::cell::Cell<bool>,
    }

    impl Link for Wire {
        fn send(&self, to: &str, bytes: &[u8]) -> bool {
            if self.down.get() {
                return false;
            }
            let seq = wire::decode(bytes).map_or(u64::MAX, |e| e.seq);
            self.sent.borrow_mut().push((to.to_string(), seq));
            true
        }
        fn topology(&self, shards: &[WireShard], me: usize) -> Topology {
            wire::topology_of(shards, me)
        }
    }

    fn progress(n: u32) -> Body {
        Body::Progress {
            execution: format!("x-{n}"),
        }
    }

    #[test]
    fn unacknowledged_messages_are_retransmitted_in_order_then_given_up() {
        let (link, out, c) = (Wire::default(), Outbox::default(), Counters::default());
        let t0 = Instant::now();
        for n in 1..=3 {
            out.send(&link, 7, "p", progress(n), t0, &c).unwrap();
        }
        assert_eq!(out.pending("p"), 3);
        out.on_ack("p", 0, 1, t0);
        assert_eq!(out.pending("p"), 2);
        // Not yet stalled: nothing resent.
        assert!(out.flush(&link, t0 + RTO / 2, 3, &c).is_empty());
        assert_eq!(link.sent.borrow().len(), 3);
        // Stalled: 2 and 3 again, in order; then after 4 s, 8 s; then given up.
        link.sent.borrow_mut().clear();
        let mut t = t0 + RTO;
        assert!(out.flush(&link, t, 3, &c).is_empty());
        assert_eq!(*link.sent.borrow(), [("p".into(), 2), ("p".into(), 3)]);
        t += RTO * 2;
        assert!(out.flush(&link, t, 3, &c).is_empty());
        t += RTO * 4;
        assert!(out.flush(&link, t, 3, &c).is_empty());
        assert_eq!(c.retried.load(Ordering::Relaxed), 6);
        t += RTO * 8;
        let given = out.flush(&link, t, 3, &c);
        assert_eq!(given, [("p".to_string(), vec!["x-2".into(), "x-3".into()])]);
        assert_eq!(c.undelivered.load(Ordering::Relaxed), 2);
        // A new stream starts at 1.
        out.send(&link, 7, "p", progress(4), t, &c).unwrap();
        let last = wire::decode(&out.last_sent("p").unwrap()).unwrap();
        assert_eq!((last.stream, last.seq), (1, 1));
    }

    #[test]
    fn refused_messages_wait_behind_the_first_refusal() {
        let (link, out, c) = (Wire::default(), Outbox::default(), Counters::default());
        let t0 = Instant::now();
        link.down.set(true);
        out.send(&link, 7, "p", progress(1), t0, &c).unwrap();
        link.down.set(false);
        // Handed only after 1 is: nothing goes out of order.
        out.send(&link, 7, "p", progress(2), t0, &c).unwrap();
        assert!(link.sent.borrow().is_empty());
        // The next tick retries the refusal at once.
        assert!(out.flush(&link, t0, 3, &c).is_empty());
        assert_eq!(*link.sent.borrow(), [("p".into(), 1), ("p".into(), 2)]);
        out.on_ack("p", 0, 2, t0);
        assert_eq!(out.pending("p"), 0);
        // An acknowledgement of another stream is ignored.
        out.send(&link, 7, "p", progress(3), t0, &c).unwrap();
        out.on_ack("p", 5, 9, t0);
        assert_eq!(out.pending("p"), 1);
    }

    #[test]
    fn delivery_is_in_order_and_once() {
        use Verdict::*;
        let mut f = PeerFilter::default();
        // (peer, run id, stream, sequence) in arrival order, and what the filter says.
        fn expect(f: &mut PeerFilter, arrivals: &[(&str, u64, u32, u64, Verdict)]) {
            for &(peer, run, stream, seq, want) in arrivals {
                let got = f.check(peer, run, stream, seq);
                assert_eq!(got, want, "{peer} {run} {stream} {seq}");
            }
        }
        // In order once; 3 was lost: 4 waits for the retransmission of 3.
        expect(
            &mut f,
            &[
                ("p", 1, 0, 1, Accept),
                ("p", 1, 0, 2, Accept),
                ("p", 1, 0, 2, Duplicate),
            ],
        );
        expect(
            &mut f,
            &[
                ("p", 1, 0, 1, Duplicate),
                ("p", 1, 0, 4, Gap),
                ("p", 1, 0, 3, Accept),
            ],
        );
        expect(&mut f, &[("p", 1, 0, 4, Accept)]);
        assert_eq!(f.acks_due(), vec![("p".to_string(), 0, 4)]);
        assert!(f.acks_due().is_empty());
        assert_eq!(f.check("p", 1, 0, 2), Duplicate);
        assert_eq!(f.acks_due(), vec![("p".to_string(), 0, 4)], "re-acked");
        // The sender gave up on stream 0: stream 1 starts over. Then the peer restarted: new
        // run id, sequence from 1 again.
        expect(&mut f, &[("p", 1, 1, 1, Accept), ("p", 1, 0, 5, Stale)]);
        expect(
            &mut f,
            &[("p", 9, 0, 1, AcceptRestarted), ("p", 9, 0, 2, Accept)],
        );
        expect(&mut f, &[("p", 1, 1, 3, Stale), ("q", 1, 0, 7, Accept)]);
        assert_eq!(f.run_id_of("p"), Some(9));
    }
}
