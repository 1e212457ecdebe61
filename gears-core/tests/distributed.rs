//! The production coordinator (`gears_core::distributed`) on the in-memory cluster, with a
//! network that loses, duplicates, reorders, delays and refuses messages: every result is the
//! standalone result exactly, and each failure ends the execution with an error naming the
//! shard, after the simulated time the protocol says.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gears_core::distributed::wire::Body;
use gears_core::distributed::Settings;
use gears_core::prelude::*;
use gears_core::testing::{word_count, Fate, MemoryCluster, MemoryHost, Packet};
use proptest::prelude::*;

/// A 3-shard cluster and a standalone host with the same 90 documents, and the standalone
/// answer.
fn setup() -> (MemoryCluster, Vec<(String, u64)>) {
    let cluster = MemoryCluster::new(3);
    let host = MemoryHost::new();
    let words = [
        "red", "green", "blue", "cyan", "plum", "gold", "teal", "rose",
    ];
    for i in 0..90usize {
        let text: Vec<&str> = (0..1 + i % 7).map(|j| words[(i * 3 + j) % 8]).collect();
        let (key, text) = (format!("doc:{i}"), text.join(" "));
        cluster.set(&key, &text);
        host.set(&key, &text);
    }
    let want = word_count().run(&host).results;
    assert_eq!(want.len(), 8);
    (cluster, want)
}

/// Executions still open on any of the cluster's shards.
fn in_flight(cluster: &MemoryCluster) -> usize {
    (0..3).map(|i| cluster.coordinator(i).in_flight()).sum()
}

/// Holds back every packet shard `from` sends until [`MemoryCluster::release_held`].
fn hold_from(cluster: &MemoryCluster, from: usize) {
    cluster.set_rule(move |p| {
        if p.from == from {
            Fate::Hold
        } else {
            Fate::Deliver
        }
    });
}

fn id(cluster: &MemoryCluster, shard: usize) -> String {
    cluster.topology().shards()[shard].id.0.clone()
}

fn counter(
    cluster: &MemoryCluster,
    pick: impl Fn(&gears_core::distributed::delivery::Counters) -> u64,
) -> u64 {
    (0..3)
        .map(|i| pick(cluster.coordinator(i).counters()))
        .sum()
}

fn retried(cluster: &MemoryCluster, shard: usize) -> u64 {
    cluster
        .coordinator(shard)
        .counters()
        .retried
        .load(Ordering::Relaxed)
}

fn duplicates(cluster: &MemoryCluster) -> u64 {
    counter(cluster, |c| c.duplicates.load(Ordering::Relaxed))
}

/// `(stream, seq)` of a sequenced packet on link `from → to`.
fn seq_on(p: &Packet, from: usize, to: usize) -> Option<(u32, u64)> {
    let e = p.envelope()?;
    (p.from == from && p.to == to && e.seq > 0).then_some((e.stream, e.seq))
}

type Log = Arc<Mutex<Vec<(u32, u64)>>>;

/// Checks that the link's log shows one go-back-N round from `from`: the second copy of
/// `from` is followed by every sequence number sent after it before the round, in order.
/// Returns how many were resent.
fn assert_go_back_n(log: &[(u32, u64)], from: u64) -> u64 {
    let round = log
        .iter()
        .enumerate()
        .filter(|(_, s)| s.1 == from)
        .nth(1)
        .map(|(i, _)| i)
        .expect("resent");
    let window: Vec<u64> = log[..round]
        .iter()
        .map(|s| s.1)
        .filter(|&s| s >= from)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let again: Vec<u64> = log[round..round + window.len()]
        .iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(again, window, "log {log:?}");
    // Sent twice: those, and nothing else.
    let twice = log
        .iter()
        .filter(|s| log.iter().filter(|x| x == s).count() == 2)
        .count();
    assert_eq!(twice, 2 * window.len(), "log {log:?}");
    window.len() as u64
}

