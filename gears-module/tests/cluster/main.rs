//! Gears on a real 3-master Redis Cluster on loopback: distributed `RG.RUN` answers exactly
//! what one standalone server holding the same data answers; repartition places records on
//! their slot owner; the topology and ids come from the cluster; malformed cluster messages
//! are rejected; a killed master fails a run in bounded time and a promoted replica is used
//! without any manual command.

mod bench;
#[path = "../common/mod.rs"]
mod common;
mod gaps;
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{run, Server};
use harness::{wait_until, TestCluster};

const MODULE: &str = "gears_wordcount";
const CITIES: [&str; 7] = ["paris", "rome", "oslo", "lima", "kyiv", "baku", "doha"];
const WORDS: [&str; 12] = [
    "redis", "gears", "data", "close", "compute", "the", "loop", "shard", "slot", "key", "flow",
    "step",
];

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

fn load_cluster(cluster: &TestCluster, cmds: &[Vec<String>]) {
    let mut by_owner: BTreeMap<usize, Vec<&Vec<String>>> = BTreeMap::new();
    let table = cluster.slot_ports();
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
        .find(|kv| common::show(&kv[0]) == name)
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

#[test]
fn three_masters_answer_like_one_server() {
    let mut cluster = TestCluster::start(MODULE, &["ClusterTestHooks", "1"], 3, 0, 5000);
    let standalone = Server::start(MODULE, &[]);
    let data = dataset(400, 600);
    load(&mut standalone.conn(), &data.iter().collect::<Vec<_>>());
    load_cluster(&cluster, &data);
    let mut single = standalone.conn();

    // Topology and ids come from the cluster.
    let ids: Vec<String> = cluster.nodes.iter().map(|n| n.id()).collect();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut con = node.conn();
        let info: Vec<redis::Value> = redis::cmd("RG.INFOCLUSTER").query(&mut con).unwrap();
        assert_eq!(common::show(&info[0]), "MyId");
        assert_eq!(common::show(&info[1]), ids[i]);
        let redis::Value::Array(shards) = &info[4] else {
            panic!("shards: {info:?}")
        };
        assert_eq!(shards.len(), 3, "{}", common::show(&info[4]));
        for id in &ids {
            assert!(common::show(&info[4]).contains(id.as_str()));
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
    let results = wait_results(&mut con, &id);
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

    repartition_places_records_on_their_owner(&cluster, &data);
    writes_to_foreign_slots_name_the_slot(&cluster);
    malformed_messages_are_rejected(&cluster, &ids, &mut single);
    registrations_are_cluster_wide(&cluster, &ids);
    gaps::async_events_run_in_order(&cluster);
    gaps::results_blocking_from_another_master(&cluster, &rg_run(&mut single, &["word_count"]));
    abort_is_cluster_wide(&cluster);
    a_silent_shard_fails_the_run_after_the_idle_time(&cluster, &ids, &mut single);
    undelivered_messages_fail_the_run_after_the_retries(&cluster, &ids, &mut single);
    slots_moved_are_followed(&cluster, &ids, &mut single);
    a_node_added_is_followed(&mut cluster, &ids, &mut single);
    messages_are_retransmitted_across_a_restart(&mut cluster, &ids);
}

/// A fourth master joins and takes slots (with their keys): every master, the new one too,
/// sees four shards by itself and the runs still answer what one server answers.
fn a_node_added_is_followed(
    cluster: &mut TestCluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let new = cluster.add_master(MODULE, &["ClusterTestHooks", "1"], 5000);
    let new_id = cluster.nodes[new].id();
    let out = std::process::Command::new("redis-cli")
        .args(["--cluster", "reshard"])
        .arg(format!("127.0.0.1:{}", cluster.nodes[0].port))
        .args(["--cluster-from", &ids[1], "--cluster-to", &new_id])
        .args(["--cluster-slots", "500", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
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
    cluster: &TestCluster,
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
fn slots_moved_are_followed(cluster: &TestCluster, ids: &[String], single: &mut redis::Connection) {
    let out = std::process::Command::new("redis-cli")
        .args(["--cluster", "reshard"])
        .arg(format!("127.0.0.1:{}", cluster.nodes[0].port))
        .args(["--cluster-from", &ids[0], "--cluster-to", &ids[1]])
        .args(["--cluster-slots", "500", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ports = cluster.slot_ports();
    let owner_of_0 = ports.iter().find(|(first, _, _)| *first == 0).map(|p| p.2);
    assert_eq!(
        owner_of_0,
        Some(cluster.nodes[1].port),
        "slot 0 moved: {ports:?}"
    );
    every_master_answers_like_one_server(cluster, single, "after resharding");
}

fn messages_are_retransmitted_across_a_restart(cluster: &mut TestCluster, ids: &[String]) {
    let mut con = cluster.nodes[0].conn();
    run(&mut con, &["RG.CONFIGSET", "SendMsgRetries", "10"]);
    // The request waits for every answer up to ExecutionMaxIdleTime; retransmissions come
    // 2 s, then 4 s, after the last acknowledged progress.
    run(&mut con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "12000"]);
    let retries_before = info_counter(&mut con, "retries");
    // Node 2 goes down; a registration made meanwhile reaches it once it is back.
    cluster.nodes[2].kill();
    let register = std::thread::spawn(move || {
        run(&mut con, &["RG.REGISTER", "mark_owner", "ARGS", "retry:*"])
    });
    std::thread::sleep(Duration::from_millis(1000));
    cluster.nodes[2].restart();
    let reply = register.join().unwrap();
    eprintln!("registered across a restart: {reply}");
    let reg = reply
        .trim_start_matches('[')
        .split(',')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(']')
        .to_string();
    assert!(reg.starts_with(&ids[0]), "{reply}");
    per_shard(&reply, ids, &reg);
    let dump = run(&mut cluster.nodes[2].conn(), &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains(&reg), "{dump}");
    let mut con = cluster.nodes[0].conn();
    assert!(info_counter(&mut con, "retries") > retries_before);
    run(&mut con, &["RG.CONFIGSET", "SendMsgRetries", "3"]);
    run(&mut con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "5000"]);
}

fn a_silent_shard_fails_the_run_after_the_idle_time(
    cluster: &TestCluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let mut con = cluster.nodes[0].conn();
    assert_eq!(
        run(&mut con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "1000"]),
        "[OK]"
    );
    // Node 1 stops answering for 3 s (its main thread sleeps; node timeout is 5 s, so the
    // cluster does not flag it): only the idle time can end the run.
    let (sleeper, reply, took) = word_count_while_asleep(cluster, &mut con, 1, "3");
    eprintln!("silent shard: the run failed after {took:?}: {reply}");
    assert!(
        reply.contains(&format!("shard {}", ids[1]))
            && reply.contains("did not answer within ExecutionMaxIdleTime (1000 ms)"),
        "{reply}"
    );
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert_eq!(sleeper.join().unwrap(), "OK");
    run(&mut con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "5000"]);
    // Once awake, the cluster runs flows again (late messages of the failed run are ignored).
    assert_eq!(
        rg_run(&mut con, &["word_count"]),
        rg_run(single, &["word_count"])
    );
}

/// Puts node `node`'s main thread to sleep for `secs` seconds (`DEBUG SLEEP`, on a thread of
/// its own), then runs `word_count` from `con`: the sleeper, the reply and how long it took.
fn word_count_while_asleep(
    cluster: &TestCluster,
    con: &mut redis::Connection,
    node: usize,
    secs: &'static str,
) -> (std::thread::JoinHandle<String>, String, Duration) {
    let sleeper = {
        let mut c = cluster.nodes[node].conn();
        std::thread::spawn(move || run(&mut c, &["DEBUG", "SLEEP", secs]))
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let reply = rg_run(con, &["word_count"]);
    (sleeper, reply, started.elapsed())
}

/// A message a shard does not acknowledge is retransmitted `SendMsgRetries` times; then the
/// sender gives up and the run fails naming the shard, well before `ExecutionMaxIdleTime`.
fn undelivered_messages_fail_the_run_after_the_retries(
    cluster: &TestCluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let mut con = cluster.nodes[0].conn();
    assert_eq!(
        run(&mut con, &["RG.CONFIGSET", "SendMsgRetries", "0"]),
        "[OK]"
    );
    assert_eq!(
        run(&mut con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "20000"]),
        "[OK]"
    );
    let undelivered_before = info_counter(&mut con, "undelivered");
    // Everything sent so far is acknowledged: no backoff in progress (the timeout is 2 s).
    assert!(wait_until(Duration::from_secs(5), || {
        let info = run(&mut con, &["RG.INFOCLUSTER"]);
        info.split("pendingMessages,")
            .skip(1)
            .all(|rest| rest.starts_with('0'))
    }));
    // Node 1 reads nothing for 4 s: the retransmission timeout (2 s) comes first.
    let (sleeper, reply, took) = word_count_while_asleep(cluster, &mut con, 1, "4");
    eprintln!("undelivered: the run failed after {took:?}: {reply}");
    assert!(
        reply.contains(&format!("shard {}", ids[1]))
            && reply.contains("after 0 retries (SendMsgRetries)"),
        "{reply}"
    );
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_millis(3000),
        "{took:?}"
    );
    assert_eq!(sleeper.join().unwrap(), "OK");
    assert!(info_counter(&mut con, "undelivered") > undelivered_before);
    run(&mut con, &["RG.CONFIGSET", "SendMsgRetries", "3"]);
    run(&mut con, &["RG.CONFIGSET", "ExecutionMaxIdleTime", "5000"]);
    // The sender started a new stream to node 1: the next run goes through.
    assert_eq!(
        rg_run(&mut con, &["word_count"]),
        rg_run(single, &["word_count"])
    );
}

fn abort_is_cluster_wide(cluster: &TestCluster) {
    let mut con = cluster.nodes[0].conn();
    // About 4 s of work on every master (1 ms per record, abort checked per 1024 records).
    let id = run(
        &mut con,
        &["RG.RUN", "slow_count", "UNBLOCKING", "ARGS", "4000"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    assert_eq!(run(&mut con, &["RG.ABORTEXECUTION", &id]), "OK");
    let mut reply = String::new();
    wait_until(Duration::from_secs(10), || {
        reply = run(&mut con, &["RG.GETRESULTS", &id]);
        !reply.contains("still running")
    });
    assert_eq!(reply, "ERR(execution was aborted)");
    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "{:?}",
        asked.elapsed()
    );
    let mut plan = String::new();
    let all = wait_until(Duration::from_secs(5), || {
        plan = run(&mut con, &["RG.GETEXECUTION", &id, "CLUSTER"]);
        plan.matches("status,aborted").count() == 3
    });
    assert!(all, "every master's part is aborted: {plan}");
}

/// `[[shard, reply], ...]` of a registration command: one entry per master.
fn per_shard(reply: &str, ids: &[String], expect: &str) {
    for id in ids {
        assert!(reply.contains(&format!("[{id},{expect}]")), "{id}: {reply}");
    }
}

fn registrations_are_cluster_wide(cluster: &TestCluster, ids: &[String]) {
    // RG.REGISTER on one master registers on all, under one id.
    let reply = run(
        &mut cluster.nodes[0].conn(),
        &["RG.REGISTER", "mark_owner", "ARGS", "mark:*"],
    );
    let reg = reply
        .trim_start_matches('[')
        .split(',')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(']')
        .to_string();
    assert!(reg.starts_with(&ids[0]), "{reply}");
    per_shard(&reply, ids, &reg);
    for node in &cluster.nodes {
        assert!(run(&mut node.conn(), &["RG.DUMPREGISTRATIONS"]).contains(&reg));
    }
    // It fires on the shard that owns the key.
    let keys: Vec<String> = (0..30).map(|i| format!("mark:{i}")).collect();
    for k in &keys {
        run(&mut cluster.conn_for(k), &["SET", k, "x"]);
    }
    let owner_of = |k: &str| ids[cluster.owner(k)].clone();
    let all_marked = wait_until(Duration::from_secs(10), || {
        keys.iter().all(|k| {
            let seen = format!("{{{k}}}:seen_by");
            run(&mut cluster.conn_for(&seen), &["GET", &seen]) == owner_of(k)
        })
    });
    assert!(all_marked, "registrations did not fire on the owners");
    // Pause and unpause on every master.
    let reply = run(
        &mut cluster.nodes[1].conn(),
        &["RG.PAUSEREGISTRATIONS", &reg],
    );
    per_shard(&reply, ids, "OK");
    for node in &cluster.nodes {
        let dump = run(&mut node.conn(), &["RG.DUMPREGISTRATIONS"]);
        assert!(dump.contains("PAUSED"), "{dump}");
    }
    run(
        &mut cluster.conn_for("mark:paused"),
        &["SET", "mark:paused", "x"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let seen = "{mark:paused}:seen_by";
    assert_eq!(run(&mut cluster.conn_for(seen), &["GET", seen]), "nil");
    let reply = run(
        &mut cluster.nodes[2].conn(),
        &["RG.UNPAUSEREGISTRATIONS", &reg],
    );
    per_shard(&reply, ids, "OK");
    let reply = run(
        &mut cluster.nodes[2].conn(),
        &["RG.CLEARREGISTRATIONSSTATS"],
    );
    per_shard(&reply, ids, "OK");
    // Unregister everywhere.
    let reply = run(&mut cluster.nodes[2].conn(), &["RG.UNREGISTER", &reg]);
    per_shard(&reply, ids, "OK");
    for node in &cluster.nodes {
        assert!(!run(&mut node.conn(), &["RG.DUMPREGISTRATIONS"]).contains(&reg));
    }
    // An `async` registration runs cluster-wide per event: every write, on any shard, ends
    // up in one list on the shard owning `{tally}` (a repartition inside the execution).
    let tallies: Vec<String> = (0..20).map(|i| format!("tally:{i}")).collect();
    let shards_written: std::collections::BTreeSet<usize> =
        tallies.iter().map(|k| cluster.owner(k)).collect();
    assert_eq!(shards_written.len(), 3, "writes on every master");
    for k in &tallies {
        run(&mut cluster.conn_for(k), &["SET", k, "1"]);
    }
    let mut list = Vec::new();
    let tallied = wait_until(Duration::from_secs(10), || {
        list = redis::cmd("LRANGE")
            .arg("{tally}:keys")
            .arg(0)
            .arg(-1)
            .query::<Vec<String>>(&mut cluster.conn_for("{tally}"))
            .unwrap_or_default();
        list.len() >= tallies.len()
    });
    list.sort();
    let mut want = tallies.clone();
    want.sort();
    assert!(tallied, "async executions tallied {list:?}");
    assert_eq!(list, want);
}

fn wait_results(con: &mut redis::Connection, id: &str) -> String {
    run(con, &["RG.GETRESULTSBLOCKING", id])
}

fn repartition_places_records_on_their_owner(cluster: &TestCluster, data: &[Vec<String>]) {
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

fn writes_to_foreign_slots_name_the_slot(cluster: &TestCluster) {
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

fn malformed_messages_are_rejected(
    cluster: &TestCluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let mut a = cluster.nodes[0].conn();
    let mut b = cluster.nodes[1].conn();
    let before = info_counter(&mut b, "rejectedMalformed");
    let dup_before = info_counter(&mut b, "droppedDuplicate");
    for payload in [
        "00",
        "4743",                 // magic only
        "474301",               // header, no body
        "474363ffff",           // a future version
        "474301ffffffffffffff", // a hostile length
        "4743010102ffffffffffffffffff0a",
    ] {
        assert_eq!(
            run(&mut a, &["RG.INNERTESTMSG", &ids[1], "RAW", payload]),
            "OK"
        );
    }
    // A real message cut short, and one sent twice.
    assert_eq!(
        run(&mut a, &["RG.INNERTESTMSG", &ids[1], "TRUNCATE", "20"]),
        "OK"
    );
    assert_eq!(run(&mut a, &["RG.INNERTESTMSG", &ids[1], "REPLAY"]), "OK");
    assert!(
        wait_until(Duration::from_secs(5), || {
            info_counter(&mut b, "rejectedMalformed") >= before + 7
                && info_counter(&mut b, "droppedDuplicate") > dup_before
        }),
        "rejections were not counted"
    );
    assert!(cluster.nodes[1]
        .log()
        .contains("rejected a malformed cluster message"));
    // The receiver is alive and the cluster still runs flows.
    let expected = rg_run(single, &["word_count"]);
    assert_eq!(rg_run(&mut b, &["word_count"]), expected);
    assert_eq!(rg_run(&mut a, &["word_count"]), expected);
}

#[test]
fn a_killed_master_fails_the_run_and_a_promoted_replica_serves_the_next() {
    const IDLE_MS: u64 = 3000;
    let mut cluster = TestCluster::start(MODULE, &["ExecutionMaxIdleTime", "3000"], 3, 1, 2000);
    let data = dataset(200, 300);
    load_cluster(&cluster, &data);
    // Replicas have everything before a master dies.
    for m in cluster.masters() {
        let _: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut cluster.nodes[m].conn())
            .unwrap();
    }
    let masters = cluster.masters();
    let (a, victim) = (masters[0], masters[1]);
    let victim_id = cluster.nodes[victim].id();
    let mut con = cluster.nodes[a].conn();
    let expected = rg_run(&mut con, &["word_count"]);
    assert!(expected.ends_with(",[]]"), "{expected}");
    // The test hook is off unless the module is loaded with ClusterTestHooks 1.
    assert!(run(&mut con, &["RG.INNERTESTMSG", &victim_id, "REPLAY"]).contains("disabled"));
    // A registration made on one master reaches every master and every replica (each master
    // applies it through the command, which replicates it).
    let reply = run(&mut con, &["RG.REGISTER", "mark_owner", "ARGS", "repl:*"]);
    let reg = reply
        .trim_start_matches('[')
        .split(',')
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(']')
        .to_string();
    assert!(reg.len() > 41, "{reply}");
    let everywhere = wait_until(Duration::from_secs(10), || {
        cluster.nodes.iter().all(|n| {
            run(&mut n.conn(), &["RG.DUMPREGISTRATIONS"])
                .matches(&reg)
                .count()
                == 1
        })
    });
    let missing: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| !run(&mut n.conn(), &["RG.DUMPREGISTRATIONS"]).contains(&reg))
        .map(|n| {
            let role = run(&mut n.conn(), &["ROLE"]);
            format!("{}: {}", n.port, role.chars().take(70).collect::<String>())
        })
        .collect();
    assert!(everywhere, "registration {reg} missing on {missing:?}");

    // A 2-second run on every master; its second master dies half a second in.
    let id = run(
        &mut con,
        &["RG.RUN", "slow_count", "UNBLOCKING", "ARGS", "2000"],
    );
    std::thread::sleep(Duration::from_millis(500));
    cluster.nodes[victim].kill();
    let killed = Instant::now();
    // Poll (a blocked client would get Redis's own CLUSTERDOWN once the node is marked failed).
    let mut reply = String::new();
    wait_until(Duration::from_secs(30), || {
        reply = run(&mut con, &["RG.GETRESULTS", &id]);
        !reply.contains("still running")
    });
    let took = killed.elapsed();
    eprintln!("killed master: the run failed {took:?} after the kill: {reply}");
    assert!(
        reply.contains(&victim_id),
        "the error names the dead shard: {reply}"
    );
    assert!(
        took < Duration::from_millis(2000 + IDLE_MS + 2000),
        "failed after {took:?}: {reply}"
    );

    // Its replica takes over; the next run works without RG.REFRESHCLUSTER.
    let promoted = wait_until(Duration::from_secs(30), || {
        let m = cluster.masters();
        m.len() == 3 && !m.contains(&victim) && {
            let info = run(&mut cluster.nodes[a].conn(), &["CLUSTER", "INFO"]);
            info.contains("cluster_state:ok")
        }
    });
    assert!(promoted, "no replica was promoted");
    let ok = wait_until(Duration::from_secs(20), || {
        rg_run(&mut cluster.nodes[a].conn(), &["word_count"]) == expected
    });
    assert!(
        ok,
        "after failover: {}",
        rg_run(&mut cluster.nodes[a].conn(), &["word_count"])
    );
    // Every current master answers, the promoted replica included.
    for m in cluster.masters() {
        assert_eq!(
            rg_run(&mut cluster.nodes[m].conn(), &["word_count"]),
            expected
        );
    }
    assert!(!cluster.nodes[victim].alive());
}
