//! Private database servers for fault tests: a fresh data directory on a free port, run by
//! the test, stopped and started by PID (so stopping one disturbs no other test), killed on
//! drop. MariaDB runs as user `mysql`, PostgreSQL as `postgres` (initdb refuses root).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_until_reachable;
use crate::files::scratch;
use crate::ports::free_port;
use crate::process::{kill_and_wait, signal_and_wait};

/// How long a private server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A private database server the test can stop and start again on the same data.
pub trait PrivateDb: Sized {
    /// The database a fresh server always has.
    const ADMIN_DATABASE: &'static str;
    /// Makes a fresh data directory in `dir`.
    fn init(dir: &Path);
    /// Starts on `port` with the data in `dir` and waits until it answers.
    fn start(dir: &Path, port: u16) -> Self;
    /// The connection string to `database`.
    fn conn(&self, database: &str) -> String;
    /// Stops the server as an operator would; where to start it again (`dir`, `port`).
    fn stop(self) -> (PathBuf, u16);
    /// The server's main process.
    fn pid(&self) -> u32;

    /// Freezes every process of the server (SIGSTOP by PID, its children too): connections
    /// stay open, nothing answers.
    fn freeze(&self) {
        signal_tree(self.pid(), "STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    fn thaw(&self) {
        signal_tree(self.pid(), "CONT");
    }

    /// A fresh server: a new data directory [`scratch`]`(name)`, on a free port.
    fn fresh(name: &str) -> Self {
        let dir = scratch(name);
        Self::init(&dir);
        Self::start(&dir, free_port())
    }
}

/// The process of a private server and where it keeps its data.
struct Running {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Running {
    fn spawn(mut cmd: Command, dir: &Path, port: u16) -> Running {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/db.sh installs the servers)"));
        Running {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// Panics unless `dsn` answers within the start timeout.
    fn wait_up(&self, dsn: &str, what: &str) {
        assert!(
            wait_until_reachable(dsn, START_TIMEOUT),
            "private {what} did not start"
        );
    }

    /// Sends `signal` by PID and waits for the exit: where to start it again.
    fn stop(&mut self, signal: &str) -> (PathBuf, u16) {
        signal_and_wait(&mut self.child, signal);
        (self.dir.clone(), self.port)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
    }
}

/// Sends `signal` to process `pid` and its children, by PID.
fn signal_tree(pid: u32, signal: &str) {
    let _ = Command::new("pkill")
        .args([format!("-{signal}"), "-P".to_string(), pid.to_string()])
        .status();
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status();
}

/// Runs `cmd`; panics with its stderr if it fails.
fn run_ok(mut cmd: Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/db.sh installs the servers)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Gives `dir` to `owner` (`user:group`).
fn chown(owner: &str, dir: &Path) {
    let mut cmd = Command::new("chown");
    cmd.arg(owner).arg(dir);
    run_ok(cmd);
}

/// A private MariaDB (`mariadbd`, no grant tables: user `root` without a password).
pub struct MariaDb(Running);

impl PrivateDb for MariaDb {
    const ADMIN_DATABASE: &'static str = "mysql";

    fn init(dir: &Path) {
        chown("mysql:mysql", dir);
        let mut cmd = Command::new("mariadb-install-db");
        cmd.args(["--no-defaults", "--user=mysql"])
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}/data", dir.display()));
        run_ok(cmd);
    }

    fn start(dir: &Path, port: u16) -> MariaDb {
        let mut cmd = Command::new("mariadbd");
        cmd.args(["--no-defaults", "--user=mysql", "--bind-address=127.0.0.1"])
            .args(["--skip-grant-tables", "--skip-log-bin"])
            .arg("--innodb-buffer-pool-size=32M")
            .arg(format!("--datadir={}/data", dir.display()))
            .arg(format!("--socket={}/sock", dir.display()))
            .arg(format!("--port={port}"));
        let db = MariaDb(Running::spawn(cmd, dir, port));
        db.0.wait_up(&db.conn(Self::ADMIN_DATABASE), "mariadbd");
        db
    }

    fn conn(&self, database: &str) -> String {
        format!(
            "Driver={{MariaDB Unicode}};Server=127.0.0.1;Port={};Database={database};Uid=root;",
            self.0.port
        )
    }

    fn stop(mut self) -> (PathBuf, u16) {
        self.0.stop("TERM")
    }

    fn pid(&self) -> u32 {
        self.0.child.id()
    }
}

/// A private PostgreSQL, trust authentication for user `test` on 127.0.0.1.
pub struct Postgres(Running);

/// The newest installed PostgreSQL's program (`/usr/lib/postgresql/<version>/bin/<program>`).
fn pg_bin(program: &str) -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/db.sh installs it)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().expect("a PostgreSQL version");
    PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/{program}"))
}

/// `program` run as user `postgres`.
fn as_postgres(program: &str) -> Command {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("user postgres exists")
    };
    let mut cmd = Command::new(pg_bin(program));
    cmd.uid(id("-u")).gid(id("-g"));
    cmd
}

impl PrivateDb for Postgres {
    const ADMIN_DATABASE: &'static str = "postgres";

    fn init(dir: &Path) {
        chown("postgres:postgres", dir);
        let mut cmd = as_postgres("initdb");
        cmd.args(["--auth=trust", "--username=test", "--no-sync"])
            .arg(format!("--pgdata={}/data", dir.display()));
        run_ok(cmd);
    }

    fn start(dir: &Path, port: u16) -> Postgres {
        let mut cmd = as_postgres("postgres");
        cmd.arg("-D")
            .arg(format!("{}/data", dir.display()))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "shared_buffers=32MB"])
            .arg("-k")
            .arg(dir);
        let db = Postgres(Running::spawn(cmd, dir, port));
        db.0.wait_up(&db.conn(Self::ADMIN_DATABASE), "postgres");
        db
    }

    fn conn(&self, database: &str) -> String {
        format!(
            "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={};Database={database};Uid=test;",
            self.0.port
        )
    }

    /// SIGINT: a fast shutdown (SIGTERM would wait for the writer's connection to close).
    fn stop(mut self) -> (PathBuf, u16) {
        self.0.stop("INT")
    }

    fn pid(&self) -> u32 {
        self.0.child.id()
    }
}
