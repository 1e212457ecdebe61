//! The rgsync module in a real redis-server writing to real databases: an SQLite file,
//! MariaDB and PostgreSQL (started by scripts/db.sh; a server that does not answer fails the
//! test with a message). Every test compares the full contents of the target table.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use redis::Connection;

fn q(con: &mut Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

fn ok(con: &mut Connection, args: &[&str]) {
    q(con, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

fn add_people(con: &mut Connection, conn: &str, table: &str, extra: &[&str]) {
    let mut args = vec![
        "RGSYNC.ADD",
        "people",
        "KEY",
        "person:{region}:{id:integer}",
        "TABLE",
        table,
        "COLUMNS",
        "name age:integer score:float born=born_at:timestamp",
        "CONNECTION",
        conn,
        "CREATE_TABLE",
        "yes",
        "DURATION",
        "20",
        "EVENTS",
        "hdel",
        "BACKOFF",
        "10",
        "MAX_ATTEMPTS",
        "2",
    ];
    args.extend_from_slice(extra);
    ok(con, &args);
}

fn xrange(con: &mut Connection, stream: &str) -> Vec<Vec<String>> {
    let v: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap();
    v.into_iter()
        .map(|(_, f)| f.into_iter().flat_map(|(a, b)| [a, b]).collect())
        .collect()
}

/// `HSET <prefix>:<i> <field> <value>` for each `(i, value)`, in one pipeline.
fn hset_each<V: redis::ToRedisArgs>(
    con: &mut Connection,
    prefix: &str,
    field: &str,
    items: impl IntoIterator<Item = (usize, V)>,
) {
    let mut pipe = redis::pipe();
    for (i, value) in items {
        pipe.cmd("HSET")
            .arg(format!("{prefix}:{i}"))
            .arg(field)
            .arg(value)
            .ignore();
    }
    pipe.query::<()>(con).unwrap();
}

const EVIL: &str = "x'); DROP TABLE people;--";

/// Upserts, partial updates, `HDEL`, `DEL`, `HINCRBY[FLOAT]`, `RENAME`, every `#` op with and
/// without acks and a bad one, composite keys, typed columns, a conversion failure, injection
/// attempts in keys and values.
fn ops_end_to_end(conn: &str, table: &str) {
    let server = Server::start(&format!("ops-{table}"), &[], &[]);
    let mut con = server.conn();
    let db_table = table;
    let qt = |s: &str| {
        if conn.contains("MariaDB") {
            format!("`{s}`")
        } else {
            format!("\"{s}\"")
        }
    };
    exec_drop(conn, &qt(db_table));
    add_people(&mut con, conn, table, &[]);
    let evil_key = format!("person:{EVIL}:8");
    let script: Vec<Vec<&str>> = vec![
        vec![
            "HSET",
            "person:eu:1",
            "name",
            "ann",
            "age",
            "31",
            "score",
            "1.5",
            "born",
            "2000-01-02",
        ],
        vec![
            "HSET",
            "person:eu:2",
            "name",
            "bob",
            "age",
            "40",
            "#",
            "=a1",
        ],
        vec!["HSET", "person:eu:1", "age", "32"],
        vec!["HSET", "person:us:3", "name", "cat", "age", "20"],
        vec!["HSET", "person:us:3", "#", "~a3"],
        vec!["HSET", "person:eu:4", "name", "dan", "#", "+a4"],
        vec!["HSET", "person:eu:5", "name", "eve"],
        vec!["HSET", "person:eu:5", "#", "-a5"],
        vec!["DEL", "person:eu:2"],
        vec!["HDEL", "person:eu:1", "score"],
        vec!["HSET", "person:eu:6", "name", EVIL, "age", "1"],
        vec!["HSET", &evil_key, "name", "y"],
        vec!["HSET", "person:eu:9", "age", "notanumber", "#", "=a9"],
        vec!["HSET", "person:eu:10", "name", "zed", "born", "1700000000"],
        // Field writes other than HSET: the row follows the hash.
        vec!["HINCRBY", "person:eu:6", "age", "5"],
        vec!["HINCRBYFLOAT", "person:eu:10", "score", "2.25"],
        // A rename moves the row.
        vec!["HSET", "person:us:11", "name", "ren", "age", "7"],
        vec!["RENAME", "person:us:11", "person:us:12"],
        // A `#` that is no op: not synced, dead-lettered with its error.
        vec!["HSET", "person:eu:13", "name", "bad", "#", "*oops"],
    ];
    for cmd in &script {
        ok(&mut con, cmd);
    }
    drained(&mut con, "people", Duration::from_secs(20));
    // Redis side: `#` never stays, `~` and `-` deleted the keys, `+` kept it.
    let h: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg("person:eu:4")
        .query(&mut con)
        .unwrap();
    assert_eq!(h.len(), 1, "{h:?}");
    let exists: (i64, i64, i64) = redis::pipe()
        .cmd("EXISTS")
        .arg("person:us:3")
        .cmd("EXISTS")
        .arg("person:eu:5")
        .cmd("HEXISTS")
        .arg("person:eu:2")
        .arg("#")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, (0, 0, 0));
    // Acks.
    for (stream, status) in [
        ("{person:eu:2}a1", "done"),
        ("{person:eu:4}a4", "done"),
        ("{person:eu:5}a5", "done"),
        ("{person:us:3}a3", "done"),
        ("{person:eu:9}a9", "failed"),
    ] {
        let entries = xrange(&mut con, stream);
        assert_eq!(entries.len(), 1, "{stream}");
        assert_eq!(
            entries[0][..2],
            ["status".to_string(), status.to_string()],
            "{stream}"
        );
    }
    // A failed ack says why.
    let failed = xrange(&mut con, "{person:eu:9}a9");
    assert_eq!(failed[0][2], "error");
    assert!(
        failed[0][3].contains("cannot convert 'notanumber' to integer"),
        "{failed:?}"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg("{person:eu:2}a1")
        .query(&mut con)
        .unwrap();
    assert!(ttl > 3000, "ack streams expire after an hour");
    // The dead letters keep their error and the original change: the writer's conversion
    // failure, and the capture's bad `#` (which also left the hash, without its `#`).
    let dlq = xrange(&mut con, "{0}rgsync:people:dlq");
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    let joined = |key: &str| {
        dlq.iter()
            .map(|e| e.join(" "))
            .find(|e| e.contains(key))
            .unwrap_or_else(|| panic!("no dead letter for {key}: {dlq:?}"))
    };
    let conversion = joined("person:eu:9");
    assert!(
        conversion.contains("cannot convert 'notanumber' to integer"),
        "{conversion}"
    );
    let control = joined("person:eu:13");
    assert!(control.starts_with("id capture error "), "{control}");
    assert!(control.contains("'#' must start with one of"), "{control}");
    assert!(
        control.contains("# *oops") && control.contains("bad"),
        "{control}"
    );
    let h: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg("person:eu:13")
        .query(&mut con)
        .unwrap();
    assert_eq!(h, BTreeMap::from([("name".to_string(), "bad".to_string())]));
    // The whole table.
    let got = rows(
        conn,
        &format!(
            "SELECT {}, {}, {}, {}, {}, {} FROM {}",
            qt("region"),
            qt("id"),
            qt("name"),
            qt("age"),
            qt("score"),
            qt("born_at"),
            qt(db_table)
        ),
    );
    let null = "NULL".to_string();
    let s = |x: &str| x.to_string();
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(
        got[0][..5],
        [s("eu"), s("1"), s("ann"), s("32"), null.clone()]
    );
    assert!(got[0][5].starts_with("2000-01-02 00:00:00"), "{:?}", got[0]);
    assert_eq!(got[1][..4], [s("eu"), s("10"), s("zed"), null.clone()]);
    assert_eq!(got[1][4].parse::<f64>().ok(), Some(2.25), "{:?}", got[1]);
    assert!(got[1][5].starts_with("2023-11-14 22:13:20"), "{:?}", got[1]);
    assert_eq!(got[2][..4], [s("eu"), s("5"), s("eve"), null.clone()]);
    assert_eq!(got[3][..4], [s("eu"), s("6"), s(EVIL), s("6")]);
    assert_eq!(got[4][..4], [s("us"), s("12"), s("ren"), s("7")]);
    assert_eq!(got[5][..3], [s(EVIL), s("8"), s("y")]);
    let st = status(&mut con, "people");
    assert_eq!(st["dead_letters"], "2");
    assert_eq!(st["capture_failures"], "1");
}

fn exec_drop(conn: &str, quoted: &str) {
    exec(conn, &format!("DROP TABLE IF EXISTS {quoted}"));
}

#[test]
fn sqlite_ops_acks_composite_typed_injection() {
    let dir = scratch("sqlite-ops-db");
    ops_end_to_end(&sqlite(&dir), "people");
}

#[test]
fn mariadb_ops_acks_composite_typed_injection() {
    ops_end_to_end(MARIADB, &unique("people_ops"));
}

#[test]
fn postgres_ops_acks_composite_typed_injection() {
    ops_end_to_end(POSTGRES, &unique("people_ops"));
}

/// A tiny deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 10k writes (upserts, partial updates, deletes) over 500 keys; the table ends exactly as
/// the final Redis state.
fn ten_thousand(conn: &str, table: &str, coalesce: &str) {
    let server = Server::start(&format!("10k-{table}"), &[], &[]);
    let mut con = server.conn();
    let quote = |s: &str| {
        if conn.contains("MariaDB") {
            format!("`{s}`")
        } else {
            format!("\"{s}\"")
        }
    };
    exec_drop(conn, &quote(table));
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "users",
            "KEY",
            "user:{id:integer}",
            "TABLE",
            table,
            "COLUMNS",
            "name age:integer",
            "CONNECTION",
            conn,
            "CREATE_TABLE",
            "yes",
            "BATCH",
            "500",
            "DURATION",
            "20",
            "COALESCE",
            coalesce,
        ],
    );
    let mut model: BTreeMap<u64, BTreeMap<&str, String>> = BTreeMap::new();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut pipe = redis::pipe();
    for i in 0..10_000u64 {
        let id = rng.next() % 500;
        let key = format!("user:{id}");
        match rng.next() % 20 {
            0 | 1 => {
                pipe.cmd("DEL").arg(&key).ignore();
                model.remove(&id);
            }
            2 => {
                pipe.cmd("HSET").arg(&key).arg("age").arg(i).ignore();
                model.entry(id).or_default().insert("age", i.to_string());
            }
            _ => {
                let name = format!("n{i}");
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg("name")
                    .arg(&name)
                    .arg("age")
                    .arg(i)
                    .ignore();
                let e = model.entry(id).or_default();
                e.insert("name", name);
                e.insert("age", i.to_string());
            }
        }
        if i % 1000 == 999 {
            pipe.query::<()>(&mut con).unwrap();
            pipe = redis::pipe();
        }
    }
    drained(&mut con, "users", Duration::from_secs(60));
    let expected: Vec<Vec<String>> = {
        let mut v: Vec<Vec<String>> = model
            .iter()
            .map(|(id, f)| {
                vec![
                    id.to_string(),
                    f.get("name").cloned().unwrap_or_else(|| "NULL".into()),
                    f.get("age").cloned().unwrap_or_else(|| "NULL".into()),
                ]
            })
            .collect();
        v.sort();
        v
    };
    let got = rows(
        conn,
        &format!(
            "SELECT {}, {}, {} FROM {}",
            quote("id"),
            quote("name"),
            quote("age"),
            quote(table)
        ),
    );
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    let st = status(&mut con, "users");
    assert_eq!(st["dead_letters"], "0", "{st:?}");
    // BATCH 500: no batch took more (each captured change is in exactly one batch).
    let captured: u64 = st["captured"].parse().unwrap();
    let batches: u64 = st["batches"].parse().unwrap();
    assert!(captured > 9_000, "{st:?}");
    assert!(batches * 500 >= captured, "{st:?}");
}

#[test]
fn sqlite_10k_writes_end_exact() {
    let dir = scratch("sqlite-10k-db");
    ten_thousand(&sqlite(&dir), "users", "no");
}

#[test]
fn mariadb_10k_writes_end_exact_coalesced() {
    ten_thousand(MARIADB, &unique("users_10k"), "yes");
}

#[test]
fn postgres_10k_writes_end_exact() {
    ten_thousand(POSTGRES, &unique("users_10k"), "no");
}

/// Jobs survive a SIGKILL (AOF replay of RGSYNC.ADD, then an RDB preamble after a rewrite);
/// the connection password appears neither in RGSYNC.LIST nor in the log.
#[test]
fn jobs_persist_and_hide_credentials() {
    let mut server = Server::start(
        "persist",
        &["--appendonly", "yes", "--appendfsync", "always"],
        &[],
    );
    let db = server.dir.join("app.db");
    let conn = format!("Driver={{SQLite3}};Database={};Pwd=s3cr3t-pw", db.display());
    let mut con = server.conn();
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "users",
            "KEY",
            "user:{id}",
            "TABLE",
            "users",
            "COLUMNS",
            "name",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "DURATION",
            "10",
        ],
    );
    let list = format!("{:?}", q(&mut con, &["RGSYNC.LIST"]).unwrap());
    assert!(
        list.contains("Pwd=***") && !list.contains("s3cr3t"),
        "{list}"
    );
    assert!(q(
        &mut con,
        &[
            "RGSYNC.ADD",
            "users",
            "KEY",
            "user:{id}",
            "TABLE",
            "t",
            "CONNECTION",
            "x"
        ]
    )
    .is_err());
    ok(&mut con, &["HSET", "user:1", "name", "a"]);
    drained(&mut con, "users", Duration::from_secs(10));
    for round in 0..2 {
        if round == 1 {
            ok(&mut con, &["BGREWRITEAOF"]);
            std::thread::sleep(Duration::from_millis(1500));
        }
        server.kill_and_restart();
        con = server.conn();
        let list = format!("{:?}", q(&mut con, &["RGSYNC.LIST"]).unwrap());
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
    assert!(q(&mut con, &["RGSYNC.STATUS", "users"]).is_err());
}

