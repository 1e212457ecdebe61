//! Test harness: a real `redis-server` with `librgsync.so` on a free loopback port (killed by
//! PID on drop, SIGKILL-restartable), ODBC helpers to read the target tables, and waits.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use odbc_api::{ConnectionOptions, Cursor, ResultSetMetadata};

pub const MARIADB: &str =
    "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;Uid=test;Pwd=test;";
pub const POSTGRES: &str =
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;Uid=test;Pwd=test;";

pub fn module_path() -> PathBuf {
    module_file("librgsync.so", "rgsync-module")
}

/// `target/debug/<file>`, built by `cargo build -p <package>` (scripts/test.sh builds them all).
pub fn module_file(file: &str, package: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target.join("debug").join(file);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p {package}` first (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A unique scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rgsync-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
}

impl Server {
    /// Starts redis-server with the rgsync module, `module_args` after it, `server_args`
    /// before it.
    pub fn start(name: &str, server_args: &[&str], module_args: &[&str]) -> Server {
        Self::start_module(name, &module_path(), server_args, module_args)
    }

    /// Starts redis-server with the module at `module`, `module_args` after it,
    /// `server_args` before it.
    pub fn start_module(
        name: &str,
        module: &std::path::Path,
        server_args: &[&str],
        module_args: &[&str],
    ) -> Server {
        let dir = scratch(name);
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
            "--dir",
            dir.to_str().unwrap(),
            "--logfile",
            "redis.log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(server_args.iter().map(|s| s.to_string()));
        args.push("--loadmodule".into());
        args.push(module.to_string_lossy().to_string());
        args.extend(module_args.iter().map(|s| s.to_string()));
        let child = spawn(&args);
        let mut s = Server {
            child,
            port,
            dir,
            args,
        };
        s.wait_up();
        s
    }

    fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                panic!("redis-server exited:\n{}", self.log());
            }
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no answer:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL, then start again on the same port and directory (loads RDB/AOF).
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.args);
        self.wait_up();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/install-deps.sh)")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- redis log ---\n{}", self.log());
        }
    }
}

/// `RGSYNC.STATUS <job>` as a map.
pub fn status(con: &mut redis::Connection, job: &str) -> std::collections::HashMap<String, String> {
    let v: Vec<redis::Value> = redis::cmd("RGSYNC.STATUS").arg(job).query(con).unwrap();
    let mut m = std::collections::HashMap::new();
    for pair in v.chunks(2) {
        let s = |v: &redis::Value| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
            redis::Value::SimpleString(s) => s.clone(),
            redis::Value::Int(i) => i.to_string(),
            redis::Value::Nil => String::new(),
            other => format!("{other:?}"),
        };
        m.insert(s(&pair[0]), s(&pair[1]));
    }
    m
}

/// Waits until the job's backlog is empty and nothing is retrying.
pub fn drained(con: &mut redis::Connection, job: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let st = status(con, job);
        if st["backlog"] == "0" && st["state"] == "idle" {
            return;
        }
        assert!(Instant::now() < deadline, "not drained: {st:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(conn: &str) -> odbc_api::Connection<'static> {
    odbc_api::environment()
        .unwrap()
        .connect_with_connection_string(conn, ConnectionOptions::default())
        .unwrap_or_else(|e| panic!("database not reachable ({e}); start it with scripts/db.sh"))
}

pub fn exec(conn: &str, sql: &str) {
    connect(conn)
        .execute(sql, (), None)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every row of `sql` as text (NULL as "NULL"), sorted.
pub fn rows(conn: &str, sql: &str) -> Vec<Vec<String>> {
    let c = connect(conn);
    let mut out = Vec::new();
    if let Some(mut cursor) = c.execute(sql, (), None).unwrap() {
        let n = cursor.num_result_cols().unwrap() as u16;
        while let Some(mut row) = cursor.next_row().unwrap() {
            let mut r = Vec::new();
            for i in 1..=n {
                let mut buf = Vec::new();
                let some = row.get_text(i, &mut buf).unwrap();
                r.push(if some {
                    String::from_utf8_lossy(&buf).to_string()
                } else {
                    "NULL".into()
                });
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

pub fn sqlite(dir: &std::path::Path) -> String {
    format!("Driver={{SQLite3}};Database={}/app.db", dir.display())
}

/// A table name unique to this test process.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", std::process::id())
}

/// [`rows`], or `None` if the query fails (the table does not exist yet).
pub fn try_rows(conn: &str, sql: &str) -> Option<Vec<Vec<String>>> {
    let c = connect(conn);
    let mut cursor = c.execute(sql, (), None).ok()??;
    let n = cursor.num_result_cols().ok()? as u16;
    let mut out = Vec::new();
    while let Some(mut row) = cursor.next_row().ok()? {
        let mut r = Vec::new();
        for i in 1..=n {
            let mut buf = Vec::new();
            let some = row.get_text(i, &mut buf).ok()?;
            r.push(if some {
                String::from_utf8_lossy(&buf).to_string()
            } else {
                "NULL".into()
            });
        }
        out.push(r);
    }
    out.sort();
    Some(out)
}

/// Whether the database answers.
pub fn reachable(conn: &str) -> bool {
    odbc_api::environment()
        .unwrap()
        .connect_with_connection_string(conn, ConnectionOptions::default())
        .is_ok()
}

/// Joins `nodes` (servers started with `--cluster-enabled yes`) into a cluster of masters
/// with `redis-cli --cluster create`, and waits until each says `cluster_state:ok`.
pub fn form_cluster(nodes: &[Server]) {
    let mut create = Command::new("redis-cli");
    create.args(["--cluster", "create"]);
    for n in nodes {
        create.arg(format!("127.0.0.1:{}", n.port));
    }
    let out = create
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in nodes {
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut n.conn())
                .unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster not ok: {info}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
