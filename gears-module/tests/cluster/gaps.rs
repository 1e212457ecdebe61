//! Cluster gaps closed when the coordinator moved into gears-core: `RG.GETRESULTSBLOCKING`
//! sent to a master that did not start the run, and `async` registrations running their
//! events in order.

use std::time::{Duration, Instant};

use gears_testkit::{run, wait_until, Cluster};

/// `RG.GETRESULTSBLOCKING` on a master that did not start the run waits on the one that did
/// and answers the run's results (not its own, empty part).
pub(crate) fn results_blocking_from_another_master(cluster: &Cluster, expected: &str) {
    // Node 0 sleeps for a second: the run started on node 1 is still running when node 2 is
    // asked for its results.
    let sleeper = {
        let mut c = cluster.nodes[0].conn();
        std::thread::spawn(move || run(&mut c, &["DEBUG", "SLEEP", "1"]))
    };
    std::thread::sleep(Duration::from_millis(200));
    let id = run(
        &mut cluster.nodes[1].conn(),
        &["RG.RUN", "word_count", "UNBLOCKING"],
    );
    let started = Instant::now();
    let got = run(
        &mut cluster.nodes[2].conn(),
        &["RG.GETRESULTSBLOCKING", &id],
    );
    let waited = started.elapsed();
    assert_eq!(got, expected);
    assert!(
        waited >= Duration::from_millis(400),
        "answered after {waited:?}"
    );
    assert_eq!(sleeper.join().unwrap(), "OK");
    // Finished: the same answer at once, from every master.
    for node in &cluster.nodes {
        assert_eq!(
            run(&mut node.conn(), &["RG.GETRESULTSBLOCKING", &id]),
            expected
        );
    }
}

/// Events of an `async` registration fired back to back on one master run one after the
/// other, in order: `tally_async` appends the keys to `{tally}:keys` in write order.
pub(crate) fn async_events_run_in_order(cluster: &Cluster) {
    let list = "{tally}:keys";
    let llen = || {
        redis::cmd("LLEN")
            .arg(list)
            .query::<usize>(&mut cluster.conn_for(list))
            .unwrap()
    };
    let before = llen();
    // Keys of one master, not the one owning `{tally}`: every execution crosses shards.
    let tally_owner = cluster.owner(list);
    let tag = (0..)
        .map(|i| format!("fifo{i}"))
        .find(|t| cluster.owner(&format!("{{{t}}}")) != tally_owner)
        .unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("tally:{{{tag}}}:{i:02}")).collect();
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("SET").arg(k).arg("1").ignore();
    }
    pipe.query::<()>(&mut cluster.conn_for(&keys[0]))
        .expect("writes");
    let mut got = Vec::new();
    let all = wait_until(Duration::from_secs(20), || {
        got = redis::cmd("LRANGE")
            .arg(list)
            .arg(before)
            .arg(-1)
            .query::<Vec<String>>(&mut cluster.conn_for(list))
            .unwrap_or_default();
        got.len() >= keys.len()
    });
    assert!(all, "tallied {got:?}");
    assert_eq!(got, keys);
}
