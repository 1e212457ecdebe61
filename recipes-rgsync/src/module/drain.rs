//! The writer: an `async_local` `StreamReader` registration on the job's stream (its own
//! consumer group `gears:rgsync_writer:<job>`; each committed batch is trimmed with `XTRIM MINID`). Each batch
//! (`BATCH` entries or what waited `DURATION` ms) is handed to [`Writer::write_batch`]: one
//! database transaction with the checkpoint, retries, dead letters. Dead letters go to
//! `{<tag>}rgsync:<job>:dlq` with the entry's id and error; acks to `{<key>}<id>`.
//!
//! A batch only fails (and stays pending, retried every second by Gears) if the job was
//! removed while it waited, or the checkpoint table cannot be read for a non-transient reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gears::context;
use gears::prelude::*;

use super::capture::{job_of, write_ack};
use super::jobs::{self, tag_of, Job};
use crate::error::SyncError;
use crate::writer::{sleep_unless, Entry, Sink, Writer};

/// Test hook (load option `rgsync.test_pause_after_commit_ms`): sleep this long after a
/// batch is committed and before it is trimmed and acknowledged, so a test can kill the
/// server there.
pub static PAUSE_AFTER_COMMIT_MS: AtomicU64 = AtomicU64::new(0);

/// The writer registration of job `ARGS <job>`.
pub fn registration(args: &[String]) -> Result<Registration, GearsError> {
    let job = job_of(args, jobs::WRITER)?;
    let c = &job.config;
    let reader = StreamReader::new(job.stream_glob())
        .batch(c.batch)
        .duration(Duration::from_millis(c.duration_ms.max(1)))
        .on_failure(FailurePolicy::Retry(Duration::from_secs(1)));
    GearsBuilder::new(reader)
        .accumulate(Vec::<StreamRecord>::new(), |batch, r| batch.push(r))
        .try_map(move |batch| write(&job, batch))
        .register(ExecutionMode::AsyncLocal)
}

struct RedisSink<'a> {
    job: &'a Job,
    dead_letters: String,
}

impl Sink for RedisSink<'_> {
    fn dead_letter(&mut self, entry: &Entry, error: &str) {
        let id = entry.id.to_string();
        let mut args: Vec<&str> = vec!["XADD", &self.dead_letters, "*", "id", &id, "error", error];
        for (f, v) in &entry.fields {
            args.push(f);
            args.push(v);
        }
        if let Err(e) = context::call(&args) {
            context::log(&format!(
                "rgsync: job '{}': cannot write a dead letter: {e}",
                self.job.config.name
            ));
        }
    }

    fn ack(&mut self, key: &str, ack: &str, result: Result<(), &str>) {
        if super::write_through::complete(key, ack, result) {
            return;
        }
        if let Err(e) = write_ack(key, ack, result) {
            context::log(&format!(
                "rgsync: job '{}': cannot write an ack: {e}",
                self.job.config.name
            ));
        }
    }
}

