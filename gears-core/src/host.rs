//! The [`Host`] trait: the engine's only window on Redis.
//!
//! `gears-module` implements it over the Redis module API; [`crate::testing`] implements it
//! in memory, optionally as N simulated shards.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::HostError;
use crate::slot::SLOTS;
use crate::value::Value;

/// A shard's id: the 40-character Redis Cluster node id, or forty `0`s on a standalone server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, bincode::Encode, bincode::Decode)]
pub struct ShardId(pub String);

impl ShardId {
    /// The id of a standalone (non-cluster) server: forty `0`s.
    pub fn standalone() -> Self {
        ShardId("0".repeat(40))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One shard of the topology and the slot ranges it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard's id.
    pub id: ShardId,
    /// Inclusive slot ranges owned by this shard.
    pub slots: Vec<(u16, u16)>,
}

/// Who owns which hash slot, and which shard "I" am.
#[derive(Clone)]
pub struct Topology {
    shards: Arc<Vec<ShardInfo>>,
    owner: Arc<Vec<u16>>,
    me: usize,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("shards", &self.shards)
            .field("me", &self.me)
            .finish()
    }
}

impl Topology {
    /// A single shard owning every slot (a standalone server). Built once: every local run
    /// uses it, so it must not cost a slot table per run.
    pub fn standalone() -> Self {
        static STANDALONE: std::sync::OnceLock<Topology> = std::sync::OnceLock::new();
        STANDALONE
            .get_or_init(|| {
                Self::new(
                    vec![ShardInfo {
                        id: ShardId::standalone(),
                        slots: vec![(0, SLOTS - 1)],
                    }],
                    0,
                )
            })
            .clone()
    }

    /// `n` shards splitting the slots in contiguous ranges the way `redis-cli --cluster create`
    /// does; shard ids are `shard-0…` padded to 40 characters.
    pub fn evenly_split(n: usize, me: usize) -> Self {
        assert!(n > 0 && n <= SLOTS as usize, "shard count out of range");
        let per = SLOTS as usize / n;
        let shards = (0..n)
            .map(|i| {
                let start = i * per;
                let end = if i + 1 == n {
                    SLOTS as usize - 1
                } else {
                    (i + 1) * per - 1
                };
                ShardInfo {
                    id: ShardId(format!("{:0<40}", format!("shard-{i}-"))),
                    slots: vec![(start as u16, end as u16)],
                }
            })
            .collect();
        Self::new(shards, me)
    }

    /// Builds a topology from shards and the index of the local shard. Slots no shard claims
    /// are given to the first shard (Redis would report the cluster down instead).
    pub fn new(shards: Vec<ShardInfo>, me: usize) -> Self {
        assert!(me < shards.len(), "`me` must index a shard");
        let mut owner = vec![0u16; SLOTS as usize];
        for (i, s) in shards.iter().enumerate() {
            for &(a, b) in &s.slots {
                for slot in a..=b.min(SLOTS - 1) {
                    owner[slot as usize] = i as u16;
                }
            }
        }
        Self {
            shards: Arc::new(shards),
            owner: Arc::new(owner),
            me,
        }
    }

    /// The same topology seen from shard `me`.
    pub fn as_seen_by(&self, me: usize) -> Self {
        assert!(me < self.shards.len(), "`me` must index a shard");
        Self {
            shards: self.shards.clone(),
            owner: self.owner.clone(),
            me,
        }
    }

    /// All shards, in a fixed order (index = shard index).
    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Always false: a topology has at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Index of the local shard.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The local shard's id.
    pub fn my_id(&self) -> &ShardId {
        &self.shards[self.me].id
    }

    /// Index of the shard that owns `slot`.
    pub fn owner_of_slot(&self, slot: u16) -> usize {
        self.owner[(slot & (SLOTS - 1)) as usize] as usize
    }

