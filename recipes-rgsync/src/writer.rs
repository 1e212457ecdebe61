//! The writer's batch logic, without Redis: what happens to one batch of stream entries.
//!
//! 1. Connect and read the checkpoint (exactly-once): entries at or below it were committed
//!    before a crash and are skipped (their acks are sent again).
//! 2. Decode and convert every entry; an entry that cannot be converted (bad key, bad type,
//!    malformed) goes straight to the dead-letter sink with its error.
//! 3. Apply the rest in **one transaction** together with the new checkpoint (the batch's
//!    last id).
//! 4. Transient failures (database down) are retried with exponential backoff, as long as it
//!    takes, while the stream keeps the backlog; other failures count as attempts, and so
//!    does a write that loses its open connection `max_attempts` times in a row while the
//!    database keeps accepting new ones (what is written kills the connection). After
//!    `max_attempts` the batch is applied record by record, each record with its checkpoint in
//!    its own transaction; a record that still fails `max_attempts` times goes to the
//!    dead-letter sink, and the rest flow.
//! 5. A refused configuration (driver missing, credentials wrong, database or table unknown)
//!    is neither an outage nor a record's fault: the batch waits, checked again every
//!    `MAX_BACKOFF`, until the job is fixed; nothing is dead-lettered.
//! 6. A lost connection leaves the outcome of a write unknown (its `COMMIT` may have been
//!    applied, the reply lost): before writing again, the checkpoint is read from the
//!    database, and a write it covers is not applied a second time.
//!
//! Without exactly-once there is no checkpoint: a crash between commit and acknowledgement
//! replays the batch (at-least-once; upserts and deletes are idempotent per key).

use std::time::{Duration, Instant};

use gears::host::StreamId;

use crate::change::Change;
use crate::config::JobConfig;
use crate::connector::OdbcConnector;
use crate::error::SyncError;
use crate::plan::{group, to_row, Row, Statement};

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub id: StreamId,
    /// Its fields.
    pub fields: Vec<(String, String)>,
}

/// Where the writer reports per-record outcomes (Redis streams in the module).
pub trait Sink {
    /// A record that cannot be written: keep it with its error.
    fn dead_letter(&mut self, entry: &Entry, error: &str);
    /// The change with ack id `ack` on `key` is in the database (`Ok`) or was dead-lettered.
    fn ack(&mut self, key: &str, ack: &str, result: Result<(), &str>);
}

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Rows sent to the database.
    pub rows: usize,
    /// Entries skipped because the checkpoint covered them.
    pub skipped: usize,
    /// Entries sent to the dead-letter sink.
    pub dead_lettered: usize,
    /// Failed attempts (transient or not) before it went through.
    pub retries: usize,
    /// The last error seen while retrying.
    pub last_error: Option<String>,
}

/// A writer: one job, one stream (one shard), one connection.
#[derive(Debug)]
pub struct Writer {
    /// The stream it drains (part of the checkpoint's key).
    pub stream: String,
    db: OdbcConnector,
    checkpoint: Option<StreamId>,
    checkpoint_loaded: bool,
}

/// Waits `Duration` before retrying after the error given; returns `false` to give up (the
/// job was removed).
pub type Wait<'a> = &'a dyn Fn(Duration, &SyncError) -> bool;

fn backoff(job: &JobConfig, attempt: u32) -> Duration {
    let ms = job
        .backoff_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(job.max_backoff_ms);
    Duration::from_millis(ms)
}

impl Writer {
    /// A writer of `job` draining `stream`.
    pub fn new(job: &JobConfig, stream: &str) -> Self {
        Self {
            stream: stream.to_string(),
            db: OdbcConnector::new(job),
            checkpoint: None,
            checkpoint_loaded: false,
        }
    }

    /// The last id known to be applied.
    pub fn checkpoint(&self) -> Option<StreamId> {
        self.checkpoint
    }

