//! Gears on a real 3-master Redis Cluster on loopback: distributed `RG.RUN` answers exactly
//! what one standalone server holding the same data answers; repartition places records on
//! their slot owner; the topology and ids come from the cluster; malformed cluster messages
//! are rejected; binary keys and values cross shards byte for byte; a killed master fails a
//! run in bounded time and a promoted replica is used without any manual command.

mod bench;
mod binary;
mod failover;
mod faults;
mod gaps;
mod registrations;
mod topology;

use std::collections::BTreeMap;
use std::time::Duration;

use gears_testkit::{run, show, wait_until, Cluster, Server, ServerBuilder};

const MODULE: &str = "gears_wordcount";
const CITIES: [&str; 7] = ["paris", "rome", "oslo", "lima", "kyiv", "baku", "doha"];
const WORDS: [&str; 12] = [
    "redis", "gears", "data", "close", "compute", "the", "loop", "shard", "slot", "key", "flow",
    "step",
];

/// A cluster node with the module loaded with `module_args`.
fn node(module_args: &[&str], node_timeout_ms: u64) -> ServerBuilder {
    Server::builder()
        .module(MODULE)
        .module_args(module_args)
        .cluster(node_timeout_ms)
}

/// The dataset: `doc:<i>` strings and `user:<i>` hashes.
fn dataset(docs: usize, users: usize) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    for i in 0..docs {
        let text: Vec<&str> = (0..8)
            .map(|j| WORDS[(i * 7 + j * 3) % WORDS.len()])
            .collect();
        cmds.push(vec!["SET".into(), format!("doc:{i}"), text.join(" ")]);
    }
    for i in 0..users {
        cmds.push(vec![
            "HSET".into(),
            format!("user:{i}"),
            "city".into(),
            CITIES[(i * 5 + i / 3) % CITIES.len()].into(),
            "age".into(),
            (18 + (i * 37) % 60).to_string(),
        ]);
    }
    cmds
}

fn load(con: &mut redis::Connection, cmds: &[&Vec<String>]) {
    let mut pipe = redis::pipe();
    for c in cmds {
        let mut cmd = redis::cmd(&c[0]);
        for a in &c[1..] {
            cmd.arg(a);
        }
        pipe.add_command(cmd).ignore();
    }
    pipe.query::<()>(con).expect("load data");
}

fn load_cluster(cluster: &Cluster, cmds: &[Vec<String>]) {
    let mut by_owner: BTreeMap<usize, Vec<&Vec<String>>> = BTreeMap::new();
    let table = cluster.slots();
    for c in cmds {
        let slot = gears::slot::key_slot(c[1].as_bytes());
        by_owner
            .entry(cluster.master_in(&table, slot))
            .or_default()
            .push(c);
    }
    for (node, cmds) in by_owner {
        load(&mut cluster.nodes[node].conn(), &cmds);
    }
}

/// Flows whose cluster answer must equal the standalone answer.
const FLOWS: &[&[&str]] = &[
    &["word_count"],
    &["users_per_city"],
    &["average_age_per_city"],
    &["distinct_cities"],
    &["total_age"],
    &["sorted_ages"],
    &["count_by_city"],
    &["count_keys", "ARGS", "*"],
    &["first_keys", "ARGS", "user:*", "5"],
];

fn rg_run(con: &mut redis::Connection, flow: &[&str]) -> String {
    let mut args = vec!["RG.RUN", flow[0]];
    args.extend_from_slice(&flow[1..]);
    run(con, &args)
}

fn field(reply: &[redis::Value], name: &str) -> Option<redis::Value> {
    reply
        .windows(2)
        .find(|kv| show(&kv[0]) == name)
        .map(|kv| kv[1].clone())
}

fn info_counter(con: &mut redis::Connection, name: &str) -> i64 {
    let info: Vec<redis::Value> = redis::cmd("RG.INFOCLUSTER")
        .query(con)
        .expect("infocluster");
    match field(&info, name) {
        Some(redis::Value::Int(n)) => n,
        other => panic!("{name}: {other:?}"),
    }
}

/// The registration id in the reply of `RG.REGISTER` on a cluster (`[[shard, id], ...]`).
fn registration_of(reply: &str) -> String {
    reply
        .trim_start_matches('[')
        .split(',')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(']')
        .to_string()
}

/// `[[shard, reply], ...]` of a registration command: one entry per master.
fn per_shard(reply: &str, ids: &[String], expect: &str) {
    for id in ids {
        assert!(reply.contains(&format!("[{id},{expect}]")), "{id}: {reply}");
    }
}

/// `RG.CONFIGSET <name> <value>`, which must be accepted.
fn config_set(con: &mut redis::Connection, name: &str, value: &str) {
    assert_eq!(run(con, &["RG.CONFIGSET", name, value]), "[OK]", "{name}");
}

