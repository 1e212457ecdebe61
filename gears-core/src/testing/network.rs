//! The simulated network of a [`MemoryCluster`](super::MemoryCluster): the production
//! [`Transport`] over in-memory queues, a fake clock, and rules that lose, duplicate, delay,
//! hold or refuse messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, Sender};

use super::MemoryHost;
use crate::distributed::wire::{self, Envelope, WireShard};
use crate::distributed::{Link, Peer, PlanOrError, Settings, ShardPlan, Transport};
use crate::execution::Execution;
use crate::executor::{Executor, Lane};
use crate::host::{Host, LogLevel, Topology};
use crate::StepInfo;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A clock that moves only when the simulated cluster is idle (a tick of 100 ms at a time).
#[derive(Debug)]
pub(super) struct Clock {
    base: Instant,
    nanos: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    pub(super) fn now(&self) -> Instant {
        self.base + self.elapsed()
    }

    pub(super) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }

    pub(super) fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::AcqRel);
    }
}

/// One message handed to the simulated network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Index of the sending shard.
    pub from: usize,
    /// Index of the receiving shard.
    pub to: usize,
    /// The bytes, exactly as a coordinator encoded them.
    pub bytes: Vec<u8>,
}

impl Packet {
    /// The decoded envelope (`None` if the bytes are not a Gears message).
    pub fn envelope(&self) -> Option<Envelope> {
        wire::decode(&self.bytes).ok()
    }

    /// Whether it is a sequenced message (everything but acknowledgements).
    pub fn sequenced(&self) -> bool {
        self.envelope().is_some_and(|e| e.seq > 0)
    }
}

/// What the network does with a packet (see `MemoryCluster::set_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered, in order with the others.
    Deliver,
    /// Taken by the link and lost.
    Lose,
    /// Delivered twice.
    Duplicate,
    /// Delivered after this many more packets on the same link (or once the cluster is
    /// idle): reordered.
    Delay(usize),
    /// Kept until `MemoryCluster::release_held` (a message arriving late).
    Hold,
    /// Refused by the link (the peer is not connected): the sender retries it.
    Refuse,
}

/// A rule deciding each packet's fate.
pub(super) type Rule = Box<dyn FnMut(&Packet) -> Fate + Send>;

#[derive(Default)]
struct Faults {
    rule: Option<Rule>,
    delayed: Vec<(usize, Packet)>,
    held: Vec<Packet>,
}

/// What the shards of one simulated cluster share: the network, the clock, the plans.
pub(super) struct Shared {
    pub(super) ids: Vec<String>,
    pub(super) topology: Topology,
    wire: Vec<WireShard>,
    pub(super) hosts: Vec<MemoryHost>,
    pub(super) clock: Clock,
    pub(super) settings: Mutex<Settings>,
    /// Plans built in a test, by the name their `Start` carries.
    pub(super) plans: Mutex<HashMap<String, Arc<dyn ShardPlan>>>,
    executor: Weak<Executor>,
    tx: Sender<Packet>,
    pub(super) rx: Receiver<Packet>,
    /// Wakes the driver when an execution completes.
    pub(super) wake: (Sender<()>, Receiver<()>),
    faults: Mutex<Faults>,
    pub(super) failing: Mutex<Vec<bool>>,
    /// Per shard: the executions listed there (`RG.DUMPEXECUTIONS`).
    pub(super) listed: Vec<Mutex<HashMap<String, Arc<Execution>>>>,
    pub(super) log: Mutex<Vec<String>>,
}

