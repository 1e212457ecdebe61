//! Jobs as objects: persisted across SIGKILL (AOF, RDB preamble) with hidden credentials,
//! refused when bad, kept with their streams when removed and added again, read from the
//! config file, replicated to replicas that do not write.

use std::time::Duration;

use gears_testkit::db::{rows, sqlite};
use gears_testkit::rgsync::{self, drained, status, Job};
use gears_testkit::{eventually, ok, query, run, scratch, wait_until};

use crate::add_people;

/// Jobs survive a SIGKILL (AOF replay of RGSYNC.ADD, then an RDB preamble after a rewrite);
/// the connection password appears neither in RGSYNC.LIST nor in the log.
#[test]
fn jobs_persist_and_hide_credentials() {
    let mut server = rgsync::server().name("persist").aof().start();
    let db = server.dir.join("app.db");
    let conn = format!("Driver={{SQLite3}};Database={};Pwd=s3cr3t-pw", db.display());
    let mut con = server.conn();
    Job::new("users", "user:{id}", "users", &conn)
        .columns("name")
        .words(&["CREATE_TABLE", "yes", "DURATION", "10"])
        .add(&mut con);
    let list = format!("{:?}", query(&mut con, &["RGSYNC.LIST"]).unwrap());
    assert!(
        list.contains("Pwd=***") && !list.contains("s3cr3t"),
        "{list}"
    );
    assert!(Job::new("users", "user:{id}", "t", "x")
        .try_add(&mut con)
        .is_err());
    ok(&mut con, &["HSET", "user:1", "name", "a"]);
    drained(&mut con, "users", Duration::from_secs(10));
    for round in 0..2 {
        if round == 1 {
            ok(&mut con, &["BGREWRITEAOF"]);
            std::thread::sleep(Duration::from_millis(1500));
        }
        server.restart();
        con = server.conn();
        let list = format!("{:?}", query(&mut con, &["RGSYNC.LIST"]).unwrap());
        assert!(list.contains("user:{id}"), "round {round}: {list}");
        let key = format!("user:{}", round + 2);
        ok(&mut con, &["HSET", &key, "name", "b"]);
        drained(&mut con, "users", Duration::from_secs(10));
    }
    let got = rows(
        &format!("Driver={{SQLite3}};Database={}", db.display()),
        "SELECT id, name FROM users",
    );
    assert_eq!(got, [["1", "a"], ["2", "b"], ["3", "b"]]);
    assert!(
        !server.log().contains("s3cr3t"),
        "the password is in the log"
    );
    // Removing keeps the stream: adding the job again resumes.
    ok(&mut con, &["RGSYNC.REMOVE", "users"]);
    assert!(query(&mut con, &["RGSYNC.STATUS", "users"]).is_err());
}

/// Bad definitions are refused with a reason; nothing is registered.
#[test]
fn bad_jobs_are_refused() {
    let server = rgsync::server().name("refused").start();
    let mut con = server.conn();
    let job = |table| Job::new("j", "u:{id}", table, "Driver={SQLite3};Database=/tmp/x.db");
    for extra in [
        ["COLUMNS", "a\"b"],
        ["COLUMNS", "a;DROP TABLE t"],
        ["BATCH", "many"],
        ["NOPE", "1"],
    ] {
        let e = job("t").words(&extra).try_add(&mut con).unwrap_err();
        assert!(e.to_string().contains("invalid job"), "{e}");
    }
    assert!(job("t; DROP TABLE x").try_add(&mut con).is_err());
    let list: Vec<redis::Value> = redis::cmd("RGSYNC.LIST").query(&mut con).unwrap();
    assert!(list.is_empty());
}

/// The job's stream keeps its name when the job is removed and added again (the backlog
/// written meanwhile is applied), and a second stream of the job on the same shard — one that
/// came with a migrated slot; here made by hand with an old id — is applied on its own
/// checkpoint, not skipped as if it were below the first stream's.
#[test]
fn streams_keep_their_names_and_each_has_its_checkpoint() {
    let dir = scratch("two-streams-db");
    let conn = sqlite(&dir);
    let server = rgsync::server().name("two-streams").start();
    let mut con = server.conn();
    add_people(&mut con, &conn, "people");
    ok(&mut con, &["HSET", "person:eu:1", "name", "ann"]);
    drained(&mut con, "people", Duration::from_secs(10));
    // Removed: writes go nowhere; added again: the same stream, so what is written after
    // the re-add is applied, and the earlier rows stay.
    ok(&mut con, &["RGSYNC.REMOVE", "people"]);
    ok(&mut con, &["HSET", "person:eu:2", "name", "bob"]);
    add_people(&mut con, &conn, "people");
    ok(&mut con, &["HSET", "person:eu:3", "name", "cat"]);
    drained(&mut con, "people", Duration::from_secs(10));
    let streams: Vec<String> = redis::cmd("KEYS")
        .arg("*rgsync:people")
        .query(&mut con)
        .unwrap();
    assert_eq!(streams, ["{0}rgsync:people"]);
    // A second stream whose entry is older than the first stream's checkpoint.
    ok(
        &mut con,
        &[
            "XADD",
            "{7}rgsync:people",
            "1-1",
            "k",
            "person:eu:77",
            "=name",
            "moved",
        ],
    );
    ok(&mut con, &["HSET", "person:eu:4", "name", "dan"]);
    let mut got = Vec::new();
    wait_until(Duration::from_secs(10), || {
        got = rows(&conn, "SELECT region, id, name FROM people");
        got.len() == 4 && got.iter().any(|r| r[1] == "77")
    });
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        [
            vec![s("eu"), s("1"), s("ann")],
            vec![s("eu"), s("3"), s("cat")],
            vec![s("eu"), s("4"), s("dan")],
            vec![s("eu"), s("77"), s("moved")],
        ]
    );
    let checkpoints = rows(
        &conn,
        "SELECT stream FROM rgsync_checkpoint WHERE job = 'people'",
    );
    assert_eq!(
        checkpoints,
        [vec![s("{0}rgsync:people")], vec![s("{7}rgsync:people")]]
    );
    // The change is in the stream within the client's own command: inside one MULTI (no
    // writer runs in between), the stream is one entry longer right after the HSET.
    let (before, after): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("XLEN")
        .arg("{0}rgsync:people")
        .cmd("HSET")
        .arg("person:eu:5")
        .arg("name")
        .arg("eve")
        .ignore()
        .cmd("XLEN")
        .arg("{0}rgsync:people")
        .query(&mut con)
        .unwrap();
    assert_eq!(after, before + 1);
}