/// Bad definitions are refused with a reason; nothing is registered.
#[test]
fn bad_jobs_are_refused() {
    let server = Server::start("refused", &[], &[]);
    let mut con = server.conn();
    let base = [
        "RGSYNC.ADD",
        "j",
        "KEY",
        "u:{id}",
        "TABLE",
        "t",
        "CONNECTION",
        "Driver={SQLite3};Database=/tmp/x.db",
    ];
    for extra in [
        vec!["COLUMNS", "a\"b"],
        vec!["COLUMNS", "a;DROP TABLE t"],
        vec!["BATCH", "many"],
        vec!["NOPE", "1"],
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter());
        let e = q(&mut con, &args).unwrap_err().to_string();
        assert!(e.contains("invalid job"), "{e}");
    }
    let mut bad_table = base.to_vec();
    bad_table[5] = "t; DROP TABLE x";
    assert!(q(&mut con, &bad_table).is_err());
    let list: Vec<redis::Value> = redis::cmd("RGSYNC.LIST").query(&mut con).unwrap();
    assert!(list.is_empty());
}

/// `MAX_BACKLOG`: while that many changes wait for the database, writes to the job's keys are
/// refused with a clear error (other keys are not); once it drains, writes are accepted again.
#[test]
fn max_backlog_refuses_writes_until_drained() {
    let server = Server::start("backlog", &[], &[]);
    let mut con = server.conn();
    // The database file's directory does not exist yet: the database is "down".
    let dbdir = server.dir.join("later");
    let conn = format!("Driver={{SQLite3}};Database={}/app.db", dbdir.display());
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "users",
            "KEY",
            "user:{id}",
            "TABLE",
            "users",
            "COLUMNS",
            "name",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "MAX_BACKLOG",
            "50",
            "DURATION",
            "10",
            "BACKOFF",
            "20",
            "MAX_BACKOFF",
            "100",
        ],
    );
    for i in 0..50 {
        ok(&mut con, &["HSET", &format!("user:{i}"), "name", "x"]);
    }
    let err = q(&mut con, &["HSET", "user:50", "name", "x"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("MAX_BACKLOG 50") && err.contains("refused"),
        "{err}"
    );
    assert!(q(&mut con, &["HINCRBY", "user:1", "n", "1"]).is_err());
    ok(&mut con, &["HSET", "other:1", "name", "x"]); // not a job key
    ok(&mut con, &["SET", "user:str", "x"]); // not a hash write
    let exists: i64 = redis::cmd("EXISTS").arg("user:50").query(&mut con).unwrap();
    assert_eq!(exists, 0, "the refused write did not happen");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = status(&mut con, "users");
        if st["state"] == "retrying" || std::time::Instant::now() > deadline {
            break st;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st["backlog"], "50");
    assert_eq!(st["state"], "retrying", "{st:?}");
    std::fs::create_dir_all(&dbdir).unwrap();
    drained(&mut con, "users", Duration::from_secs(20));
    ok(&mut con, &["HSET", "user:50", "name", "x"]);
    drained(&mut con, "users", Duration::from_secs(20));
    let got = rows(&conn, "SELECT COUNT(*) FROM users");
    assert_eq!(got, [["51"]]);
}

