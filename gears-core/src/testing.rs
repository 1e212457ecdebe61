//! In-memory hosts for tests, doctests and benchmarks: [`MemoryHost`] is one Redis-like
//! keyspace; [`MemoryCluster`] is N of them splitting the hash slots like a Redis Cluster, with
//! a driver that runs a plan's stages on every shard and moves records between them through
//! the real codec and shard protocol.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::builder::GearsBuilder;
use crate::chain::Chain;
use crate::error::{GearsError, HostError, StepError};
use crate::host::{
    glob_match, Host, KeyType, KeyValue, LogLevel, ScanPage, ShardId, StreamEntry, StreamId,
    Topology,
};
use crate::plan::{
    Plan, RouteCx, RunOptions, RunResult, ShardRunState, StageCall, StageInbox, StageOutput,
};
use crate::protocol::{decode_message, encode_message, ShardMessage};
use crate::record::Record;
use crate::registry::ErasedPlan;
use crate::value::Value;

#[derive(Debug, Clone)]
enum Stored {
    String(String),
    Hash(BTreeMap<String, String>),
    List(Vec<String>),
    Set(BTreeSet<String>),
    ZSet(Vec<(String, f64)>),
    Stream(BTreeMap<StreamId, Vec<(String, String)>>),
}

impl Stored {
    fn key_type(&self) -> KeyType {
        match self {
            Stored::String(_) => KeyType::String,
            Stored::Hash(_) => KeyType::Hash,
            Stored::List(_) => KeyType::List,
            Stored::Set(_) => KeyType::Set,
            Stored::ZSet(_) => KeyType::ZSet,
            Stored::Stream(_) => KeyType::Stream,
        }
    }

