//! 10k random writes over 500 keys on SQLite, MariaDB (coalesced) and PostgreSQL: the table
//! ends exactly as the final Redis state.

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::db::{rows, sqlite, unique, MARIADB, POSTGRES};
use gears_testkit::rgsync::{self, drained, status, Job};
use gears_testkit::scratch;

use crate::{exec_drop, quote};

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
    let server = rgsync::server().name(&format!("10k-{table}")).start();
    let mut con = server.conn();
    let qt = |s: &str| quote(conn, s);
    exec_drop(conn, &qt(table));
    Job::new("users", "user:{id:integer}", table, conn)
        .columns("name age:integer")
        .words(&["CREATE_TABLE", "yes", "BATCH", "500", "DURATION", "20"])
        .words(&["COALESCE", coalesce])
        .add(&mut con);
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
            qt("id"),
            qt("name"),
            qt("age"),
            qt(table)
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