    /// Retries `f` while it fails transiently (backoff growing); returns its first
    /// non-transient result. `Err(Stopped)` if `wait` gives up.
    fn until_reachable<R>(
        &mut self,
        job: &JobConfig,
        report: &mut BatchReport,
        wait: Wait<'_>,
        mut f: impl FnMut(&mut Self) -> Result<R, SyncError>,
    ) -> Result<R, SyncError> {
        let mut attempt = 0;
        // Open connections lost in a row: a database that accepts the connection again and
        // again and drops it during this same work is not down; what is written kills it.
        let mut lost = 0u32;
        loop {
            match f(self) {
                // The job's configuration is refused: nothing is dead-lettered, no attempt
                // counted; the batch waits, checked again every MAX_BACKOFF, until it is fixed.
                Err(e) if e.is_setup() => {
                    report.retries += 1;
                    let msg = e.to_string();
                    report.last_error = Some(msg.clone());
                    if !wait(Duration::from_millis(job.max_backoff_ms), &e) {
                        return Err(SyncError::Stopped(job.name.clone()));
                    }
                    self.checkpoint_loaded = false;
                }
                Err(e) if e.is_transient() => {
                    report.retries += 1;
                    let msg = e.to_string();
                    lost = if self.db.lost_open_connection() {
                        lost + 1
                    } else {
                        0
                    };
                    if lost >= job.max_attempts.max(2) {
                        report.last_error = Some(msg.clone());
                        let cause = match &e {
                            SyncError::Db { message, .. } => message.clone(),
                            other => other.to_string(),
                        };
                        return Err(SyncError::Db {
                            message: format!(
                                "{cause} (the connection was lost {lost} times in a row during \
                                 this write while the database accepted new ones: counted as \
                                 a failure of what is written)"
                            ),
                            transient: false,
                        });
                    }
                    if !wait(backoff(job, attempt), &e) {
                        report.last_error = Some(msg);
                        return Err(SyncError::Stopped(job.name.clone()));
                    }
                    report.last_error = Some(msg);
                    attempt += 1;
                    self.checkpoint_loaded = false; // re-read after reconnecting
                }
                other => return other,
            }
        }
    }

    fn load_checkpoint(&mut self, job: &JobConfig) -> Result<(), SyncError> {
        if job.exactly_once && !self.checkpoint_loaded {
            let stream = self.stream.clone();
            self.checkpoint = self.db.read_checkpoint(job, &stream)?;
            self.checkpoint_loaded = true;
        } else if !job.exactly_once {
            self.db.prepare(job)?;
        }
        Ok(())
    }

