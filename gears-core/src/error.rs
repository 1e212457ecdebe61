//! Errors. Engine failures are [`GearsError`]; failures of user code inside a step are
//! [`StepError`] *data* collected in an execution's error list (as in RedisGears 1.x).

use std::any::Any;
use std::fmt;

/// An engine-level failure: the execution (or the request) could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GearsError {
    /// Records or a shard message could not be decoded.
    #[error("codec error: {0}")]
    Codec(String),
    /// The host (Redis, or the in-memory host) refused an operation.
    #[error("{0}")]
    Host(#[from] HostError),
    /// The execution was aborted.
    #[error("execution aborted")]
    Aborted,
    /// A reader was asked for something it cannot do (for example run an event-only reader).
    #[error("reader `{reader}`: {message}")]
    Reader {
        /// The reader's name.
        reader: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Bad input from a caller (an argument, an option, an id).
    #[error("{0}")]
    Invalid(String),
    /// A distributed execution failed on a shard or lost one (a stage error there, a peer
    /// that did not answer or restarted, a message that could not be delivered).
    #[error("{0}")]
    Distributed(String),
    /// A plan was fed input of the wrong type: a bug in the engine, never in user code.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An error reported by a [`Host`](crate::host::Host) implementation, e.g. a Redis error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    /// The message, as Redis would word it (e.g. `WRONGTYPE Operation against a key ...`).
    pub message: String,
}

impl HostError {
    /// Creates a host error from any message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// One failure of user code in a step: the record was dropped and the execution went on.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct StepError {
    /// The step kind that failed (`map`, `filter`, `group_by`, ...).
    pub step: String,
    /// The error's message, or the panic's message.
    pub message: String,
}

impl StepError {
    /// A step returned an error.
    pub fn new(step: &str, message: impl Into<String>) -> Self {
        Self {
            step: step.to_string(),
            message: message.into(),
        }
    }

    /// A step panicked; the payload's message is kept when it is a string.
    pub fn panicked(step: &str, payload: Box<dyn Any + Send>) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        Self::new(step, format!("panicked: {text}"))
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}
