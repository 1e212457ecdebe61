//! A job's configuration: which keys, which table and columns, where, and how (batching,
//! exactly-once, retries, dead letters, backlog limit). Parsed from `RGSYNC.ADD` arguments or a
//! config-file line (the same words), encoded for persistence, and described for `RGSYNC.LIST`
//! with credentials masked.
//!
//! ```
//! use recipes_rgsync::config::JobConfig;
//! let job = JobConfig::parse_args(&[
//!     "users", "KEY", "user:{id:integer}", "TABLE", "users",
//!     "COLUMNS", "name age:integer born=birth:timestamp",
//!     "CONNECTION", "Driver={PostgreSQL Unicode};Server=127.0.0.1;Uid=test;Pwd=secret;",
//!     "BATCH", "500",
//! ].map(String::from)).unwrap();
//! assert_eq!(job.dialect.name(), "postgres");
//! assert_eq!(job.columns[2].column, "birth");
//! assert_eq!(job.batch, 500);
//! assert!(!format!("{:?}", job.describe()).contains("secret"));
//! ```

use crate::columns::Column;
use crate::dialect::Dialect;
use crate::error::SyncError;
use crate::identifiers::{check_column, check_identifier, check_table};
use crate::keys::KeyPattern;
use crate::secrets::mask_secrets;

/// Keyspace events every job captures: writes of a hash's fields (`HSET`, `HMSET`, `HSETNX`,
/// `HINCRBY`, `HINCRBYFLOAT`) upsert the row from the hash as it is then; `DEL` (and the end of
/// a hash whose last field went) deletes it; `RENAME` deletes the old key's row and upserts
/// the new key's.
pub const ALWAYS_CAPTURED: [&str; 6] = [
    "hset",
    "hincrby",
    "hincrbyfloat",
    "del",
    "rename_from",
    "rename_to",
];

/// A write-behind job.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct JobConfig {
    /// Job name (letters, digits, `_`, `-`, `.`): names its stream, consumer group, checkpoint.
    pub name: String,
    /// Which keys, and how their primary key is extracted.
    pub key: KeyPattern,
    /// Target table (`schema.table` allowed).
    pub table: String,
    /// Mapped fields (not the primary key, which comes from the key).
    pub columns: Vec<Column>,
    /// ODBC connection string (secret: never logged or listed).
    pub connection: String,
    /// SQL dialect (from the driver name unless given).
    pub dialect: Dialect,
    /// Changes per database transaction.
    pub batch: usize,
    /// Flush a smaller batch after this many milliseconds.
    pub duration_ms: u64,
    /// Keep only the last change per primary key within a batch.
    pub coalesce: bool,
    /// Write the per-shard checkpoint in each transaction and skip what it covers.
    pub exactly_once: bool,
    /// Checkpoint table name.
    pub checkpoint_table: String,
    /// Attempts of a failing record before it goes to the dead-letter stream.
    pub max_attempts: u32,
    /// First retry delay (ms); doubles per attempt.
    pub backoff_ms: u64,
    /// Retry delay cap (ms).
    pub max_backoff_ms: u64,
    /// Extra keyspace events captured besides [`ALWAYS_CAPTURED`]: `hdel`, `expired`.
    pub events: Vec<String>,
    /// Create the target table (and checkpoint table) if missing.
    pub create_table: bool,
    /// Refuse new writes on this job's keys while the backlog is at least this long (0: no limit).
    pub max_backlog: u64,
    /// Whether `RGSYNC.ADD` opens a connection to check the job (`CHECK_CONNECTION`, default
    /// yes; no for a database that is down on purpose).
    pub check_connection: bool,
    /// Seconds a connection may take to open (`LOGIN_TIMEOUT`, default 5).
    pub login_timeout_s: u32,
    /// Seconds the database may leave a statement or a commit unanswered before the
    /// connection counts as lost (`QUERY_TIMEOUT`, default 30; MariaDB/MySQL, through the
    /// driver's read and write timeouts).
    pub query_timeout_s: u32,
}

fn check_job_name(name: &str) -> Result<(), SyncError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(SyncError::Config(format!(
            "job name '{name}': use 1 to 64 letters, digits, '_', '-', '.'"
        )));
    }
    Ok(())
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, SyncError> {
    v.parse()
        .map_err(|_| SyncError::Config(format!("{key} must be a non-negative integer, got '{v}'")))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, SyncError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(SyncError::Config(format!(
            "{key} must be yes or no, got '{v}'"
        ))),
    }
}

