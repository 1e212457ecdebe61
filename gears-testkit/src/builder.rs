//! What a redis-server is started with: the module and its load options, server options,
//! cluster mode, persistence, replication, the name of its directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::files::{module_file, scratch};
use crate::ports::{free_port, free_port_pair};
use crate::server::Server;

/// How a redis-server is started: `Server::builder().module("gears_wordcount").start()`.
///
/// Every server listens on 127.0.0.1 only, on a free port, with its own directory (log,
/// RDB, AOF, `nodes.conf`), no RDB snapshots (`--save ""`), no AOF unless [`aof`](Self::aof),
/// and `DEBUG` enabled. A builder can start any number of servers (a cluster uses one for
/// all its nodes).
#[derive(Clone, Debug, Default)]
pub struct ServerBuilder {
    module: Option<PathBuf>,
    module_args: Vec<OsString>,
    server_args: Vec<OsString>,
    cluster_node_timeout_ms: Option<u64>,
    name: Option<String>,
}

impl ServerBuilder {
    /// Loads the built module `lib<name>.so` (see [`module_file`]).
    pub fn module(self, name: &str) -> Self {
        self.module_path(module_file(name))
    }

    /// Loads the module at `path`.
    pub fn module_path(mut self, path: impl AsRef<Path>) -> Self {
        self.module = Some(path.as_ref().to_path_buf());
        self
    }

    /// The module's load options (after the module on `--loadmodule`).
    pub fn module_args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.module_args
            .extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// More server options (before `--loadmodule`; later ones win over the defaults).
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: &[S]) -> Self {
        self.server_args
            .extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The append-only file on, fsynced at every write: a SIGKILL loses nothing.
    pub fn aof(self) -> Self {
        self.args(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// A replica of `master` (`--replicaof 127.0.0.1 <port>`).
    pub fn replica_of(self, master: &Server) -> Self {
        let port = master.port.to_string();
        self.args(&["--replicaof", "127.0.0.1", port.as_str()])
    }

    /// Cluster mode (`nodes.conf` in the server's directory) with this node timeout; the
    /// port is chosen so that its cluster bus port is free too.
    pub fn cluster(mut self, node_timeout_ms: u64) -> Self {
        self.cluster_node_timeout_ms = Some(node_timeout_ms);
        self
    }

    /// Whether [`cluster`](Self::cluster) was asked for.
    pub fn is_cluster(&self) -> bool {
        self.cluster_node_timeout_ms.is_some()
    }

    /// Names the server's directory ([`scratch`]`(name)`) instead of after its port.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Starts the server and waits until it answers; panics with its log if it does not.
    pub fn start(&self) -> Server {
        self.try_start()
            .unwrap_or_else(|log| panic!("redis-server did not start:\n{log}"))
    }

    /// Starts the server and waits until it answers; its log if it exits (or does not answer
    /// within 10 s) instead. A port taken meanwhile by someone else is replaced by another
    /// (three attempts).
    pub fn try_start(&self) -> Result<Server, String> {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = if self.is_cluster() {
                free_port_pair()
            } else {
                free_port()
            };
            let dir = match &self.name {
                Some(name) => scratch(name),
                None => scratch(&format!("redis-{port}")),
            };
            let args = self.command_line(port, &dir);
            match Server::spawn(port, dir, args) {
                Ok(server) => return Ok(server),
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => return Err(log),
            }
        }
        Err(last_log)
    }

    /// The arguments of `redis-server`.
    fn command_line(&self, port: u16, dir: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
            .iter()
            .chain(&["--save", "", "--appendonly", "no"])
            .chain(&["--enable-debug-command", "yes"])
            .map(OsString::from)
            .collect();
        if let Some(timeout) = self.cluster_node_timeout_ms {
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ]
                .map(OsString::from),
            );
            args.push("--cluster-node-timeout".into());
            args.push(timeout.to_string().into());
        }
        args.push("--dir".into());
        args.push(dir.into());
        args.push("--logfile".into());
        args.push(dir.join("redis.log").into());
        args.extend(self.server_args.iter().cloned());
        if let Some(module) = &self.module {
            args.push("--loadmodule".into());
            args.push(module.into());
            args.extend(self.module_args.iter().cloned());
        }
        args
    }
}

impl Server {
    /// A builder for a server (see [`ServerBuilder`]).
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}