/// `RGSYNC.WRITETHROUGH`: the reply comes once the row is in the database (or with the
/// error); the server keeps serving other clients meanwhile; a timeout says so.
#[test]
fn write_through_replies_after_the_commit() {
    let server = Server::start("write-through", &[], &[]);
    let mut con = server.conn();
    let conn = sqlite(&server.dir);
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "users",
            "KEY",
            "user:{id:integer}",
            "TABLE",
            "users",
            "COLUMNS",
            "name age:integer",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "DURATION",
            "5",
        ],
    );
    let reply: String = redis::cmd("RGSYNC.WRITETHROUGH")
        .arg(&["user:1", "name", "ann", "age", "31"])
        .query(&mut con)
        .unwrap();
    assert_eq!(reply, "OK");
    assert_eq!(
        rows(&conn, "SELECT id, name, age FROM users"),
        [["1", "ann", "31"]]
    );
    let err = q(&mut con, &["RGSYNC.WRITETHROUGH", "user:2", "age", "old"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not written") && err.contains("cannot convert 'old'"),
        "{err}"
    );
    ok(&mut con, &["RGSYNC.WRITETHROUGH", "user:1", "#", "~"]);
    assert!(rows(&conn, "SELECT id FROM users").is_empty());
    let exists: i64 = redis::cmd("EXISTS").arg("user:1").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    assert!(q(&mut con, &["RGSYNC.WRITETHROUGH", "nojob:1", "a", "b"]).is_err());
    // A database that does not answer: the client waits, the server does not.
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "down",
            "KEY",
            "down:{id}",
            "TABLE",
            "t",
            "CONNECTION",
            "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Uid=x;",
            "DURATION",
            "5",
        ],
    );
    let url = server.url();
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let t = std::time::Instant::now();
        let r = q(
            &mut c,
            &["RGSYNC.WRITETHROUGH", "down:1", "a", "b", "TIMEOUT", "1500"],
        );
        (r.unwrap_err().to_string(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = std::time::Instant::now();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "the server was blocked"
    );
    let (err, waited) = waiter.join().unwrap();
    assert!(err.contains("timeout after 1500 ms"), "{err}");
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    ok(&mut con, &["RGSYNC.REMOVE", "down"]);
}

