//! `RG.TRIGGER` / `RG.TRIGGERONKEY` command triggers, the registration commands and their
//! statistics, and native stream appends waking blocked readers.

use std::time::{Duration, Instant};

use gears_testkit::{assert_replies, run, Server};

use crate::{eventually, registration_id, MODULE};

#[test]
fn command_triggers() {
    let server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    assert_replies(
        &mut con,
        &[
            (&["RG.TRIGGER", "hello", "bob"], "[hello bob]"),
            (
                &["RG.TRIGGER", "hello"],
                "ERR(map: usage: RG.TRIGGER hello <name>)",
            ),
            (&["RG.TRIGGER", "sum", "1", "2", "39"], "[42]"),
            (
                &["RG.TRIGGER", "sum", "1", "x"],
                "ERR(map: not a number: 'x')",
            ),
            (&["RG.TRIGGERONKEY", "hello", "somekey"], "[hello somekey]"),
            (&["RG.TRIGGER", "nope"], "ERR(subcommand not found)"),
        ],
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

    assert_replies(
        &mut con,
        &[
            (&["RG.UNREGISTER", &hello], "OK"),
            (&["RG.TRIGGER", "hello", "x"], "ERR(subcommand not found)"),
            (
                &["RG.UNREGISTER", &hello],
                "ERR(execution is not registered)",
            ),
        ],
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
            (gears_testkit::show(&v), t.elapsed())
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
