//! Registrations inside a real redis-server: keyspace triggers in `sync` and `async_local`
//! mode, event filters, `RG.TRIGGER`, registration commands and statistics, 10k events with
//! no loss, and a replica that never fires until promoted.

mod common;

use std::time::{Duration, Instant};

use common::{run, Server};

const MODULE: &str = "gears_triggers";

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    assert_eq!(run(&mut con, &["HSET", "user:5", "a", "1"]), "1");
    assert_eq!(run(&mut con, &["HGET", "user:5", "a"]), "1");
    assert_eq!(run(&mut con, &["GET", "audit"]), "not a stream");
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
    type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);
    let entry: Vec<Entry> = redis::cmd("XRANGE")
        .arg("audit")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
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
fn command_triggers() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "hello", "bob"]),
        "[hello bob]"
    );
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "hello"]),
        "ERR(map: usage: RG.TRIGGER hello <name>)"
    );
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "sum", "1", "2", "39"]),
        "[42]"
    );
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "sum", "1", "x"]),
        "ERR(map: not a number: 'x')"
    );
    assert_eq!(
        run(&mut con, &["RG.TRIGGERONKEY", "hello", "somekey"]),
        "[hello somekey]"
    );
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "nope"]),
        "ERR(subcommand not found)"
    );
    assert!(run(&mut con, &["RG.TRIGGER"]).starts_with("ERR(wrong number of arguments"));
    // A sync trigger works inside MULTI; an async one is refused there.
    run(&mut con, &["MULTI"]);
    run(&mut con, &["RG.TRIGGER", "hello", "tx"]);
    assert_eq!(run(&mut con, &["EXEC"]), "[[hello tx]]");
    run(&mut con, &["MULTI"]);
    run(&mut con, &["RG.TRIGGER", "sum", "1"]);
    assert!(
        run(&mut con, &["EXEC"]).contains("can not run a non-sync execution inside a MULTI/LUA")
    );
    // Stream names and field names of any length and content, changing with every call (the
    // native append keeps Redis strings for names it sees again and again: never mixed up).
    let long = "f".repeat(100);
    let mut expected = Vec::new();
    for i in 0..200 {
        let (stream, field) = (format!("names:{}", i % 3), format!("field{i}"));
        let field = if i % 50 == 0 {
            format!("{long}{i}")
        } else {
            field
        };
        let id = run(
            &mut con,
            &[
                "RG.TRIGGER",
                "append",
                &stream,
                &field,
                &i.to_string(),
                "k",
                "v",
            ],
        );
        assert!(id.starts_with('[') && id.contains('-'), "{id}");
        expected.push((stream, field, i));
    }
    for s in 0..3 {
        let stream = format!("names:{s}");
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query(&mut con)
            .unwrap();
        let want: Vec<Vec<(String, String)>> = expected
            .iter()
            .filter(|(st, _, _)| *st == stream)
            .map(|(_, f, i)| vec![(f.clone(), i.to_string()), ("k".into(), "v".into())])
            .collect();
        let got: Vec<Vec<(String, String)>> = entries.into_iter().map(|(_, f)| f).collect();
        assert_eq!(got, want, "{stream}");
    }
    assert!(run(&mut con, &["RG.TRIGGER", "append", "s", "odd"]).contains("usage"));
    // RG.RUN refuses registrations.
    assert!(run(&mut con, &["RG.RUN", "hello"]).contains("is a registration"));
}

fn registration_id(con: &mut redis::Connection, function: &str) -> String {
    let dump = run(con, &["RG.DUMPREGISTRATIONS"]);
    let at = dump
        .find(&format!("PD,{function},"))
        .expect("registration listed");
    let start = dump[..at].rfind("[id,").expect("id") + 4;
    dump[start..].split(',').next().expect("id").to_string()
}

