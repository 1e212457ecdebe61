//! When the database is slow, down or refuses: `MAX_BACKLOG` refuses writes until drained,
//! `RGSYNC.WRITETHROUGH` replies after the commit or times out, poison and oversized records
//! go to the dead letters while the rest flow.

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::db::{exec, rows, sqlite, unique, MARIADB};
use gears_testkit::rgsync::{self, drained, status, status_when, Job};
use gears_testkit::{error, ok, query};

use crate::{exec_drop, hset_each, xrange};

/// A new MariaDB table `<prefix>_<pid>` with the columns `columns` (SQL); its name.
fn mariadb_table(prefix: &str, columns: &str) -> String {
    let table = unique(prefix);
    exec_drop(MARIADB, &format!("`{table}`"));
    exec(MARIADB, &format!("CREATE TABLE `{table}` ({columns})"));
    table
}

/// `MAX_BACKLOG`: while that many changes wait for the database, writes to the job's keys are
/// refused with a clear error (other keys are not); once it drains, writes are accepted again.
#[test]
fn max_backlog_refuses_writes_until_drained() {
    let server = rgsync::server().name("backlog").start();
    let mut con = server.conn();
    // The database file's directory does not exist yet: the database is "down" (on purpose:
    // CHECK_CONNECTION no).
    let dbdir = server.dir.join("later");
    let conn = format!("Driver={{SQLite3}};Database={}/app.db", dbdir.display());
    Job::new("users", "user:{id}", "users", &conn)
        .columns("name")
        .words(&["CREATE_TABLE", "yes", "MAX_BACKLOG", "50", "DURATION", "10"])
        .words(&["CHECK_CONNECTION", "no"])
        .words(&["BACKOFF", "20", "MAX_BACKOFF", "100"])
        .add(&mut con);
    for i in 0..50 {
        ok(&mut con, &["HSET", &format!("user:{i}"), "name", "x"]);
    }
    let err = error(&mut con, &["HSET", "user:50", "name", "x"]);
    assert!(
        err.contains("MAX_BACKLOG 50") && err.contains("refused"),
        "{err}"
    );
    assert!(query(&mut con, &["HINCRBY", "user:1", "n", "1"]).is_err());
    ok(&mut con, &["HSET", "other:1", "name", "x"]); // not a job key
    ok(&mut con, &["SET", "user:str", "x"]); // not a hash write
    let exists: i64 = redis::cmd("EXISTS").arg("user:50").query(&mut con).unwrap();
    assert_eq!(exists, 0, "the refused write did not happen");
    let st = status_when(&mut con, "users", Duration::from_secs(10), |st| {
        st["state"] == "retrying"
    });
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
    let server = rgsync::server().name("write-through").start();
    let mut con = server.conn();
    let conn = sqlite(&server.dir);
    Job::new("users", "user:{id:integer}", "users", &conn)
        .columns("name age:integer")
        .words(&["CREATE_TABLE", "yes", "DURATION", "5"])
        .add(&mut con);
    let reply: String = redis::cmd("RGSYNC.WRITETHROUGH")
        .arg(&["user:1", "name", "ann", "age", "31"])
        .query(&mut con)
        .unwrap();
    assert_eq!(reply, "OK");
    assert_eq!(
        rows(&conn, "SELECT id, name, age FROM users"),
        [["1", "ann", "31"]]
    );
    let err = error(&mut con, &["RGSYNC.WRITETHROUGH", "user:2", "age", "old"]);
    assert!(
        err.contains("not written") && err.contains("cannot convert 'old'"),
        "{err}"
    );
    ok(&mut con, &["RGSYNC.WRITETHROUGH", "user:1", "#", "~"]);
    assert!(rows(&conn, "SELECT id FROM users").is_empty());
    let exists: i64 = redis::cmd("EXISTS").arg("user:1").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    assert!(query(&mut con, &["RGSYNC.WRITETHROUGH", "nojob:1", "a", "b"]).is_err());
    // A database that does not answer: the client waits, the server does not.
    Job::new(
        "down",
        "down:{id}",
        "t",
        "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Uid=x;",
    )
    .words(&["DURATION", "5", "CHECK_CONNECTION", "no"])
    .add(&mut con);
    let url = server.url();
    let waiter = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let t = std::time::Instant::now();
        let r = query(
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

/// A record MariaDB refuses (a CHECK constraint) goes, after its attempts, to the dead-letter
/// stream with the database's error; the rest of its batch and later batches flow.
#[test]
fn mariadb_poison_record_goes_to_dead_letters_others_flow() {
    let server = rgsync::server().name("poison").start();
    let mut con = server.conn();
    let table = mariadb_table(
        "poison_it",
        "id BIGINT PRIMARY KEY, qty BIGINT CHECK (qty >= 0)",
    );
    Job::new("stock", "item:{id:integer}", &table, MARIADB)
        .columns("qty:integer")
        .words(&["BATCH", "50", "DURATION", "50", "MAX_ATTEMPTS", "2"])
        .words(&["BACKOFF", "10"])
        .add(&mut con);
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
    let server = rgsync::server().name("oversized").start();
    let mut con = server.conn();
    let table = mariadb_table("oversized_it", "id BIGINT PRIMARY KEY, body LONGTEXT");
    let max: Vec<Vec<String>> = rows(MARIADB, "SELECT @@max_allowed_packet");
    let max: usize = max[0][0].parse().unwrap();
    Job::new("docs", "doc:{id:integer}", &table, MARIADB)
        .columns("body")
        .words(&["DURATION", "50", "MAX_ATTEMPTS", "2", "BACKOFF", "10"])
        .words(&["MAX_BACKOFF", "20"])
        .add(&mut con);
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
