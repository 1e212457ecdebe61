//! redis-server killed with SIGKILL (AOF, `appendfsync always`) after the database commit
//! and before the stream acknowledgement: on restart the batch is delivered again; with the
//! exactly-once checkpoint nothing of it is applied twice, without it (a choice) it is.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn crash_between_commit_and_ack(exactly_once: &str) -> (Vec<Vec<String>>, String) {
    let mut server = Server::start(
        &format!("crash-{exactly_once}"),
        &["--appendonly", "yes", "--appendfsync", "always"],
        &["rgsync.test_pause_after_commit_ms", "3000"],
    );
    let conn = sqlite(&server.dir);
    let mut con = server.conn();
    redis::cmd("RGSYNC.ADD")
        .arg(&[
            "users",
            "KEY",
            "user:{id:integer}",
            "TABLE",
            "users",
            "COLUMNS",
            "age:integer",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "BATCH",
            "100",
            "DURATION",
            "10",
            "EXACTLY_ONCE",
            exactly_once,
        ])
        .query::<()>(&mut con)
        .unwrap();
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_rows(&conn, "SELECT COUNT(*) FROM users") != Some(vec![vec!["50".to_string()]]) {
        assert!(Instant::now() < deadline, "batch not committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A later change made directly in the database: re-applying the batch would undo it.
    exec(&conn, "UPDATE users SET age = 999 WHERE id = 7");
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg("{0}rgsync:users")
        .arg("gears:rgsync_writer:users")
        .query(&mut con)
        .unwrap();
    assert!(matches!(pending[0], redis::Value::Int(50)), "{pending:?}");
    server.kill_and_restart();
    let mut con = server.conn();
    drained(&mut con, "users", Duration::from_secs(20));
    let st = status(&mut con, "users");
    (
        rows(&conn, "SELECT id, age FROM users WHERE id IN (6, 7, 8)"),
        st["skipped_replays"].clone(),
    )
}

#[test]
fn sigkill_between_commit_and_ack_applies_nothing_twice() {
    let (rows, skipped) = crash_between_commit_and_ack("yes");
    assert_eq!(rows, [["6", "1"], ["7", "999"], ["8", "1"]]);
    assert_eq!(
        skipped, "50",
        "the replayed batch was recognised by its checkpoint"
    );
}

#[test]
fn without_the_checkpoint_the_replay_is_applied_again() {
    let (rows, skipped) = crash_between_commit_and_ack("no");
    assert_eq!(rows, [["6", "1"], ["7", "1"], ["8", "1"]]);
    assert_eq!(skipped, "0");
}