/// The checks of a job's name, key pattern, table and columns (see [`JobConfig::new`]).
fn check_parts(
    name: &str,
    key: &KeyPattern,
    table: &str,
    columns: &[Column],
) -> Result<(), SyncError> {
    check_job_name(name)?;
    check_table(table)?;
    for c in columns {
        check_column(&c.column).map_err(SyncError::Config)?;
    }
    for (pk, _) in key.columns() {
        check_column(pk).map_err(SyncError::Config)?;
        if columns.iter().any(|c| &c.column == pk) {
            return Err(SyncError::Config(format!(
                "column '{pk}' is the primary key (from the key pattern) and cannot be mapped"
            )));
        }
    }
    Ok(())
}

/// Keyspace events a job may capture besides [`ALWAYS_CAPTURED`] (`EVENTS`).
const OPTIONAL_EVENTS: [&str; 2] = ["hdel", "expired"];

impl JobConfig {
    /// A job with defaults: batch 100, duration 100 ms, exactly-once on, 5 attempts, backoff
    /// 100 ms doubling up to 30 s, no coalescing, no backlog limit.
    pub fn new(
        name: &str,
        key: KeyPattern,
        table: &str,
        columns: Vec<Column>,
        connection: &str,
    ) -> Result<Self, SyncError> {
        check_parts(name, &key, table, &columns)?;
        Ok(Self {
            name: name.to_string(),
            key,
            table: table.to_string(),
            columns,
            connection: connection.to_string(),
            dialect: Dialect::from_connection(connection).unwrap_or(Dialect::Sqlite),
            batch: 100,
            duration_ms: 100,
            coalesce: false,
            exactly_once: true,
            checkpoint_table: "rgsync_checkpoint".into(),
            max_attempts: 5,
            backoff_ms: 100,
            max_backoff_ms: 30_000,
            events: Vec::new(),
            create_table: false,
            max_backlog: 0,
            check_connection: true,
            login_timeout_s: 5,
            query_timeout_s: 30,
        })
    }

    /// Checks a configuration that did not come through [`new`](Self::new) or
    /// [`parse_args`](Self::parse_args) (decoded from an RDB): the same rules, and a key
    /// pattern with at least one key part.
    pub fn validate(&self) -> Result<(), SyncError> {
        check_parts(&self.name, &self.key, &self.table, &self.columns)?;
        if self.key.columns().next().is_none() {
            return Err(SyncError::Config(format!(
                "job '{}': the key pattern has no key part",
                self.name
            )));
        }
        check_table(&self.checkpoint_table)?;
        if let Some(e) = self
            .events
            .iter()
            .find(|e| !OPTIONAL_EVENTS.contains(&e.as_str()))
        {
            return Err(SyncError::Config(format!(
                "job '{}': event '{e}'",
                self.name
            )));
        }
        Ok(())
    }

