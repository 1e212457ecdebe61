//! A live registration on this shard: its trigger, lane (FIFO executions), pause and retire
//! flags, 1.x statistics and, for a `StreamReader` registration, its consumer-group
//! bookkeeping. How events become executions is the triggers layer's job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use gears_core::bytes::RedisBytes;
use gears_core::execution::{ExecutionStatus, Outcome};
use gears_core::executor::Lane;
use gears_core::trigger::{Registration, TriggerSpec};

/// 1.x registration statistics.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) triggered: u64,
    pub(crate) success: u64,
    pub(crate) failures: u64,
    pub(crate) aborted: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) last_run_ms: f64,
    pub(crate) total_run_ms: f64,
}

impl Stats {
    pub(crate) fn record(&mut self, status: ExecutionStatus, outcome: &Outcome) {
        let ms = outcome.duration.as_secs_f64() * 1000.0;
        self.last_run_ms = ms;
        self.total_run_ms += ms;
        if status == ExecutionStatus::Aborted {
            self.aborted += 1;
        } else if let Some(first) = outcome.errors.first() {
            self.failures += 1;
            self.last_error = Some(first.clone());
        } else {
            self.success += 1;
            self.last_error = None;
        }
    }

    pub(crate) fn avg_run_ms(&self) -> f64 {
        let runs = self.success + self.failures;
        if runs == 0 {
            0.0
        } else {
            self.total_run_ms / runs as f64
        }
    }
}

/// One registration on this shard.
pub(crate) struct Registered {
    pub(crate) id: String,
    pub(crate) function: &'static str,
    pub(crate) doc: &'static str,
    pub(crate) registration: Registration,
    pub(crate) lane: Lane,
    pub(crate) paused: AtomicBool,
    /// Set when unregistered (or replaced by a reload): queued drains and timers stop.
    pub(crate) retired: AtomicBool,
    stats: Mutex<Stats>,
    /// Consumer-group bookkeeping of a `StreamReader` registration.
    pub(crate) stream: Option<StreamConsumer>,
    /// The ARGS it was registered with (`RG.REGISTER`), saved with the RDB.
    pub(crate) args: Vec<String>,
}

impl Registered {
    pub(crate) fn new(
        id: String,
        function: &'static str,
        doc: &'static str,
        registration: Registration,
        lane: Lane,
        group: String,
        args: Vec<String>,
    ) -> Self {
        let stream = matches!(registration.trigger, TriggerSpec::Stream { .. })
            .then(|| StreamConsumer::new(group));
        Self {
            stream,
            args,
            id,
            function,
            doc,
            registration,
            lane,
            paused: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            stats: Mutex::new(Stats::default()),
        }
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn note_triggered(&self) {
        self.stats().triggered += 1;
    }

    pub(crate) fn record(&self, status: ExecutionStatus, outcome: &Outcome) {
        self.stats().record(status, outcome);
    }
}

pub(crate) const STATUS_OK: u8 = 0;
pub(crate) const STATUS_RETRYING: u8 = 1;
pub(crate) const STATUS_ABORTED: u8 = 2;

#[derive(Default)]
pub(crate) struct KeyState {
    pub(crate) waiting: usize,
    pub(crate) scheduled: bool,
    pub(crate) timer: bool,
}

/// Per-registration stream bookkeeping.
pub(crate) struct StreamConsumer {
    pub(crate) group: String,
    /// By stream key, as bytes.
    keys: Mutex<HashMap<RedisBytes, KeyState>>,
    pub(crate) status: AtomicU8,
}

impl StreamConsumer {
    pub(crate) fn new(group: String) -> Self {
        Self {
            group,
            keys: Mutex::new(HashMap::new()),
            status: AtomicU8::new(STATUS_OK),
        }
    }

    pub(crate) fn status_name(&self) -> &'static str {
        match self.status.load(Ordering::Acquire) {
            STATUS_RETRYING => "WAITING_FOR_RETRY_ON_FAILURE",
            STATUS_ABORTED => "ABORTED",
            _ => "OK",
        }
    }

    pub(crate) fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<RedisBytes, KeyState>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}
