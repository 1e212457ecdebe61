//! The example modules under `examples/`, each loaded alone into a real redis-server and
//! driven the way their docs say.

use std::time::Duration;

use gears_testkit::{assert_replies, run, Server};

fn eventually(what: &str, check: impl FnMut() -> bool) {
    gears_testkit::eventually(Duration::from_secs(10), what, check);
}

#[test]
fn city_stats_group_aggregate_and_count() {
    let server = Server::start("gears_cities", &[]);
    let mut con = server.conn();
    for (name, city, age) in [
        ("ann", "paris", "31"),
        ("bob", "rome", "45"),
        ("cid", "paris", "27"),
    ] {
        run(
            &mut con,
            &["HSET", &format!("user:{name}"), "city", city, "age", age],
        );
    }
    run(&mut con, &["SET", "user:not-a-hash", "x"]);
    let by_city = "[[[paris,2],[rome,1]],[]]";
    assert_eq!(run(&mut con, &["RG.RUN", "users_per_city"]), by_city);
    assert_eq!(run(&mut con, &["RG.RUN", "city_counts"]), by_city);
    // The string key has no age: an error entry, the hashes still count.
    assert_replies(
        &mut con,
        &[
            (
                &["RG.RUN", "average_age_per_city"],
                "[[[paris,29],[rome,45]],[map: user:not-a-hash has no age]]",
            ),
            (&["RG.RUN", "count_keys", "ARGS", "user:*"], "[[4],[]]"),
        ],
    );
}

#[test]
fn audit_trail_is_written_with_each_change() {
    let server = Server::start("gears_audit", &[]);
    let mut con = server.conn();
    run(&mut con, &["HSET", "user:1", "name", "ann", "city", "rome"]);
    run(&mut con, &["HDEL", "user:1", "city"]);
    run(&mut con, &["SET", "user:2", "a string: not audited"]);
    run(&mut con, &["DEL", "user:1"]);
    // Inside the command: the entries are there when the replies arrive, in order.
    let entries = run(&mut con, &["XRANGE", "{user:1}:audit", "-", "+"]);
    let events: Vec<&str> = entries
        .split("[event,")
        .skip(1)
        .map(|e| e.split(']').next().unwrap_or(""))
        .collect();
    assert_eq!(
        events,
        [
            "hset,state,city=rome&name=ann",
            "hdel,state,name=ann",
            "del,state,-"
        ],
        "{entries}"
    );
    assert_eq!(run(&mut con, &["EXISTS", "{user:2}:audit"]), "0");
    // MULTI/EXEC: the write and its entry commit together.
    run(&mut con, &["MULTI"]);
    run(&mut con, &["HSET", "user:3", "name", "cid"]);
    run(&mut con, &["EXEC"]);
    assert_eq!(run(&mut con, &["XLEN", "{user:3}:audit"]), "1");
}

#[test]
fn stream_processor_keeps_statistics_in_the_background() {
    let server = Server::start("gears_sensors", &[]);
    let mut con = server.conn();
    for t in ["21.5", "19", "23.25", "warm", "20"] {
        run(&mut con, &["XADD", "sensor:7", "*", "temp", t]);
    }
    eventually("all readings processed", || {
        run(&mut con, &["HGET", "{sensor:7}:stats", "count"]) == "4"
    });
    assert_eq!(
        run(
            &mut con,
            &["HMGET", "{sensor:7}:stats", "min", "max", "sum"]
        ),
        "[19,23.25,83.75]"
    );
    // The bad reading is reported, not silently dropped; processed entries are trimmed.
    let dump = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains("temp is not a number: 'warm'"), "{dump}");
    eventually("stream trimmed", || {
        run(&mut con, &["XLEN", "sensor:7"]) == "0"
    });
}

#[test]
fn trigger_commands() {
    let server = Server::start("gears_commands", &[]);
    let mut con = server.conn();
    assert_eq!(
        run(&mut con, &["RG.TRIGGER", "greet", "ann"]),
        "[hello ann]"
    );
    run(&mut con, &["RG.TRIGGER", "greet", "bob"]);
    assert_replies(
        &mut con,
        &[
            (&["GET", "greetings"], "2"),
            (&["RG.TRIGGERONKEY", "bump", "user:1", "visits", "5"], "[5]"),
            (&["RG.TRIGGERONKEY", "bump", "user:1", "visits"], "[6]"),
        ],
    );
    let err = run(
        &mut con,
        &["RG.TRIGGERONKEY", "bump", "user:1", "visits", "x"],
    );
    assert!(err.contains("n must be an integer, got 'x'"), "{err}");
    let err = run(&mut con, &["RG.TRIGGER", "greet"]);
    assert!(err.contains("usage: RG.TRIGGER greet <name>"), "{err}");
}