    /// Parses `<name> KEY <pattern> TABLE <table> COLUMNS "<f[=col][:type]> ..."
    /// CONNECTION <odbc> [DIALECT d] [BATCH n] [DURATION ms] [COALESCE yes|no]
    /// [EXACTLY_ONCE yes|no] [CHECKPOINT_TABLE t] [MAX_ATTEMPTS n] [BACKOFF ms]
    /// [MAX_BACKOFF ms] [EVENTS hdel,expired] [CREATE_TABLE yes|no] [MAX_BACKLOG n]
    /// [CHECK_CONNECTION yes|no] [LOGIN_TIMEOUT s] [QUERY_TIMEOUT s]`.
    pub fn parse_args(args: &[String]) -> Result<Self, SyncError> {
        let (name, rest) = args
            .split_first()
            .ok_or_else(|| SyncError::Config("missing job name".into()))?;
        if rest.len() % 2 != 0 {
            return Err(SyncError::Config(format!(
                "options come in 'NAME value' pairs; '{}' has no value",
                rest[rest.len() - 1]
            )));
        }
        let mut opts: Vec<(String, &str)> = Vec::new();
        for pair in rest.chunks(2) {
            let k = pair[0].to_ascii_uppercase();
            if opts.iter().any(|(o, _)| *o == k) {
                return Err(SyncError::Config(format!("option {k} given twice")));
            }
            opts.push((k, pair[1].as_str()));
        }
        let take = |k: &str| opts.iter().find(|(o, _)| o == k).map(|(_, v)| *v);
        let need = |k: &str| take(k).ok_or_else(|| SyncError::Config(format!("missing {k}")));
        let key = KeyPattern::parse(need("KEY")?)?;
        let columns = crate::columns::parse_columns(take("COLUMNS").unwrap_or(""))?;
        let mut job = JobConfig::new(name, key, need("TABLE")?, columns, need("CONNECTION")?)?;
        for (k, v) in &opts {
            match k.as_str() {
                "KEY" | "TABLE" | "COLUMNS" | "CONNECTION" => {}
                "DIALECT" => {
                    job.dialect = Dialect::parse(v)
                        .ok_or_else(|| SyncError::Config(format!("unknown dialect '{v}'")))?
                }
                "BATCH" => job.batch = parse_num::<usize>(k, v)?.clamp(1, 100_000),
                "DURATION" => job.duration_ms = parse_num(k, v)?,
                "COALESCE" => job.coalesce = parse_bool(k, v)?,
                "EXACTLY_ONCE" => job.exactly_once = parse_bool(k, v)?,
                "CHECKPOINT_TABLE" => {
                    check_identifier(v).map_err(SyncError::Config)?;
                    job.checkpoint_table = v.to_string();
                }
                "MAX_ATTEMPTS" => job.max_attempts = parse_num::<u32>(k, v)?.max(1),
                "BACKOFF" => job.backoff_ms = parse_num::<u64>(k, v)?.max(1),
                "MAX_BACKOFF" => job.max_backoff_ms = parse_num::<u64>(k, v)?.max(1),
                "EVENTS" => {
                    job.events = Vec::new();
                    for e in v.split([',', ' ']).filter(|e| !e.is_empty()) {
                        let e = e.to_ascii_lowercase();
                        if !OPTIONAL_EVENTS.contains(&e.as_str()) {
                            return Err(SyncError::Config(format!(
                                "EVENTS: '{e}' is not one of hdel, expired ({} are always captured)",
                                ALWAYS_CAPTURED.join(", ")
                            )));
                        }
                        job.events.push(e);
                    }
                }
                "CREATE_TABLE" => job.create_table = parse_bool(k, v)?,
                "MAX_BACKLOG" => job.max_backlog = parse_num(k, v)?,
                "CHECK_CONNECTION" => job.check_connection = parse_bool(k, v)?,
                "LOGIN_TIMEOUT" => job.login_timeout_s = parse_num::<u32>(k, v)?.clamp(1, 3600),
                "QUERY_TIMEOUT" => job.query_timeout_s = parse_num::<u32>(k, v)?.clamp(1, 86_400),
                other => return Err(SyncError::Config(format!("unknown option {other}"))),
            }
        }
        Ok(job)
    }

    /// The keyspace events captured.
    pub fn event_types(&self) -> Vec<String> {
        let mut e: Vec<String> = ALWAYS_CAPTURED.iter().map(|e| e.to_string()).collect();
        e.extend(self.events.iter().cloned());
        e
    }

