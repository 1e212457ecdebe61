//! Tests of the executor: FIFO and mutual exclusion per lane under concurrent producers,
//! parallelism across lanes, abort (queued and running), panics, `on_done` bookkeeping, and
//! the execution id format. Every wait is bounded: a broken executor fails, never hangs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gears_core::error::GearsError;
use gears_core::execution::{Execution, ExecutionId, ExecutionStatus, Outcome};
use gears_core::executor::{Executor, Job, Lane, OnDone};
use gears_core::host::ShardId;
use gears_core::plan::RunOptions;
use gears_core::prelude::*;
use gears_core::testing::MemoryHost;

const WAIT: Duration = Duration::from_secs(10);

fn new_execution(n: u64) -> Arc<Execution> {
    Execution::new(ExecutionId::new(&ShardId::standalone(), n))
}

fn job(f: impl FnOnce(&Execution) -> Result<Outcome, GearsError> + Send + 'static) -> Job {
    Box::new(f)
}

/// Spins until `cond` holds; false after `timeout`.
fn wait_until(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

#[test]
fn lane_is_fifo_and_exclusive_under_concurrent_producers() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 25_000;
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;

    // More workers than producers, so a second worker is always free to (wrongly) grab the lane.
    let executor = Executor::new(4);
    let lane = executor.lane();
    let ran = Arc::new(Mutex::new(Vec::with_capacity(TOTAL)));
    let running = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel::<ExecutionId>();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let lane = lane.clone();
            let ran = ran.clone();
            let running = running.clone();
            let overlaps = overlaps.clone();
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                let mut last = None;
                for seq in 0..PER_PRODUCER {
                    let execution = new_execution((p * PER_PRODUCER + seq) as u64);
                    let (ran, running, overlaps) = (ran.clone(), running.clone(), overlaps.clone());
                    let work = job(move |_| {
                        if running.fetch_add(1, Ordering::SeqCst) != 0 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        ran.lock().unwrap().push((p, seq));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(Outcome::default())
                    });
                    let done_tx = done_tx.clone();
                    let on_done: OnDone = Box::new(move |e: &Arc<Execution>| {
                        let _ = done_tx.send(e.id().clone());
                    });
                    lane.submit(execution.clone(), work, Some(on_done));
                    last = Some(execution);
                }
                last.expect("submitted at least one")
            })
        })
        .collect();
    drop(done_tx);
    let lasts: Vec<Arc<Execution>> = producers.into_iter().map(|h| h.join().unwrap()).collect();

    // Every execution reports completion exactly once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut finished = HashSet::with_capacity(TOTAL);
    while finished.len() < TOTAL {
        let left = deadline.saturating_duration_since(Instant::now());
        let id = done_rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {} of {TOTAL} finished", finished.len()));
        assert!(finished.insert(id.clone()), "on_done twice for {id}");
    }
    for last in &lasts {
        let outcome = last.wait(WAIT).expect("last execution finished");
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(last.status(), ExecutionStatus::Done);
    }
    assert!(
        wait_until(WAIT, || lane.pending() == 0),
        "lane still has {} pending",
        lane.pending()
    );

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two jobs of one lane overlapped"
    );
    let ran = ran.lock().unwrap();
    assert_eq!(ran.len(), TOTAL, "jobs run");
    let unique: HashSet<_> = ran.iter().copied().collect();
    assert_eq!(unique.len(), TOTAL, "a job ran twice");
    let mut next = [0usize; PRODUCERS];
    for &(p, seq) in ran.iter() {
        assert_eq!(seq, next[p], "producer {p} out of order");
        next[p] += 1;
    }
    assert_eq!(next, [PER_PRODUCER; PRODUCERS], "a job was lost");
    drop(executor);
    // No more completions after everything was accounted for.
    assert!(done_rx.try_recv().is_err());
}