    /// Index of the shard that owns `key`.
    pub fn owner_of_key(&self, key: &[u8]) -> usize {
        self.owner_of_slot(crate::slot::key_slot(key))
    }
}

/// The Redis type of a key, as `TYPE` reports it (`Empty` for a missing key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum KeyType {
    /// A string.
    String,
    /// A hash.
    Hash,
    /// A list.
    List,
    /// A set.
    Set,
    /// A sorted set.
    ZSet,
    /// A stream.
    Stream,
    /// A module type.
    Module,
    /// The key does not exist.
    Empty,
}

impl KeyType {
    /// The name RedisGears 1.x gives this type (`string`, `hash`, ..., `empty`).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Stream => "stream",
            KeyType::Module => "module",
            KeyType::Empty => "empty",
        }
    }

    /// Parses a 1.x type name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "string" => KeyType::String,
            "hash" => KeyType::Hash,
            "list" => KeyType::List,
            "set" => KeyType::Set,
            "zset" => KeyType::ZSet,
            "stream" => KeyType::Stream,
            "module" => KeyType::Module,
            "empty" => KeyType::Empty,
            _ => return None,
        })
    }
}

/// A stream entry id `ms-seq`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    bincode::Encode,
    bincode::Decode,
)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// Parses `ms-seq` (or `ms`, meaning `ms-0`).
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = match s.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (s.parse().ok()?, 0),
        };
        Some(Self { ms, seq })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct StreamEntry {
    /// The entry id.
    pub id: StreamId,
    /// Field/value pairs in insertion order.
    pub fields: Vec<(String, String)>,
}

/// A key's value, typed by the key's type.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub enum KeyValue {
    /// A string value.
    String(String),
    /// A hash, fields sorted by name.
    Hash(BTreeMap<String, String>),
    /// A list, head first.
    List(Vec<String>),
    /// A set's members, sorted.
    Set(Vec<String>),
    /// A sorted set's members with scores, in score order.
    ZSet(Vec<(String, f64)>),
    /// A stream's entries, oldest first.
    Stream(Vec<StreamEntry>),
}

impl KeyValue {
    /// The key type this value belongs to.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyValue::String(_) => KeyType::String,
            KeyValue::Hash(_) => KeyType::Hash,
            KeyValue::List(_) => KeyType::List,
            KeyValue::Set(_) => KeyType::Set,
            KeyValue::ZSet(_) => KeyType::ZSet,
            KeyValue::Stream(_) => KeyType::Stream,
        }
    }
}

/// One page of a keyspace scan. `cursor == 0` means the scan is complete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Cursor to pass to the next call; `0` when done.
    pub cursor: u64,
    /// Keys matching the pattern in this page.
    pub keys: Vec<String>,
}

/// One key read by a scan: its name, type and (if asked) typed value.
pub type ScannedKey = (String, KeyType, Option<KeyValue>);

/// A scan in progress over one shard's keys, holding whatever cursor state the host needs
/// (Redis's native scan cursor is opaque, not a number). Made by [`Host::key_scan`].
pub trait KeyScan: Send {
    /// Appends the next keys (about `count`) to `out`; `Ok(false)` once the scan is complete.
    fn next_page(&mut self, count: usize, out: &mut Vec<ScannedKey>) -> Result<bool, HostError>;
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Verbose.
    Verbose,
    /// Notice.
    Notice,
    /// Warning.
    Warning,
}

/// The engine's only window on Redis.
///
/// Implementations decide locking: the Redis implementation takes the Redis lock per call (or
/// per batch for the `*_batch`/scan methods) and never while user code runs.
pub trait Host: Send + Sync {
    /// Shard topology, including which shard this host is.
    fn topology(&self) -> Topology;

    /// One page of a keyspace scan for keys matching the glob `pattern`.
    fn scan(&self, pattern: &str, cursor: u64, count: usize) -> Result<ScanPage, HostError>;

