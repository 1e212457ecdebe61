//! One running redis-server: connect to it, read its log, kill, stop or restart it (by its
//! PID); killed, and its directory removed, when dropped.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{kill_and_wait, signal_and_wait};
use crate::reply::run;

/// How long a server may take to answer `PING` after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A redis-server on 127.0.0.1, started by a [`ServerBuilder`](crate::ServerBuilder).
pub struct Server {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1 only); kept across restarts.
    pub port: u16,
    /// Its own directory: `redis.log`, the RDB and AOF files, `nodes.conf`; kept across
    /// restarts, removed on drop.
    pub dir: PathBuf,
    args: Vec<OsString>,
}

impl Server {
    /// Starts a server with the module `lib<module>.so` loaded with `module_args`.
    pub fn start(module: &str, module_args: &[&str]) -> Server {
        Self::builder()
            .module(module)
            .module_args(module_args)
            .start()
    }

    /// Runs `redis-server args` and waits until it answers; its log if it does not.
    pub(crate) fn spawn(port: u16, dir: PathBuf, args: Vec<OsString>) -> Result<Server, String> {
        let mut server = Server {
            child: None,
            port,
            dir,
            args,
        };
        server.launch()?;
        Ok(server)
    }

    /// Starts the process with the stored arguments and waits until it answers `PING`.
    fn launch(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/install-deps.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.alive() {
                return Err(self.log());
            }
            if self.ping() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new connection (connect timeout 5 s); panics if the server does not answer.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("connect to the test server on port {}: {e}", self.port))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// The process id, unless it was killed or stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Whether [`kill`](Self::kill) or [`stop`](Self::stop) ended it (and no restart since).
    pub fn is_down(&self) -> bool {
        self.child.is_none()
    }

    /// SIGKILL: no save, no goodbye to a cluster.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_wait(&mut child);
        }
    }

    /// SIGTERM, as an operator would stop it: Redis flushes the AOF and exits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_and_wait(&mut child, "TERM");
        }
    }

    /// Kills the server if it runs and starts it again with the same arguments, port and
    /// directory: it loads what was persisted there (RDB, AOF) and, in a cluster, rejoins
    /// with its `nodes.conf` (a new process: a new Gears run id). Panics if it does not
    /// answer again.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.launch() {
            panic!(
                "restarted redis-server on port {} did not answer:\n{log}",
                self.port
            );
        }
    }

    /// The cluster node id (`CLUSTER MYID`).
    pub fn node_id(&self) -> String {
        run(&mut self.conn(), &["CLUSTER", "MYID"])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- redis log (port {}) ---\n{}", self.port, self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
