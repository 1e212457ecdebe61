//! Every kind of change end to end on SQLite, MariaDB and PostgreSQL: upserts, partial
//! updates, deletes, renames, `#` ops with acks, composite keys, typed columns, a conversion
//! failure, injection attempts.

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::db::{rows, sqlite, unique, MARIADB, POSTGRES};
use gears_testkit::rgsync::{self, drained, status};
use gears_testkit::{ok, scratch, stream_entries, RawEntry};

use crate::{add_people, exec_drop, quote, xrange};

const EVIL: &str = "x'); DROP TABLE people;--";

/// Upserts, partial updates, `HDEL`, `DEL`, `HINCRBY[FLOAT]`, `RENAME`, every `#` op with and
/// without acks and a bad one, composite keys, typed columns, a conversion failure, injection
/// attempts in keys and values.
fn ops_end_to_end(conn: &str, table: &str) {
    let server = rgsync::server().name(&format!("ops-{table}")).start();
    let mut con = server.conn();
    let db_table = table;
    let qt = |s: &str| quote(conn, s);
    exec_drop(conn, &qt(db_table));
    add_people(&mut con, conn, table);
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

/// A key name or a mapped field that is not UTF-8 cannot become a row's text: the change goes
/// to the dead letters with the key's bytes as they are (never converted), is counted as a
/// capture failure, and the other changes flow.
#[test]
fn sqlite_non_utf8_keys_and_fields_go_to_dead_letters_unchanged() {
    let dir = scratch("sqlite-binary-db");
    let conn = sqlite(&dir);
    let server = rgsync::server().name("binary-people").start();
    let mut con = server.conn();
    add_people(&mut con, &conn, "people");
    let raw_key = b"person:eu:\xff\xfe".to_vec();
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(&raw_key)
        .arg("name")
        .arg("x")
        .cmd("HSET")
        .arg("person:eu:20")
        .arg("name")
        .arg(b"\xff\xfe\0")
        .cmd("HSET")
        .arg("person:eu:21")
        .arg("name")
        .arg("ok\0nul")
        .query(&mut con)
        .unwrap();
    drained(&mut con, "people", Duration::from_secs(20));
    let dlq = stream_entries(&mut con, "{0}rgsync:people:dlq");
    let field = |e: &RawEntry, name: &[u8]| {
        e.1.iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    assert_eq!(field(&dlq[0], b"k"), raw_key);
    let error = String::from_utf8(field(&dlq[0], b"error")).unwrap();
    assert_eq!(error, "the key name is not UTF-8 text");
    assert_eq!(field(&dlq[1], b"k"), b"person:eu:20");
    let error = String::from_utf8(field(&dlq[1], b"error")).unwrap();
    assert!(
        error.contains("field 'name' of key 'person:eu:20' is not UTF-8"),
        "{error}"
    );
    let got = rows(&conn, "SELECT region, id, name FROM people");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0][..2], ["eu".to_string(), "21".to_string()]);
    let st = status(&mut con, "people");
    assert_eq!(st["dead_letters"], "2");
    assert_eq!(st["capture_failures"], "2");
}
