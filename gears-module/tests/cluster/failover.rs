//! A master killed in the middle of a run: the run fails in bounded time naming it, a replica
//! is promoted and serves the next run without any manual command.

use std::time::{Duration, Instant};

use gears_testkit::{run, wait_until, Cluster};

use crate::{dataset, load_cluster, node, registration_of, rg_run};

#[test]
fn a_killed_master_fails_the_run_and_a_promoted_replica_serves_the_next() {
    const IDLE_MS: u64 = 3000;
    let mut cluster = Cluster::start(&node(&["ExecutionMaxIdleTime", "3000"], 2000), 3, 1);
    let data = dataset(200, 300);
    load_cluster(&cluster, &data);
    // Replicas have everything before a master dies.
    cluster.wait_for_replicas();
    let masters = cluster.masters();
    let (a, victim) = (masters[0], masters[1]);
    let victim_id = cluster.nodes[victim].node_id();
    let mut con = cluster.nodes[a].conn();
    let expected = rg_run(&mut con, &["word_count"]);
    assert!(expected.ends_with(",[]]"), "{expected}");
    // The test hook is off unless the module is loaded with ClusterTestHooks 1.
    assert!(run(&mut con, &["RG.INNERTESTMSG", &victim_id, "REPLAY"]).contains("disabled"));
    // A registration made on one master reaches every master and every replica (each master
    // applies it through the command, which replicates it).
    let reply = run(&mut con, &["RG.REGISTER", "mark_owner", "ARGS", "repl:*"]);
    let reg = registration_of(&reply);
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
    // A registration made at load (`tally_async` takes no ARGS) has the same id on every
    // node, masters and replicas: unregistered on one master, it goes from all of them.
    let load_time = format!("{}-tally_async", "0".repeat(40));
    for n in &cluster.nodes {
        let dump = run(&mut n.conn(), &["RG.DUMPREGISTRATIONS"]);
        assert!(dump.contains(&load_time), "{}: {dump}", n.port);
    }
    let reply = run(&mut con, &["RG.UNREGISTER", &load_time]);
    assert_eq!(reply.matches(",OK]").count(), 3, "{reply}");
    let gone = wait_until(Duration::from_secs(10), || {
        cluster
            .nodes
            .iter()
            .all(|n| !run(&mut n.conn(), &["RG.DUMPREGISTRATIONS"]).contains(&load_time))
    });
    assert!(gone, "a load-time registration stayed on a replica");

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
    assert!(
        cluster.wait_for_failover(victim, 3, Duration::from_secs(30)),
        "no replica was promoted"
    );
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
