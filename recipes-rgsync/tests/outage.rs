//! The database stops for 15 s in the middle of a load, then comes back: writes keep being
//! accepted by Redis, the writer retries with backoff (visible in RGSYNC.STATUS), and once
//! the database is back every row is present exactly once with its last value.
//!
//! Runs against MariaDB and PostgreSQL, each its own server (a fresh datadir on a free port,
//! stopped and started by PID), so stopping it disturbs nothing else.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gears_testkit::db::private::{MariaDb, Postgres, PrivateDb};
use gears_testkit::db::{exec, rows};
use gears_testkit::rgsync::{self, drained, status, Job};

#[test]
fn database_down_15s_mid_load_then_every_row_exactly_once() {
    outage::<MariaDb>("mariadb");
}

#[test]
fn postgres_down_15s_mid_load_then_every_row_exactly_once() {
    outage::<Postgres>("postgres");
}

fn outage<D: PrivateDb>(name: &str) {
    let db = D::fresh(&format!("outage-{name}"));
    exec(&db.conn(D::ADMIN_DATABASE), "CREATE DATABASE app");
    let conn = db.conn("app");
    // (Not `outage-{name}`: the server's scratch directory would replace the database's.)
    let server = rgsync::server()
        .name(&format!("outage-redis-{name}"))
        .start();
    let mut con = server.conn();
    Job::new("users", "user:{id:integer}", "users", &conn)
        .columns("name n:integer")
        .words(&["CREATE_TABLE", "yes", "BATCH", "200", "DURATION", "20"])
        .words(&["BACKOFF", "50", "MAX_BACKOFF", "1000"])
        .add(&mut con);
    // Load: 200 writes every 20 ms over 2000 keys (~10k writes/s) for ~22 s.
    let url = server.url();
    let load = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut model = BTreeMap::new();
        let start = Instant::now();
        let mut i = 0u64;
        while start.elapsed() < Duration::from_secs(22) {
            let mut pipe = redis::pipe();
            for _ in 0..200 {
                let id = (i * 7919) % 2000;
                pipe.cmd("HSET")
                    .arg(format!("user:{id}"))
                    .arg("name")
                    .arg(format!("v{i}"))
                    .arg("n")
                    .arg(i)
                    .ignore();
                model.insert(id, i);
                i += 1;
            }
            pipe.query::<()>(&mut con)
                .expect("Redis accepts writes during the outage");
            std::thread::sleep(Duration::from_millis(20));
        }
        (model, i)
    });
    std::thread::sleep(Duration::from_secs(3));
    let (dir, port) = db.stop();
    let down = Instant::now();
    // While it is down: retrying, backlog growing, the error visible.
    std::thread::sleep(Duration::from_secs(5));
    let st = status(&mut con, "users");
    assert_eq!(st["state"], "retrying", "{st:?}");
    assert!(st["last_error"].contains("connect"), "{st:?}");
    let backlog_during: u64 = st["backlog"].parse().unwrap();
    // The lag is the age of the oldest change waiting: at least the 5 s it has been down.
    let lag_during: u64 = st["lag_ms"].parse().unwrap();
    assert!((4_500..60_000).contains(&lag_during), "{st:?}");
    // RG.DUMPREGISTRATIONS shows the same for the writer registration.
    let dump = format!(
        "{:?}",
        redis::cmd("RG.DUMPREGISTRATIONS")
            .query::<redis::Value>(&mut con)
            .unwrap()
    );
    assert!(
        dump.contains("retrying") && dump.contains("lastCommitLagMS") && dump.contains("connect"),
        "{dump}"
    );
    assert!(backlog_during > 1000, "{st:?}");
    std::thread::sleep(Duration::from_secs(15).saturating_sub(down.elapsed()));
    let db = D::start(&dir, port);
    let (model, writes) = load.join().unwrap();
    drained(&mut con, "users", Duration::from_secs(60));
    let got = rows(&conn, "SELECT id, name, n FROM users");
    let mut expected: Vec<Vec<String>> = model
        .iter()
        .map(|(id, i)| vec![id.to_string(), format!("v{i}"), i.to_string()])
        .collect();
    expected.sort();
    assert_eq!(got.len(), 2000);
    assert_eq!(got, expected, "after {writes} writes");
    let st = status(&mut con, "users");
    assert_eq!(
        st["dead_letters"], "0",
        "an outage never dead-letters: {st:?}"
    );
    assert!(st["retries"].parse::<u64>().unwrap() > 3, "{st:?}");
    assert_eq!(st["lag_ms"], "0", "nothing waits once drained: {st:?}");
    // The outage's error stays visible, with when it happened, marked as cleared.
    assert!(st["last_error"].contains("connect"), "{st:?}");
    assert_eq!(st["last_error_cleared"], "1", "{st:?}");
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let error_age = since_epoch.as_millis() as u64 - st["last_error_at_ms"].parse::<u64>().unwrap();
    assert!(error_age < 120_000, "{st:?}");
    eprintln!(
        "outage ({name}): {writes} writes, backlog during the outage {backlog_during}, status after {st:?}"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir); // the private datadir (~100 MB)
}