#[test]
fn registration_commands_and_stats() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    let functions = run(&mut con, &["RG.DUMPFUNCTIONS"]);
    assert!(
        functions.contains("[name,audit_trail,kind,registration,doc,Appends each `user:*` HSET"),
        "{functions}"
    );
    let hello = registration_id(&mut con, "hello");
    let audit = registration_id(&mut con, "audit_trail");
    run(&mut con, &["RG.TRIGGER", "hello", "a"]);
    run(&mut con, &["RG.TRIGGER", "hello"]);
    let dump = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert!(
        dump.contains("mode,sync,numTriggered,2,numSuccess,1,numFailures,1,numAborted,0"),
        "{dump}"
    );
    assert!(
        dump.contains("lastError,map: usage: RG.TRIGGER hello <name>"),
        "{dump}"
    );

    assert_eq!(
        run(&mut con, &["RG.PAUSEREGISTRATIONS", &audit, &hello]),
        "OK"
    );
    run(&mut con, &["HSET", "user:1", "a", "b"]);
    assert_eq!(
        run(&mut con, &["XLEN", "audit"]),
        "0",
        "paused registrations do not fire"
    );
    assert!(run(&mut con, &["RG.TRIGGER", "hello", "x"]).contains("is paused"));
    assert!(run(&mut con, &["RG.DUMPREGISTRATIONS"]).contains("status,PAUSED"));
    assert_eq!(
        run(&mut con, &["RG.UNPAUSEREGISTRATIONS", &audit, &hello]),
        "OK"
    );
    run(&mut con, &["HSET", "user:1", "a", "c"]);
    assert_eq!(run(&mut con, &["XLEN", "audit"]), "1");
    assert!(run(&mut con, &["RG.PAUSEREGISTRATIONS", &audit, "nope"])
        .contains("registration nope does not exist"));
    assert!(
        !run(&mut con, &["RG.DUMPREGISTRATIONS"]).contains("PAUSED"),
        "all or nothing"
    );

    assert_eq!(run(&mut con, &["RG.CLEARREGISTRATIONSSTATS"]), "OK");
    assert!(
        run(&mut con, &["RG.DUMPREGISTRATIONS"]).contains("mode,sync,numTriggered,0,numSuccess,0")
    );

    assert_eq!(run(&mut con, &["RG.UNREGISTER", &hello]), "OK");
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "hello", "x"]),
        "ERR(subcommand not found)"
    );
    assert_eq!(
        run(&mut con, &["RG.UNREGISTER", &hello]),
        "ERR(execution is not registered)"
    );
}