    fn value(&self) -> KeyValue {
        match self {
            Stored::String(s) => KeyValue::String(s.clone()),
            Stored::Hash(h) => KeyValue::Hash(h.clone()),
            Stored::List(l) => KeyValue::List(l.clone()),
            Stored::Set(s) => KeyValue::Set(s.iter().cloned().collect()),
            Stored::ZSet(z) => KeyValue::ZSet(z.clone()),
            Stored::Stream(s) => KeyValue::Stream(
                s.iter()
                    .map(|(id, f)| StreamEntry {
                        id: *id,
                        fields: f.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

/// Keys in insertion order (cursor = position), with O(1) lookup.
#[derive(Default)]
struct Keyspace {
    index: HashMap<String, usize>,
    slots: Vec<Option<(String, Stored)>>,
    last_stream_id: StreamId,
}

impl Keyspace {
    fn get(&self, key: &str) -> Option<&Stored> {
        self.index
            .get(key)
            .and_then(|&i| self.slots[i].as_ref())
            .map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Stored> {
        let i = *self.index.get(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    fn put(&mut self, key: &str, value: Stored) {
        match self.index.get(key) {
            Some(&i) => self.slots[i] = Some((key.to_string(), value)),
            None => {
                self.index.insert(key.to_string(), self.slots.len());
                self.slots.push(Some((key.to_string(), value)));
            }
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.index.remove(key) {
            Some(i) => self.slots[i].take().is_some(),
            None => false,
        }
    }

    /// The value at `key`, created with `make` if missing; WRONGTYPE if `check` rejects it.
    fn entry(
        &mut self,
        key: &str,
        make: impl FnOnce() -> Stored,
        check: fn(&Stored) -> bool,
    ) -> Result<&mut Stored, HostError> {
        if self.get(key).is_none() {
            self.put(key, make());
        }
        let v = self.get_mut(key).expect("just inserted");
        if check(v) {
            Ok(v)
        } else {
            Err(wrong_type())
        }
    }

    fn next_stream_id(&mut self) -> StreamId {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let id = if now > self.last_stream_id.ms {
            StreamId { ms: now, seq: 0 }
        } else {
            StreamId {
                ms: self.last_stream_id.ms,
                seq: self.last_stream_id.seq + 1,
            }
        };
        self.last_stream_id = id;
        id
    }
}

fn wrong_type() -> HostError {
    HostError::new("WRONGTYPE Operation against a key holding the wrong kind of value")
}

fn arity(cmd: &str) -> HostError {
    HostError::new(format!(
        "ERR wrong number of arguments for '{}' command",
        cmd.to_ascii_lowercase()
    ))
}

struct Inner {
    keys: Mutex<Keyspace>,
    topology: Topology,
    outbox: Mutex<Vec<(ShardId, Vec<u8>)>>,
    log: Mutex<Vec<String>>,
}

/// One in-memory Redis-like keyspace implementing [`Host`]. Cheap to clone (shared state).
///
/// `call` understands a subset of commands (`GET SET DEL EXISTS INCR INCRBY HSET HGET HGETALL
/// HDEL HLEN RPUSH LPUSH SADD ZADD XADD XLEN TYPE DBSIZE PING`) with Redis's error replies; as a
/// cluster shard it refuses keys of slots it does not own, as Redis Cluster does.
#[derive(Clone)]
pub struct MemoryHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHost")
            .field("shard", self.inner.topology.my_id())
            .finish()
    }
}

impl Default for MemoryHost {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryHost {
    /// A standalone host.
    pub fn new() -> Self {
        Self::with_topology(Topology::standalone())
    }

    /// A host that is shard `topology.me()` of `topology`.
    pub fn with_topology(topology: Topology) -> Self {
        Self {
            inner: Arc::new(Inner {
                keys: Mutex::new(Keyspace::default()),
                topology,
                outbox: Mutex::new(Vec::new()),
                log: Mutex::new(Vec::new()),
            }),
        }
    }

    fn keys(&self) -> MutexGuard<'_, Keyspace> {
        lock(&self.inner.keys)
    }

    fn expect_ok(&self, args: &[&str]) {
        if let Err(e) = self.call(args) {
            panic!("{args:?} failed: {e}");
        }
    }

    /// `SET key value`.
    pub fn set(&self, key: &str, value: &str) {
        self.expect_ok(&["SET", key, value]);
    }

    /// `GET key`.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.keys().get(key) {
            Some(Stored::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// `HSET key field value ...`.
    pub fn hset(&self, key: &str, fields: &[(&str, &str)]) {
        let mut args = vec!["HSET", key];
        for (f, v) in fields {
            args.push(f);
            args.push(v);
        }
        self.expect_ok(&args);
    }

    /// `HGETALL key` as a map.
    pub fn hgetall(&self, key: &str) -> BTreeMap<String, String> {
        match self.keys().get(key) {
            Some(Stored::Hash(h)) => h.clone(),
            _ => BTreeMap::new(),
        }
    }

    /// `RPUSH key item ...`.
    pub fn rpush(&self, key: &str, items: &[&str]) {
        let mut args = vec!["RPUSH", key];
        args.extend_from_slice(items);
        self.expect_ok(&args);
    }

    /// `SADD key member ...`.
    pub fn sadd(&self, key: &str, members: &[&str]) {
        let mut args = vec!["SADD", key];
        args.extend_from_slice(members);
        self.expect_ok(&args);
    }

    /// `ZADD key score member`.
    pub fn zadd(&self, key: &str, score: f64, member: &str) {
        let s = score.to_string();
        self.expect_ok(&["ZADD", key, &s, member]);
    }

    /// `XADD key * field value ...`; returns the new id.
    pub fn xadd(&self, key: &str, fields: &[(&str, &str)]) -> StreamId {
        let mut args = vec!["XADD", key, "*"];
        for (f, v) in fields {
            args.push(f);
            args.push(v);
        }
        match self.call(&args) {
            Ok(v) => v
                .as_str()
                .and_then(StreamId::parse)
                .expect("XADD returns an id"),
            Err(e) => panic!("XADD failed: {e}"),
        }
    }

    /// Number of keys.
    pub fn dbsize(&self) -> usize {
        self.keys().index.len()
    }

    /// Messages this host sent with [`Host::send`].
    pub fn take_sent(&self) -> Vec<(ShardId, Vec<u8>)> {
        std::mem::take(&mut lock(&self.inner.outbox))
    }

    /// Lines logged through [`Host::log`].
    pub fn log_lines(&self) -> Vec<String> {
        lock(&self.inner.log).clone()
    }

    fn check_local(&self, key: &str) -> Result<(), HostError> {
        let t = &self.inner.topology;
        if t.len() > 1 && t.owner_of_key(key.as_bytes()) != t.me() {
            return Err(HostError::new(
                "ERR Attempted to access a non local key in a cluster node",
            ));
        }
        Ok(())
    }

    fn execute(&self, args: &[&str]) -> Result<Value, HostError> {
        let Some(cmd) = args.first() else {
            return Err(HostError::new("ERR empty command"));
        };
        let name = cmd.to_ascii_uppercase();
        const KNOWN: &[&str] = &[
            "PING", "ECHO", "DBSIZE", "GET", "SET", "DEL", "EXISTS", "TYPE", "INCR", "INCRBY",
            "HSET", "HGET", "HMGET", "HGETALL", "HLEN", "HDEL", "RPUSH", "LPUSH", "SADD", "ZADD",
            "XADD", "XLEN",
        ];
        if !KNOWN.contains(&name.as_str()) {
            return Err(HostError::new(format!(
                "ERR unknown command '{cmd}', with args beginning with: "
            )));
        }
        let keyed = !matches!(name.as_str(), "PING" | "DBSIZE" | "ECHO");
        if keyed {
            let key = args.get(1).ok_or_else(|| arity(cmd))?;
            self.check_local(key)?;
        }
        let mut ks = self.keys();
        let ok = || Value::Status("OK".into());
        let int = |n: usize| Value::Int(n as i64);
        Ok(match (name.as_str(), args.len()) {
            ("PING", _) => Value::Status("PONG".into()),
            ("ECHO", 2) => Value::bulk(args[1]),
            ("DBSIZE", 1) => int(ks.index.len()),
            ("GET", 2) => match ks.get(args[1]) {
                None => Value::Nil,
                Some(Stored::String(s)) => Value::bulk(s.clone()),
                Some(_) => return Err(wrong_type()),
            },
            ("SET", 3) => {
                ks.put(args[1], Stored::String(args[2].to_string()));
                ok()
            }
            ("DEL", n) if n >= 2 => int(args[1..].iter().filter(|k| ks.remove(k)).count()),
            ("EXISTS", n) if n >= 2 => {
                int(args[1..].iter().filter(|k| ks.get(k).is_some()).count())
            }
            ("TYPE", 2) => Value::Status(
                ks.get(args[1])
                    .map_or("none", |v| v.key_type().name())
                    .into(),
            ),
            ("INCR", 2) | ("INCRBY", 3) => {
                let by: i64 = if args.len() == 3 {
                    args[2].parse().map_err(|_| {
                        HostError::new("ERR value is not an integer or out of range")
                    })?
                } else {
                    1
                };
                let current = match ks.get(args[1]) {
                    None => 0,
                    Some(Stored::String(s)) => s.parse::<i64>().map_err(|_| {
                        HostError::new("ERR value is not an integer or out of range")
                    })?,
                    Some(_) => return Err(wrong_type()),
                };
                let next = current
                    .checked_add(by)
                    .ok_or_else(|| HostError::new("ERR increment or decrement would overflow"))?;
                ks.put(args[1], Stored::String(next.to_string()));
                Value::Int(next)
            }
            ("HSET", n) if n >= 4 && n % 2 == 0 => {
                let h = ks.entry(
                    args[1],
                    || Stored::Hash(BTreeMap::new()),
                    |v| matches!(v, Stored::Hash(_)),
                )?;
                let Stored::Hash(h) = h else { unreachable!() };
                let mut added = 0;
                for pair in args[2..].chunks(2) {
                    if h.insert(pair[0].to_string(), pair[1].to_string()).is_none() {
                        added += 1;
                    }
                }
                int(added)
            }
            ("HGET", 3) => match ks.get(args[1]) {
                None => Value::Nil,
                Some(Stored::Hash(h)) => h
                    .get(args[2])
                    .map_or(Value::Nil, |v| Value::bulk(v.clone())),
                Some(_) => return Err(wrong_type()),
            },
            ("HMGET", n) if n >= 3 => match ks.get(args[1]) {
                None => Value::Array(vec![Value::Nil; n - 2]),
                Some(Stored::Hash(h)) => Value::Array(
                    args[2..]
                        .iter()
                        .map(|f| h.get(*f).map_or(Value::Nil, |v| Value::bulk(v.clone())))
                        .collect(),
                ),
                Some(_) => return Err(wrong_type()),
            },
            ("HGETALL", 2) => match ks.get(args[1]) {
                None => Value::Array(vec![]),
                Some(Stored::Hash(h)) => Value::Array(
                    h.iter()
                        .flat_map(|(k, v)| [Value::bulk(k.clone()), Value::bulk(v.clone())])
                        .collect(),
                ),
                Some(_) => return Err(wrong_type()),
            },
            ("HLEN", 2) => match ks.get(args[1]) {
                None => int(0),
                Some(Stored::Hash(h)) => int(h.len()),
                Some(_) => return Err(wrong_type()),
            },
            ("HDEL", n) if n >= 3 => {
                let removed = match ks.get_mut(args[1]) {
                    None => 0,
                    Some(Stored::Hash(h)) => {
                        args[2..].iter().filter(|f| h.remove(**f).is_some()).count()
                    }
                    Some(_) => return Err(wrong_type()),
                };
                if matches!(ks.get(args[1]), Some(Stored::Hash(h)) if h.is_empty()) {
                    ks.remove(args[1]);
                }
                int(removed)
            }
            ("RPUSH", n) | ("LPUSH", n) if n >= 3 => {
                let l = ks.entry(
                    args[1],
                    || Stored::List(Vec::new()),
                    |v| matches!(v, Stored::List(_)),
                )?;
                let Stored::List(l) = l else { unreachable!() };
                for item in &args[2..] {
                    if name == "RPUSH" {
                        l.push(item.to_string());
                    } else {
                        l.insert(0, item.to_string());
                    }
                }
                int(l.len())
            }
            ("SADD", n) if n >= 3 => {
                let s = ks.entry(
                    args[1],
                    || Stored::Set(BTreeSet::new()),
                    |v| matches!(v, Stored::Set(_)),
                )?;
                let Stored::Set(s) = s else { unreachable!() };
                int(args[2..].iter().filter(|m| s.insert(m.to_string())).count())
            }
            ("ZADD", n) if n >= 4 && n % 2 == 0 => {
                let mut pairs = Vec::new();
                for pair in args[2..].chunks(2) {
                    let score: f64 = pair[0]
                        .parse()
                        .map_err(|_| HostError::new("ERR value is not a valid float"))?;
                    pairs.push((pair[1].to_string(), score));
                }
                let z = ks.entry(
                    args[1],
                    || Stored::ZSet(Vec::new()),
                    |v| matches!(v, Stored::ZSet(_)),
                )?;
                let Stored::ZSet(z) = z else { unreachable!() };
                let mut added = 0;
                for (member, score) in pairs {
                    match z.iter_mut().find(|(m, _)| *m == member) {
                        Some(e) => e.1 = score,
                        None => {
                            z.push((member, score));
                            added += 1;
                        }
                    }
                }
                z.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                int(added)
            }
            ("XADD", n) if n >= 5 && n % 2 == 1 => {
                let id = if args[2] == "*" {
                    ks.next_stream_id()
                } else {
                    let id = StreamId::parse(args[2]).ok_or_else(|| {
                        HostError::new("ERR Invalid stream ID specified as stream command argument")
                    })?;
                    if id <= ks.last_stream_id {
                        return Err(HostError::new("ERR The ID specified in XADD is equal or smaller than the target stream top item"));
                    }
                    ks.last_stream_id = id;
                    id
                };
                let fields = args[3..]
                    .chunks(2)
                    .map(|p| (p[0].to_string(), p[1].to_string()))
                    .collect();
                let s = ks.entry(
                    args[1],
                    || Stored::Stream(BTreeMap::new()),
                    |v| matches!(v, Stored::Stream(_)),
                )?;
                let Stored::Stream(s) = s else { unreachable!() };
                s.insert(id, fields);
                Value::bulk(id.to_string())
            }
            ("XLEN", 2) => match ks.get(args[1]) {
                None => int(0),
                Some(Stored::Stream(s)) => int(s.len()),
                Some(_) => return Err(wrong_type()),
            },
            (
                "GET" | "SET" | "TYPE" | "INCR" | "INCRBY" | "HSET" | "HGET" | "HGETALL" | "HLEN"
                | "HDEL" | "DEL" | "EXISTS" | "RPUSH" | "LPUSH" | "SADD" | "ZADD" | "XADD" | "XLEN"
                | "ECHO" | "DBSIZE",
                _,
            ) => return Err(arity(cmd)),
            _ => {
                return Err(HostError::new(format!(
                    "ERR unknown command '{cmd}', with args beginning with: "
                )))
            }
        })
    }
}

impl Host for MemoryHost {
    fn topology(&self) -> Topology {
        self.inner.topology.clone()
    }

    fn scan(&self, pattern: &str, cursor: u64, count: usize) -> Result<ScanPage, HostError> {
        let ks = self.keys();
        let start = cursor as usize;
        let end = start.saturating_add(count.max(1)).min(ks.slots.len());
        let keys = ks.slots[start.min(end)..end]
            .iter()
            .flatten()
            .filter(|(k, _)| glob_match(pattern, k))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(ScanPage {
            cursor: if end >= ks.slots.len() { 0 } else { end as u64 },
            keys,
        })
    }

    fn read_keys(
        &self,
        keys: &[String],
        read_value: bool,
    ) -> Result<Vec<(KeyType, Option<KeyValue>)>, HostError> {
        let ks = self.keys();
        Ok(keys
            .iter()
            .map(|k| match ks.get(k) {
                None => (KeyType::Empty, None),
                Some(v) => (v.key_type(), read_value.then(|| v.value())),
            })
            .collect())
    }

    fn stream_range(
        &self,
        key: &str,
        after: StreamId,
        count: usize,
    ) -> Result<Vec<StreamEntry>, HostError> {
        let ks = self.keys();
        match ks.get(key) {
            None => Ok(Vec::new()),
            Some(Stored::Stream(s)) => Ok(s
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(count)
                .map(|(id, f)| StreamEntry {
                    id: *id,
                    fields: f.clone(),
                })
                .collect()),
            Some(_) => Err(wrong_type()),
        }
    }

    fn call(&self, args: &[&str]) -> Result<Value, HostError> {
        self.execute(args)
    }

    fn send(&self, shard: &ShardId, payload: Vec<u8>) -> Result<(), HostError> {
        lock(&self.inner.outbox).push((shard.clone(), payload));
        Ok(())
    }

    fn log(&self, level: LogLevel, message: &str) {
        lock(&self.inner.log).push(format!("{level:?}: {message}"));
    }
}

/// Traffic counters of a [`MemoryCluster`].
#[derive(Debug, Default)]
pub struct ClusterTraffic {
    /// Shard messages sent.
    pub messages: AtomicU64,
    /// Bytes of shard messages sent.
    pub bytes: AtomicU64,
}

/// N [`MemoryHost`] shards splitting the hash slots, and a driver that runs plans across them.
#[derive(Debug, Clone)]
pub struct MemoryCluster {
    shards: Vec<MemoryHost>,
    topology: Topology,
    traffic: Arc<ClusterTraffic>,
}

impl MemoryCluster {
    /// `n` shards with contiguous slot ranges.
    pub fn new(n: usize) -> Self {
        let topology = Topology::evenly_split(n, 0);
        let shards = (0..n)
            .map(|i| MemoryHost::with_topology(topology.as_seen_by(i)))
            .collect();
        Self {
            shards,
            topology,
            traffic: Arc::new(ClusterTraffic::default()),
        }
    }

    /// The shards.
    pub fn shards(&self) -> &[MemoryHost] {
        &self.shards
    }

    /// The topology (as seen by shard 0).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Messages and bytes exchanged so far.
    pub fn traffic(&self) -> &ClusterTraffic {
        &self.traffic
    }

    /// The shard owning `key`.
    pub fn owner(&self, key: &str) -> &MemoryHost {
        &self.shards[self.topology.owner_of_key(key.as_bytes())]
    }

    /// `SET` on the owning shard.
    pub fn set(&self, key: &str, value: &str) {
        self.owner(key).set(key, value)
    }

    /// `GET` from the owning shard.
    pub fn get(&self, key: &str) -> Option<String> {
        self.owner(key).get(key)
    }

    /// `HSET` on the owning shard.
    pub fn hset(&self, key: &str, fields: &[(&str, &str)]) {
        self.owner(key).hset(key, fields)
    }

    /// `XADD` on the owning shard.
    pub fn xadd(&self, key: &str, fields: &[(&str, &str)]) -> StreamId {
        self.owner(key).xadd(key, fields)
    }

    /// Builds and runs `flow` on every shard, started from shard 0.
    pub fn run<T: Record, C: Chain<Out = T>>(&self, flow: GearsBuilder<T, C>) -> RunResult<T> {
        let plan = flow.build();
        self.run_plan(&plan, &RunOptions::default())
            .unwrap_or_else(|e| RunResult {
                results: Vec::new(),
                errors: vec![StepError::new("execution", e.to_string())],
                stats: Vec::new(),
            })
    }

    /// Runs `plan` on every shard, stage by stage, started from shard 0. Records that cross
    /// shards are encoded as batches inside [`ShardMessage`]s and decoded at the receiver.
    pub fn run_plan<T: Record>(
        &self,
        plan: &Plan<T>,
        options: &RunOptions,
    ) -> Result<RunResult<T>, GearsError> {
        let (inbox, states) = self.drive(
            plan.stage_count(),
            options,
            || plan.new_shard_state(),
            |stage, host, inbox, initiator, route, state| {
                plan.run_stage(StageCall {
                    stage,
                    host,
                    event: None,
                    inbox,
                    initiator,
                    route,
                    options,
                    state,
                })
            },
        )?;
        Ok(plan.finish(plan.results_from(inbox)?, states))
    }

    /// Runs a registered (type-erased) plan on every shard, like [`run_plan`](Self::run_plan).
    pub fn run_erased(
        &self,
        plan: &dyn ErasedPlan,
        options: &RunOptions,
    ) -> Result<RunResult<Value>, GearsError> {
        let (inbox, states) = self.drive(
            plan.stage_count(),
            options,
            || plan.new_shard_state(),
            |stage, host, inbox, initiator, route, state| {
                plan.run_stage(StageCall {
                    stage,
                    host,
                    event: None,
                    inbox,
                    initiator,
                    route,
                    options,
                    state,
                })
            },
        )?;
        Ok(plan.finish(plan.results_from(inbox)?, states))
    }

    /// The stage-by-stage driver: returns the initiator's final inbox and every shard's state.
    #[allow(clippy::type_complexity)]
    fn drive(
        &self,
        stages: usize,
        options: &RunOptions,
        new_state: impl Fn() -> ShardRunState,
        mut run_stage: impl FnMut(
            usize,
            &Arc<dyn Host>,
            StageInbox,
            bool,
            &RouteCx,
            &mut ShardRunState,
        ) -> Result<StageOutput, GearsError>,
    ) -> Result<(StageInbox, Vec<ShardRunState>), GearsError> {
        let n = self.shards.len();
        let mut states: Vec<_> = (0..n).map(|_| new_state()).collect();
        let mut inboxes: Vec<StageInbox> = (0..n).map(|_| StageInbox::default()).collect();
        for stage in 0..stages {
            let mut next: Vec<StageInbox> = (0..n).map(|_| StageInbox::default()).collect();
            for (i, shard) in self.shards.iter().enumerate() {
                let host: Arc<dyn Host> = Arc::new(shard.clone());
                let route = RouteCx {
                    topology: self.topology.as_seen_by(i),
                    initiator: 0,
                    message_bytes: options.message_bytes,
                };
                let mut output = run_stage(
                    stage,
                    &host,
                    std::mem::take(&mut inboxes[i]),
                    i == 0,
                    &route,
                    &mut states[i],
                )?;
                for (dest, batch) in std::mem::take(&mut output.remote) {
                    let wire = encode_message(&ShardMessage::Records {
                        execution: "memory".into(),
                        stage: stage as u32 + 1,
                        from: i as u32,
                        batch,
                    })?;
                    self.traffic.messages.fetch_add(1, Ordering::Relaxed);
                    self.traffic
                        .bytes
                        .fetch_add(wire.len() as u64, Ordering::Relaxed);
                    match decode_message(&wire)? {
                        ShardMessage::Records { batch, .. } => next[dest].add_remote(batch),
                        other => return Err(GearsError::Internal(format!("unexpected {other:?}"))),
                    }
                }
                next[i].add_local(output);
            }
            inboxes = next;
        }
        Ok((std::mem::take(&mut inboxes[0]), states))
    }
}

/// Runs the flow built by `setup` on a fresh [`MemoryHost`] and returns its results,
/// asserting that no step failed. The harness of the documentation examples.
pub fn example<T: Record, C: Chain<Out = T>>(
    setup: impl FnOnce(&MemoryHost) -> GearsBuilder<T, C>,
) -> Vec<T> {
    let host = MemoryHost::new();
    let flow = setup(&host);
    let out = flow.run(&host);
    assert!(
        out.errors.is_empty(),
        "the example's steps failed: {:?}",
        out.errors
    );
    out.results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_errors() {
        let h = MemoryHost::new();
        assert_eq!(
            h.call(&["SET", "a", "1"]).unwrap(),
            Value::Status("OK".into())
        );
        assert_eq!(h.call(&["INCRBY", "a", "4"]).unwrap(), Value::Int(5));
        assert!(h
            .call(&["HSET", "a", "f", "v"])
            .unwrap_err()
            .message
            .starts_with("WRONGTYPE"));
        assert!(h
            .call(&["GET"])
            .unwrap_err()
            .message
            .contains("wrong number"));
        assert!(h
            .call(&["NOPE"])
            .unwrap_err()
            .message
            .contains("unknown command"));
        h.hset("h", &[("f", "v")]);
        assert_eq!(h.call(&["HDEL", "h", "f"]).unwrap(), Value::Int(1));
        assert_eq!(h.call(&["EXISTS", "h"]).unwrap(), Value::Int(0));
        let id1 = h.xadd("s", &[("a", "1")]);
        let id2 = h.xadd("s", &[("a", "2")]);
        assert!(id2 > id1);
        assert_eq!(h.stream_range("s", id1, 10).unwrap().len(), 1);
    }

    #[test]
    fn scan_pages_cover_everything_once() {
        let h = MemoryHost::new();
        for i in 0..2500 {
            h.set(&format!("k{i}"), "v");
        }
        h.call(&["DEL", "k7"]).unwrap();
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let page = h.scan("*", cursor, 100).unwrap();
            seen.extend(page.keys);
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 2499);
    }

    #[test]
    fn cluster_shards_refuse_foreign_keys() {
        let c = MemoryCluster::new(3);
        let owner = c.topology().owner_of_key(b"foo");
        let other = (owner + 1) % 3;
        assert!(c.shards()[owner].call(&["SET", "foo", "1"]).is_ok());
        let err = c.shards()[other].call(&["SET", "foo", "1"]).unwrap_err();
        assert!(err.message.contains("non local key"), "{err}");
    }
}
