//! The ODBC connector: one connection per writer (per job and shard), opened lazily and
//! dropped when it fails, autocommit off; one transaction per batch holding the multi-row
//! statements **and** the checkpoint row; values always bound as typed parameters, through
//! prepared statements kept per connection (with `SQLExecDirect` MariaDB's driver splices the
//! values into the text client-side, three times slower).
//!
//! Errors are classified: a lost or refused connection, a timeout, a deadlock or a busy
//! database is `transient` (retry with backoff, nothing counted against the records); anything
//! else is a statement failure that counts as an attempt.
//!
//! ```no_run
//! use recipes_rgsync::{config::JobConfig, connector::OdbcConnector};
//! let job = JobConfig::parse_args(&["j", "KEY", "u:{id}", "TABLE", "t", "COLUMNS", "name",
//!     "CONNECTION", "Driver={SQLite3};Database=/tmp/x.db", "CREATE_TABLE", "yes"].map(String::from))?;
//! let mut db = OdbcConnector::new(&job);
//! db.prepare(&job)?;                            // creates `t` and the checkpoint table
//! assert_eq!(db.read_checkpoint(&job, "{0}rgsync:j")?, None);
//! # Ok::<(), recipes_rgsync::SyncError>(())
//! ```

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

use gears::host::StreamId;
use odbc_api::{
    handles::StatementConnection, parameter::InputParameter, Connection, ConnectionOptions,
    ConnectionTransitions, Cursor, IntoParameter, Nullable, Prepared, SharedConnection,
};

type Statement_ = Prepared<StatementConnection<SharedConnection<'static>>>;

/// An open connection and its prepared statements (by SQL text). The connection is shared
/// (`Arc<Mutex<_>>`: the statements own it too), which makes the whole `Send`; the mutex is
/// never contended (a connector is used by one thread at a time, its job's writer).
struct Open {
    conn: SharedConnection<'static>,
    prepared: HashMap<String, Statement_>,
}

/// The connection of `conn`, even after a panic while it was held (the connection's state is
/// the driver's, not the mutex's; odbc-api's own locks expect no poison, so it is cleared).
fn lock<'a>(conn: &'a SharedConnection<'static>) -> MutexGuard<'a, Connection<'static>> {
    conn.lock().unwrap_or_else(|poisoned| {
        conn.clear_poison();
        poisoned.into_inner()
    })
}

/// Prepared statements kept per connection (full chunks and their remainders).
const MAX_PREPARED: usize = 64;

use crate::change::Op;
use crate::config::JobConfig;
use crate::dialect::{Col, Dialect};
use crate::error::SyncError;
use crate::plan::{Row, Statement};
use crate::types::{ColumnType, SqlValue};

/// A database connection for one writer.
pub struct OdbcConnector {
    connection: String,
    login_timeout_s: u32,
    dialect: Dialect,
    conn: Option<Open>,
    prepared: bool,
    /// Whether the last failure lost a connection that had been open (the database was
    /// reachable), as opposed to failing to connect or failing on a live connection.
    lost_open_connection: bool,
}

impl std::fmt::Debug for OdbcConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdbcConnector")
            .field("dialect", &self.dialect)
            .field("connected", &self.conn.is_some())
            .finish() // never the connection string
    }
}

/// A typed parameter for `value` in a column of type `ty` (NULLs keep the column's type).
fn param(value: &SqlValue, ty: ColumnType) -> Box<dyn InputParameter> {
    match (value, ty) {
        (SqlValue::Int(i), _) => Box::new(*i),
        (SqlValue::Float(f), _) => Box::new(*f),
        (SqlValue::Text(s), _) => Box::new(s.clone().into_parameter()),
        (SqlValue::Null, ColumnType::Integer) => Box::new(Nullable::<i64>::null()),
        (SqlValue::Null, ColumnType::Float) => Box::new(Nullable::<f64>::null()),
        (SqlValue::Null, _) => Box::new(None::<String>.into_parameter()),
    }
}

fn text(s: &str) -> Box<dyn InputParameter> {
    Box::new(s.to_string().into_parameter())
}