/// A job that arrives at a rendezvous and waits (at most `timeout`) for `expected` arrivals.
fn rendezvous(arrived: &Arc<AtomicUsize>, expected: usize, timeout: Duration) -> Job {
    let arrived = arrived.clone();
    job(move |_| {
        arrived.fetch_add(1, Ordering::SeqCst);
        if wait_until(timeout, || arrived.load(Ordering::SeqCst) >= expected) {
            Ok(Outcome::default())
        } else {
            Err(GearsError::Invalid("rendezvous timed out".into()))
        }
    })
}

/// Executions 1 and 2, each a job on its lane waiting up to `timeout` for the other to arrive.
fn two_rendezvous(
    lanes: [&Lane; 2],
    arrived: &Arc<AtomicUsize>,
    timeout: Duration,
) -> (Arc<Execution>, Arc<Execution>) {
    let (e1, e2) = (new_execution(1), new_execution(2));
    for (lane, e) in lanes.into_iter().zip([&e1, &e2]) {
        lane.submit(e.clone(), rendezvous(arrived, 2, timeout), None);
    }
    (e1, e2)
}

#[test]
fn different_lanes_run_in_parallel() {
    let executor = Executor::new(2);
    assert_eq!(executor.threads(), 2);
    let arrived = Arc::new(AtomicUsize::new(0));
    let (a, b) = (executor.lane(), executor.lane());
    let (ea, eb) = two_rendezvous([&a, &b], &arrived, Duration::from_secs(5));
    for e in [&ea, &eb] {
        let outcome = e.wait(WAIT).expect("finished");
        assert_eq!(e.status(), ExecutionStatus::Done);
        // Only possible if both jobs were running at the same time.
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    }
}

#[test]
fn one_lane_never_runs_two_jobs_at_once() {
    // The control for the test above: the same two jobs in one lane cannot meet.
    let executor = Executor::new(2);
    let arrived = Arc::new(AtomicUsize::new(0));
    let lane = executor.lane();
    let (e1, e2) = two_rendezvous([&lane, &lane], &arrived, Duration::from_millis(200));
    let first = e1.wait(WAIT).expect("finished");
    assert_eq!(first.errors.len(), 1, "the first job met a second one");
    assert!(
        first.errors[0].contains("rendezvous timed out"),
        "{:?}",
        first.errors
    );
    assert!(
        first.errors[0].starts_with("execution: "),
        "{:?}",
        first.errors
    );
    // The second one starts after the first, sees it arrived, and succeeds.
    let second = e2.wait(WAIT).expect("finished");
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(e1.status(), ExecutionStatus::Done);
    assert_eq!(e2.status(), ExecutionStatus::Done);
}

/// A job that signals it started, then blocks until `release` (at most 10 s).
fn blocker(started: &Arc<AtomicBool>, release: &Arc<AtomicBool>) -> Job {
    let (started, release) = (started.clone(), release.clone());
    job(move |_| {
        started.store(true, Ordering::SeqCst);
        if wait_until(WAIT, || release.load(Ordering::SeqCst)) {
            Ok(Outcome::default())
        } else {
            Err(GearsError::Invalid("never released".into()))
        }
    })
}

fn counting_on_done(calls: &Arc<AtomicUsize>) -> Option<OnDone> {
    let calls = calls.clone();
    Some(Box::new(move |_: &Arc<Execution>| {
        calls.fetch_add(1, Ordering::SeqCst);
    }))
}