/// The fields of an entry as text, if every name and value is UTF-8.
fn text_fields(fields: &[(RedisBytes, RedisBytes)]) -> Option<Vec<(String, String)>> {
    fields
        .iter()
        .map(|(f, v)| Some((f.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect()
}

/// An entry with a name or value that is not UTF-8 (written to the job's stream by hand: the
/// capture writes text) cannot become a row: dead-lettered with its bytes as they are.
fn dead_letter_bytes(job: &Job, dead_letters: &str, r: &StreamRecord) {
    let id = r.id.to_string();
    let error = SyncError::NotText(format!("entry {id}")).to_string();
    let mut args: Vec<&[u8]> = vec![
        b"XADD",
        dead_letters.as_bytes(),
        b"*",
        b"id",
        id.as_bytes(),
        b"error",
        error.as_bytes(),
    ];
    for (f, v) in &r.fields {
        args.extend([f.as_bytes(), v.as_bytes()]);
    }
    match context::call_bytes(&args) {
        Ok(_) => job.stats().dead_lettered += 1,
        Err(e) => context::log(&format!(
            "rgsync: job '{}': cannot write a dead letter: {e}",
            job.config.name
        )),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn write(job: &Job, batch: Vec<StreamRecord>) -> Result<u64, SyncError> {
    let Some(first) = batch.first() else {
        return Ok(0);
    };
    let stream = first
        .key
        .as_str()
        .ok_or_else(|| SyncError::NotText(format!("stream key {:?}", first.key)))?
        .to_string();
    let tag = tag_of(&stream).unwrap_or("0").to_string();
    job.set_tag(&tag);
    let newest = batch.iter().map(|r| r.id).max();
    let mut entries = Vec::with_capacity(batch.len());
    for r in batch {
        match text_fields(&r.fields) {
            Some(fields) => entries.push(Entry { id: r.id, fields }),
            None => dead_letter_bytes(job, &job.dead_letters(&tag), &r),
        }
    }
    let mut guard = job.writer.lock().unwrap_or_else(|p| p.into_inner());
    // A writer drains one stream: its checkpoint is that stream's. A batch of another stream
    // of the job on this shard (one moved here with its slot, or one made by hand) gets a
    // writer of its own, which reads that stream's checkpoint.
    if guard.as_ref().is_some_and(|w| w.stream != stream) {
        *guard = None;
    }
    let writer = guard.get_or_insert_with(|| Writer::new(&job.config, &stream));
    let mut sink = RedisSink {
        job,
        dead_letters: job.dead_letters(&tag),
    };
    let wait = |d: Duration, error: &SyncError| {
        {
            let mut s = job.stats();
            s.retrying = true;
            s.failed = error.is_setup();
            s.retries += 1;
            s.last_error = Some(error.to_string());
            s.last_error_at_ms = now_ms();
        }
        sleep_unless(d, || job.stopped())
    };
    let result = writer.write_batch(&job.config, &entries, &mut sink, &wait);
    let pause = PAUSE_AFTER_COMMIT_MS.load(Ordering::Relaxed);
    if pause > 0 && result.is_ok() {
        std::thread::sleep(Duration::from_millis(pause));
    }
    // Committed (or dead-lettered): the entries are not needed any more, even before Gears
    // acknowledges them (a pending entry deleted meanwhile is simply acknowledged). XTRIM
    // MINID drops whole stream nodes, cheaper than deleting entry by entry. The trim and the
    // backlog's length take the Redis lock once.
    let min = match (&result, newest) {
        (Ok(_), Some(last)) => Some(
            match last.seq.checked_add(1) {
                Some(seq) => StreamId { ms: last.ms, seq },
                None => StreamId {
                    ms: last.ms.saturating_add(1),
                    seq: 0,
                },
            }
            .to_string(),
        ),
        _ => None,
    };
    let trim: Vec<&str> = match &min {
        Some(min) => vec!["XTRIM", &stream, "MINID", min],
        None => Vec::new(),
    };
    let len = ["XLEN", stream.as_str()];
    let commands: Vec<&[&str]> = if trim.is_empty() {
        vec![&len]
    } else {
        vec![&trim, &len]
    };
    let mut replies = context::call_all(&commands).into_iter();
    if !trim.is_empty() {
        if let Some(Err(e)) = replies.next() {
            context::log(&format!(
                "rgsync: job '{}': cannot trim: {e}",
                job.config.name
            ));
        }
    }
    if let Some(Ok(Value::Int(len))) = replies.next() {
        job.pending.store(len.max(0), Ordering::Relaxed);
    }
    let mut s = job.stats();
    s.retrying = false;
    s.failed = false;
    match result {
        Ok(report) => {
            s.batches += 1;
            s.rows += report.rows as u64;
            s.skipped += report.skipped as u64;
            s.dead_lettered += report.dead_lettered as u64;
            if report.last_error.is_some() {
                s.last_error = report.last_error;
                s.last_error_at_ms = now_ms();
            }
            s.last_commit_at_ms = now_ms();
            s.last_applied = newest;
            s.last_lag_ms = newest.map_or(0, |id| now_ms().saturating_sub(id.ms));
            Ok(report.rows as u64)
        }
        Err(e) => {
            s.last_error = Some(e.to_string());
            s.last_error_at_ms = now_ms();
            Err(e)
        }
    }
}