impl Shared {
    pub(super) fn new(
        hosts: Vec<MemoryHost>,
        topology: Topology,
        executor: &Arc<Executor>,
    ) -> Self {
        let (tx, rx) = unbounded();
        let n = hosts.len();
        Self {
            ids: topology.shards().iter().map(|s| s.id.0.clone()).collect(),
            wire: wire::wire_shards(&topology),
            topology,
            hosts,
            clock: Clock::new(),
            settings: Mutex::new(Settings::default()),
            plans: Mutex::new(HashMap::new()),
            executor: Arc::downgrade(executor),
            tx,
            rx,
            wake: unbounded(),
            faults: Mutex::new(Faults::default()),
            failing: Mutex::new(vec![false; n]),
            listed: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
            log: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn wire_shards(&self) -> Vec<WireShard> {
        self.wire.clone()
    }

    pub(super) fn set_rule(&self, rule: Option<Rule>) {
        lock(&self.faults).rule = rule;
    }

    /// Hands a packet to the network; `false` if the rule refused it.
    fn hand(&self, from: usize, to: &str, bytes: &[u8]) -> bool {
        let Some(to) = self.ids.iter().position(|id| id == to) else {
            return false;
        };
        let packet = Packet {
            from,
            to,
            bytes: bytes.to_vec(),
        };
        let mut faults = lock(&self.faults);
        let fate = faults
            .rule
            .as_mut()
            .map_or(Fate::Deliver, |rule| rule(&packet));
        match fate {
            Fate::Deliver => self.push(&mut faults, packet),
            Fate::Duplicate => {
                self.push(&mut faults, packet.clone());
                self.push(&mut faults, packet);
            }
            Fate::Lose => {}
            Fate::Delay(0) => self.push(&mut faults, packet),
            Fate::Delay(n) => faults.delayed.push((n, packet)),
            Fate::Hold => faults.held.push(packet),
            Fate::Refuse => return false,
        }
        true
    }

    /// Queues a packet for delivery; delayed ones of the same link whose turn came follow it.
    fn push(&self, faults: &mut Faults, packet: Packet) {
        let link = (packet.from, packet.to);
        let _ = self.tx.send(packet);
        let mut due = Vec::new();
        faults.delayed.retain_mut(|(n, p)| {
            if (p.from, p.to) != link {
                return true;
            }
            *n -= 1;
            if *n == 0 {
                due.push(p.clone());
            }
            *n > 0
        });
        for p in due {
            let _ = self.tx.send(p);
        }
    }

    /// Delivers every delayed packet now (the cluster went idle); `true` if there was any.
    pub(super) fn release_delayed(&self) -> bool {
        let delayed = std::mem::take(&mut lock(&self.faults).delayed);
        let any = !delayed.is_empty();
        for (_, p) in delayed {
            let _ = self.tx.send(p);
        }
        any
    }

    /// Queues every held packet; returns how many.
    pub(super) fn release_held(&self) -> usize {
        let held = std::mem::take(&mut lock(&self.faults).held);
        let n = held.len();
        for p in held {
            let _ = self.tx.send(p);
        }
        n
    }

    pub(super) fn held(&self) -> Vec<Packet> {
        lock(&self.faults).held.clone()
    }
}

/// The link of shard `from`.
pub(super) struct MemoryLink<'a> {
    pub(super) shared: &'a Shared,
    pub(super) from: usize,
}

impl Link for MemoryLink<'_> {
    fn send(&self, to: &str, bytes: &[u8]) -> bool {
        self.shared.hand(self.from, to, bytes)
    }

    fn topology(&self, shards: &[WireShard], me: usize) -> Topology {
        if shards == self.shared.wire.as_slice() {
            self.shared.topology.as_seen_by(me)
        } else {
            wire::topology_of(shards, me)
        }
    }
}

/// The transport of one simulated shard.
pub(super) struct ShardTransport {
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
}

impl Transport for ShardTransport {
    fn with_link(&self, f: &mut dyn FnMut(&dyn Link)) {
        f(&MemoryLink {
            shared: &self.shared,
            from: self.index,
        });
    }

    fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    fn lane(&self) -> Result<Lane, String> {
        self.shared
            .executor
            .upgrade()
            .map(|e| e.lane())
            .ok_or_else(|| "the in-memory cluster is gone".to_string())
    }

    fn resolve(&self, function: &str, args: &[String], registration: bool) -> PlanOrError {
        if let Some(plan) = lock(&self.shared.plans).get(function) {
            return Ok(plan.clone());
        }
        crate::distributed::from_registry(function, args, registration)
    }

    fn host(&self, _topology: Topology) -> Arc<dyn Host> {
        Arc::new(self.shared.hosts[self.index].clone())
    }

    fn settings(&self) -> Settings {
        lock(&self.shared.settings).clone()
    }

    fn peer(&self, id: &str) -> Peer {
        let failing = self
            .shared
            .ids
            .iter()
            .position(|s| s == id)
            .is_some_and(|i| lock(&self.shared.failing)[i]);
        Peer {
            description: id.to_string(),
            failing,
        }
    }

    fn record(&self, execution: &Arc<Execution>, _function: &str, _steps: &[StepInfo]) {
        lock(&self.shared.listed[self.index]).insert(execution.id().0.clone(), execution.clone());
    }

    fn unlist(&self, id: &str) {
        let mut listed = lock(&self.shared.listed[self.index]);
        if listed.get(id).is_some_and(|e| e.is_finished()) {
            listed.remove(id);
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        lock(&self.shared.log).push(format!("shard {}: {level:?}: {message}", self.index));
    }
}
