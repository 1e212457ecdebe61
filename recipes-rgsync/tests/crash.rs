//! redis-server killed with SIGKILL (AOF, `appendfsync always`) after the database commit
//! and before the stream acknowledgement: on restart the batch is delivered again; with the
//! exactly-once checkpoint nothing of it is applied twice (SQLite, MariaDB, PostgreSQL),
//! without it (a choice) it is.

use std::time::Duration;

use gears_testkit::db::{exec, rows, sqlite, try_rows, unique, MARIADB, POSTGRES};
use gears_testkit::rgsync::{self, drained, status, Job};
use gears_testkit::wait_until;

/// Which database the job writes to.
#[derive(Clone, Copy)]
enum Target {
    Sqlite,
    MariaDb,
    Postgres,
}

fn crash_between_commit_and_ack(db: Target, exactly_once: &str) -> (Vec<Vec<String>>, String) {
    let name = match db {
        Target::Sqlite => "sqlite",
        Target::MariaDb => "mariadb",
        Target::Postgres => "postgres",
    };
    let mut server = rgsync::server()
        .name(&format!("crash-{name}-{exactly_once}"))
        .aof()
        .module_args(&["rgsync.test_pause_after_commit_ms", "3000"])
        .start();
    // A table and checkpoint table of this run only on the shared servers.
    let (conn, table) = match db {
        Target::Sqlite => (sqlite(&server.dir), "users".to_string()),
        Target::MariaDb => (MARIADB.to_string(), unique("crash_users")),
        Target::Postgres => (POSTGRES.to_string(), unique("crash_users")),
    };
    let checkpoints = format!("{table}_cp");
    let mut con = server.conn();
    Job::new("users", "user:{id:integer}", &table, &conn)
        .columns("age:integer")
        .opt("CHECKPOINT_TABLE", &checkpoints)
        .words(&["CREATE_TABLE", "yes", "BATCH", "100", "DURATION", "10"])
        .opt("EXACTLY_ONCE", exactly_once)
        .add(&mut con);
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.cmd("HSET")
            .arg(format!("user:{i}"))
            .arg("age")
            .arg(1)
            .ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    // The batch is committed; the writer now sleeps before the XACK.
    let count = format!("SELECT COUNT(*) FROM {table}");
    let committed = wait_until(Duration::from_secs(10), || {
        try_rows(&conn, &count) == Some(vec![vec!["50".to_string()]])
    });
    assert!(committed, "batch not committed");
    // A later change made directly in the database: re-applying the batch would undo it.
    exec(&conn, &format!("UPDATE {table} SET age = 999 WHERE id = 7"));
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg("{0}rgsync:users")
        .arg("gears:rgsync_writer:users")
        .query(&mut con)
        .unwrap();
    assert!(matches!(pending[0], redis::Value::Int(50)), "{pending:?}");
    server.restart();
    let mut con = server.conn();
    drained(&mut con, "users", Duration::from_secs(20));
    let st = status(&mut con, "users");
    (
        rows(
            &conn,
            &format!("SELECT id, age FROM {table} WHERE id IN (6, 7, 8)"),
        ),
        st["skipped_replays"].clone(),
    )
}

fn applies_nothing_twice(db: Target) {
    let (rows, skipped) = crash_between_commit_and_ack(db, "yes");
    assert_eq!(rows, [["6", "1"], ["7", "999"], ["8", "1"]]);
    assert_eq!(
        skipped, "50",
        "the replayed batch was recognised by its checkpoint"
    );
}

#[test]
fn sigkill_between_commit_and_ack_applies_nothing_twice() {
    applies_nothing_twice(Target::Sqlite);
}

#[test]
fn mariadb_sigkill_between_commit_and_ack_applies_nothing_twice() {
    applies_nothing_twice(Target::MariaDb);
}

#[test]
fn postgres_sigkill_between_commit_and_ack_applies_nothing_twice() {
    applies_nothing_twice(Target::Postgres);
}

#[test]
fn without_the_checkpoint_the_replay_is_applied_again() {
    let (rows, skipped) = crash_between_commit_and_ack(Target::Sqlite, "no");
    assert_eq!(rows, [["6", "1"], ["7", "1"], ["8", "1"]]);
    assert_eq!(skipped, "0");
}
