//! The cluster's topology as Gears uses it: the masters that own slots (the shards), their
//! slot ranges and addresses, read from the cluster itself (`CLUSTER SLOTS` for the ranges,
//! the module node list for addresses and failure flags). Refreshed by a timer and before
//! every distributed run, so a failover or a resharding needs no manual step.

use std::sync::Arc;

use redis_module::{CallOptionsBuilder, Context};

use gears_core::distributed::wire::{topology_of, WireShard};
use gears_core::host::Topology;
use gears_core::value::Value;

use crate::ffi::cluster_bus::{self, NodeInfo};
use crate::runtime::reply::from_call;

/// One shard (a master owning slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) id: String,
    pub(crate) ip: String,
    pub(crate) port: i64,
    pub(crate) slots: Vec<(u16, u16)>,
    /// Flagged PFAIL/FAIL by the cluster.
    pub(crate) failing: bool,
}

/// A snapshot of the topology.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Shards sorted by id (index = shard index of the engine's `Topology`).
    pub(crate) shards: Vec<Shard>,
    /// The local node's index, when it is a shard (a master owning slots).
    pub(crate) me: Option<usize>,
    /// The routing table seen from this node (`me` or shard 0).
    pub(crate) topology: Topology,
    /// Every node, replicas included.
    pub(crate) nodes: Vec<NodeInfo>,
}

impl View {
    /// The shards as they travel in a `Start` message.
    pub(crate) fn wire_shards(&self) -> Vec<WireShard> {
        self.shards
            .iter()
            .map(|s| WireShard {
                id: s.id.clone(),
                slots: s.slots.clone(),
            })
            .collect()
    }

    /// `id (ip:port)` of a node, for error messages.
    pub(crate) fn describe(&self, id: &str) -> String {
        match self.nodes.iter().find(|n| n.id == id) {
            Some(n) => format!("{id} ({}:{})", n.ip, n.port),
            None => id.to_string(),
        }
    }

    /// Whether `wire` lists the same shards and slots as this view.
    pub(crate) fn same_shards(&self, wire: &[WireShard]) -> bool {
        self.shards.len() == wire.len()
            && self
                .shards
                .iter()
                .zip(wire)
                .all(|(a, b)| a.id == b.id && a.slots == b.slots)
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => other.as_str().and_then(|s| s.parse().ok()),
    }
}

/// Parses a `CLUSTER SLOTS` reply into one shard per master (sorted by id).
pub(crate) fn parse_slots(reply: &Value) -> Vec<Shard> {
    let mut out: Vec<Shard> = Vec::new();
    let Value::Array(entries) = reply else {
        return out;
    };
    for entry in entries {
        let Value::Array(parts) = entry else { continue };
        let (Some(start), Some(end), Some(Value::Array(master))) = (
            parts.first().and_then(int),
            parts.get(1).and_then(int),
            parts.get(2),
        ) else {
            continue;
        };
        let ip = master
            .first()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let port = master.get(1).and_then(int).unwrap_or(0);
        let Some(id) = master.get(2).and_then(|v| v.as_str()) else {
            continue;
        };
        let range = (start.clamp(0, 16383) as u16, end.clamp(0, 16383) as u16);
        match out.iter_mut().find(|s| s.id == id) {
            Some(shard) => shard.slots.push(range),
            None => out.push(Shard {
                id: id.to_string(),
                ip,
                port,
                slots: vec![range],
                failing: false,
            }),
        }
    }
    for shard in &mut out {
        shard.slots.sort_unstable();
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Reads the topology from the cluster. `previous` is reused when nothing changed (the slot
/// table is 32 KB: not rebuilt per run).
pub(crate) fn read(ctx: &Context, my_id: &str, previous: Option<&Arc<View>>) -> Arc<View> {
    let options = CallOptionsBuilder::new().errors_as_replies().build();
    let reply =
        from_call(&ctx.call_ext::<_, redis_module::CallResult>("CLUSTER", &options, &["SLOTS"]))
            .unwrap_or(Value::Nil);
    let nodes = cluster_bus::nodes(ctx);
    let failing = |id: &str| nodes.iter().any(|n| n.id == id && n.is_failing());
    let mut shards = parse_slots(&reply);
    for shard in &mut shards {
        shard.failing = failing(&shard.id);
    }
    let me = shards.iter().position(|s| s.id == my_id);
    if let Some(prev) = previous {
        if prev.shards == shards && prev.me == me {
            if prev.nodes == nodes {
                return prev.clone();
            }
            return Arc::new(View {
                nodes,
                ..(**prev).clone()
            });
        }
    }
    let topology = if shards.is_empty() {
        Topology::standalone()
    } else {
        let wire: Vec<WireShard> = shards
            .iter()
            .map(|s| WireShard {
                id: s.id.clone(),
                slots: s.slots.clone(),
            })
            .collect();
        topology_of(&wire, me.unwrap_or(0))
    };
    Arc::new(View {
        shards,
        me,
        topology,
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_slots_reply_is_grouped_per_master() {
        let node = |ip: &str, port: i64, id: &str| {
            Value::Array(vec![Value::bulk(ip), Value::Int(port), Value::bulk(id)])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001, "b"),
                node("127.0.0.1", 7004, "r"),
            ]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000, "a"),
            ]),
            Value::Array(vec![
                Value::Int(16000),
                Value::Int(16383),
                node("127.0.0.1", 7000, "a"),
            ]),
            Value::Array(vec![Value::Int(1)]),
        ]);
        let parsed = parse_slots(&reply);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].id, "a");
        assert_eq!(parsed[0].slots, vec![(0, 5460), (16000, 16383)]);
        assert_eq!(parsed[1].port, 7001);
    }
}