fn is_transient_state(state: &str, native: i32, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    state.starts_with("08")
        // ... and PostgreSQL's lock_timeout (55P03): a lock held by a hung transaction
        || matches!(
            state,
            "HYT00" | "HYT01" | "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
        )
        // MariaDB client errors: server gone away, lost connection, can't connect; lock wait
        || matches!(native, 1205 | 1213 | 2002 | 2003 | 2006 | 2013 | 2055)
        || m.contains("database is locked")
        || m.contains("server has gone away")
        || m.contains("lost connection")
        || m.contains("could not connect")
        || m.contains("connection refused")
        || m.contains("terminating connection")
        || m.contains("no connection to the server")
}

/// Errors that say the job's configuration is wrong, not that the database is down or a
/// record is bad: a driver or DSN that cannot be found or loaded, credentials refused, an
/// unknown database or table.
fn is_setup_state(state: &str, native: i32, message: &str) -> bool {
    matches!(state, "IM002" | "IM003" | "28000" | "28P01" | "3D000" | "42S02" | "42P01")
        // MariaDB: access denied, unknown database, table does not exist
        || matches!(native, 1044 | 1045 | 1049 | 1146)
        || message.to_ascii_lowercase().contains("no such table")
}

/// Errors caused by what is being written, whatever state and connection loss come with
/// them: MariaDB/MySQL's packet bigger than `max_allowed_packet` (1153, sent as `08S01` with
/// the connection closed).
fn is_record_failure(native: i32) -> bool {
    native == 1153
}

/// The connection string with the job's query timeout for drivers that take it in the string:
/// MariaDB/MySQL's `READ_TIMEOUT`/`WRITE_TIMEOUT` (a frozen server then costs a lost connection
/// after that long, retried, instead of a writer waiting forever). An explicit value wins.
fn with_timeouts(conn: &str, job: &JobConfig) -> String {
    let Ok(attributes) = crate::validate::attributes(conn) else {
        return conn.to_string(); // refused at RGSYNC.ADD; a config-file job fails to connect
    };
    let given = |key: &str| attributes.iter().any(|(k, _)| k == key);
    if job.dialect != Dialect::MySql || !given("DRIVER") {
        return conn.to_string();
    }
    let mut out = conn.trim_end().to_string();
    for key in ["READ_TIMEOUT", "WRITE_TIMEOUT"] {
        if !given(key) {
            if !out.ends_with(';') {
                out.push(';');
            }
            out.push_str(&format!("{key}={};", job.query_timeout_s));
        }
    }
    out
}

impl OdbcConnector {
    /// A connector for `job` (does not connect yet).
    pub fn new(job: &JobConfig) -> Self {
        Self {
            connection: with_timeouts(&job.connection, job),
            login_timeout_s: job.login_timeout_s,
            dialect: job.dialect,
            conn: None,
            prepared: false,
            lost_open_connection: false,
        }
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether the last failure was an open connection lost (the database had accepted it):
    /// not a database that is down, which refuses to connect.
    pub fn lost_open_connection(&self) -> bool {
        self.lost_open_connection
    }

    /// Turns an ODBC error into a [`SyncError`], dropping the connection if it is unusable.
    fn fail(&mut self, e: odbc_api::Error) -> SyncError {
        let (state, native) = match &e {
            odbc_api::Error::Diagnostics { record, .. } => {
                (record.state.as_str().to_string(), record.native_error)
            }
            _ => (String::new(), 0),
        };
        let message = e.to_string().replace('\n', " ");
        let dead = match &self.conn {
            Some(c) => lock(&c.conn).is_dead().unwrap_or(true),
            None => true,
        };
        self.lost_open_connection = dead && self.conn.is_some();
        let setup = is_setup_state(&state, native, &message);
        // A record the server cannot take closes the connection too: that is the record's
        // failure (dead-lettered after its attempts), not the database being down.
        let transient =
            !is_record_failure(native) && (dead || is_transient_state(&state, native, &message));
        if let Some(c) = &mut self.conn {
            let _ = lock(&c.conn).rollback();
            c.prepared.clear(); // a statement may be stale (the table changed)
        }
        if transient || dead {
            self.conn = None;
            self.prepared = false;
        }
        if setup {
            self.prepared = false; // the tables are probed again once fixed
            return SyncError::Setup(message);
        }
        SyncError::Db { message, transient }
    }

    pub(crate) fn connect(&mut self) -> Result<(), SyncError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let env = odbc_api::environment().map_err(|e| SyncError::Db {
            message: e.to_string(),
            transient: true,
        })?;
        let options = ConnectionOptions {
            login_timeout_sec: Some(self.login_timeout_s),
            ..ConnectionOptions::default()
        };
        let conn = env
            .connect_with_connection_string(&self.connection, options)
            .map_err(|e| {
                self.lost_open_connection = false;
                let message = format!("cannot connect: {}", e.to_string().replace('\n', " "));
                let setup = match &e {
                    odbc_api::Error::Diagnostics { record, .. } => {
                        is_setup_state(record.state.as_str(), record.native_error, &message)
                    }
                    _ => false,
                };
                if setup {
                    SyncError::Setup(message)
                } else {
                    SyncError::Db {
                        message,
                        transient: true,
                    }
                }
            })?;
        if self.dialect == Dialect::Postgres {
            // A lock held by a hung transaction is waited for a minute, not forever (the
            // checkpoint's locking read): then it is a transient error, retried.
            let _ = conn.execute("SET lock_timeout = '60s'", (), None);
        }
        // Shared so that prepared statements own their connection (`into_prepared`).
        self.conn = Some(Open {
            conn: Arc::new(std::sync::Mutex::new(conn)),
            prepared: HashMap::new(),
        });
        Ok(())
    }

