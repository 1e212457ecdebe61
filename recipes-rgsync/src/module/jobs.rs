//! The write-behind jobs of this server. A job is its configuration plus two Gears
//! registrations made with `ARGS <job>`: `rgsync_capture` (sync) and `rgsync_writer`
//! (async_local). Its stream is `{<tag>}rgsync:<job>` where `<tag>` is a hashtag of a slot this
//! shard owns: the same name across restarts, upgrades and re-registration, so pending entries
//! are never orphaned; its dead letters go to `{<tag>}rgsync:<job>:dlq`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use gears::host::StreamId;

use crate::change::Change;
use crate::config::JobConfig;
use crate::error::SyncError;
use crate::writer::Writer;

/// Function names of the two registrations of a job.
pub const CAPTURE: &str = "rgsync_capture";
/// See [`CAPTURE`].
pub const WRITER: &str = "rgsync_writer";

/// What the writer did so far (for `RGSYNC.STATUS`).
#[derive(Debug, Default, Clone)]
pub struct JobStats {
    /// Batches committed.
    pub batches: u64,
    /// Rows written.
    pub rows: u64,
    /// Records sent to the dead-letter stream.
    pub dead_lettered: u64,
    /// Entries skipped because the checkpoint covered them (replays).
    pub skipped: u64,
    /// Failed attempts.
    pub retries: u64,
    /// The last error (kept after recovery, with `retrying` false).
    pub last_error: Option<String>,
    /// When the last error happened (Unix ms; 0: never).
    pub last_error_at_ms: u64,
    /// When a batch was last committed (Unix ms; 0: never).
    pub last_commit_at_ms: u64,
    /// Whether the writer is waiting to retry now.
    pub retrying: bool,
    /// Whether what it waits for is a refused configuration (state `failed`).
    pub failed: bool,
    /// The last stream id applied.
    pub last_applied: Option<StreamId>,
    /// Milliseconds between the last batch's newest change and its commit.
    pub last_lag_ms: u64,
    /// Changes captured.
    pub captured: u64,
}

/// One job on this server.
pub struct Job {
    /// Its configuration.
    pub config: JobConfig,
    /// Loaded from the config file (not from a command).
    pub from_file: bool,
    stopped: AtomicBool,
    /// Changes captured and not yet applied (an estimate, reset from `XLEN` per batch).
    pub(crate) pending: AtomicI64,
    pub(crate) writer: Mutex<Option<Writer>>,
    stats: Mutex<JobStats>,
    tag: OnceLock<String>,
    /// The local stream's key, once the tag is known (no formatting per event).
    stream_key: OnceLock<String>,
    /// Changes captured (counted without a lock: the capture runs for every write).
    pub(crate) captured: std::sync::atomic::AtomicU64,
    /// What the capture reads: `#` then the mapped fields.
    pub(crate) read_fields: Vec<String>,
    /// The stream entry's name of each mapped field (`=<field>`, see `Change::to_fields`).
    pub(crate) entry_fields: Vec<String>,
}

impl Job {
    fn new(config: JobConfig, from_file: bool) -> Self {
        Self {
            from_file,
            stopped: AtomicBool::new(false),
            pending: AtomicI64::new(0),
            writer: Mutex::new(None),
            stats: Mutex::new(JobStats::default()),
            tag: OnceLock::new(),
            stream_key: OnceLock::new(),
            captured: std::sync::atomic::AtomicU64::new(0),
            read_fields: std::iter::once("#".to_string())
                .chain(config.columns.iter().map(|c| c.field.clone()))
                .collect(),
            entry_fields: config
                .columns
                .iter()
                .map(|c| Change::entry_field(&c.field))
                .collect(),
            config,
        }
    }

    /// Whether the job was removed (its writer gives up waiting).
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Its statistics.
    pub fn stats(&self) -> MutexGuard<'_, JobStats> {
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.captured = self.captured.load(Ordering::Relaxed);
        s
    }

    /// The local stream's key for `tag`, formatted once.
    pub(crate) fn local_stream(&self, tag: &str) -> &str {
        self.stream_key.get_or_init(|| self.stream(tag))
    }

    /// The local hashtag (set by the first capture or drain on this shard).
    pub fn tag(&self) -> Option<&str> {
        self.tag.get().map(String::as_str)
    }

    pub(crate) fn set_tag(&self, tag: &str) -> &str {
        self.tag.get_or_init(|| tag.to_string())
    }

    /// The job's stream on the shard of `tag`.
    pub fn stream(&self, tag: &str) -> String {
        format!("{{{tag}}}rgsync:{}", self.config.name)
    }

    /// The job's dead-letter stream on the shard of `tag`.
    pub fn dead_letters(&self, tag: &str) -> String {
        format!("{{{tag}}}rgsync:{}:dlq", self.config.name)
    }

    /// The glob of the job's streams (one per shard).
    pub fn stream_glob(&self) -> String {
        format!("{{*}}rgsync:{}", self.config.name)
    }
}

/// The hashtag of a stream key `{tag}…`.
pub fn tag_of(stream: &str) -> Option<&str> {
    stream.strip_prefix('{')?.split_once('}').map(|(t, _)| t)
}

/// Set once a job with a `MAX_BACKLOG` exists: the write guard does nothing before.
static ANY_LIMIT: AtomicBool = AtomicBool::new(false);

