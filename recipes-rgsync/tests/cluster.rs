//! A 3-master Redis Cluster with the rgsync module on every node: the job is added on each
//! master, each shard captures into its own stream (a hashtag of a slot it owns) and drains it
//! with its own checkpoint row; the PostgreSQL table ends complete.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

fn slot_owners(con: &mut redis::Connection) -> Vec<(u16, u16, u16)> {
    let v: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(con).unwrap();
    v.into_iter()
        .filter_map(|r| {
            let redis::Value::Array(r) = r else {
                return None;
            };
            let int = |v: &redis::Value| match v {
                redis::Value::Int(i) => Some(*i as u16),
                _ => None,
            };
            let port = match r.get(2) {
                Some(redis::Value::Array(node)) => node.get(1).and_then(int)?,
                _ => return None,
            };
            Some((int(&r[0])?, int(&r[1])?, port))
        })
        .collect()
}

#[test]
fn three_masters_each_drain_their_own_stream() {
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            Server::start(
                &format!("cluster-{i}"),
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ],
                &[],
            )
        })
        .collect();
    form_cluster(&nodes);
    let table = unique("cluster_users");
    let _ = std::panic::catch_unwind(|| exec(POSTGRES, &format!("DROP TABLE \"{table}\"")));
    let _ = std::panic::catch_unwind(|| {
        exec(
            POSTGRES,
            &format!("DELETE FROM rgsync_checkpoint WHERE job = '{table}'"),
        )
    });
    // One RGSYNC.ADD, on one master, adds the job on every master.
    let reply: redis::Value = redis::cmd("RGSYNC.ADD")
        .arg(&[
            table.as_str(),
            "KEY",
            "user:{id:integer}",
            "TABLE",
            &table,
            "COLUMNS",
            "name",
            "CONNECTION",
            POSTGRES,
            "CREATE_TABLE",
            "yes",
            "BATCH",
            "100",
            "DURATION",
            "20",
        ])
        .query(&mut nodes[0].conn())
        .unwrap();
    let redis::Value::Array(per_shard) = &reply else {
        panic!("a reply per shard: {reply:?}")
    };
    assert_eq!(per_shard.len(), 3, "{reply:?}");
    assert!(
        format!("{reply:?}").matches("OK").count() == 3,
        "every master added the job: {reply:?}"
    );
    for n in &nodes {
        let list: redis::Value = redis::cmd("RGSYNC.LIST").query(&mut n.conn()).unwrap();
        assert!(
            format!("{list:?}").contains(&table),
            "port {}: {list:?}",
            n.port
        );
    }
    // Adding it again, on any master, is refused there (nothing fans out).
    let again: redis::Value = redis::cmd("RGSYNC.ADD")
        .arg(&[table.as_str(), "KEY", "user:{id}", "TABLE", &table])
        .arg(&["CONNECTION", POSTGRES])
        .query(&mut nodes[1].conn())
        .unwrap_or_else(|e| redis::Value::SimpleString(e.to_string()));
    assert!(format!("{again:?}").contains("exists"), "{again:?}");
    let owners = slot_owners(&mut nodes[0].conn());
    let mut cons: BTreeMap<u16, redis::Connection> =
        nodes.iter().map(|n| (n.port, n.conn())).collect();
    let mut per_node: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..3000 {
        let key = format!("user:{i}");
        let slot = gears::slot::key_slot(key.as_bytes());
        let port = owners
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|o| o.2)
            .unwrap();
        redis::cmd("HSET")
            .arg(&key)
            .arg("name")
            .arg(format!("n{i}"))
            .query::<()>(cons.get_mut(&port).unwrap())
            .unwrap();
        *per_node.entry(port).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3);
    let mut streams = Vec::new();
    for n in &nodes {
        let mut con = n.conn();
        drained(&mut con, &table, Duration::from_secs(30));
        let st = status(&mut con, &table);
        assert_eq!(st["rows"], per_node[&n.port].to_string(), "{st:?}");
        streams.push(st["stream"].clone());
    }
    streams.sort();
    streams.dedup();
    assert_eq!(streams.len(), 3, "one stream per shard: {streams:?}");
    let got = rows(
        POSTGRES,
        &format!("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM \"{table}\""),
    );
    assert_eq!(got, [["3000", "3000", "0", "2999"]]);
    let cps = rows(
        POSTGRES,
        &format!("SELECT stream FROM rgsync_checkpoint WHERE job = '{table}'"),
    );
    assert_eq!(cps.len(), 3, "a checkpoint per shard: {cps:?}");
    // One RGSYNC.REMOVE removes it everywhere.
    let removed: redis::Value = redis::cmd("RGSYNC.REMOVE")
        .arg(&table)
        .query(&mut nodes[2].conn())
        .unwrap();
    assert_eq!(
        format!("{removed:?}").matches("OK").count(),
        3,
        "{removed:?}"
    );
    for n in &nodes {
        let list: redis::Value = redis::cmd("RGSYNC.LIST").query(&mut n.conn()).unwrap();
        assert!(
            !format!("{list:?}").contains(&table),
            "port {}: {list:?}",
            n.port
        );
    }
}