    /// `field=column:type` words, as `COLUMNS` takes them.
    pub fn columns_spec(&self) -> String {
        self.columns
            .iter()
            .map(|c| format!("{}={}:{}", c.field, c.column, c.ty.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Name/value pairs for `RGSYNC.LIST`, the connection string with secrets masked.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("key", self.key.as_str().to_string()),
            ("table", self.table.clone()),
            ("columns", self.columns_spec()),
            ("connection", mask_secrets(&self.connection)),
            ("dialect", self.dialect.name().to_string()),
            ("batch", self.batch.to_string()),
            ("duration", self.duration_ms.to_string()),
            ("coalesce", yes(self.coalesce)),
            ("exactly_once", yes(self.exactly_once)),
            ("checkpoint_table", self.checkpoint_table.clone()),
            ("max_attempts", self.max_attempts.to_string()),
            ("backoff", self.backoff_ms.to_string()),
            ("max_backoff", self.max_backoff_ms.to_string()),
            ("events", self.event_types().join(",")),
            ("create_table", yes(self.create_table)),
            ("max_backlog", self.max_backlog.to_string()),
            ("check_connection", yes(self.check_connection)),
            ("login_timeout", self.login_timeout_s.to_string()),
            ("query_timeout", self.query_timeout_s.to_string()),
        ]
    }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::parse_columns;
    use crate::secrets::mask_secrets_in_text;
    use crate::types::ColumnType;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_and_options() {
        let j = JobConfig::parse_args(&args(&[
            "j1",
            "KEY",
            "u:{id}",
            "TABLE",
            "s.users",
            "CONNECTION",
            "Driver={MariaDB Unicode};Pwd=x",
            "columns",
            "a,b:float",
            "COALESCE",
            "yes",
            "EVENTS",
            "hdel,expired",
            "MAX_BACKLOG",
            "1000",
        ]))
        .unwrap();
        assert_eq!(j.dialect, Dialect::MySql);
        assert!(j.coalesce && j.exactly_once);
        assert_eq!(
            j.event_types().join(" "),
            "hset hincrby hincrbyfloat del rename_from rename_to hdel expired"
        );
        assert_eq!(j.columns[1].ty, ColumnType::Float);
        assert_eq!(j.max_backlog, 1000);
        assert_eq!(j.columns_spec(), "a=a:text b=b:float");
        // round trip through the columns spec
        assert_eq!(parse_columns(&j.columns_spec()).unwrap(), j.columns);
    }

    #[test]
    fn errors() {
        let base = [
            "j",
            "KEY",
            "u:{id}",
            "TABLE",
            "t",
            "CONNECTION",
            "Driver={SQLite3}",
        ];
        let with = |extra: &[&str]| {
            let mut a = args(&base);
            a.extend(args(extra));
            JobConfig::parse_args(&a)
        };
        assert!(with(&[]).is_ok());
        assert!(with(&["BATCH"]).is_err());
        assert!(with(&["BATCH", "x"]).is_err());
        assert!(with(&["NOPE", "1"]).is_err());
        assert!(with(&["COLUMNS", "id"]).is_err()); // the pk comes from the key
        assert!(with(&["COLUMNS", "a\"b"]).is_err());
        assert!(with(&["COLUMNS", "a a"]).is_err());
        assert!(with(&["COLUMNS", "#"]).is_err());
        assert!(with(&["EVENTS", "rename"]).is_err());
        assert!(with(&["DIALECT", "access"]).is_err());
        assert!(with(&["TABLE", "again"]).is_err());
        let mut bad_table = args(&base);
        bad_table[4] = "t; DROP TABLE x".into();
        assert!(JobConfig::parse_args(&bad_table).is_err());
        let mut bad_name = args(&base);
        bad_name[0] = "a b".into();
        assert!(JobConfig::parse_args(&bad_name).is_err());
    }

    #[test]
    fn dots_only_in_table_names() {
        let with = |key: &str, table: &str, columns: &str, checkpoint: &str| {
            JobConfig::parse_args(&args(&[
                "j",
                "KEY",
                key,
                "TABLE",
                table,
                "COLUMNS",
                columns,
                "CHECKPOINT_TABLE",
                checkpoint,
                "CONNECTION",
                "Driver={SQLite3}",
            ]))
        };
        // schema-qualified tables, a dotted hash field mapped to a plain column
        let ok = with("u:{id}", "s.users", "name a.b=a_b", "s.rgsync_checkpoint").unwrap();
        assert_eq!(ok.table, "s.users");
        assert_eq!(ok.checkpoint_table, "s.rgsync_checkpoint");
        assert_eq!(
            (ok.columns[1].field.as_str(), ok.columns[1].column.as_str()),
            ("a.b", "a_b")
        );
        // a column with a dot, in COLUMNS (as is, mapped, typed) or in the key
        for (key, columns) in [
            ("u:{id}", "a.b"),
            ("u:{id}", "name x=a.b"),
            ("u:{id}", "a.b:integer"),
            ("u:{s.id}", "name"),
            ("u:{r}:{s.id:integer}", "name"),
        ] {
            let err = with(key, "t", columns, "c").unwrap_err().to_string();
            assert!(
                err.starts_with("invalid job: ")
                    && err.contains("'.' is not allowed in a column name"),
                "{key} {columns}: {err}"
            );
        }
        // through the Rust API (a column given as a struct) too
        let key = KeyPattern::parse("u:{id}").unwrap();
        let column = Column {
            field: "f".into(),
            column: "a.b".into(),
            ty: ColumnType::Text,
        };
        assert!(JobConfig::new("j", key, "t", vec![column], "Driver={SQLite3}").is_err());
    }

    #[test]
    fn config_errors_are_masked_whatever_word_holds_the_connection() {
        let conn = "Driver={SQLite3};Database=/tmp/xdb;PWD=Sekr3t;Uid=u";
        let base = ["j", "KEY", "u:{id}", "TABLE", "t", "CONNECTION", "x"];
        let mut cases: Vec<Vec<&str>> = vec![
            // CONNECTION forgotten: the connection string is the unpaired last word
            vec!["j", "KEY", "u:{id}", "TABLE", "t", conn],
            // an option name (upper-cased in the message)
            [&base[..], &[conn, "y"]].concat(),
            // the table
            vec!["j", "KEY", "u:{id}", "TABLE", conn, "CONNECTION", "x"],
        ];
        // the columns, an option's value
        for option in ["COLUMNS", "CHECKPOINT_TABLE", "BATCH", "DIALECT"] {
            cases.push([&base[..], &[option, conn]].concat());
        }
        for case in &cases {
            let err = JobConfig::parse_args(&args(case)).unwrap_err().to_string();
            assert!(err.contains("Sekr3t") || err.contains("SEKR3T"), "{err}");
            let masked = mask_secrets_in_text(&err);
            assert!(!masked.to_lowercase().contains("sekr3t"), "{masked}");
            assert!(masked.to_lowercase().contains("pwd=***"), "{masked}");
        }
    }
}