/// The write guard (runs before every command): refuses hash writes to a job's keys while
/// its backlog is at `MAX_BACKLOG` or more.
pub fn write_guard(command: &[u8], key: &[u8]) -> Option<String> {
    if !ANY_LIMIT.load(Ordering::Relaxed) {
        return None;
    }
    let writes = [
        &b"hset"[..],
        b"hmset",
        b"hsetnx",
        b"hincrby",
        b"hincrbyfloat",
    ];
    if !writes.iter().any(|w| w.eq_ignore_ascii_case(command)) {
        return None;
    }
    let key = std::str::from_utf8(key).ok()?;
    all().into_iter().find_map(|job| {
        let max = job.config.max_backlog;
        let pending = job.pending.load(Ordering::Relaxed);
        (max > 0 && pending >= max as i64 && gears::host::glob_match(&job.config.key.glob(), key))
            .then(|| {
                format!(
                    "rgsync job '{}': {pending} changes wait for the database (MAX_BACKLOG {max}); write refused",
                    job.config.name
                )
            })
    })
}

static JOBS: RwLock<BTreeMap<String, Arc<Job>>> = RwLock::new(BTreeMap::new());

/// The job named `name`.
pub fn get(name: &str) -> Option<Arc<Job>> {
    JOBS.read()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .cloned()
}

/// Every job, by name.
pub fn all() -> Vec<Arc<Job>> {
    JOBS.read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect()
}

fn registrations_of(name: &str) -> Vec<String> {
    let args = [name.to_string()];
    let mut ids = gears::api::find(CAPTURE, &args);
    ids.extend(gears::api::find(WRITER, &args));
    ids
}

fn register(name: &str) -> Result<(), SyncError> {
    let args = [name.to_string()];
    for f in [CAPTURE, WRITER] {
        if gears::api::find(f, &args).is_empty() {
            gears::api::register(f, &args)?;
        }
    }
    Ok(())
}

/// Adds a job and its registrations (main thread). Refused if the name is taken.
pub fn add(config: JobConfig, from_file: bool) -> Result<Arc<Job>, SyncError> {
    let name = config.name.clone();
    if config.max_backlog > 0 {
        ANY_LIMIT.store(true, Ordering::Relaxed);
    }
    let job = Arc::new(Job::new(config, from_file));
    {
        let mut jobs = JOBS.write().unwrap_or_else(|p| p.into_inner());
        if jobs.contains_key(&name) {
            return Err(SyncError::Config(format!(
                "job '{name}' exists; RGSYNC.REMOVE it first"
            )));
        }
        jobs.insert(name.clone(), job.clone());
    }
    if let Err(e) = register(&name) {
        remove(&name);
        return Err(e);
    }
    Ok(job)
}

/// Drains what job `name`'s stream already holds (the job added again after `RGSYNC.REMOVE`):
/// now, from the command that added it, not at the next write.
pub fn resume(ctx: &gears::command::Context, name: &str) {
    for id in gears::api::find(WRITER, &[name.to_string()]) {
        gears::api::resume(ctx, &id);
    }
}

/// Removes a job and its registrations (main thread); its stream and dead letters stay, so
/// adding it again resumes where it stopped. `false` if there was no such job.
pub fn remove(name: &str) -> bool {
    let job = JOBS.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    for id in registrations_of(name) {
        gears::api::unregister(&id);
    }
    match job {
        Some(job) => {
            job.stopped.store(true, Ordering::Release);
            true
        }
        None => false,
    }
}

/// Replaces every job (loading a saved state): jobs from the config file are kept unless
/// the saved state has a job of the same name.
pub fn replace_all(saved: Vec<JobConfig>) {
    let mut jobs = JOBS.write().unwrap_or_else(|p| p.into_inner());
    let old = std::mem::take(&mut *jobs);
    for config in saved {
        if config.max_backlog > 0 {
            ANY_LIMIT.store(true, Ordering::Relaxed);
        }
        jobs.insert(config.name.clone(), Arc::new(Job::new(config, false)));
    }
    for (name, job) in old {
        if job.from_file && !jobs.contains_key(&name) {
            jobs.insert(name, Arc::new(Job::new(job.config.clone(), true)));
        }
        job.stopped.store(true, Ordering::Release);
    }
}

/// What `RG.DUMPREGISTRATIONS` shows under `extra` for a job's writer registration.
pub fn writer_status(args: &[String]) -> Vec<(String, String)> {
    let Some(job) = args.first().and_then(|name| get(name)) else {
        return Vec::new();
    };
    let s = job.stats().clone();
    vec![
        ("job".into(), job.config.name.clone()),
        (
            "state".into(),
            match (s.retrying, s.failed) {
                (true, true) => "failed",
                (true, false) => "retrying",
                _ => "ok",
            }
            .into(),
        ),
        (
            "backlog".into(),
            job.pending.load(Ordering::Relaxed).to_string(),
        ),
        ("lastCommitLagMS".into(), s.last_lag_ms.to_string()),
        ("rows".into(), s.rows.to_string()),
        ("deadLetters".into(), s.dead_lettered.to_string()),
        ("retries".into(), s.retries.to_string()),
        ("lastError".into(), s.last_error.unwrap_or_default()),
    ]
}

/// Makes sure every job has its two registrations (after loading a saved state).
pub fn reconcile() {
    for job in all() {
        let _ = register(&job.config.name);
    }
}