#[test]
fn replicas_hold_registrations_but_fire_only_once_promoted() {
    let master = Server::start(MODULE, &[]);
    let port = master.port.to_string();
    let mut replica = Server::try_start(MODULE, &[], &["--replicaof", "127.0.0.1", &port])
        .expect("replica starts");
    let mut m = master.conn();
    let mut r = replica.conn();
    eventually("replica in sync", || {
        run(&mut r, &["INFO", "replication"]).contains("master_link_status:up")
    });
    assert!(
        run(&mut r, &["RG.DUMPREGISTRATIONS"]).contains("audit_trail"),
        "the replica holds the registrations"
    );

    run(&mut m, &["HSET", "user:1", "name", "ann"]);
    for i in 0..100 {
        run(&mut m, &["SET", &format!("event:{i}"), "x"]);
    }
    eventually("master counted", || {
        run(&mut m, &["GET", "events:seen"]) == "100"
    });
    eventually("replica caught up", || {
        run(&mut r, &["GET", "events:seen"]) == "100"
    });
    std::thread::sleep(Duration::from_millis(300));
    // The replica applied the master's writes (the audit XADD, the INCRs) without firing.
    assert_eq!(run(&mut r, &["XLEN", "audit"]), "1");
    // The natively appended entry reached the replica with the master's id.
    assert_eq!(
        run(&mut r, &["XRANGE", "audit", "-", "+"]),
        run(&mut m, &["XRANGE", "audit", "-", "+"])
    );
    assert_eq!(run(&mut r, &["GET", "events:seen"]), "100");
    let dump = run(&mut r, &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains("numTriggered,0"), "{dump}");
    assert!(!dump.contains("numTriggered,1"), "{dump}");

    assert_eq!(run(&mut r, &["REPLICAOF", "NO", "ONE"]), "OK");
    run(&mut r, &["HSET", "user:2", "name", "bob"]);
    assert_eq!(
        run(&mut r, &["XLEN", "audit"]),
        "2",
        "a promoted replica fires"
    );
    assert!(replica.alive());
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
    assert_eq!(
        run(&mut con, &["RG.REGISTER", "copy_writes"]),
        "ERR(usage: RG.REGISTER copy_writes ARGS <pattern>)"
    );
    assert_eq!(
        run(&mut con, &["RG.REGISTER", "nope"]),
        "ERR(unknown function 'nope')"
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

/// Registers `copy_writes` with ARGS, pauses `hello`, unregisters `count_events`.
fn change_registrations(con: &mut redis::Connection) -> String {
    let copy = run(con, &["RG.REGISTER", "copy_writes", "ARGS", "order:*"]);
    let hello = registration_id(con, "hello");
    let counter = registration_id(con, "count_events");
    assert_eq!(run(con, &["RG.PAUSEREGISTRATIONS", &hello]), "OK");
    assert_eq!(run(con, &["RG.UNREGISTER", &counter]), "OK");
    copy
}

/// Each registration's id, function and status (statistics are not persisted, as in 1.x).
fn summary(dump: &str) -> Vec<String> {
    dump.split("[id,")
        .skip(1)
        .map(|r| {
            let id = r.split(',').next().unwrap_or("");
            let field = |name: &str| {
                r.split(&format!("{name},"))
                    .nth(1)
                    .and_then(|x| x.split([',', ']']).next())
                    .unwrap_or("")
                    .to_string()
            };
            format!("{id} {} {}", field("PD"), field("status"))
        })
        .collect()
}

/// The changes survived: same ids, still working, paused and unregistered as before.
fn assert_changes_kept(con: &mut redis::Connection, copy: &str, before: &str) {
    assert_eq!(
        summary(&run(con, &["RG.DUMPREGISTRATIONS"])),
        summary(before)
    );
    assert!(run(con, &["RG.DUMPREGISTRATIONS"]).contains(&format!("[id,{copy},reader,KeysReader")));
    assert!(run(con, &["RG.TRIGGER", "hello", "x"]).contains("is paused"));
    run(con, &["SET", "event:1", "x"]);
    run(con, &["SET", "order:9", "x"]);
    eventually("the ARGS registration still copies", || {
        run(con, &["LRANGE", "copies:order:*", "0", "-1"]).contains("order:9")
    });
    assert_eq!(
        run(con, &["GET", "events:seen"]),
        "nil",
        "count_events stays unregistered"
    );
}

#[test]
fn registration_changes_survive_debug_reload_and_restart() {
    let mut server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    let copy = change_registrations(&mut con);
    let before = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert_eq!(run(&mut con, &["DEBUG", "RELOAD"]), "OK");
    assert_changes_kept(&mut con, &copy, &before);

    run(&mut con, &["DEL", "copies:order:*"]);
    assert_eq!(run(&mut con, &["SAVE"]), "OK");
    let before = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    server.restart();
    let mut con = server.conn();
    assert_changes_kept(&mut con, &copy, &before);
}

#[test]
fn registration_changes_survive_an_aof_restart() {
    let mut server = Server::try_start(
        MODULE,
        &[],
        &["--appendonly", "yes", "--appendfsync", "always"],
    )
    .expect("starts");
    let mut con = server.conn();
    let copy = change_registrations(&mut con);
    let before = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    server.restart();
    let mut con = server.conn();
    assert_changes_kept(&mut con, &copy, &before);
}

#[test]
fn registration_changes_reach_replicas() {
    let master = Server::start(MODULE, &[]);
    let port = master.port.to_string();
    let mut m = master.conn();
    // A change before the replica exists travels with the full sync (RDB aux field)...
    let hello = registration_id(&mut m, "hello");
    run(&mut m, &["RG.PAUSEREGISTRATIONS", &hello]);
    let replica = Server::try_start(MODULE, &[], &["--replicaof", "127.0.0.1", &port])
        .expect("replica starts");
    let mut r = replica.conn();
    eventually("replica in sync", || {
        run(&mut r, &["INFO", "replication"]).contains("master_link_status:up")
    });
    eventually("paused on the replica", || {
        run(&mut r, &["RG.DUMPREGISTRATIONS"]).contains("status,PAUSED")
    });
    // ... and later changes are replicated as commands, with the same ids.
    let copy = run(&mut m, &["RG.REGISTER", "copy_writes", "ARGS", "order:*"]);
    eventually("registered on the replica", || {
        run(&mut r, &["RG.DUMPREGISTRATIONS"]).contains(&format!("[id,{copy},"))
    });
    assert_eq!(
        run(&mut r, &["RG.REGISTER", "copy_writes", "ARGS", "x:*"]),
        "ERR(You can't write against a read only replica.)",
        "clients cannot change a replica's registrations"
    );
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

/// A `sync` execution's native append (`RedisModule_StreamAdd`) wakes a client blocked in
/// `XREAD` on that stream at once, like `XADD` does — on a stream that exists and on one the
/// append creates.
#[test]
fn a_native_append_wakes_clients_blocked_on_the_stream() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    run(&mut con, &["XADD", "woken:old", "*", "a", "0"]);
    for stream in ["woken:old", "woken:new"] {
        let url = server.url();
        let reader = std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            let t = Instant::now();
            let v: redis::Value = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(10_000)
                .arg("STREAMS")
                .arg(stream)
                .arg("$")
                .query(&mut c)
                .unwrap();
            (common::show(&v), t.elapsed())
        });
        eventually("the reader to block", || {
            run(&mut con, &["INFO", "clients"]).contains("blocked_clients:1")
        });
        let sent = Instant::now();
        run(&mut con, &["RG.TRIGGER", "append", stream, "f", "1"]);
        let (entries, waited) = reader.join().unwrap();
        assert!(entries.contains("f,1"), "{stream}: {entries}");
        assert!(
            sent.elapsed() < Duration::from_secs(2) && waited < Duration::from_secs(5),
            "{stream}: woken only by its timeout ({waited:?})"
        );
    }
}