/// The job's stream keeps its name when the job is removed and added again (the backlog
/// written meanwhile is applied), and a second stream of the job on the same shard — one that
/// came with a migrated slot; here made by hand with an old id — is applied on its own
/// checkpoint, not skipped as if it were below the first stream's.
#[test]
fn streams_keep_their_names_and_each_has_its_checkpoint() {
    let dir = scratch("two-streams-db");
    let conn = sqlite(&dir);
    let server = Server::start("two-streams", &[], &[]);
    let mut con = server.conn();
    add_people(&mut con, &conn, "people", &[]);
    ok(&mut con, &["HSET", "person:eu:1", "name", "ann"]);
    drained(&mut con, "people", Duration::from_secs(10));
    // Removed: writes go nowhere; added again: the same stream, so what is written after
    // the re-add is applied, and the earlier rows stay.
    ok(&mut con, &["RGSYNC.REMOVE", "people"]);
    ok(&mut con, &["HSET", "person:eu:2", "name", "bob"]);
    add_people(&mut con, &conn, "people", &[]);
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
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let sql = "SELECT region, id, name FROM people";
    let want = |rows: &[Vec<String>]| rows.len() == 4 && rows.iter().any(|r| r[1] == "77");
    let mut got = rows(&conn, sql);
    while !want(&got) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        got = rows(&conn, sql);
    }
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
    let server = Server::start(
        "config-file",
        &[],
        &["rgsync.config", file.to_str().unwrap()],
    );
    let mut con = server.conn();
    ok(&mut con, &["HSET", "session:a", "user", "ann", "hits", "3"]);
    ok(&mut con, &["HSET", "session:b", "user", "bob", "hits", "1"]);
    ok(&mut con, &["PEXPIRE", "session:b", "50"]);
    drained(&mut con, "sessions", Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let _: Option<String> = redis::cmd("GET").arg("session:b").query(&mut con).unwrap();
        drained(&mut con, "sessions", Duration::from_secs(10));
        let got = rows(&conn, "SELECT id, user, hits FROM sessions");
        if got == [["a", "ann", "3"]] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = format!("{:?}", q(&mut con, &["RGSYNC.LIST"]).unwrap());
    assert!(
        list.contains("hset,hincrby,hincrbyfloat,del,rename_from,rename_to,expired"),
        "{list}"
    );
}

