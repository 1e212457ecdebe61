//! Registrations and aborts are cluster-wide: one RG.REGISTER (pause, unpause, clear,
//! unregister) on one master reaches all, fires on the key's owner; `async` runs per event
//! across shards; an abort stops every master's part.

use std::time::{Duration, Instant};

use gears_testkit::{run, wait_until, Cluster};

use crate::{per_shard, registration_of};

/// One RG.REGISTER (and pause, unpause, clear, unregister) on one master acts on all.
pub(crate) fn registrations_are_cluster_wide(cluster: &Cluster, ids: &[String]) {
    // RG.REGISTER on one master registers on all, under one id.
    let reply = run(
        &mut cluster.nodes[0].conn(),
        &["RG.REGISTER", "mark_owner", "ARGS", "mark:*"],
    );
    let reg = registration_of(&reply);
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

/// RG.ABORTEXECUTION on the initiator aborts every master's part.
pub(crate) fn abort_is_cluster_wide(cluster: &Cluster) {
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
