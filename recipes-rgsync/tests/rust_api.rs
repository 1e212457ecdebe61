//! The Rust API in a module of one's own: `examples/write-behind` builds its job with
//! `WriteBehind` and registers it when redis-server loads it (no `RGSYNC.ADD`). Against a real
//! redis-server and a SQLite file: rows land typed, a bad value goes to the dead letters
//! while the rest flows, and after a reload from RDB the job runs once, not twice.

mod common;

use std::time::Duration;

use common::*;

fn q(con: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
}

/// How many registrations of `function` the server lists (`RG.DUMPREGISTRATIONS`: one
/// array of name/value pairs each; the function follows `PD`).
fn registrations_of(con: &mut redis::Connection, function: &str) -> usize {
    let redis::Value::Array(regs) = q(con, &["RG.DUMPREGISTRATIONS"]) else {
        panic!("RG.DUMPREGISTRATIONS is not an array");
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
        redis::Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    regs.iter()
        .filter(|r| match r {
            redis::Value::Array(fields) => fields
                .windows(2)
                .any(|w| text(&w[0]) == "PD" && text(&w[1]) == function),
            _ => false,
        })
        .count()
}

#[test]
fn a_job_built_in_rust_runs_when_the_module_loads() {
    let dir = scratch("rust-api-db");
    let db = dir.join("users.db");
    let conn = format!("Driver={{SQLite3}};Database={}", db.display());
    let module = module_file("libgears_write_behind.so", "gears-example-write-behind");
    let server = Server::start_module("rust-api", &module, &[], &["db", db.to_str().unwrap()]);
    let mut con = server.conn();
    assert!(
        server.log().contains("job 'users' writes into"),
        "{}",
        server.log()
    );

    q(&mut con, &["HSET", "user:1", "name", "ann", "age", "42"]);
    q(&mut con, &["HSET", "user:2", "name", "bob", "age", "7"]);
    q(
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
    q(&mut con, &["DEL", "user:2"]);
    q(&mut con, &["HSET", "user:4", "name", "dan", "age", "old"]);
    drained(&mut con, "users", Duration::from_secs(20));
    assert_eq!(
        rows(&conn, "SELECT id, name, age, typeof(age) FROM users"),
        [
            ["1", "ann", "42", "integer"],
            ["3", "O'Neil; DROP TABLE users;--", "30", "integer"],
        ]
    );
    let redis::Value::Array(dead) = q(&mut con, &["XRANGE", "{0}rgsync:users:dlq", "-", "+"])
    else {
        panic!("no dead-letter stream");
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(format!("{dead:?}").contains("user:4"), "{dead:?}");

    // The registrations come from the module's init and from the RDB: still one each.
    assert_eq!(registrations_of(&mut con, "rgsync_capture"), 1);
    assert_eq!(registrations_of(&mut con, "rgsync_writer"), 1);
    q(&mut con, &["DEBUG", "RELOAD"]);
    assert_eq!(registrations_of(&mut con, "rgsync_capture"), 1);
    assert_eq!(registrations_of(&mut con, "rgsync_writer"), 1);
    q(&mut con, &["HSET", "user:1", "age", "43"]);
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