/// `RGSYNC.ADD`/`REMOVE` reach a replica (live and by full sync); the replica captures
/// nothing (its copy of the stream comes from the primary) and writes nothing.
#[test]
fn jobs_replicate_and_replicas_do_not_write() {
    let primary = Server::start("repl-primary", &[], &[]);
    let mut p = primary.conn();
    let conn = sqlite(&primary.dir);
    ok(
        &mut p,
        &[
            "RGSYNC.ADD",
            "early",
            "KEY",
            "e:{id}",
            "TABLE",
            "early",
            "COLUMNS",
            "a",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "DURATION",
            "5",
        ],
    );
    let port = primary.port.to_string();
    let replica = Server::start("repl-replica", &["--replicaof", "127.0.0.1", &port], &[]);
    let mut r = replica.conn();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(
        &mut p,
        &[
            "RGSYNC.ADD",
            "late",
            "KEY",
            "l:{id}",
            "TABLE",
            "late",
            "COLUMNS",
            "a",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "DURATION",
            "5",
        ],
    );
    ok(&mut p, &["HSET", "e:1", "a", "x"]);
    drained(&mut p, "early", Duration::from_secs(10));
    ok(&mut p, &["WAIT", "1", "2000"]);
    let list = format!("{:?}", q(&mut r, &["RGSYNC.LIST"]).unwrap());
    assert!(list.contains("e:{id}") && list.contains("l:{id}"), "{list}");
    let st = status(&mut r, "early");
    assert_eq!(st["captured"], "0", "the replica does not capture: {st:?}");
    assert_eq!(st["rows"], "0", "the replica does not write: {st:?}");
    assert_eq!(rows(&conn, "SELECT id, a FROM early"), [["1", "x"]]);
    ok(&mut p, &["RGSYNC.REMOVE", "late"]);
    ok(&mut p, &["WAIT", "1", "2000"]);
    let list = format!("{:?}", q(&mut r, &["RGSYNC.LIST"]).unwrap());
    assert!(!list.contains("l:{id}"), "{list}");
}