#[test]
fn a_lost_message_is_retransmitted_in_order_and_the_result_is_exact() {
    let (cluster, want) = setup();
    let log: Log = Arc::default();
    let seen = log.clone();
    cluster.set_rule(move |p| {
        let Some(s) = seq_on(p, 1, 0) else {
            return Fate::Deliver;
        };
        let mut seen = seen.lock().unwrap();
        seen.push(s);
        // The second message from shard 1 to shard 0 is lost the first time.
        if s.1 == 2 && seen.iter().filter(|x| x.1 == 2).count() == 1 {
            return Fate::Lose;
        }
        Fate::Deliver
    });
    let out = cluster.run(word_count());
    assert_eq!(out.errors, []);
    assert_eq!(out.results, want);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.iter().filter(|s| s.1 == 2).count(),
        2,
        "lost, then resent"
    );
    // Go back N: the lost one and every one sent after it were sent again, once, in order;
    // nothing else was.
    let resent = assert_go_back_n(&log, 2);
    assert_eq!(retried(&cluster, 1), resent);
    assert_eq!(retried(&cluster, 0) + retried(&cluster, 2), 0);
    // The ones after the gap were dropped, not delivered twice.
    assert_eq!(duplicates(&cluster), 0);
    // Retransmitted once shard 0's acknowledgement (at the first tick) went stale for 2 s.
    assert_eq!(cluster.elapsed(), Duration::from_millis(2100));
}

#[test]
fn duplicated_messages_are_delivered_once() {
    let (cluster, want) = setup();
    let sequenced = Arc::new(Mutex::new(0u64));
    let count = sequenced.clone();
    cluster.set_rule(move |p| {
        if p.sequenced() {
            *count.lock().unwrap() += 1;
        }
        Fate::Duplicate
    });
    let out = cluster.run(word_count());
    assert_eq!(out.errors, []);
    assert_eq!(out.results, want);
    let sequenced = *sequenced.lock().unwrap();
    assert!(sequenced > 10);
    assert_eq!(duplicates(&cluster), sequenced, "every copy dropped");
    assert_eq!(counter(&cluster, |c| c.retried.load(Ordering::Relaxed)), 0);
    assert_eq!(cluster.elapsed(), Duration::ZERO, "no timeout involved");
}

#[test]
fn reordered_messages_are_delivered_in_order() {
    let (cluster, want) = setup();
    let log: Log = Arc::default();
    let seen = log.clone();
    cluster.set_rule(move |p| match seq_on(p, 1, 0) {
        Some(s) => {
            let mut seen = seen.lock().unwrap();
            seen.push(s);
            let first = seen.iter().filter(|x| **x == s).count() == 1;
            // Message 2 from shard 1 to shard 0 arrives after message 3.
            if s.1 == 2 && first {
                Fate::Delay(1)
            } else {
                Fate::Deliver
            }
        }
        None => Fate::Deliver,
    });
    let out = cluster.run(word_count());
    assert_eq!(out.errors, []);
    assert_eq!(out.results, want);
    let log = log.lock().unwrap().clone();
    // 3 (and what followed) arrived past the gap: dropped, then resent once, in order.
    let resent = assert_go_back_n(&log, 3);
    assert_eq!(retried(&cluster, 1), resent);
    assert_eq!(duplicates(&cluster), 0);
}

#[test]
fn a_refused_message_is_handed_again_at_the_next_tick() {
    let (cluster, want) = setup();
    let refused = Arc::new(Mutex::new(0));
    let n = refused.clone();
    cluster.set_rule(move |p| match seq_on(p, 2, 0) {
        Some((_, 2)) if *n.lock().unwrap() == 0 => {
            *n.lock().unwrap() += 1;
            Fate::Refuse
        }
        _ => Fate::Deliver,
    });
    let out = cluster.run(word_count());
    assert_eq!(out.errors, []);
    assert_eq!(out.results, want);
    assert_eq!(*refused.lock().unwrap(), 1);
    // Held back behind the refusal, then handed in order at the first tick.
    assert_eq!(cluster.elapsed(), Duration::from_millis(100));
    assert_eq!(duplicates(&cluster), 0);
}

