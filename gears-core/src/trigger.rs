//! Triggers: what fires a registration (a flow run on events instead of once, RedisGears 1.x
//! `register()`), how its executions run, and the registration itself. Made by
//! [`GearsBuilder::register`](crate::GearsBuilder::register).

use std::sync::Arc;

use crate::host::KeyType;
use crate::plan::ErasedPlan;

/// Where and when a registration's executions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionMode {
    /// Inside the triggering command, atomic with it, done before its reply.
    Sync,
    /// On this shard, on a background worker, FIFO per registration (the default).
    #[default]
    AsyncLocal,
    /// Cluster-wide per event; on a standalone server the same as `AsyncLocal`.
    Async,
}

impl ExecutionMode {
    /// The 1.x name (`sync`, `async_local`, `async`).
    pub fn name(self) -> &'static str {
        match self {
            ExecutionMode::Sync => "sync",
            ExecutionMode::AsyncLocal => "async_local",
            ExecutionMode::Async => "async",
        }
    }
}

/// What a stream registration does when an execution reports errors (1.x `onFailedPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Acknowledge the batch anyway and go on (the errors are counted and listed).
    #[default]
    Continue,
    /// Stop the registration (status `ABORTED`); the batch stays pending.
    Abort,
    /// Leave the batch pending and run it again after the interval.
    Retry(std::time::Duration),
}

impl FailurePolicy {
    /// The 1.x name.
    pub fn name(self) -> &'static str {
        match self {
            FailurePolicy::Continue => "continue",
            FailurePolicy::Abort => "abort",
            FailurePolicy::Retry(_) => "retry",
        }
    }
}

/// What fires a registration, as declared by its reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerSpec {
    /// Keyspace events on keys matching a glob (`KeysReader`).
    Keys {
        /// Glob pattern (or exact key when `exact`).
        pattern: String,
        /// The pattern is one exact key name.
        exact: bool,
        /// Only these events (lower case), if set.
        event_types: Option<Vec<String>>,
        /// Only keys of these types, if set.
        key_types: Option<Vec<KeyType>>,
        /// Read the value when the event happens, not when the execution runs.
        snapshot: bool,
    },
    /// New entries of streams matching a glob (`StreamReader`), read through this
    /// registration's own consumer group.
    Stream {
        /// Glob of stream keys.
        pattern: String,
        /// Entries per execution; an execution starts once this many are waiting.
        batch: usize,
        /// Start an execution for fewer entries after this many milliseconds (0: never wait).
        duration_ms: u64,
        /// What to do when an execution reports errors.
        on_failure: FailurePolicy,
        /// Delete processed entries when no other consumer group reads the stream.
        trim: bool,
    },
    /// `RG.TRIGGER <name> ...` (`CommandReader`).
    Command {
        /// The trigger name.
        trigger: String,
        /// Executions start and finish in arrival order.
        in_order: bool,
    },
}

impl TriggerSpec {
    /// Whether a keyspace event fires this trigger.
    pub fn accepts_key_event(&self, key: &[u8], event: &str, key_type: KeyType) -> bool {
        match self {
            TriggerSpec::Keys {
                pattern,
                exact,
                event_types,
                key_types,
                ..
            } => {
                let key_ok = if *exact {
                    key == pattern.as_bytes()
                } else {
                    crate::glob::glob_match(pattern, key)
                };
                key_ok
                    && event_types
                        .as_ref()
                        .is_none_or(|ev| ev.iter().any(|e| e.eq_ignore_ascii_case(event)))
                    && key_types.as_ref().is_none_or(|kt| kt.contains(&key_type))
            }
            TriggerSpec::Stream { .. } | TriggerSpec::Command { .. } => false,
        }
    }

    /// Whether new entries of stream `key` fire this trigger.
    pub fn accepts_stream(&self, key: &[u8]) -> bool {
        matches!(self, TriggerSpec::Stream { pattern, .. } if crate::glob::glob_match(pattern, key))
    }

    /// The reader's 1.x name.
    pub fn reader_name(&self) -> &'static str {
        match self {
            TriggerSpec::Keys { .. } => "KeysReader",
            TriggerSpec::Stream { .. } => "StreamReader",
            TriggerSpec::Command { .. } => "CommandReader",
        }
    }
}

/// A flow to run on events: its plan, trigger and mode.
#[derive(Clone)]
pub struct Registration {
    /// The flow.
    pub plan: Arc<dyn ErasedPlan>,
    /// What fires it.
    pub trigger: TriggerSpec,
    /// How its executions run.
    pub mode: ExecutionMode,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("trigger", &self.trigger)
            .field("mode", &self.mode)
            .finish()
    }
}