    /// Reads keys: their type and, if `read_value`, their typed value (`None` for a missing
    /// key or a module type).
    fn read_keys(
        &self,
        keys: &[String],
        read_value: bool,
    ) -> Result<Vec<(KeyType, Option<KeyValue>)>, HostError>;

    /// Entries of stream `key` with id strictly greater than `after`, at most `count`.
    fn stream_range(
        &self,
        key: &str,
        after: StreamId,
        count: usize,
    ) -> Result<Vec<StreamEntry>, HostError>;

    /// Calls a Redis command; errors come back as `Err`, never hidden.
    fn call(&self, args: &[&str]) -> Result<Value, HostError>;

    /// Calls several commands one after the other, each with its own result. The default
    /// calls [`Host::call`] for each; the Redis host takes its lock once for all of them, so a
    /// worker thread hands the lock back and forth with the main thread once, not per command.
    fn call_all(&self, commands: &[&[&str]]) -> Vec<Result<Value, HostError>> {
        commands.iter().map(|args| self.call(args)).collect()
    }

    /// The values of `fields` in hash `key` (`None` for a missing field, all `None` for a
    /// missing key), like `HMGET`. The default calls `HMGET`; the Redis host reads the hash
    /// natively.
    fn hash_get(&self, key: &str, fields: &[&str]) -> Result<Vec<Option<String>>, HostError> {
        hash_get_by_call(self, key, fields)
    }

    /// Appends an entry with an automatic id to stream `key` and returns the id, like
    /// `XADD key * field value …`. The default calls `XADD`; the Redis host appends natively
    /// inside `sync` executions.
    fn stream_add(&self, key: &str, fields: &[(&str, &str)]) -> Result<String, HostError> {
        stream_add_by_call(self, key, fields)
    }

    /// Sends an engine message to another shard (the cluster bus).
    fn send(&self, shard: &ShardId, payload: Vec<u8>) -> Result<(), HostError>;

    /// Writes a line to the server's log.
    fn log(&self, level: LogLevel, message: &str);

    /// Whether this host may only be used from the thread running the execution (a `sync`
    /// execution inside a Redis callback). Parallel steps then run on that thread.
    fn thread_bound(&self) -> bool {
        false
    }

    /// A stateful scan of the keys matching `pattern`, reading values if `read_value`: hosts
    /// with a faster native scan than [`scan_read`](Host::scan_read) return one (the Redis host
    /// walks the keyspace with the module key API, one lock per page). `None`: readers page
    /// with `scan_read`.
    fn key_scan(&self, _pattern: &str, _read_value: bool) -> Option<Box<dyn KeyScan>> {
        None
    }

    /// Scans one page and reads the values of its keys: readers use this so a host can take its
    /// lock once per page. The default calls [`scan`](Host::scan) then
    /// [`read_keys`](Host::read_keys).
    #[allow(clippy::type_complexity)]
    fn scan_read(
        &self,
        pattern: &str,
        cursor: u64,
        count: usize,
        read_value: bool,
    ) -> Result<(u64, Vec<(String, KeyType, Option<KeyValue>)>), HostError> {
        let page = self.scan(pattern, cursor, count)?;
        let values = self.read_keys(&page.keys, read_value)?;
        Ok((
            page.cursor,
            page.keys
                .into_iter()
                .zip(values)
                .map(|(k, (t, v))| (k, t, v))
                .collect(),
        ))
    }
}

/// [`Host::hash_get`] through `HMGET`.
pub fn hash_get_by_call<H: Host + ?Sized>(
    host: &H,
    key: &str,
    fields: &[&str],
) -> Result<Vec<Option<String>>, HostError> {
    let mut args = Vec::with_capacity(fields.len() + 2);
    args.extend(["HMGET", key]);
    args.extend_from_slice(fields);
    match host.call(&args)? {
        Value::Array(values) => Ok(values
            .into_iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()),
        other => Err(HostError::new(format!(
            "ERR unexpected HMGET reply {other:?}"
        ))),
    }
}

