//! A real Redis Cluster on 127.0.0.1: N masters with R replicas each, formed with
//! `redis-cli --cluster create`; slot owners, resharding, added masters and failover waits.

use std::process::Command;
use std::time::Duration;

use redis::Value;

use crate::builder::ServerBuilder;
use crate::reply::run;
use crate::server::Server;
use crate::wait::wait_until;

/// How long forming, joining or syncing may take.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// A range of hash slots and the port of the master serving them (from `CLUSTER SLOTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// The first slot of the range.
    pub first: u16,
    /// The last slot of the range (included).
    pub last: u16,
    /// The master's port.
    pub port: u16,
}

/// The nodes of a cluster, each a [`Server`] (killed when the cluster is dropped).
pub struct Cluster {
    /// Every node, masters and replicas, in the order they were started.
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Starts `masters * (1 + replicas)` nodes from `node` (which must be in
    /// [`cluster`](ServerBuilder::cluster) mode), forms the cluster and waits until every node
    /// says `cluster_state:ok` and knows them all, and every replica's link to its master is up.
    pub fn start(node: &ServerBuilder, masters: usize, replicas: usize) -> Cluster {
        assert!(
            node.is_cluster(),
            "cluster nodes need ServerBuilder::cluster"
        );
        let total = masters * (1 + replicas);
        let cluster = Cluster {
            nodes: (0..total).map(|_| node.start()).collect(),
        };
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        redis_cli(create, "cluster create");
        assert!(cluster.wait_ok(FORM_TIMEOUT), "cluster did not become ok");
        if replicas > 0 {
            let synced = wait_until(FORM_TIMEOUT, || {
                cluster.nodes.iter().all(|n| {
                    let info = run(&mut n.conn(), &["INFO", "replication"]);
                    !info.contains("role:slave") || info.contains("master_link_status:up")
                })
            });
            assert!(synced, "replicas did not sync");
        }
        cluster
    }

    /// Whether, within `timeout`, every node that runs says `cluster_state:ok` and knows
    /// every node of the cluster.
    pub fn wait_ok(&self, timeout: Duration) -> bool {
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        wait_until(timeout, || {
            self.nodes.iter().filter(|n| !n.is_down()).all(|n| {
                let info = run(&mut n.conn(), &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains(&known)
            })
        })
    }

    /// Starts one more node from `node` and joins it as a master without slots
    /// (`redis-cli --cluster add-node`); waits until everyone knows it; its index in `nodes`.
    pub fn add_master(&mut self, node: &ServerBuilder) -> usize {
        let new = node.start();
        let mut add = Command::new("redis-cli");
        add.args(["--cluster", "add-node"])
            .arg(format!("127.0.0.1:{}", new.port))
            .arg(format!("127.0.0.1:{}", self.nodes[0].port));
        redis_cli(add, "add-node");
        self.nodes.push(new);
        assert!(self.wait_ok(FORM_TIMEOUT), "the new node did not join");
        self.nodes.len() - 1
    }

    /// Moves `slots` slots from the master with id `from` to the one with id `to`
    /// (`redis-cli --cluster reshard`, keys included).
    pub fn reshard(&self, from: &str, to: &str, slots: usize) {
        let mut reshard = Command::new("redis-cli");
        reshard
            .args(["--cluster", "reshard"])
            .arg(format!("127.0.0.1:{}", self.nodes[0].port))
            .args(["--cluster-from", from, "--cluster-to", to])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"]);
        redis_cli(reshard, "reshard");
    }

    /// The slot table, from `CLUSTER SLOTS` of the first node that answers.
    pub fn slots(&self) -> Vec<SlotRange> {
        for n in self.nodes.iter().filter(|n| !n.is_down()) {
            let Ok(mut c) = redis::Client::open(n.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            else {
                continue;
            };
            if let Ok(reply) = redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(&mut c) {
                return slot_ranges(&reply);
            }
        }
        panic!("no node answered CLUSTER SLOTS");
    }

    /// The index in `nodes` of the master serving `slot`, by the table `slots` (one
    /// `CLUSTER SLOTS` for many lookups).
    pub fn master_in(&self, slots: &[SlotRange], slot: u16) -> usize {
        let port = slots
            .iter()
            .find(|r| r.first <= slot && slot <= r.last)
            .map(|r| r.port)
            .expect("slot covered");
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .expect("known port")
    }

    /// The index in `nodes` of the master serving `slot`.
    pub fn master_of_slot(&self, slot: u16) -> usize {
        self.master_in(&self.slots(), slot)
    }

    /// The index in `nodes` of the master that owns `key` (its slot by `CLUSTER KEYSLOT`).
    pub fn owner(&self, key: &str) -> usize {
        let live = self
            .nodes
            .iter()
            .find(|n| !n.is_down())
            .expect("a live node");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut live.conn())
            .expect("CLUSTER KEYSLOT");
        self.master_of_slot(slot)
    }

    /// A connection to the master that owns `key`.
    pub fn conn_for(&self, key: &str) -> redis::Connection {
        self.nodes[self.owner(key)].conn()
    }

    /// The indexes in `nodes` of the masters that serve slots now.
    pub fn masters(&self) -> Vec<usize> {
        let ports: Vec<u16> = self.slots().iter().map(|r| r.port).collect();
        (0..self.nodes.len())
            .filter(|&i| ports.contains(&self.nodes[i].port))
            .collect()
    }

    /// Waits (`WAIT 1 5000` on every master) until each master's writes reached a replica.
    pub fn wait_for_replicas(&self) {
        for m in self.masters() {
            let _: i64 = redis::cmd("WAIT")
                .arg(1)
                .arg(5000)
                .query(&mut self.nodes[m].conn())
                .expect("WAIT");
        }
    }

    /// Whether, within `timeout`, a replica took over from the killed master `victim`:
    /// `masters` masters serve the slots, `victim` is not one of them, and every node that
    /// runs says `cluster_state:ok`.
    pub fn wait_for_failover(&self, victim: usize, masters: usize, timeout: Duration) -> bool {
        wait_until(timeout, || {
            let now = self.masters();
            now.len() == masters
                && !now.contains(&victim)
                && self
                    .nodes
                    .iter()
                    .filter(|n| !n.is_down())
                    .all(|n| run(&mut n.conn(), &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        })
    }
}

/// Runs a `redis-cli --cluster` command; panics with its output if it fails.
fn redis_cli(mut cmd: Command, what: &str) {
    let out = cmd.output().expect("redis-cli is installed");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The ranges of a `CLUSTER SLOTS` reply: `[first, last, [ip, port, id, ...], replicas...]`.
fn slot_ranges(reply: &Value) -> Vec<SlotRange> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        _ => None,
    };
    entries
        .iter()
        .filter_map(|e| {
            let Value::Array(parts) = e else { return None };
            let Value::Array(master) = parts.get(2)? else {
                return None;
            };
            Some(SlotRange {
                first: int(parts.first()?)?,
                last: int(parts.get(1)?)?,
                port: int(master.get(1)?)?,
            })
        })
        .collect()
}