/// Puts back the defaults the fault checks change (`SendMsgRetries`, `ExecutionMaxIdleTime`).
fn reset_timeouts(con: &mut redis::Connection) {
    run(con, &["RG.CONFIGSET", "SendMsgRetries", "3"]);
    run(con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "5000"]);
}

#[test]
fn three_masters_answer_like_one_server() {
    let mut cluster = Cluster::start(&node(&["ClusterTestHooks", "1"], 5000), 3, 0);
    let standalone = Server::start(MODULE, &[]);
    let data = dataset(400, 600);
    load(&mut standalone.conn(), &data.iter().collect::<Vec<_>>());
    load_cluster(&cluster, &data);
    let mut single = standalone.conn();

    // Topology and ids come from the cluster.
    let ids: Vec<String> = cluster.nodes.iter().map(Server::node_id).collect();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut con = node.conn();
        let info: Vec<redis::Value> = redis::cmd("RG.INFOCLUSTER").query(&mut con).unwrap();
        assert_eq!(show(&info[0]), "MyId");
        assert_eq!(show(&info[1]), ids[i]);
        let redis::Value::Array(shards) = &info[4] else {
            panic!("shards: {info:?}")
        };
        assert_eq!(shards.len(), 3, "{}", show(&info[4]));
        for id in &ids {
            assert!(show(&info[4]).contains(id.as_str()));
        }
    }
    assert_eq!(run(&mut single, &["RG.INFOCLUSTER"]), "no cluster mode");

    // Every flow, started from every master, answers what the standalone server answers.
    for flow in FLOWS {
        let expected = rg_run(&mut single, flow);
        assert!(expected.ends_with(",[]]"), "{flow:?}: {expected}");
        for node in &cluster.nodes {
            let got = rg_run(&mut node.conn(), flow);
            assert_eq!(got, expected, "{flow:?} from port {}", node.port);
        }
    }

    // Execution ids: `<40-char node id>-<n>`; standalone keeps forty 0s.
    let mut con = cluster.nodes[1].conn();
    let id = run(&mut con, &["RG.RUN", "word_count", "UNBLOCKING"]);
    assert!(id.starts_with(&format!("{}-", ids[1])), "{id}");
    assert!(id.len() > 41 && id[41..].parse::<u64>().is_ok(), "{id}");
    let standalone_id = run(&mut single, &["RG.RUN", "word_count", "UNBLOCKING"]);
    assert!(standalone_id.starts_with(&format!("{}-", "0".repeat(40))));
    let results = run(&mut con, &["RG.GETRESULTSBLOCKING", &id]);
    assert_eq!(results, rg_run(&mut single, &["word_count"]));
    // RG.GETRESULTS sent to another master asks the one that started the run.
    assert_eq!(
        run(&mut cluster.nodes[2].conn(), &["RG.GETRESULTS", &id]),
        results
    );

    // GETEXECUTION … CLUSTER lists the part of every master.
    let plan = run(&mut con, &["RG.GETEXECUTION", &id, "CLUSTER"]);
    for shard in &ids {
        assert!(
            plan.contains(&format!("shard_id,{shard},execution_plan,[status,done")),
            "{plan}"
        );
    }
    let local = run(&mut con, &["RG.GETEXECUTION", &id]);
    assert!(
        local.contains(&ids[1]) && !local.contains(&ids[0]),
        "{local}"
    );
    // DROPEXECUTION forgets it everywhere.
    assert_eq!(run(&mut con, &["RG.DROPEXECUTION", &id]), "OK");
    assert!(wait_until(Duration::from_secs(5), || {
        cluster
            .nodes
            .iter()
            .all(|n| run(&mut n.conn(), &["RG.GETEXECUTION", &id]).contains("does not exist"))
    }));

    binary::binary_records_cross_shards_exactly(&cluster);
    topology::repartition_places_records_on_their_owner(&cluster, &data);
    topology::writes_to_foreign_slots_name_the_slot(&cluster);
    faults::malformed_messages_are_rejected(&cluster, &ids, &mut single);
    registrations::registrations_are_cluster_wide(&cluster, &ids);
    gaps::async_events_run_in_order(&cluster);
    gaps::results_blocking_from_another_master(&cluster, &rg_run(&mut single, &["word_count"]));
    registrations::abort_is_cluster_wide(&cluster);
    faults::a_silent_shard_fails_the_run_after_the_idle_time(&cluster, &ids, &mut single);
    faults::undelivered_messages_fail_the_run_after_the_retries(&cluster, &ids, &mut single);
    topology::slots_moved_are_followed(&cluster, &ids, &mut single);
    topology::a_node_added_is_followed(&mut cluster, &ids, &mut single);
    faults::messages_are_retransmitted_across_a_restart(&mut cluster, &ids);
}