    /// Writes one batch (see the module docs). `Err` only when `wait` gave up (the job was
    /// removed): the batch then stays pending.
    pub fn write_batch(
        &mut self,
        job: &JobConfig,
        entries: &[Entry],
        sink: &mut dyn Sink,
        wait: Wait<'_>,
    ) -> Result<BatchReport, SyncError> {
        let mut report = BatchReport::default();
        let Some(last) = entries.iter().map(|e| e.id).max() else {
            return Ok(report);
        };
        self.until_reachable(job, &mut report, wait, |w| w.load_checkpoint(job))?;
        let applied = if job.exactly_once {
            self.checkpoint
        } else {
            None
        };
        // Decode and convert; skip what the checkpoint covers.
        let mut rows: Vec<(usize, Row, Option<String>)> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let change = match Change::from_fields(&e.fields) {
                Ok(c) => c,
                Err(err) => {
                    if applied.is_none_or(|a| e.id > a) {
                        sink.dead_letter(e, &err.to_string());
                        report.dead_lettered += 1;
                    } else {
                        report.skipped += 1;
                    }
                    continue;
                }
            };
            if applied.is_some_and(|a| e.id <= a) {
                report.skipped += 1;
                if let Some(a) = &change.ack {
                    sink.ack(&change.key, a, Ok(()));
                }
                continue;
            }
            match to_row(job, &change) {
                Ok(row) => rows.push((i, row, change.ack)),
                Err(err) => {
                    let msg = err.to_string();
                    sink.dead_letter(e, &msg);
                    if let Some(a) = &change.ack {
                        sink.ack(&change.key, a, Err(&msg));
                    }
                    report.dead_lettered += 1;
                }
            }
        }
        let checkpoint = job.exactly_once.then_some(last);
        if applied.is_some_and(|a| last <= a) {
            return Ok(report); // all of it was applied before
        }
        // The whole batch in one transaction, with retries.
        let statements = group(
            rows.iter().map(|(_, r, _)| r.clone()).collect(),
            job.coalesce,
        );
        if let Ok(n) = self.write_with_retries(job, &mut report, wait, &statements, checkpoint)? {
            report.rows = n;
            if checkpoint.is_some() {
                self.checkpoint = checkpoint;
            }
            for (_, row, ack) in &rows {
                if let Some(a) = ack {
                    sink.ack(&row.key, a, Ok(()));
                }
            }
            return Ok(report);
        }
        // Isolate: record by record, each with its checkpoint.
        for (i, row, ack) in &rows {
            let entry = &entries[*i];
            let one = group(vec![row.clone()], false);
            let id = job.exactly_once.then_some(entry.id);
            match self.write_with_retries(job, &mut report, wait, &one, id)? {
                Ok(n) => {
                    report.rows += n;
                    if let Some(a) = ack {
                        sink.ack(&row.key, a, Ok(()));
                    }
                }
                Err(msg) => {
                    sink.dead_letter(entry, &msg);
                    if let Some(a) = ack {
                        sink.ack(&row.key, a, Err(&msg));
                    }
                    report.dead_lettered += 1;
                }
            }
        }
        // The checkpoint covers the whole batch, dead letters included.
        if let Some(cp) = checkpoint {
            let stream = self.stream.clone();
            self.until_reachable(job, &mut report, wait, |w| {
                w.write_resolved(job, &stream, &[], Some(cp))
            })?;
            self.checkpoint = Some(cp);
        }
        Ok(report)
    }

    /// Writes `statements` with `checkpoint` in one transaction. After a lost connection the
    /// outcome of the previous attempt is unknown (its `COMMIT` may have reached the database
    /// before the connection went): the checkpoint is read again first, and if it already
    /// covers `checkpoint` that attempt was committed and nothing is written again (a change
    /// made in the database since then stays). Without a checkpoint (not exactly-once) the
    /// statements are simply written.
    fn write_resolved(
        &mut self,
        job: &JobConfig,
        stream: &str,
        statements: &[Statement],
        checkpoint: Option<StreamId>,
    ) -> Result<usize, SyncError> {
        if let Some(target) = checkpoint {
            // Read again only after a lost connection (`checkpoint_loaded` cleared).
            self.load_checkpoint(job)?;
            if self.checkpoint.is_some_and(|applied| applied >= target) {
                return Ok(statements.iter().map(|s| s.rows.len()).sum());
            }
        }
        self.db.write(job, stream, statements, checkpoint)
    }

    /// Writes `statements` (and `checkpoint`) in one transaction, retried: `Ok(Ok(rows))` once
    /// it succeeds, `Ok(Err(last error))` after `max_attempts` failures (each counted in
    /// `report`, with backoff between them), `Err` when `wait` gave up.
    fn write_with_retries(
        &mut self,
        job: &JobConfig,
        report: &mut BatchReport,
        wait: Wait<'_>,
        statements: &[Statement],
        checkpoint: Option<StreamId>,
    ) -> Result<Result<usize, String>, SyncError> {
        let stream = self.stream.clone();
        let mut failures = 0u32;
        loop {
            let result = self.until_reachable(job, report, wait, |w| {
                w.write_resolved(job, &stream, statements, checkpoint)
            });
            match result {
                Ok(n) => return Ok(Ok(n)),
                Err(SyncError::Stopped(j)) => return Err(SyncError::Stopped(j)),
                Err(e) => {
                    failures += 1;
                    report.retries += 1;
                    let msg = e.to_string();
                    report.last_error = Some(msg.clone());
                    if failures >= job.max_attempts {
                        return Ok(Err(msg));
                    }
                    if !wait(backoff(job, failures - 1), &e) {
                        return Err(SyncError::Stopped(job.name.clone()));
                    }
                }
            }
        }
    }
}

/// Sleeps `d` in slices of at most 50 ms; `false` as soon as `stop()` turns true.
pub fn sleep_unless(d: Duration, stop: impl Fn() -> bool) -> bool {
    {
        let end = Instant::now() + d;
        loop {
            if stop() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let args = "j KEY u:{id} TABLE t CONNECTION Driver={SQLite3}".split(' ');
        let mut job = JobConfig::parse_args(&args.map(String::from).collect::<Vec<_>>()).unwrap();
        job.backoff_ms = 100;
        job.max_backoff_ms = 1000;
        let ms: Vec<u128> = (0..6).map(|a| backoff(&job, a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&job, 200).as_millis(), 1000);
    }
}
