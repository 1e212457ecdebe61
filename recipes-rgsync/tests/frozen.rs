//! Every process of the database frozen (SIGSTOP, connections left open) in the middle of the
//! write-behind: within the job's QUERY_TIMEOUT the job shows `retrying` with the error and a
//! lag that grows; once the database goes on (SIGCONT) everything drains, each change once.
//!
//! MariaDB, a private server (a fresh datadir on a free port, signalled by PID). PostgreSQL is
//! not covered: its ODBC driver has no socket read timeout, and a frozen server's kernel still
//! acknowledges TCP, so nothing but a watchdog around each call could bound the wait.

use std::time::{Duration, Instant};

use gears_testkit::db::private::{MariaDb, PrivateDb};
use gears_testkit::db::{exec, rows};
use gears_testkit::rgsync::{self, drained, status, status_when, Job};

#[test]
fn frozen_mariadb_shows_retrying_within_the_timeout_then_drains_once() {
    let db = MariaDb::fresh("frozen-mariadb");
    exec(&db.conn(MariaDb::ADMIN_DATABASE), "CREATE DATABASE app");
    let conn = db.conn("app");
    let server = rgsync::server().name("frozen-redis").start();
    let mut con = server.conn();
    Job::new("users", "user:{id:integer}", "users", &conn)
        .columns("n:integer")
        .words(&[
            "CREATE_TABLE",
            "yes",
            "DURATION",
            "20",
            "QUERY_TIMEOUT",
            "2",
        ])
        .words(&["LOGIN_TIMEOUT", "2", "BACKOFF", "50", "MAX_BACKOFF", "500"])
        .add(&mut con);
    exec(&conn, "CREATE TABLE updates (n INT)");
    exec(&conn, "INSERT INTO updates VALUES (0)");
    let write = |con: &mut redis::Connection, round: u64| {
        let mut pipe = redis::pipe();
        for id in 0..100 {
            pipe.cmd("HSET")
                .arg(format!("user:{id}"))
                .arg("n")
                .arg(round * 1000 + id)
                .ignore();
        }
        pipe.query::<()>(con).expect("HSET");
    };
    write(&mut con, 1);
    drained(&mut con, "users", Duration::from_secs(30));
    exec(
        &conn,
        "CREATE TRIGGER counted AFTER UPDATE ON users FOR EACH ROW UPDATE updates SET n = n + 1",
    );

    db.freeze();
    let frozen = Instant::now();
    write(&mut con, 2);
    let st = status_when(&mut con, "users", Duration::from_secs(20), |st| {
        st["state"] == "retrying"
    });
    let noticed = frozen.elapsed();
    assert_eq!(st["state"], "retrying", "{st:?}");
    assert!(
        noticed < Duration::from_secs(10),
        "noticed after {noticed:?}: {st:?}"
    );
    assert!(!st["last_error"].is_empty(), "{st:?}");
    let lag = |st: &std::collections::HashMap<String, String>| st["lag_ms"].parse::<u64>().unwrap();
    let first = lag(&st);
    std::thread::sleep(Duration::from_secs(2));
    let later = status(&mut con, "users");
    assert!(
        lag(&later) >= first + 1500,
        "the lag grows: {first} then {later:?}"
    );

    db.thaw();
    drained(&mut con, "users", Duration::from_secs(60));
    let mut got = rows(&conn, "SELECT id, n FROM users");
    got.sort_by_key(|r| r[0].parse::<u64>().unwrap());
    let want: Vec<Vec<String>> = (0..100)
        .map(|id| vec![id.to_string(), (2000 + id).to_string()])
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        rows(&conn, "SELECT n FROM updates"),
        [["100"]],
        "each row updated once"
    );
}