#[test]
fn a_shard_that_never_answers_fails_the_run_after_the_idle_time() {
    let (cluster, want) = setup();
    let silent = id(&cluster, 2);
    // Nothing reaches shard 2: it never hears of the execution.
    cluster.set_rule(|p| if p.to == 2 { Fate::Lose } else { Fate::Deliver });
    let out = cluster.run(word_count());
    assert_eq!(out.results, []);
    assert_eq!(
        out.errors,
        [StepError::new(
            "execution",
            format!("shard {silent} did not answer within ExecutionMaxIdleTime (5000 ms)")
        )]
    );
    // The first tick past the idle time (5 s by default).
    assert_eq!(cluster.elapsed(), Duration::from_millis(5100));
    // Shard 1, which waited on shard 2 too, ended its part as well.
    assert_eq!(cluster.coordinator(1).in_flight(), 0);
    assert_eq!(cluster.coordinator(0).in_flight(), 0);
    assert_eq!(cluster.listed(1), Vec::<String>::new());

    // A shorter idle time applies to the next run; a shard back online answers again.
    cluster.set_settings(Settings {
        max_idle: Duration::from_millis(1000),
        ..cluster.settings()
    });
    let out = cluster.run(word_count());
    assert_eq!(
        out.errors[0].message,
        format!("shard {silent} did not answer within ExecutionMaxIdleTime (1000 ms)")
    );
    assert_eq!(cluster.elapsed(), Duration::from_millis(5100 + 1100));
    cluster.clear_rule();
    assert_eq!(cluster.run(word_count()).results, want);
}

#[test]
fn a_shard_flagged_failing_fails_the_run_at_the_next_tick() {
    let (cluster, want) = setup();
    let failing = id(&cluster, 1);
    hold_from(&cluster, 1);
    cluster.set_failing(1, true);
    let out = cluster.run(word_count());
    assert_eq!(
        out.errors,
        [StepError::new(
            "execution",
            format!("shard {failing} is failing (flagged by the cluster)")
        )]
    );
    assert_eq!(cluster.elapsed(), Duration::from_millis(100));
    cluster.set_failing(1, false);
    cluster.clear_rule();
    // Its late messages are about an execution that ended: ignored.
    assert!(cluster.release_held() > 0);
    assert_eq!(in_flight(&cluster), 0);
    assert_eq!(cluster.run(word_count()).results, want);
}

#[test]
fn late_messages_about_an_ended_execution_are_ignored() {
    let (cluster, want) = setup();
    cluster.set_settings(Settings {
        max_idle: Duration::from_millis(1000),
        ..cluster.settings()
    });
    let slow = id(&cluster, 2);
    // Everything shard 2 says arrives late.
    hold_from(&cluster, 2);
    let out = cluster.run(word_count());
    assert_eq!(
        out.errors,
        [StepError::new(
            "execution",
            format!("shard {slow} did not answer within ExecutionMaxIdleTime (1000 ms)")
        )]
    );
    assert_eq!(cluster.elapsed(), Duration::from_millis(1100));
    cluster.clear_rule();
    let held = cluster.held();
    assert!(held.iter().any(|p| p.to == 0 && p.sequenced()));
    assert_eq!(cluster.release_held(), held.len());
    // Delivered (first copies: no duplicates) and dropped as about a finished execution: no
    // execution was recreated for them.
    assert_eq!(duplicates(&cluster), 0);
    assert_eq!(in_flight(&cluster), 0);
    assert_eq!(cluster.run(word_count()).results, want);
}

#[test]
fn a_restarted_peer_fails_the_runs_it_was_in_and_its_stale_messages_are_dropped() {
    let (cluster, want) = setup();
    // The others know shard 1's first incarnation.
    assert_eq!(cluster.run(word_count()).results, want);
    let old_run_id = cluster.coordinator(1).run_id();
    hold_from(&cluster, 1);
    let pending = cluster.start(word_count());
    cluster.advance(Duration::from_millis(500));
    assert!(!pending.is_finished());
    cluster.restart(1);
    cluster.clear_rule();
    assert_ne!(cluster.coordinator(1).run_id(), old_run_id);
    // Shard 0 retransmits its `Start` to the new incarnation at 2 s; the first message of
    // the new run id tells shard 0 its peer restarted.
    let out = pending.wait();
    let restarted = id(&cluster, 1);
    assert_eq!(
        out.errors,
        [StepError::new(
            "execution",
            format!("shard {restarted} restarted")
        )]
    );
    assert_eq!(cluster.elapsed(), Duration::from_millis(2000));
    let notice =
        format!("Notice: gears: node {restarted} restarted: its executions in flight are failed");
    let log = cluster.log_lines();
    assert!(log.contains(&format!("shard 0: {notice}")), "{log:?}");
    assert!(log.contains(&format!("shard 2: {notice}")), "{log:?}");
    // What the first incarnation said late is stale everywhere.
    let stale_before = counter(&cluster, |c| c.stale.load(Ordering::Relaxed));
    let held = cluster.held();
    let sequenced = held.iter().filter(|p| p.sequenced()).count() as u64;
    assert!(sequenced > 0);
    assert!(held
        .iter()
        .all(|p| p.envelope().unwrap().run_id == old_run_id));
    cluster.release_held();
    let stale = counter(&cluster, |c| c.stale.load(Ordering::Relaxed));
    assert_eq!(stale - stale_before, sequenced);
    assert_eq!(cluster.run(word_count()).results, want);
}

