//! The database stops for 15 s in the middle of a load, then comes back: writes keep being
//! accepted by Redis, the writer retries with backoff (visible in RGSYNC.STATUS), and once
//! the database is back every row is present exactly once with its last value.
//!
//! Runs against MariaDB and PostgreSQL, each its own server (a fresh datadir on a free port,
//! stopped and started by PID), so stopping it disturbs nothing else.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Waits (at most 20 s) until `conn` connects; fails with `what` otherwise.
fn wait_until_reachable(conn: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reachable(conn) {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A private database server the test can stop and start again on the same data.
trait PrivateDb: Sized {
    /// A fresh data directory in `dir`.
    fn init(dir: &Path);
    /// Starts on `port` and waits until it answers.
    fn start(dir: &Path, port: u16) -> Self;
    /// The connection string to `database`.
    fn conn(&self, database: &str) -> String;
    /// The database a fresh server always has.
    const ADMIN_DATABASE: &'static str;
    /// Stops the server (as an operator would), giving back where to start it again.
    fn stop(self) -> (PathBuf, u16);
}

struct MariaDb {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl PrivateDb for MariaDb {
    const ADMIN_DATABASE: &'static str = "mysql";

    fn init(dir: &Path) {
        let st = Command::new("chown")
            .args(["mysql:mysql"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
        let out = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}/data", dir.display()))
            .output()
            .expect("mariadb-install-db (scripts/db.sh installs mariadb-server)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(dir: &Path, port: u16) -> MariaDb {
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=mysql",
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .arg(format!("--datadir={}/data", dir.display()))
            .arg(format!("--socket={}/sock", dir.display()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        let db = MariaDb {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        wait_until_reachable(&db.conn("mysql"), "private mariadbd did not start");
        db
    }

    fn conn(&self, database: &str) -> String {
        format!(
            "Driver={{MariaDB Unicode}};Server=127.0.0.1;Port={};Database={database};Uid=root;",
            self.port
        )
    }

    fn stop(mut self) -> (PathBuf, u16) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        (self.dir.clone(), self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn database_down_15s_mid_load_then_every_row_exactly_once() {
    outage::<MariaDb>("mariadb");
}

#[test]
fn postgres_down_15s_mid_load_then_every_row_exactly_once() {
    outage::<Postgres>("postgres");
}

fn outage<D: PrivateDb>(name: &str) {
    let dir = scratch(&format!("outage-{name}"));
    D::init(&dir);
    let port = free_port();
    let db = D::start(&dir, port);
    exec(&db.conn(D::ADMIN_DATABASE), "CREATE DATABASE app");
    let conn = db.conn("app");
    // (Not `outage-{name}`: the server's scratch directory would replace the database's.)
    let server = Server::start(&format!("outage-redis-{name}"), &[], &[]);
    let mut con = server.conn();
    redis::cmd("RGSYNC.ADD")
        .arg(&[
            "users",
            "KEY",
            "user:{id:integer}",
            "TABLE",
            "users",
            "COLUMNS",
            "name n:integer",
            "CONNECTION",
            &conn,
            "CREATE_TABLE",
            "yes",
            "BATCH",
            "200",
            "DURATION",
            "20",
            "BACKOFF",
            "50",
            "MAX_BACKOFF",
            "1000",
        ])
        .query::<()>(&mut con)
        .unwrap();
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
    eprintln!(
        "outage ({name}): {writes} writes, backlog during the outage {backlog_during}, status after {st:?}"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir); // the private datadir (~100 MB)
}

/// A private PostgreSQL server run as the `postgres` user (initdb refuses root), trust
/// authentication for user `test` on 127.0.0.1.
struct Postgres {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// The newest installed PostgreSQL's programs (`/usr/lib/postgresql/<version>/bin`).
fn pg_bin(program: &str) -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/db.sh installs it)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().expect("a PostgreSQL version");
    PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/{program}"))
}

/// The uid and gid of user `postgres`.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

impl PrivateDb for Postgres {
    const ADMIN_DATABASE: &'static str = "postgres";

    fn init(dir: &Path) {
        let st = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
        let (uid, gid) = postgres_user();
        let out = Command::new(pg_bin("initdb"))
            .uid(uid)
            .gid(gid)
            .args(["--auth=trust", "--username=test", "--no-sync"])
            .arg(format!("--pgdata={}/data", dir.display()))
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(dir: &Path, port: u16) -> Self {
        let (uid, gid) = postgres_user();
        let child = Command::new(pg_bin("postgres"))
            .uid(uid)
            .gid(gid)
            .arg("-D")
            .arg(format!("{}/data", dir.display()))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "shared_buffers=32MB"])
            .arg("-k")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        let db = Postgres {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        wait_until_reachable(&db.conn("postgres"), "private postgres did not start");
        db
    }

    fn conn(&self, database: &str) -> String {
        format!(
            "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={};Database={database};Uid=test;",
            self.port
        )
    }

    fn stop(mut self) -> (PathBuf, u16) {
        // SIGINT: fast shutdown (SIGTERM would wait for the writer's connection to close).
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        (self.dir.clone(), self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
