//! [`WriteBehind`]: the Rust API for module authors. Build a job in code and add it when the
//! module loads (or from a command of your own); the module crate also needs
//! [`registrations!`](crate::registrations) once, and the rgsync commands if it wants them.
//!
//! ```
//! use std::time::Duration;
//! use recipes_rgsync::WriteBehind;
//! use recipes_rgsync::types::ColumnType;
//! let job = WriteBehind::new("users", "Driver={SQLite3};Database=/tmp/app.db")
//!     .keys_prefix("user")                       // user:<id>, like rgsync's keysPrefix
//!     .table("users")
//!     .mappings([("name", "name"), ("city", "town")])
//!     .column("age", "age", ColumnType::Integer)
//!     .batch(100)
//!     .duration(Duration::from_millis(100))
//!     .create_table(true)
//!     .build()
//!     .unwrap();
//! assert_eq!(job.key.as_str(), "user:{id}");
//! assert_eq!(job.columns_spec(), "name=name:text city=town:text age=age:integer");
//! // In a module: `.register()` adds the job and its two registrations on this server.
//! ```

use std::time::Duration;

use crate::columns::Column;
use crate::config::JobConfig;
use crate::dialect::Dialect;
use crate::error::SyncError;
use crate::keys::KeyPattern;
use crate::types::ColumnType;

/// A write-behind job under construction.
#[derive(Debug, Clone)]
#[must_use = "call build() or register()"]
pub struct WriteBehind {
    name: String,
    connection: String,
    key: String,
    table: Option<String>,
    columns: Vec<Column>,
    dialect: Option<Dialect>,
    batch: usize,
    duration_ms: u64,
    coalesce: bool,
    exactly_once: bool,
    max_attempts: u32,
    backoff: (u64, u64),
    events: Vec<String>,
    create_table: bool,
    max_backlog: u64,
}

impl WriteBehind {
    /// A job named `name` writing through the ODBC `connection` string.
    pub fn new(name: &str, connection: &str) -> Self {
        Self {
            name: name.into(),
            connection: connection.into(),
            key: String::new(),
            table: None,
            columns: Vec::new(),
            dialect: None,
            batch: 100,
            duration_ms: 100,
            coalesce: false,
            exactly_once: true,
            max_attempts: 5,
            backoff: (100, 30_000),
            events: Vec::new(),
            create_table: false,
            max_backlog: 0,
        }
    }

    /// Keys `<prefix>:<id>` with a text primary key `id` (rgsync's `keysPrefix`).
    pub fn keys_prefix(mut self, prefix: &str) -> Self {
        self.key = format!("{prefix}:{{id}}");
        self
    }

    /// A full key pattern, e.g. `order:{region}:{id:integer}` (composite keys).
    pub fn keys(mut self, pattern: &str) -> Self {
        self.key = pattern.into();
        self
    }

    /// The target table (default: the job's name).
    pub fn table(mut self, table: &str) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Text columns from `(hash field, column)` pairs (rgsync's `mappings`).
    pub fn mappings<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (field, column) in pairs {
            self = self.column(field, column, ColumnType::Text);
        }
        self
    }

    /// One typed column.
    pub fn column(mut self, field: &str, column: &str, ty: ColumnType) -> Self {
        self.columns.push(Column {
            field: field.into(),
            column: column.into(),
            ty,
        });
        self
    }