#[test]
fn runs_in_one_queue_start_one_after_the_other() {
    let (cluster, want) = setup();
    hold_from(&cluster, 1);
    let first = cluster.start_queued(word_count(), "registration-7");
    let second = cluster.start_queued(word_count(), "registration-7");
    // The first waits on shard 1; the second has not started anywhere.
    assert_eq!(cluster.coordinator(0).in_flight(), 1);
    assert_eq!(cluster.coordinator(2).in_flight(), 1);
    assert!(!first.is_finished() && !second.is_finished());
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = log.clone();
    cluster.set_rule(move |p| {
        // The runs' work (starts, records, stage ends, reports); not the heartbeats a shard
        // may still send for a part it just finished, which say nothing of the order.
        let work = p
            .envelope()
            .filter(|e| e.seq > 0 && !matches!(e.body, Body::Progress { .. }));
        if let Some(e) = work {
            let execution = e.body.execution().unwrap_or_default().to_string();
            seen.lock().unwrap().push(execution);
        }
        Fate::Deliver
    });
    cluster.release_held();
    assert!(first.is_finished() && second.is_finished());
    // Every message of the second run's work came after the last of the first.
    let log = log.lock().unwrap().clone();
    let mut ordered = log.clone();
    ordered.sort();
    assert_eq!(log, ordered);
    assert_eq!(log.iter().collect::<BTreeSet<_>>().len(), 2, "{log:?}");
    assert_eq!(first.wait().results, want);
    assert_eq!(second.wait().results, want);
}

#[test]
fn an_aborted_run_ends_on_every_shard() {
    let (cluster, _) = setup();
    let plan = word_count().build();
    let options = gears_core::plan::RunOptions::default();
    options.abort.store(true, Ordering::Release);
    assert_eq!(
        cluster.run_plan(&plan, &options).unwrap_err(),
        GearsError::Aborted
    );
    assert_eq!(in_flight(&cluster), 0);
}

#[test]
fn registered_plans_run_erased_with_the_same_answer() {
    let (cluster, want) = setup();
    let plan: Arc<dyn gears_core::registry::ErasedPlan> = Arc::new(word_count().build());
    let out = cluster.run_erased(&plan, &Default::default()).unwrap();
    let want: Vec<Value> = want.into_iter().map(IntoValue::into_value).collect();
    assert_eq!(out.results, want);
    assert_eq!(out.errors, []);
}

/// A rule drawing each packet's fate from a seeded generator: loss, duplication, delays and
/// refusals, never on the first message of a stream (a receiver takes the first message it
/// sees from a peer as the start of its stream).
fn chaos(seed: u64, loss: u8, dup: u8, delay: u8) -> impl FnMut(&Packet) -> Fate + Send {
    let mut state = seed | 1;
    move |p| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if p.envelope().is_some_and(|e| e.seq == 1) {
            return Fate::Deliver;
        }
        match (state % 100) as u8 {
            x if x < loss => Fate::Lose,
            x if x < loss + dup => Fate::Duplicate,
            x if x < loss + dup + delay => Fate::Delay(1 + (state >> 8) as usize % 3),
            x if x < loss + dup + delay + 3 => Fate::Refuse,
            _ => Fate::Deliver,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_mix_of_faults_gives_the_exact_answer(
        seed in any::<u64>(),
        loss in 0u8..15,
        dup in 0u8..15,
        delay in 0u8..15,
    ) {
        let (cluster, want) = setup();
        cluster.set_settings(Settings {
            max_idle: Duration::from_secs(600),
            send_retries: 20,
            ..cluster.settings()
        });
        cluster.set_rule(chaos(seed, loss, dup, delay));
        for _ in 0..2 {
            let out = cluster.run(word_count());
            prop_assert_eq!(out.errors, vec![]);
            prop_assert_eq!(&out.results, &want);
        }
        let count = cluster.run(GearsBuilder::new(KeysOnlyReader::new("doc:*")).count());
        prop_assert_eq!(count.results, vec![90u64]);
    }
}
