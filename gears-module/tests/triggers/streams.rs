//! Stream registrations: one consumer group each, failure policies, pending entries after a
//! reload, entries added while paused.

use std::time::Duration;

use gears_testkit::{run, Server};

use crate::{eventually, registration_id, MODULE};

#[test]
fn stream_registrations_each_read_every_entry_through_their_own_group() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    for i in 1..=10 {
        run(
            &mut con,
            &["XADD", "readings:1", "*", "value", &i.to_string()],
        );
    }
    eventually("all readings summed", || {
        run(&mut con, &["GET", "total:readings:1"]) == "55"
    });
    eventually("the second registration saw all", || {
        run(&mut con, &["GET", "seen:readings"]) == "10"
    });
    // Everything was acknowledged in both groups.
    for group in ["gears:stream_totals", "gears:stream_seen"] {
        let pending = run(&mut con, &["XPENDING", "readings:1", group]);
        assert!(pending.starts_with("[0,"), "{group}: {pending}");
    }
    let dump = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains("reader,StreamReader"), "{dump}");
    assert!(
        dump.contains(
            "batchSize,3,durationMS,100,stream,readings:*,trimStream,0,onFailedPolicy,continue"
        ),
        "{dump}"
    );
    assert!(
        run(&mut con, &["XLEN", "readings:1"]) == "10",
        "not trimmed by default"
    );
}

#[test]
fn stream_failure_policies() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    // continue: the bad entry is an error, the others flow and everything is acknowledged.
    for n in ["1", "x", "3"] {
        run(&mut con, &["XADD", "tasks:a", "*", "n", n]);
    }
    eventually("good tasks done", || {
        run(&mut con, &["GET", "tasks:done"]) == "4"
    });
    eventually("acknowledged", || {
        run(&mut con, &["XPENDING", "tasks:a", "gears:tasks"]).starts_with("[0,")
    });
    let dump = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    // Drains coalesce entries, so the trigger count varies; exactly one drain saw the failure.
    assert!(dump.contains("numFailures,1,"), "{dump}");

    // abort: the first failure stops the registration; its batch stays pending.
    run(&mut con, &["XADD", "jobs:a", "*", "n", "5"]);
    eventually("first job", || run(&mut con, &["GET", "jobs:done"]) == "5");
    run(&mut con, &["XADD", "jobs:a", "*", "n", "bad"]);
    eventually("aborted", || {
        run(&mut con, &["RG.DUMPREGISTRATIONS"]).contains("status,ABORTED")
    });
    run(&mut con, &["XADD", "jobs:a", "*", "n", "7"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        run(&mut con, &["GET", "jobs:done"]),
        "5",
        "nothing runs after abort"
    );
    assert!(
        run(&mut con, &["XPENDING", "jobs:a", "gears:jobs"]).starts_with("[1,"),
        "the failed entry stays pending"
    );
}

#[test]
fn pending_entries_are_processed_after_a_reload() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    // Simulate a crash between read and acknowledgement: the registration's consumer read the
    // entry (it is pending) but never acknowledged it. Prepared under another name and renamed
    // into place, so no `xadd` event fires the registration.
    run(&mut con, &["XADD", "staging:r", "*", "n", "2"]);
    run(
        &mut con,
        &["XGROUP", "CREATE", "staging:r", "gears:tasks", "0"],
    );
    run(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "gears:tasks",
            "gears",
            "STREAMS",
            "staging:r",
            ">",
        ],
    );
    run(&mut con, &["RENAME", "staging:r", "tasks:r"]);
    assert!(run(&mut con, &["XPENDING", "tasks:r", "gears:tasks"]).starts_with("[1,"));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(run(&mut con, &["GET", "tasks:done"]), "nil");
    // Save, flush and load the RDB: loading ends, pending entries are processed, nothing twice.
    assert_eq!(run(&mut con, &["DEBUG", "RELOAD"]), "OK");
    eventually("pending entry processed", || {
        run(&mut con, &["GET", "tasks:done"]) == "2"
    });
    eventually("acknowledged", || {
        run(&mut con, &["XPENDING", "tasks:r", "gears:tasks"]).starts_with("[0,")
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(run(&mut con, &["GET", "tasks:done"]), "2");
}

#[test]
fn review_regressions() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    // An XADD made by a sync flow (inside a notification) reaches stream registrations.
    run(&mut con, &["HSET", "user:1", "a", "b"]);
    eventually("the audit entry counted", || {
        run(&mut con, &["GET", "audit:seen"]) == "1"
    });
    // One consumer group per (function, ARGS): a second registration of it is refused.
    assert!(run(&mut con, &["RG.REGISTER", "stream_seen"]).contains("already reads these streams"));
    // Entries added while paused are drained on unpause.
    let tasks = registration_id(&mut con, "tasks");
    run(&mut con, &["RG.PAUSEREGISTRATIONS", &tasks]);
    run(&mut con, &["XADD", "tasks:p", "*", "n", "3"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(run(&mut con, &["GET", "tasks:done"]), "nil");
    run(&mut con, &["RG.UNPAUSEREGISTRATIONS", &tasks]);
    eventually("drained on unpause", || {
        run(&mut con, &["GET", "tasks:done"]) == "3"
    });
}