/// A record MariaDB refuses (a CHECK constraint) goes, after its attempts, to the dead-letter
/// stream with the database's error; the rest of its batch and later batches flow.
#[test]
fn mariadb_poison_record_goes_to_dead_letters_others_flow() {
    let server = Server::start("poison", &[], &[]);
    let mut con = server.conn();
    let table = unique("poison_it");
    exec_drop(MARIADB, &format!("`{table}`"));
    exec(
        MARIADB,
        &format!("CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, qty BIGINT CHECK (qty >= 0))"),
    );
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "stock",
            "KEY",
            "item:{id:integer}",
            "TABLE",
            &table,
            "COLUMNS",
            "qty:integer",
            "CONNECTION",
            MARIADB,
            "BATCH",
            "50",
            "DURATION",
            "50",
            "MAX_ATTEMPTS",
            "2",
            "BACKOFF",
            "10",
        ],
    );
    hset_each(
        &mut con,
        "item",
        "qty",
        (0..20).map(|i| (i, if i == 7 { -1 } else { i as i64 })),
    );
    drained(&mut con, "stock", Duration::from_secs(20));
    ok(&mut con, &["HSET", "item:100", "qty", "5"]);
    drained(&mut con, "stock", Duration::from_secs(20));
    let got = rows(
        MARIADB,
        &format!("SELECT COUNT(*), SUM(qty) FROM `{table}`"),
    );
    let sum: i64 = (0..20i64).filter(|i| *i != 7).sum::<i64>() + 5;
    assert_eq!(got, [["20".to_string(), sum.to_string()]]);
    let dlq = xrange(&mut con, "{0}rgsync:stock:dlq");
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let joined = dlq[0].join(" ");
    assert!(
        joined.contains("item:7") && joined.contains("CONSTRAINT"),
        "{joined}"
    );
    let st = status(&mut con, "stock");
    assert_eq!(st["dead_letters"], "1");
    assert!(st["last_error"].contains("CONSTRAINT"), "{st:?}");
}