    /// The SQL dialect (default: from the driver name).
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = Some(dialect);
        self
    }

    /// Changes per transaction.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Flush a smaller batch after this long.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration_ms = d.as_millis() as u64;
        self
    }

    /// Keep only the last change per key in a batch.
    pub fn coalesce(mut self, yes: bool) -> Self {
        self.coalesce = yes;
        self
    }

    /// The per-shard checkpoint in each transaction (default on); off: at-least-once.
    pub fn exactly_once(mut self, yes: bool) -> Self {
        self.exactly_once = yes;
        self
    }

    /// Attempts before a failing record is dead-lettered.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// First retry delay and its cap.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first.as_millis() as u64, max.as_millis() as u64);
        self
    }

    /// Also capture `hdel` and/or `expired`.
    pub fn events<'a>(mut self, events: impl IntoIterator<Item = &'a str>) -> Self {
        self.events = events.into_iter().map(str::to_string).collect();
        self
    }

    /// Create the table if it is missing.
    pub fn create_table(mut self, yes: bool) -> Self {
        self.create_table = yes;
        self
    }

    /// Refuse hash writes on the job's keys while this many changes wait (0: no limit).
    pub fn max_backlog(mut self, n: u64) -> Self {
        self.max_backlog = n;
        self
    }

    /// Checks everything and returns the job's configuration.
    pub fn build(self) -> Result<JobConfig, SyncError> {
        if self.key.is_empty() {
            return Err(SyncError::Config(
                "keys_prefix() or keys() is required".into(),
            ));
        }
        let table = self.table.unwrap_or_else(|| self.name.clone());
        let spec = self
            .columns
            .iter()
            .map(|c| format!("{}={}:{}", c.field, c.column, c.ty.name()))
            .collect::<Vec<_>>()
            .join(" ");
        // One validation path: the same as RGSYNC.ADD.
        let mut job = JobConfig::new(
            &self.name,
            KeyPattern::parse(&self.key)?,
            &table,
            crate::columns::parse_columns(&spec)?,
            &self.connection,
        )?;
        if let Some(d) = self.dialect {
            job.dialect = d;
        }
        job.batch = self.batch;
        job.duration_ms = self.duration_ms;
        job.coalesce = self.coalesce;
        job.exactly_once = self.exactly_once;
        job.max_attempts = self.max_attempts;
        job.backoff_ms = self.backoff.0.max(1);
        job.max_backoff_ms = self.backoff.1.max(1);
        for e in &self.events {
            if !matches!(e.as_str(), "hdel" | "expired") {
                return Err(SyncError::Config(format!("event '{e}': hdel or expired")));
            }
        }
        job.events = self.events;
        job.create_table = self.create_table;
        job.max_backlog = self.max_backlog;
        Ok(job)
    }

    /// Builds the job and adds it on this server with its two registrations (call from the
    /// Redis main thread: module init, a command). Not replicated: call it on every server
    /// (it is what loading a module does).
    pub fn register(self) -> Result<(), SyncError> {
        crate::module::jobs::add(self.build()?, true).map(|_| ())
    }
}

/// Defines the two registration functions every module running rgsync jobs needs
/// (`rgsync_capture`, `rgsync_writer`). Use it once at the root of the module crate.
#[macro_export]
macro_rules! registrations {
    () => {
        /// The capture of a write-behind job (`sync`): `ARGS <job>`.
        #[gears::register]
        pub fn rgsync_capture(
            args: &[String],
        ) -> Result<gears::trigger::Registration, gears::error::GearsError> {
            $crate::module::capture::registration(args)
        }

        /// The writer of a write-behind job (`async_local` stream consumer): `ARGS <job>`.
        #[gears::register]
        pub fn rgsync_writer(
            args: &[String],
        ) -> Result<gears::trigger::Registration, gears::error::GearsError> {
            $crate::module::drain::registration(args)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates_like_the_command() {
        assert!(WriteBehind::new("j", "c").build().is_err());
        // A field of any name maps to a column that is a safe identifier; a column that is
        // not one is refused.
        assert!(WriteBehind::new("j", "c")
            .keys("u:{id}")
            .mappings([("a\"", "b")])
            .build()
            .is_ok());
        assert!(WriteBehind::new("j", "c")
            .keys("u:{id}")
            .mappings([("a", "b\"")])
            .build()
            .is_err());
        assert!(WriteBehind::new("j", "c")
            .keys_prefix("u")
            .events(["rename"])
            .build()
            .is_err());
        let j = WriteBehind::new("j", "Driver={PostgreSQL Unicode}")
            .keys("o:{r}:{id:integer}")
            .coalesce(true)
            .exactly_once(false)
            .max_backlog(10)
            .build()
            .unwrap();
        assert_eq!(j.table, "j");
        assert_eq!(j.dialect, Dialect::Postgres);
        assert!(j.coalesce && !j.exactly_once);
        assert_eq!(j.max_backlog, 10);
    }
}
