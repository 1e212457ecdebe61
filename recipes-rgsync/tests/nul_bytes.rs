//! Values and keys a database's text cannot hold byte for byte are never altered: a NUL byte
//! in a value or a primary-key part, and a very long value, on SQLite, MariaDB and
//! PostgreSQL. Each one is stored exactly (read back as hex) or dead-lettered with the
//! reason; a key that would collide with another once altered never overwrites it.

use std::time::Duration;

use gears_testkit::db::{self, exec, rows, sqlite, unique, MARIADB, POSTGRES};
use gears_testkit::rgsync::{self, drained, Job};
use gears_testkit::{scratch, stream_entries};

#[test]
fn sqlite_keeps_nul_bytes_or_refuses_them() {
    let conn = sqlite(&scratch("nul-sqlite"));
    nul_bytes(&conn, "\"", |c| format!("hex({c})"));
}

#[test]
fn mariadb_keeps_nul_bytes_or_refuses_them() {
    db::connect(MARIADB);
    nul_bytes(MARIADB, "`", |c| format!("HEX({c})"));
}

#[test]
fn postgres_keeps_nul_bytes_or_refuses_them() {
    db::connect(POSTGRES);
    nul_bytes(POSTGRES, "\"", |c| {
        format!("upper(encode(convert_to({c}, 'UTF8'), 'hex'))")
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn nul_bytes(conn: &str, quote: &str, hex_of: impl Fn(&str) -> String) {
    let table = unique("nul");
    let q = |s: &str| format!("{quote}{s}{quote}");
    exec(conn, &format!("DROP TABLE IF EXISTS {}", q(&table)));
    let server = rgsync::server().name(&table).start();
    let mut con = server.conn();
    Job::new("inj", "inj:{name}", &table, conn)
        .columns("v")
        .words(&["CREATE_TABLE", "yes", "DURATION", "20", "MAX_ATTEMPTS", "2"])
        .words(&["BACKOFF", "10"])
        .add(&mut con);
    let long = "x".repeat(200_000);
    let written: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"inj:a".to_vec(), b"plain".to_vec()),
        (b"inj:a\0b".to_vec(), b"key with a NUL".to_vec()),
        (b"inj:c".to_vec(), b"x\0y".to_vec()),
        (b"inj:long".to_vec(), long.as_bytes().to_vec()),
    ];
    let mut pipe = redis::pipe();
    for (k, v) in &written {
        pipe.cmd("HSET").arg(k).arg("v").arg(v).ignore();
    }
    pipe.query::<()>(&mut con).expect("HSET");
    drained(&mut con, "inj", Duration::from_secs(30));

    let got = rows(
        conn,
        &format!(
            "SELECT {}, {} FROM {}",
            hex_of(&q("name")),
            hex_of(&q("v")),
            q(&table)
        ),
    );
    let dead = stream_entries(&mut con, "{0}rgsync:inj:dlq");
    let dead_key = |k: &[u8]| {
        dead.iter().find_map(|(_, fields)| {
            let key = fields.iter().find(|(f, _)| f == b"k").map(|(_, v)| v)?;
            let error = fields.iter().find(|(f, _)| f == b"error").map(|(_, v)| v)?;
            (key == k).then(|| String::from_utf8_lossy(error).into_owned())
        })
    };
    for (key, value) in &written {
        let name = &key[4..];
        let row = got.iter().find(|r| r[0] == hex(name));
        match (row, dead_key(key)) {
            (Some(row), None) => assert_eq!(
                row[1],
                hex(value),
                "{}: stored, but not byte for byte",
                String::from_utf8_lossy(key)
            ),
            (None, Some(error)) => assert!(
                error.contains(if value.len() > 1000 { "" } else { "NUL byte" }),
                "{}: dead-lettered without saying why: {error}",
                String::from_utf8_lossy(key)
            ),
            (row, error) => panic!(
                "{}: row {row:?}, dead letter {error:?} (rows {got:?})",
                String::from_utf8_lossy(key)
            ),
        }
    }
    // Whatever happened to `a\0b`, the row of `inj:a` is its own.
    let a = got
        .iter()
        .find(|r| r[0] == hex(b"a"))
        .expect("the row of inj:a");
    assert_eq!(a[1], hex(b"plain"), "inj:a was overwritten");
    assert!(got.len() + dead.len() == written.len(), "{got:?} {dead:?}");
    exec(conn, &format!("DROP TABLE {}", q(&table)));
}
