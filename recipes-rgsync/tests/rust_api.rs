//! The Rust API in a module of one's own: `examples/write-behind` builds its job with
//! `WriteBehind` and registers it when redis-server loads it (no `RGSYNC.ADD`). Against a real
//! redis-server and a SQLite file: rows land typed, a bad value goes to the dead letters
//! while the rest flows, and after a reload from RDB the job runs once, not twice.

use std::time::Duration;

use gears_testkit::db::rows;
use gears_testkit::rgsync::{drained, status};
use gears_testkit::{ok, scratch, show, Server};

/// How many registrations of `function` the server lists (`RG.DUMPREGISTRATIONS`: one
/// array of name/value pairs each; the function follows `PD`).
fn registrations_of(con: &mut redis::Connection, function: &str) -> usize {
    let redis::Value::Array(regs) = ok(con, &["RG.DUMPREGISTRATIONS"]) else {
        panic!("RG.DUMPREGISTRATIONS is not an array");
    };
    regs.iter()
        .filter(|r| match r {
            redis::Value::Array(fields) => fields
                .windows(2)
                .any(|w| show(&w[0]) == "PD" && show(&w[1]) == function),
            _ => false,
        })
        .count()
}

#[test]
fn a_job_built_in_rust_runs_when_the_module_loads() {
    let dir = scratch("rust-api-db");
    let db = dir.join("users.db");
    let conn = format!("Driver={{SQLite3}};Database={}", db.display());
    let server = Server::builder()
        .name("rust-api")
        .module("gears_write_behind")
        .module_args(&["db".as_ref(), db.as_os_str()])
        .start();
    let mut con = server.conn();
    assert!(
        server.log().contains("job 'users' writes into"),
        "{}",
        server.log()
    );

    ok(&mut con, &["HSET", "user:1", "name", "ann", "age", "42"]);
    ok(&mut con, &["HSET", "user:2", "name", "bob", "age", "7"]);
    ok(
        &mut con,
        &[
            "HSET",
            "user:3",
            "name",
            "O'Neil; DROP TABLE users;--",
            "age",
            "30",
        ],
    );
    ok(&mut con, &["DEL", "user:2"]);
    ok(&mut con, &["HSET", "user:4", "name", "dan", "age", "old"]);
    drained(&mut con, "users", Duration::from_secs(20));
    assert_eq!(
        rows(&conn, "SELECT id, name, age, typeof(age) FROM users"),
        [
            ["1", "ann", "42", "integer"],
            ["3", "O'Neil; DROP TABLE users;--", "30", "integer"],
        ]
    );
    let redis::Value::Array(dead) = ok(&mut con, &["XRANGE", "{0}rgsync:users:dlq", "-", "+"])
    else {
        panic!("no dead-letter stream");
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(format!("{dead:?}").contains("user:4"), "{dead:?}");

    // The registrations come from the module's init and from the RDB: still one each.
    assert_eq!(registrations_of(&mut con, "rgsync_capture"), 1);
    assert_eq!(registrations_of(&mut con, "rgsync_writer"), 1);
    ok(&mut con, &["DEBUG", "RELOAD"]);
    assert_eq!(registrations_of(&mut con, "rgsync_capture"), 1);
    assert_eq!(registrations_of(&mut con, "rgsync_writer"), 1);
    ok(&mut con, &["HSET", "user:1", "age", "43"]);
    drained(&mut con, "users", Duration::from_secs(20));
    assert_eq!(
        rows(&conn, "SELECT id, name, age FROM users"),
        [
            ["1", "ann", "43"],
            ["3", "O'Neil; DROP TABLE users;--", "30"]
        ]
    );
    let st = status(&mut con, "users");
    assert_eq!(st["dead_letters"], "1", "{st:?}"); // the dead-letter stream survived the reload
    assert_eq!(st["last_error"], "", "{st:?}");
}
