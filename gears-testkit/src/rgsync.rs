//! The rgsync module's commands as the tests use them: `RGSYNC.ADD` lines built from parts,
//! `RGSYNC.STATUS` as a map, waiting until a job has drained.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult, Value};

use crate::reply::{query, show};
use crate::{Server, ServerBuilder};

/// An `RGSYNC.ADD` command: the job's name, key pattern, table and connection, then columns
/// and options in the order given.
///
/// ```
/// use gears_testkit::rgsync::Job;
/// let job = Job::new("users", "user:{id}", "users", "Driver={SQLite3};Database=/tmp/a.db")
///     .columns("name age:integer")
///     .opt("CREATE_TABLE", "yes");
/// assert_eq!(job.args()[..4], ["RGSYNC.ADD", "users", "KEY", "user:{id}"]);
/// assert_eq!(job.args().len(), 12);
/// ```
#[derive(Clone, Debug)]
pub struct Job {
    args: Vec<String>,
}

impl Job {
    /// `RGSYNC.ADD <name> KEY <key> TABLE <table> CONNECTION <connection>`.
    pub fn new(name: &str, key: &str, table: &str, connection: &str) -> Job {
        Job {
            args: ["RGSYNC.ADD", name, "KEY", key, "TABLE", table]
                .into_iter()
                .chain(["CONNECTION", connection])
                .map(String::from)
                .collect(),
        }
    }

    /// `COLUMNS <columns>`, placed before `CONNECTION`.
    pub fn columns(mut self, columns: &str) -> Job {
        self.args
            .splice(6..6, ["COLUMNS".to_string(), columns.to_string()]);
        self
    }

    /// One option and its value, after what is there.
    pub fn opt(mut self, name: &str, value: &str) -> Job {
        self.args.push(name.to_string());
        self.args.push(value.to_string());
        self
    }

    /// Words added as they are (options and values in turn).
    pub fn words(mut self, words: &[&str]) -> Job {
        self.args.extend(words.iter().map(|w| w.to_string()));
        self
    }

    /// The whole command, `RGSYNC.ADD` first.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Sends the command; the reply or the error.
    pub fn try_add(&self, con: &mut Connection) -> RedisResult<Value> {
        query(con, &self.args)
    }

    /// Sends the command; panics (naming it) if it is refused.
    pub fn add(&self, con: &mut Connection) -> Value {
        self.try_add(con)
            .unwrap_or_else(|e| panic!("{:?}: {e}", self.args))
    }
}

/// `RGSYNC.STATUS <job>` as a map of its fields (integers and nil as text).
pub fn status(con: &mut Connection, job: &str) -> HashMap<String, String> {
    let v: Vec<Value> = redis::cmd("RGSYNC.STATUS").arg(job).query(con).unwrap();
    v.chunks(2)
        .map(|pair| {
            let text = |v: &Value| match v {
                Value::Nil => String::new(),
                other => show(other),
            };
            (text(&pair[0]), text(&pair[1]))
        })
        .collect()
}

/// The job's status once `done` holds for it, or the last one read when `timeout` passed.
pub fn status_when(
    con: &mut Connection,
    job: &str,
    timeout: Duration,
    done: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let st = status(con, job);
        if done(&st) || Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the job's backlog is empty and nothing is retrying; panics with the status
/// after `timeout`.
pub fn drained(con: &mut Connection, job: &str, timeout: Duration) {
    let st = status_when(con, job, timeout, |st| {
        st["backlog"] == "0" && st["state"] == "idle"
    });
    assert!(
        st["backlog"] == "0" && st["state"] == "idle",
        "not drained: {st:?}"
    );
}

/// A redis-server with the rgsync module (`librgsync.so`) loaded.
pub fn server() -> ServerBuilder {
    Server::builder().module("rgsync")
}