    fn with_conn<R>(
        &mut self,
        f: impl FnOnce(&Connection<'static>, Dialect) -> Result<R, odbc_api::Error>,
    ) -> Result<R, SyncError> {
        self.connect()?;
        let dialect = self.dialect;
        let result = match &self.conn {
            Some(c) => f(&lock(&c.conn), dialect),
            None => {
                return Err(SyncError::Db {
                    message: "not connected".into(),
                    transient: true,
                })
            }
        };
        result.map_err(|e| self.fail(e))
    }

    /// Connects, creates the target table (if the job asks) and the checkpoint table (if
    /// exactly-once) when they are missing. Idempotent, also when several masters prepare the
    /// same job at once (a creation that loses the race finds the table); redone after a
    /// reconnect.
    pub fn prepare(&mut self, job: &JobConfig) -> Result<(), SyncError> {
        self.connect()?;
        if self.prepared {
            return Ok(());
        }
        let mut tables: Vec<String> = Vec::new();
        let (keys, cols) = key_and_mapped_columns(job);
        if job.create_table {
            tables.push(self.dialect.create_table(&job.table, &keys, &cols));
        }
        let (cp_keys, cp_cols) = Dialect::checkpoint_columns();
        if job.exactly_once {
            tables.push(
                self.dialect
                    .create_table(&job.checkpoint_table, &cp_keys, &cp_cols),
            );
        }
        let mut names = Vec::new();
        if job.create_table {
            names.push(job.table.clone());
        }
        if job.exactly_once {
            names.push(job.checkpoint_table.clone());
        }
        self.with_conn(|c, d| {
            c.set_autocommit(true)?;
            for (name, ddl) in names.iter().zip(&tables) {
                if c.execute(&d.probe(name), (), None).is_err() {
                    if let Err(e) = c.execute(ddl, (), None) {
                        // Another master of the cluster (or another job) created it between
                        // the probe and here: it exists, which is all that is asked.
                        if c.execute(&d.probe(name), (), None).is_err() {
                            return Err(e);
                        }
                    }
                }
            }
            c.set_autocommit(false)
        })?;
        self.prepared = true;
        Ok(())
    }

    /// Whether the job's target table exists (an error naming it if not).
    pub fn probe_table(&mut self, job: &JobConfig) -> Result<(), SyncError> {
        let sql = self.dialect.probe(&job.table);
        self.with_conn(|c, _| {
            c.execute(&sql, (), None)?;
            Ok(())
        })
        .map_err(|e| match e {
            SyncError::Db { message, transient } => SyncError::Db {
                message: format!("table '{}': {message}", job.table),
                transient,
            },
            SyncError::Setup(message) => {
                SyncError::Setup(format!("table '{}': {message}", job.table))
            }
            other => other,
        })
    }

    /// The last stream id applied for `(job, stream)`, from the checkpoint table.
    pub fn read_checkpoint(
        &mut self,
        job: &JobConfig,
        stream: &str,
    ) -> Result<Option<StreamId>, SyncError> {
        self.prepare(job)?;
        let sql = self.dialect.checkpoint_select(&job.checkpoint_table);
        let params = [text(&job.name), text(stream)];
        let found = self.with_conn(|c, _| {
            let mut out = None;
            if let Some(mut cursor) = c.execute(&sql, &params[..], None)? {
                if let Some(mut row) = cursor.next_row()? {
                    let mut buf = Vec::new();
                    if row.get_text(1, &mut buf)? {
                        out = Some(String::from_utf8_lossy(&buf).to_string());
                    }
                }
            }
            c.commit()?;
            Ok(out)
        })?;
        Ok(found.as_deref().and_then(StreamId::parse))
    }

    /// Applies `statements` and, if given, sets the checkpoint of `(job, stream)` to
    /// `checkpoint`, all in one transaction. Returns the number of rows sent.
    pub fn write(
        &mut self,
        job: &JobConfig,
        stream: &str,
        statements: &[Statement],
        checkpoint: Option<StreamId>,
    ) -> Result<usize, SyncError> {
        self.prepare(job)?;
        let (keys, cols) = key_and_mapped_columns(job);
        let cp = checkpoint.map(|id| id.to_string());
        let dialect = self.dialect;
        self.connect()?;
        let Some(open) = self.conn.as_mut() else {
            return Err(SyncError::Db {
                message: "not connected".into(),
                transient: true,
            });
        };
        let result = (|| -> Result<usize, odbc_api::Error> {
            let mut sent = 0;
            for s in statements {
                let per_row = match s.op {
                    Op::Upsert => keys.len() + cols.len(),
                    Op::Delete => keys.len(),
                };
                for chunk in s.rows.chunks(dialect.rows_per_statement(per_row)) {
                    let sql = match s.op {
                        Op::Upsert => dialect.upsert(&job.table, &keys, &cols, chunk.len()),
                        Op::Delete => dialect.delete(&job.table, &keys, chunk.len()),
                    };
                    let params = bind(chunk, &keys, &cols, s.op);
                    open.execute_prepared(sql, &params)?;
                    sent += chunk.len();
                }
            }
            if let Some(id) = &cp {
                let (ck, cc) = Dialect::checkpoint_columns();
                let sql = dialect.upsert(&job.checkpoint_table, &ck, &cc, 1);
                let params = [text(&job.name), text(stream), text(id)];
                open.execute_prepared(sql, &params)?;
            }
            lock(&open.conn).commit()?;
            Ok(sent)
        })();
        result.map_err(|e| self.fail(e))
    }
}

impl Open {
    /// Executes `sql` through its cached prepared statement (prepared on first use).
    fn execute_prepared(
        &mut self,
        sql: String,
        params: &[Box<dyn InputParameter>],
    ) -> Result<(), odbc_api::Error> {
        if !self.prepared.contains_key(&sql) {
            if self.prepared.len() >= MAX_PREPARED {
                self.prepared.clear();
            }
            let stmt = Arc::clone(&self.conn).into_prepared(&sql)?;
            self.prepared.insert(sql.clone(), stmt);
        }
        if let Some(stmt) = self.prepared.get_mut(&sql) {
            stmt.execute(params)?;
        }
        Ok(())
    }
}

/// The job's primary-key columns and its mapped columns, with their types.
fn key_and_mapped_columns(job: &JobConfig) -> (Vec<Col<'_>>, Vec<Col<'_>>) {
    let keys = job.key.columns().map(|(n, t)| (n.as_str(), t)).collect();
    let cols = job
        .columns
        .iter()
        .map(|c| (c.column.as_str(), c.ty))
        .collect();
    (keys, cols)
}

fn bind(rows: &[Row], keys: &[Col<'_>], cols: &[Col<'_>], op: Op) -> Vec<Box<dyn InputParameter>> {
    let mut params = Vec::with_capacity(rows.len() * (keys.len() + cols.len()));
    for r in rows {
        for (v, (_, ty)) in r.pk.iter().zip(keys) {
            params.push(param(v, *ty));
        }
        if op == Op::Upsert {
            for (v, (_, ty)) in r.values.iter().zip(cols) {
                params.push(param(v, *ty));
            }
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        assert!(is_transient_state("08S01", 0, ""));
        assert!(is_transient_state(
            "HY000",
            2006,
            "MySQL server has gone away"
        ));
        assert!(is_transient_state("HY000", 5, "database is locked"));
        assert!(!is_transient_state("23000", 1062, "Duplicate entry"));
        assert!(!is_transient_state("42S02", 1146, "Table doesn't exist"));
        // Transient by its state, but the record's fault.
        assert!(is_transient_state(
            "08S01",
            1153,
            "Got a packet bigger than"
        ));
        assert!(is_record_failure(1153) && !is_record_failure(2006));
    }
}
