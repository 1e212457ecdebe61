//! Test harness: a real `redis-server` per test, on a free loopback port, with a Gears module
//! loaded; killed (by PID) when dropped, so a failing test leaks no server.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a module built by `cargo build` (the test script builds the workspace first).
pub fn module_path(lib: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target.join("debug").join(format!("lib{lib}.so"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (scripts/test.sh does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running redis-server.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<std::ffi::OsString>,
}

impl Server {
    /// Starts redis-server with `module` (a lib name such as `gears_wordcount`) and its options.
    pub fn start(module: &str, module_args: &[&str]) -> Server {
        Self::try_start(module, module_args, &[])
            .unwrap_or_else(|log| panic!("redis-server did not start:\n{log}"))
    }

    /// Like [`start`](Self::start), returning the server log if it exits instead.
    pub fn try_start(
        module: &str,
        module_args: &[&str],
        server_args: &[&str],
    ) -> Result<Server, String> {
        let module = module_path(module);
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("gears-test-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("test dir");
            let mut cmd = Command::new("redis-server");
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--enable-debug-command", "yes"])
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(dir.join("redis.log"))
                .args(server_args)
                .arg("--loadmodule")
                .arg(&module)
                .args(module_args)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
            let child = cmd
                .spawn()
                .expect("redis-server is installed (scripts/install-deps.sh)");
            let mut server = Server {
                child,
                port,
                dir,
                args,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = server.child.try_wait() {
                    last_log = server.log();
                    break;
                }
                if let Ok(mut c) =
                    redis::Client::open(server.url()).and_then(|c| c.get_connection())
                {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return Ok(server);
                    }
                }
                if Instant::now() > deadline {
                    last_log = server.log();
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            if !last_log.contains("Address already in use") {
                return Err(last_log);
            }
        }
        Err(last_log)
    }

    /// Kills the server (no save) and starts it again on the same port and directory, so it
    /// loads whatever was persisted there (RDB, AOF).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "restarted server did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test server")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reply rendered compactly for assertions: arrays as `[a,b]`, strings bare, nil as `nil`,
/// errors as `ERR(...)`.
pub fn show(v: &redis::Value) -> String {
    use redis::Value as V;
    match v {
        V::Nil => "nil".into(),
        V::Int(i) => i.to_string(),
        V::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        V::SimpleString(s) => s.clone(),
        V::Okay => "OK".into(),
        V::Double(d) => d.to_string(),
        V::Boolean(b) => b.to_string(),
        V::Array(items) | V::Set(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(","))
        }
        V::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

/// Runs a command and renders the reply, or `ERR(<message>)` for an error reply.
pub fn run(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(con) {
        Ok(v) => show(&v),
        Err(e) => format!(
            "ERR({})",
            e.detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        ),
    }
}