#[test]
fn queued_execution_aborted_before_it_starts_never_runs() {
    let executor = Executor::new(2);
    let lane = executor.lane();
    let (started, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (front, queued, after) = (new_execution(1), new_execution(2), new_execution(3));
    let queued_ran = Arc::new(AtomicBool::new(false));
    let after_ran = Arc::new(AtomicBool::new(false));
    let on_done_calls = Arc::new(AtomicUsize::new(0));

    lane.submit(front.clone(), blocker(&started, &release), None);
    let flag = queued_ran.clone();
    lane.submit(
        queued.clone(),
        job(move |_| {
            flag.store(true, Ordering::SeqCst);
            Ok(Outcome::default())
        }),
        counting_on_done(&on_done_calls),
    );
    let flag = after_ran.clone();
    lane.submit(
        after.clone(),
        job(move |_| {
            flag.store(true, Ordering::SeqCst);
            Ok(Outcome {
                results: vec![Value::Int(42)],
                ..Outcome::default()
            })
        }),
        None,
    );

    assert!(
        wait_until(WAIT, || started.load(Ordering::SeqCst)),
        "front job never started"
    );
    assert_eq!(front.status(), ExecutionStatus::Running);
    assert_eq!(queued.status(), ExecutionStatus::Created);
    assert_eq!(lane.pending(), 3);
    assert!(queued.abort(), "abort of a queued execution");
    assert!(queued.abort_requested());
    release.store(true, Ordering::SeqCst);

    let outcome = queued.wait(WAIT).expect("aborted execution completes");
    assert_eq!(queued.status(), ExecutionStatus::Aborted);
    assert!(queued.is_finished());
    assert!(outcome.results.is_empty() && outcome.errors.is_empty());
    assert!(!queued_ran.load(Ordering::SeqCst), "an aborted job ran");
    assert!(!queued.abort(), "abort after the end reports false");
    // The front job was not affected, and the lane goes on after the aborted one.
    assert!(front.wait(WAIT).expect("finished").errors.is_empty());
    assert_eq!(front.status(), ExecutionStatus::Done);
    let last = after.wait(WAIT).expect("the next job still runs");
    assert_eq!(after.status(), ExecutionStatus::Done);
    assert_eq!(last.results, [Value::Int(42)]);
    assert!(after_ran.load(Ordering::SeqCst));
    drop(executor);
    assert_eq!(
        on_done_calls.load(Ordering::SeqCst),
        1,
        "on_done of the aborted one"
    );
}

#[test]
fn running_plan_stops_on_abort() {
    let executor = Executor::new(2);
    let lane = executor.lane();
    let seen = Arc::new(AtomicU64::new(0));
    let execution = new_execution(1);
    let counter = seen.clone();
    let work = job(move |execution| {
        // An effectively endless input.
        let plan = GearsBuilder::new(IterReader::new(|_| 0..u64::MAX))
            .map(move |x| {
                counter.fetch_add(1, Ordering::Relaxed);
                x
            })
            .count()
            .build();
        let options = RunOptions {
            abort: execution.abort_flag(),
            ..RunOptions::default()
        };
        let out = plan.run_with(Arc::new(MemoryHost::new()), None, &options)?;
        Ok(Outcome {
            results: out.results.into_iter().map(IntoValue::into_value).collect(),
            ..Outcome::default()
        })
    });
    let on_done_calls = Arc::new(AtomicUsize::new(0));
    lane.submit(execution.clone(), work, counting_on_done(&on_done_calls));

    // Wait until records flow, then abort.
    assert!(
        wait_until(WAIT, || seen.load(Ordering::Relaxed) > 10_000),
        "the plan never ran"
    );
    assert_eq!(execution.status(), ExecutionStatus::Running);
    let asked = Instant::now();
    assert!(execution.abort());
    let outcome = execution.wait(WAIT).expect("the run stopped after abort");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "abort took {:?}",
        asked.elapsed()
    );
    assert_eq!(execution.status(), ExecutionStatus::Aborted);
    assert!(outcome.results.is_empty(), "an aborted run has no results");
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    // It really stopped: no more records go through.
    let stopped_at = seen.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(seen.load(Ordering::Relaxed), stopped_at);
    assert!(stopped_at < u64::MAX / 2);
    drop(executor);
    assert_eq!(on_done_calls.load(Ordering::SeqCst), 1);
}

