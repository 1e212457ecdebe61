//! A 3-master Redis Cluster with the rgsync module on every node: the job is added on each
//! master, each shard captures into its own stream (a hashtag of a slot it owns) and drains it
//! with its own checkpoint row; the PostgreSQL table ends complete.

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::db::{exec, rows, unique, POSTGRES};
use gears_testkit::rgsync::{self, drained, status, Job};
use gears_testkit::Cluster;

#[test]
fn three_masters_each_drain_their_own_stream() {
    let cluster = Cluster::start(&rgsync::server().cluster(5000), 3, 0);
    let nodes = &cluster.nodes;
    let table = unique("cluster_users");
    let _ = std::panic::catch_unwind(|| exec(POSTGRES, &format!("DROP TABLE \"{table}\"")));
    let _ = std::panic::catch_unwind(|| {
        exec(
            POSTGRES,
            &format!("DELETE FROM rgsync_checkpoint WHERE job = '{table}'"),
        )
    });
    // One RGSYNC.ADD, on one master, adds the job on every master.
    let reply = Job::new(&table, "user:{id:integer}", &table, POSTGRES)
        .columns("name")
        .words(&["CREATE_TABLE", "yes", "BATCH", "100", "DURATION", "20"])
        .add(&mut nodes[0].conn());
    let redis::Value::Array(per_shard) = &reply else {
        panic!("a reply per shard: {reply:?}")
    };
    assert_eq!(per_shard.len(), 3, "{reply:?}");
    assert!(
        format!("{reply:?}").matches("OK").count() == 3,
        "every master added the job: {reply:?}"
    );
    for n in nodes {
        let list: redis::Value = redis::cmd("RGSYNC.LIST").query(&mut n.conn()).unwrap();
        assert!(
            format!("{list:?}").contains(&table),
            "port {}: {list:?}",
            n.port
        );
    }
    // Adding it again, on any master, is refused there (nothing fans out).
    let again = Job::new(&table, "user:{id}", &table, POSTGRES)
        .try_add(&mut nodes[1].conn())
        .unwrap_or_else(|e| redis::Value::SimpleString(e.to_string()));
    assert!(format!("{again:?}").contains("exists"), "{again:?}");
    let owners = cluster.slots();
    let mut cons: BTreeMap<u16, redis::Connection> =
        nodes.iter().map(|n| (n.port, n.conn())).collect();
    let mut per_node: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..3000 {
        let key = format!("user:{i}");
        let slot = gears::slot::key_slot(key.as_bytes());
        let port = cluster.nodes[cluster.master_in(&owners, slot)].port;
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
    for n in nodes {
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
    for n in nodes {
        let list: redis::Value = redis::cmd("RGSYNC.LIST").query(&mut n.conn()).unwrap();
        assert!(
            !format!("{list:?}").contains(&table),
            "port {}: {list:?}",
            n.port
        );
    }
}
