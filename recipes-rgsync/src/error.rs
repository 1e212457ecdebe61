//! [`SyncError`]: everything that can go wrong in the recipe, as values. Turned into `ERR …`
//! replies once, at the command boundary; the `Display` text reads well after "ERR ".

/// An rgsync error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A job definition (command arguments, config file) is invalid.
    #[error("invalid job: {0}")]
    Config(String),
    /// A Redis key does not match the job's key pattern (no primary key can be extracted).
    #[error("key '{key}' does not match the key pattern '{pattern}'")]
    Key {
        /// The key.
        key: String,
        /// The job's pattern.
        pattern: String,
    },
    /// A value cannot be converted to its column's type.
    #[error("column '{column}': cannot convert '{value}' to {ty}")]
    Convert {
        /// The column.
        column: String,
        /// The offending value (truncated).
        value: String,
        /// The type name.
        ty: &'static str,
    },
    /// A value the target cannot store byte for byte (a NUL byte in PostgreSQL text): the
    /// change goes to the dead letters instead of being written altered.
    #[error("column '{column}': {why}")]
    Unstorable {
        /// The column (a primary-key column or a mapped one).
        column: String,
        /// Why, naming the database.
        why: String,
    },
    /// A stream entry is not a change written by the capture.
    #[error("malformed change entry: {0}")]
    Entry(String),
    /// The database refused or failed; `transient` errors (connection lost, timeouts,
    /// deadlocks) are retried with backoff, the others count as a record's failed attempt.
    #[error("database: {message}")]
    Db {
        /// The driver's message (never the connection string).
        message: String,
        /// Whether retrying the same statement may succeed.
        transient: bool,
    },
    /// The database refuses the job itself: its driver is missing, the credentials are wrong,
    /// the database or the table does not exist. Not an outage, nor a record's fault: the job
    /// shows `failed`, keeps its backlog and retries every `MAX_BACKOFF` until it is fixed.
    #[error("the job's configuration is refused: {0}")]
    Setup(String),
    /// A key name or a value is not UTF-8, so it cannot become a row's text: the change goes
    /// to the dead letters with its bytes, never altered.
    #[error("{0} is not UTF-8 text")]
    NotText(String),
    /// A Redis call failed.
    #[error("redis: {0}")]
    Redis(String),
    /// The job does not exist.
    #[error("no such job '{0}'")]
    NoJob(String),
    /// The job was removed while a batch waited.
    #[error("job '{0}' was removed")]
    Stopped(String),
}

impl SyncError {
    /// Whether the database refuses the job's configuration ([`SyncError::Setup`]).
    pub fn is_setup(&self) -> bool {
        matches!(self, SyncError::Setup(_))
    }

    /// Whether retrying later may succeed (the database is down or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncError::Db {
                transient: true,
                ..
            }
        )
    }
}

impl From<gears::error::GearsError> for SyncError {
    fn from(e: gears::error::GearsError) -> Self {
        SyncError::Redis(e.to_string())
    }
}