/// [`Host::stream_add`] through `XADD key * …`.
pub fn stream_add_by_call<H: Host + ?Sized>(
    host: &H,
    key: &str,
    fields: &[(&str, &str)],
) -> Result<String, HostError> {
    let mut args = Vec::with_capacity(fields.len() * 2 + 3);
    args.extend(["XADD", key, "*"]);
    for (f, v) in fields {
        args.push(f);
        args.push(v);
    }
    match host.call(&args)? {
        Value::Bulk(id) => Ok(String::from_utf8_lossy(&id).into_owned()),
        Value::Status(id) => Ok(id),
        other => Err(HostError::new(format!(
            "ERR unexpected XADD reply {other:?}"
        ))),
    }
}

/// Matches `text` against a Redis glob pattern (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`).
///
/// Unlike RedisGears 1.x, which only honours a trailing `*`, this is the full glob syntax.
///
/// ```
/// use gears_core::host::glob_match;
/// assert!(glob_match("user:*", "user:1"));
/// assert!(glob_match("u*:[0-9]?", "user:12"));
/// assert!(!glob_match("user:?", "user:12"));
/// assert!(glob_match("*", ""));
/// assert!(glob_match("user:*", "user:") && !glob_match("user:*", "use"));
/// assert!(glob_match("a\\*b*", "a*bc") && !glob_match("a\\*b*", "axbc"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // The usual registration pattern, `prefix*`: a prefix comparison (every keyspace event
    // of a watched prefix comes here).
    if let Some((b'*', prefix)) = p.split_last() {
        if !prefix
            .iter()
            .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        {
            return t.starts_with(prefix);
        }
    }
    glob_bytes(p, t)
}

fn glob_bytes(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star_p, mut star_t) = (usize::MAX, 0usize);
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star_p = pi;
                    star_t = ti;
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => match class_match(p, pi, t[ti]) {
                    Some((true, next)) => {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    None if t[ti] == b'[' => {
                        // An unterminated class is a literal '['.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                    None => {}
                },
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        if star_p != usize::MAX {
            pi = star_p + 1;
            star_t += 1;
            ti = star_t;
            continue;
        }
        return false;
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches byte `c` against the class starting at `p[start] == b'['`; returns (matched, index after `]`).
fn class_match(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == b'^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (p[i] != b']' || first) {
        first = false;
        if p[i] == b'\\' && i + 1 < p.len() {
            matched |= p[i + 1] == c;
            i += 2;
        } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let (lo, hi) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return None; // unterminated class: treat '[' literally (caller falls through)
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_cases() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("user:*:name", "user:42:name"));
        assert!(!glob_match("user:*:name", "user:42:age"));
        assert!(glob_match("h[ae]llo", "hallo"));
        assert!(!glob_match("h[^e]llo", "hello"));
        assert!(glob_match("h[a-c]llo", "hbllo"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a\\*b", "axb"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("[abc", "[abc"));
    }

    #[test]
    fn topology_owner() {
        let t = Topology::evenly_split(3, 1);
        assert_eq!(t.len(), 3);
        assert_eq!(t.me(), 1);
        assert_eq!(t.owner_of_slot(0), 0);
        assert_eq!(t.owner_of_slot(16383), 2);
        assert_eq!(t.owner_of_key(b"foo"), 2); // slot 12182
        assert_eq!(t.my_id().0.len(), 40);
        assert_eq!(ShardId::standalone().0, "0".repeat(40));
    }

    #[test]
    fn stream_id_parse() {
        assert_eq!(StreamId::parse("5-3"), Some(StreamId { ms: 5, seq: 3 }));
        assert_eq!(StreamId::parse("7"), Some(StreamId { ms: 7, seq: 0 }));
        assert_eq!(StreamId::parse("x-1"), None);
        assert_eq!(StreamId { ms: 1, seq: 2 }.to_string(), "1-2");
    }
}
