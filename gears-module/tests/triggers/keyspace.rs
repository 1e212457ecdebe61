//! Keyspace triggers: `sync` inside the write (filters, MULTI, any bytes), `async_local`
//! with no loss and with the value at event time, `ARGS` registrations made at runtime.

use std::time::Duration;

use gears_testkit::{assert_replies, run, stream_entries, Server};

use crate::{eventually, MODULE};

#[test]
fn sync_trigger_runs_inside_the_write_with_filters() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    // The HSET and the XLEN are pipelined: the audit entry exists before HSET's reply.
    let (_, len): (i64, i64) = redis::pipe()
        .cmd("HSET")
        .arg("user:1")
        .arg("name")
        .arg("ann")
        .cmd("XLEN")
        .arg("audit")
        .query(&mut con)
        .unwrap();
    assert_eq!(len, 1);
    let audit = run(&mut con, &["XRANGE", "audit", "-", "+"]);
    assert!(audit.ends_with(",[key,user:1,event,hset]]]"), "{audit}");
    run(&mut con, &["HDEL", "user:1", "name"]); // event `hdel`: filtered out
    run(&mut con, &["SET", "user:2", "x"]); // event `set`: filtered out
    run(&mut con, &["HSET", "customer:1", "name", "x"]); // pattern mismatch
    assert_eq!(run(&mut con, &["XLEN", "audit"]), "1");
    // Inside MULTI the sync trigger runs with each write.
    run(&mut con, &["MULTI"]);
    run(&mut con, &["HSET", "user:3", "a", "1"]);
    run(&mut con, &["HSET", "user:4", "a", "1"]);
    run(&mut con, &["EXEC"]);
    assert_eq!(run(&mut con, &["XLEN", "audit"]), "3");
    // The native append refuses a key of another type, like XADD: the flow fails (its error
    // in the registration's stats), the write itself stands.
    run(&mut con, &["RENAME", "audit", "audit:old"]);
    run(&mut con, &["SET", "audit", "not a stream"]);
    assert_replies(
        &mut con,
        &[
            (&["HSET", "user:5", "a", "1"], "1"),
            (&["HGET", "user:5", "a"], "1"),
            (&["GET", "audit"], "not a stream"),
        ],
    );
    let dump = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains("WRONGTYPE"), "{dump}");
    // Keys and values with any bytes (NUL included) are appended as they are.
    run(&mut con, &["DEL", "audit"]);
    redis::cmd("HSET")
        .arg(b"user:\x00nul".as_slice())
        .arg("a")
        .arg("1")
        .query::<i64>(&mut con)
        .unwrap();
    let entry = stream_entries(&mut con, "audit");
    assert_eq!(entry.len(), 1, "{entry:?}");
    assert_eq!(entry[0].1[0].1, b"user:\x00nul".to_vec());
}

#[test]
fn async_local_trigger_loses_nothing() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("SET").arg(format!("event:{i}")).arg(i).ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    eventually("10000 events counted", || {
        run(&mut con, &["GET", "events:seen"]) == "10000"
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        run(&mut con, &["GET", "events:seen"]),
        "10000",
        "counted exactly once each"
    );
    let regs = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert!(
        regs.contains("mode,async_local,numTriggered,10000,numSuccess,10000,numFailures,0"),
        "{regs}"
    );
}

#[test]
fn async_executions_can_see_the_value_at_event_time() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    // Both writes happen before either background execution runs.
    run(&mut con, &["MULTI"]);
    run(&mut con, &["SET", "snap:1", "first"]);
    run(&mut con, &["SET", "snap:1", "second"]);
    run(&mut con, &["DEL", "snap:1"]);
    run(&mut con, &["EXEC"]);
    eventually("both logged", || {
        run(&mut con, &["LLEN", "snap:log"]) == "2"
    });
    assert_eq!(
        run(&mut con, &["LRANGE", "snap:log", "0", "-1"]),
        "[first,second]"
    );
}

#[test]
fn register_with_args_at_runtime() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    assert!(
        !run(&mut con, &["RG.DUMPREGISTRATIONS"]).contains("copy_writes"),
        "ARGS registrations wait for RG.REGISTER"
    );
    let id = run(&mut con, &["RG.REGISTER", "copy_writes", "ARGS", "order:*"]);
    assert!(id.starts_with(&"0".repeat(40)), "{id}");
    run(&mut con, &["SET", "order:1", "x"]);
    run(&mut con, &["SET", "other:1", "x"]);
    eventually("the copy", || {
        run(&mut con, &["LRANGE", "copies:order:*", "0", "-1"]) == "[order:1]"
    });
    assert!(
        run(&mut con, &["RG.DUMPREGISTRATIONS"]).contains(&format!("[id,{id},reader,KeysReader"))
    );
    assert_replies(
        &mut con,
        &[
            (
                &["RG.REGISTER", "copy_writes"],
                "ERR(usage: RG.REGISTER copy_writes ARGS <pattern>)",
            ),
            (&["RG.REGISTER", "nope"], "ERR(unknown function 'nope')"),
        ],
    );
    assert!(
        run(&mut con, &["RG.REGISTER", "copy_writes", "x"]).starts_with("ERR(usage: RG.REGISTER")
    );
    assert_eq!(run(&mut con, &["RG.UNREGISTER", &id]), "OK");
    run(&mut con, &["SET", "order:2", "x"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        run(&mut con, &["LRANGE", "copies:order:*", "0", "-1"]),
        "[order:1]"
    );
}
