//! The rgsync module in a real redis-server writing to real databases: an SQLite file,
//! MariaDB and PostgreSQL (started by scripts/db.sh; a server that does not answer fails the
//! test with a message). Every test compares the full contents of the target table.

mod failures;
mod jobs;
mod ops;
mod volume;

use gears_testkit::db::exec;
use gears_testkit::rgsync::Job;
use redis::Connection;

/// The `people` job: composite key `person:{region}:{id:integer}`, typed columns, `hdel`
/// events, quick retries.
fn add_people(con: &mut Connection, conn: &str, table: &str) {
    let key = "person:{region}:{id:integer}";
    Job::new("people", key, table, conn)
        .columns("name age:integer score:float born=born_at:timestamp")
        .words(&["CREATE_TABLE", "yes", "DURATION", "20", "EVENTS", "hdel"])
        .words(&["BACKOFF", "10", "MAX_ATTEMPTS", "2"])
        .add(con);
}

fn xrange(con: &mut Connection, stream: &str) -> Vec<Vec<String>> {
    let v: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap();
    v.into_iter()
        .map(|(_, f)| f.into_iter().flat_map(|(a, b)| [a, b]).collect())
        .collect()
}

/// `HSET <prefix>:<i> <field> <value>` for each `(i, value)`, in one pipeline.
fn hset_each<V: redis::ToRedisArgs>(
    con: &mut Connection,
    prefix: &str,
    field: &str,
    items: impl IntoIterator<Item = (usize, V)>,
) {
    let mut pipe = redis::pipe();
    for (i, value) in items {
        pipe.cmd("HSET")
            .arg(format!("{prefix}:{i}"))
            .arg(field)
            .arg(value)
            .ignore();
    }
    pipe.query::<()>(con).unwrap();
}

fn exec_drop(conn: &str, quoted: &str) {
    exec(conn, &format!("DROP TABLE IF EXISTS {quoted}"));
}

/// `name` quoted for the database of `conn` (backquotes on MariaDB, double quotes elsewhere).
fn quote(conn: &str, name: &str) -> String {
    if conn.contains("MariaDB") {
        format!("`{name}`")
    } else {
        format!("\"{name}\"")
    }
}