#[test]
fn panics_and_errors_are_outcomes_and_on_done_runs_once() {
    let executor = Executor::new(3);
    let lanes: Vec<Lane> = (0..3).map(|_| executor.lane()).collect();
    let calls: Arc<Mutex<HashMap<ExecutionId, usize>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let mut executions = Vec::new();
    const N: u64 = 120;
    for i in 0..N {
        let execution = new_execution(i);
        let work = job(move |_| match i % 4 {
            0 => panic!("boom {i}"),
            1 => Err(GearsError::Invalid(format!("bad {i}"))),
            2 => Err(GearsError::Aborted),
            _ => Ok(Outcome {
                results: vec![Value::Int(i as i64)],
                ..Outcome::default()
            }),
        });
        let (calls, tx) = (calls.clone(), tx.clone());
        let on_done: OnDone = Box::new(move |e: &Arc<Execution>| {
            *calls.lock().unwrap().entry(e.id().clone()).or_default() += 1;
            // The outcome is in place when on_done runs.
            let _ = tx.send((e.id().clone(), e.is_finished() && e.outcome().is_some()));
            // A panicking callback must not take the worker (or the lane) down.
            if i % 7 == 0 {
                panic!("on_done {i}");
            }
        });
        lanes[i as usize % 3].submit(execution.clone(), work, Some(on_done));
        executions.push(execution);
    }
    drop(tx);
    for _ in 0..N {
        let (id, ready) = rx.recv_timeout(WAIT).expect("every execution completes");
        assert!(ready, "{id} had no outcome when on_done ran");
    }
    for (i, e) in executions.iter().enumerate() {
        let outcome = e.wait(WAIT).expect("finished");
        match i % 4 {
            0 => {
                assert_eq!(e.status(), ExecutionStatus::Done);
                assert_eq!(outcome.errors.len(), 1);
                assert_eq!(outcome.errors[0], format!("execution: panicked: boom {i}"));
                assert!(outcome.results.is_empty());
            }
            1 => {
                assert_eq!(e.status(), ExecutionStatus::Done);
                assert_eq!(outcome.errors, [format!("execution: bad {i}")]);
            }
            2 => {
                assert_eq!(e.status(), ExecutionStatus::Aborted);
                assert!(outcome.errors.is_empty());
            }
            _ => {
                assert_eq!(e.status(), ExecutionStatus::Done);
                assert!(outcome.errors.is_empty());
                assert_eq!(outcome.results, [Value::Int(i as i64)]);
            }
        }
    }
    // Joining the workers: nothing can call on_done any more.
    drop(executor);
    assert!(rx.try_recv().is_err(), "a late on_done");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), N as usize);
    assert!(calls.values().all(|&n| n == 1), "on_done not exactly once");
}

#[test]
fn execution_id_format() {
    let id = ExecutionId::new(&ShardId::standalone(), 7);
    assert_eq!(id.0, "0000000000000000000000000000000000000000-7");
    assert_eq!(id.to_string(), id.0);
    assert_eq!(ShardId::standalone().0.len(), 40);
    let shard = ShardId("a".repeat(40));
    assert_eq!(
        ExecutionId::new(&shard, 123_456).0,
        format!("{}-123456", "a".repeat(40))
    );
    assert_ne!(
        ExecutionId::new(&shard, 1),
        ExecutionId::new(&ShardId::standalone(), 1)
    );
}

#[test]
fn execution_lifecycle_without_executor() {
    let e = new_execution(9);
    assert_eq!(e.status(), ExecutionStatus::Created);
    assert_eq!(e.status().name(), "created");
    assert!(!e.is_finished());
    assert!(e.outcome().is_none());
    // Waiting on an unfinished execution times out instead of blocking.
    let t = Instant::now();
    assert!(e.wait(Duration::from_millis(30)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(30));
    // The abort flag handed to a run is the execution's own.
    let flag = e.abort_flag();
    assert!(e.abort());
    assert!(flag.load(Ordering::SeqCst));
}
