//! The cluster's shape, followed without any manual command: records placed on their slot
//! owner by `repartition`, writes to foreign slots named, slots moved by resharding, a master
//! added.

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::{run, wait_until, Cluster};

use crate::{node, rg_run, FLOWS};

/// A fourth master joins and takes slots (with their keys): every master, the new one too,
/// sees four shards by itself and the runs still answer what one server answers.
pub(crate) fn a_node_added_is_followed(
    cluster: &mut Cluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let new = cluster.add_master(&node(&["ClusterTestHooks", "1"], 5000));
    let new_id = cluster.nodes[new].node_id();
    cluster.reshard(&ids[1], &new_id, 500);
    let four_shards = wait_until(Duration::from_secs(10), || {
        cluster.nodes.iter().all(|n| {
            let info: Vec<redis::Value> = redis::cmd("RG.INFOCLUSTER")
                .query(&mut n.conn())
                .unwrap_or_default();
            matches!(info.get(4), Some(redis::Value::Array(shards)) if shards.len() == 4)
        })
    });
    assert!(four_shards, "the topology did not follow the new node");
    every_master_answers_like_one_server(cluster, single, "after a node joined");
}

/// Every flow but the whole-keyspace count (the checks before wrote keys on the cluster only),
/// plus a count of the documents, started from every master, answers what one server answers.
fn every_master_answers_like_one_server(
    cluster: &Cluster,
    single: &mut redis::Connection,
    when: &str,
) {
    let doc_keys: &[&str] = &["count_keys", "ARGS", "doc:*"];
    for flow in FLOWS
        .iter()
        .filter(|f| f.last() != Some(&"*"))
        .chain([&doc_keys])
    {
        let expected = rg_run(single, flow);
        for node in &cluster.nodes {
            assert_eq!(rg_run(&mut node.conn(), flow), expected, "{flow:?} {when}");
        }
    }
}

/// Resharding moves slots (and their keys) between masters: the next runs follow without
/// RG.REFRESHCLUSTER.
pub(crate) fn slots_moved_are_followed(
    cluster: &Cluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    cluster.reshard(&ids[0], &ids[1], 500);
    let slots = cluster.slots();
    let owner_of_0 = slots.iter().find(|r| r.first == 0).map(|r| r.port);
    assert_eq!(
        owner_of_0,
        Some(cluster.nodes[1].port),
        "slot 0 moved: {slots:?}"
    );
    every_master_answers_like_one_server(cluster, single, "after resharding");
}

pub(crate) fn repartition_places_records_on_their_owner(cluster: &Cluster, data: &[Vec<String>]) {
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in data.iter().filter(|c| c[0] == "HSET") {
        expected.entry(c[3].clone()).or_default().push(c[1].clone());
    }
    let reply = run(&mut cluster.nodes[2].conn(), &["RG.RUN", "place_by_city"]);
    assert!(
        reply.ends_with(",[]]"),
        "writes from the repartitioned step failed: {reply}"
    );
    let placed = reply.matches("user:").count();
    assert_eq!(placed, 600);
    for (city, users) in expected {
        let key = format!("{{{city}}}:members");
        let owner = cluster.owner(&key);
        let mut members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&key)
            .query(&mut cluster.nodes[owner].conn())
            .expect("members on the owner");
        members.sort();
        let mut users = users;
        users.sort();
        assert_eq!(members, users, "{key} on node {owner}");
    }
}

pub(crate) fn writes_to_foreign_slots_name_the_slot(cluster: &Cluster) {
    let reply = run(
        &mut cluster.nodes[0].conn(),
        &["RG.RUN", "copy_without_hashtag", "ARGS", "doc:*"],
    );
    let head: String = reply.chars().take(2000).collect();
    assert!(reply.contains("hashes to slot"), "{head}");
    assert!(reply.contains("{hashtag}"), "{head}");
    let reply = run(
        &mut cluster.nodes[0].conn(),
        &["RG.RUN", "copy_with_hashtag", "ARGS", "doc:*"],
    );
    let head: String = reply.chars().take(2000).collect();
    assert!(reply.ends_with(",[]]"), "{head}");
    assert_eq!(reply.matches("doc:").count(), 400);
}
