//! Faults between the masters: malformed messages rejected, a silent shard ended by the idle
//! time, undelivered messages ended by the retries, retransmission across a restart.

use std::time::{Duration, Instant};

use gears_testkit::{run, wait_until, Cluster};

use crate::{config_set, info_counter, per_shard, registration_of, reset_timeouts, rg_run};

/// A registration made while a master is down reaches it once it is back: the messages are
/// retransmitted across its restart.
pub(crate) fn messages_are_retransmitted_across_a_restart(cluster: &mut Cluster, ids: &[String]) {
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
    let reg = registration_of(&reply);
    assert!(reg.starts_with(&ids[0]), "{reply}");
    per_shard(&reply, ids, &reg);
    let dump = run(&mut cluster.nodes[2].conn(), &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains(&reg), "{dump}");
    let mut con = cluster.nodes[0].conn();
    assert!(info_counter(&mut con, "retries") > retries_before);
    reset_timeouts(&mut con);
}

/// A shard that stops answering fails the run after `ExecutionMaxIdleTime`.
pub(crate) fn a_silent_shard_fails_the_run_after_the_idle_time(
    cluster: &Cluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let mut con = cluster.nodes[0].conn();
    config_set(&mut con, "ExecutionMaxIdleTime", "1000");
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
    cluster: &Cluster,
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
pub(crate) fn undelivered_messages_fail_the_run_after_the_retries(
    cluster: &Cluster,
    ids: &[String],
    single: &mut redis::Connection,
) {
    let mut con = cluster.nodes[0].conn();
    config_set(&mut con, "SendMsgRetries", "0");
    config_set(&mut con, "ExecutionMaxIdleTime", "20000");
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
    reset_timeouts(&mut con);
    // The sender started a new stream to node 1: the next run goes through.
    assert_eq!(
        rg_run(&mut con, &["word_count"]),
        rg_run(single, &["word_count"])
    );
}

/// Malformed, truncated and replayed messages are counted and dropped; the receiver lives on.
pub(crate) fn malformed_messages_are_rejected(
    cluster: &Cluster,
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