/// A record bigger than MariaDB's `max_allowed_packet` makes the server drop the connection
/// (a "transient" error by its kind); the reconnect works every time, so it is the record,
/// not the database: after `MAX_ATTEMPTS` drops it is treated like any failing record and
/// goes to the dead letters while the rest flow (before, the job retried it forever).
#[test]
fn mariadb_oversized_record_goes_to_dead_letters_others_flow() {
    let server = Server::start("oversized", &[], &[]);
    let mut con = server.conn();
    let table = unique("oversized_it");
    exec_drop(MARIADB, &format!("`{table}`"));
    exec(
        MARIADB,
        &format!("CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, body LONGTEXT)"),
    );
    let max: Vec<Vec<String>> = rows(MARIADB, "SELECT @@max_allowed_packet");
    let max: usize = max[0][0].parse().unwrap();
    ok(
        &mut con,
        &[
            "RGSYNC.ADD",
            "docs",
            "KEY",
            "doc:{id:integer}",
            "TABLE",
            &table,
            "COLUMNS",
            "body",
            "CONNECTION",
            MARIADB,
            "DURATION",
            "50",
            "MAX_ATTEMPTS",
            "2",
            "BACKOFF",
            "10",
            "MAX_BACKOFF",
            "20",
        ],
    );
    let big = "x".repeat(max + 1024);
    hset_each(
        &mut con,
        "doc",
        "body",
        (0..10).map(|i| (i, if i == 4 { big.as_str() } else { "small" })),
    );
    drained(&mut con, "docs", Duration::from_secs(60));
    ok(&mut con, &["HSET", "doc:100", "body", "after"]);
    drained(&mut con, "docs", Duration::from_secs(20));
    let got = rows(
        MARIADB,
        &format!("SELECT COUNT(*), SUM(LENGTH(body)) FROM `{table}`"),
    );
    assert_eq!(got, [["10".to_string(), (9 * 5 + 5).to_string()]]);
    let dlq: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("{0}rgsync:docs:dlq")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    assert_eq!(dlq.len(), 1);
    let fields: BTreeMap<String, String> = dlq[0].1.iter().cloned().collect();
    assert_eq!(fields["k"], "doc:4");
    assert_eq!(fields["=body"].len(), big.len(), "the record is kept whole");
    let st = status(&mut con, "docs");
    assert_eq!(st["dead_letters"], "1");
}
