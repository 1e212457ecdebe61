#![allow(dead_code, unreachable_pub)]

//! A real Redis Cluster on loopback for tests: N masters (and replicas), each a redis-server
//! with a Gears module loaded, on free ports, killed by PID when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{module_path, run};

/// The module file: `$GEARS_MODULE_DIR/lib<name>.so` when set (the benchmark uses a release
/// build), else the debug build.
pub fn module_file(lib: &str) -> PathBuf {
    match std::env::var_os("GEARS_MODULE_DIR") {
        Some(dir) => PathBuf::from(dir).join(format!("lib{lib}.so")),
        None => module_path(lib),
    }
}

/// One cluster node.
pub struct Node {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<std::ffi::OsString>,
}

impl Node {
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("connect to a cluster node")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Kills the node (SIGKILL, no goodbye to the cluster).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed node again: same port, directory and `nodes.conf` (it rejoins the
    /// cluster with its id), a new process (a new Gears run id).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart redis-server");
        self.child = Some(child);
        let port = self.port;
        let up = wait_until(Duration::from_secs(10), || {
            redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
        assert!(up, "restarted node did not answer:\n{}", self.log());
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `CLUSTER MYID`.
    pub fn id(&self) -> String {
        run(&mut self.conn(), &["CLUSTER", "MYID"])
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port whose cluster bus port (+10000) is free too.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// A standalone server (no cluster) with `module` loaded.
pub fn start_standalone(module: &str, module_args: &[&str]) -> Node {
    start_node(module, module_args, None)
}

fn start_node(module: &str, module_args: &[&str], node_timeout_ms: Option<u64>) -> Node {
    let module = module_file(module);
    let port = free_port_pair();
    let dir = std::env::temp_dir().join(format!("gears-cluster-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("node dir");
    let mut cmd = Command::new("redis-server");
    cmd.arg("--port").arg(port.to_string()).args([
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    if let Some(timeout) = node_timeout_ms {
        cmd.args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .arg("--cluster-node-timeout")
            .arg(timeout.to_string());
    }
    let args: Vec<std::ffi::OsString> = cmd
        .args(["--enable-debug-command", "yes"])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .arg("--loadmodule")
        .arg(&module)
        .args(module_args)
        .get_args()
        .map(|a| a.to_owned())
        .collect();
    let child = Command::new("redis-server")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let node = Node {
        child: Some(child),
        port,
        dir,
        args,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection())
        {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                return node;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node did not start:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A cluster of `masters` masters with `replicas` replicas each.
pub struct TestCluster {
    pub nodes: Vec<Node>,
}

/// Polls `f` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

impl TestCluster {
    pub fn start(
        module: &str,
        module_args: &[&str],
        masters: usize,
        replicas: usize,
        node_timeout_ms: u64,
    ) -> TestCluster {
        let total = masters * (1 + replicas);
        let nodes: Vec<Node> = (0..total)
            .map(|_| start_node(module, module_args, Some(node_timeout_ms)))
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = TestCluster { nodes };
        let ok = wait_until(Duration::from_secs(30), || {
            cluster.nodes.iter().all(|n| {
                let info = run(&mut n.conn(), &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{total}"))
            })
        });
        assert!(ok, "cluster did not become ok");
        if replicas > 0 {
            let synced = wait_until(Duration::from_secs(30), || {
                cluster.nodes.iter().all(|n| {
                    let info = run(&mut n.conn(), &["INFO", "replication"]);
                    !info.contains("role:slave") || info.contains("master_link_status:up")
                })
            });
            assert!(synced, "replicas did not sync");
        }
        cluster
    }

    /// Starts one more node with `module` and joins it to the cluster as a master without
    /// slots (`redis-cli --cluster add-node`); returns its index in `nodes`.
    pub fn add_master(
        &mut self,
        module: &str,
        module_args: &[&str],
        node_timeout_ms: u64,
    ) -> usize {
        let node = start_node(module, module_args, Some(node_timeout_ms));
        let out = Command::new("redis-cli")
            .args(["--cluster", "add-node"])
            .arg(format!("127.0.0.1:{}", node.port))
            .arg(format!("127.0.0.1:{}", self.nodes[0].port))
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "add-node failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        self.nodes.push(node);
        let total = self.nodes.len();
        let joined = wait_until(Duration::from_secs(30), || {
            self.nodes.iter().all(|n| {
                let info = run(&mut n.conn(), &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{total}"))
            })
        });
        assert!(joined, "the new node did not join");
        total - 1
    }

    /// The node serving `slot` as master: index into `nodes`.
    pub fn master_of_slot(&self, slot: u16) -> usize {
        self.master_in(&self.slot_ports(), slot)
    }

    /// Like [`master_of_slot`](Self::master_of_slot) with a `slot_ports()` snapshot (bulk
    /// loads: one `CLUSTER SLOTS` instead of one per key).
    pub fn master_in(&self, ports: &[(u16, u16, u16)], slot: u16) -> usize {
        let port = ports
            .iter()
            .find(|(a, b, _)| *a <= slot && slot <= *b)
            .map(|(_, _, p)| *p)
            .expect("slot covered");
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .expect("known port")
    }

    /// `(first slot, last slot, master port)` from `CLUSTER SLOTS` of a live node.
    pub fn slot_ports(&self) -> Vec<(u16, u16, u16)> {
        for n in &self.nodes {
            let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{}/", n.port))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            else {
                continue;
            };
            let Ok(slots) = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query::<Vec<(u16, u16, (String, u16))>>(&mut c)
                .or_else(|_| {
                    // Entries may carry replicas and metadata: read the first three fields.
                    redis::cmd("CLUSTER")
                        .arg("SLOTS")
                        .query::<Vec<redis::Value>>(&mut c)
                        .map(|v| {
                            v.into_iter()
                                .filter_map(|e| match e {
                                    redis::Value::Array(parts) => {
                                        let int = |v: &redis::Value| match v {
                                            redis::Value::Int(i) => Some(*i as u16),
                                            _ => None,
                                        };
                                        let a = int(parts.first()?)?;
                                        let b = int(parts.get(1)?)?;
                                        let redis::Value::Array(m) = parts.get(2)? else {
                                            return None;
                                        };
                                        let p = int(m.get(1)?)?;
                                        Some((a, b, (String::new(), p)))
                                    }
                                    _ => None,
                                })
                                .collect()
                        })
                })
            else {
                continue;
            };
            return slots.into_iter().map(|(a, b, (_, p))| (a, b, p)).collect();
        }
        panic!("no node answered CLUSTER SLOTS");
    }

    /// The node that owns `key` (by slot).
    pub fn owner(&self, key: &str) -> usize {
        self.master_of_slot(gears::slot::key_slot(key.as_bytes()))
    }

    /// A connection to the owner of `key`.
    pub fn conn_for(&self, key: &str) -> redis::Connection {
        self.nodes[self.owner(key)].conn()
    }

    /// Indexes of the current masters.
    pub fn masters(&self) -> Vec<usize> {
        let ports: Vec<u16> = self.slot_ports().into_iter().map(|(_, _, p)| p).collect();
        (0..self.nodes.len())
            .filter(|&i| ports.contains(&self.nodes[i].port))
            .collect()
    }
}