/// A job from the config file given at load; `expired` keys are deleted from the table.
#[test]
fn config_file_job_and_expired_keys() {
    let dir = scratch("config-file-db");
    let conn = sqlite(&dir);
    let file = dir.join("rgsync.conf");
    std::fs::write(
        &file,
        format!(
            "# jobs\nsessions KEY session:{{id}} TABLE sessions COLUMNS \"user hits:integer\" CONNECTION \"{conn}\" CREATE_TABLE yes DURATION 10 EVENTS expired\n"
        ),
    )
    .unwrap();
    let server = rgsync::server()
        .name("config-file")
        .module_args(&["rgsync.config".as_ref(), file.as_os_str()])
        .start();
    let mut con = server.conn();
    ok(&mut con, &["HSET", "session:a", "user", "ann", "hits", "3"]);
    ok(&mut con, &["HSET", "session:b", "user", "bob", "hits", "1"]);
    ok(&mut con, &["PEXPIRE", "session:b", "50"]);
    drained(&mut con, "sessions", Duration::from_secs(10));
    let mut got = Vec::new();
    let expired = wait_until(Duration::from_secs(10), || {
        let _: Option<String> = redis::cmd("GET").arg("session:b").query(&mut con).unwrap();
        drained(&mut con, "sessions", Duration::from_secs(10));
        got = rows(&conn, "SELECT id, user, hits FROM sessions");
        got == [["a", "ann", "3"]]
    });
    assert!(expired, "{got:?}");
    let list = format!("{:?}", query(&mut con, &["RGSYNC.LIST"]).unwrap());
    assert!(
        list.contains("hset,hincrby,hincrbyfloat,del,rename_from,rename_to,expired"),
        "{list}"
    );
}

/// `RGSYNC.ADD`/`REMOVE` reach a replica (live and by full sync); the replica captures
/// nothing (its copy of the stream comes from the primary) and writes nothing.
#[test]
fn jobs_replicate_and_replicas_do_not_write() {
    let primary = rgsync::server().name("repl-primary").start();
    let mut p = primary.conn();
    let conn = sqlite(&primary.dir);
    let job = |name: &str, key: &str| {
        Job::new(name, key, name, &conn)
            .columns("a")
            .opt("CREATE_TABLE", "yes")
            .opt("DURATION", "5")
    };
    job("early", "e:{id}").add(&mut p);
    let replica = rgsync::server()
        .name("repl-replica")
        .replica_of(&primary)
        .start();
    let mut r = replica.conn();
    eventually(Duration::from_secs(10), "the replica in sync", || {
        run(&mut r, &["INFO", "replication"]).contains("master_link_status:up")
    });
    job("late", "l:{id}").add(&mut p);
    ok(&mut p, &["HSET", "e:1", "a", "x"]);
    drained(&mut p, "early", Duration::from_secs(10));
    ok(&mut p, &["WAIT", "1", "2000"]);
    let list = format!("{:?}", query(&mut r, &["RGSYNC.LIST"]).unwrap());
    assert!(list.contains("e:{id}") && list.contains("l:{id}"), "{list}");
    let st = status(&mut r, "early");
    assert_eq!(st["captured"], "0", "the replica does not capture: {st:?}");
    assert_eq!(st["rows"], "0", "the replica does not write: {st:?}");
    assert_eq!(rows(&conn, "SELECT id, a FROM early"), [["1", "x"]]);
    ok(&mut p, &["RGSYNC.REMOVE", "late"]);
    ok(&mut p, &["WAIT", "1", "2000"]);
    let list = format!("{:?}", query(&mut r, &["RGSYNC.LIST"]).unwrap());
    assert!(!list.contains("l:{id}"), "{list}");
}
