//! Executor overhead: enqueue → run → complete of 1M tiny executions (the job returns an
//! empty outcome at once), on 1 and 2 workers. Throughput is in elements, so criterion's
//! time per iteration / 1M is the cost per execution.
//!
//! - `gears/1_lane`: every execution in one lane, the case of one registration firing
//!   (FIFO, so at most one worker serves it whatever the pool size);
//! - `gears/1000_lanes`: one lane per 1000 executions, submitted round-robin, which lets
//!   the workers run in parallel;
//! - `hand_written`: the floor of any pool: boxed closures sent over one crossbeam channel
//!   to the same number of threads (no `Execution`, no ids, no lanes).
//!
//! Those three are end to end: the bench thread creates and submits every execution while
//! the workers run them, then waits for a shared counter (bumped by each `on_done`) to reach
//! the total, spinning with `yield_now`. On a 2-core machine the submitting thread competes
//! with the workers, so the `*_drain` variants also time the worker side alone: the workers
//! are first parked on a gate job, the 1M executions are created and queued (untimed), then
//! the clock runs from opening the gate until the counter reaches the total. With ~100 ns jobs neither Gears nor the peer scales from 1
//! to 2 workers (cross-core traffic dominates), so `gears/1000_per_lane_drain_5us_jobs`
//! repeats the drain with 100k jobs that each spin for 5 µs: that is where 1 → 2 worker
//! scaling shows.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gears_core::execution::{Execution, ExecutionId, Outcome};
use gears_core::executor::{Executor, Job, Lane};
use gears_core::host::ShardId;

const EXECUTIONS: usize = 1_000_000;
const PER_LANE: usize = 1_000;
/// Executions of the scaling check with non-trivial jobs.
const WORK_EXECUTIONS: usize = 100_000;
/// Busy time of each job in the scaling check.
const WORK: Duration = Duration::from_micros(5);

/// Finished executions, all runs together (each run waits for its own total).
static DONE: AtomicUsize = AtomicUsize::new(0);
/// Workers sitting in a gate job.
static GATED: AtomicUsize = AtomicUsize::new(0);
/// Opens the gate jobs.
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

/// Spins (yielding) until `target` executions finished.
fn wait_for(target: usize) {
    while DONE.load(Ordering::Acquire) < target {
        std::thread::yield_now();
    }
}

/// Sleeps in short steps until `target` executions finished, leaving the cores to the
/// workers.
fn sleep_until(target: usize) {
    while DONE.load(Ordering::Acquire) < target {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The body of a gate job: blocks a worker until the gate opens.
fn gate() {
    GATED.fetch_add(1, Ordering::AcqRel);
    while !GATE_OPEN.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// Closes the gate, runs `park(i)` for each of the `threads` workers (it must queue one
/// [`gate`] job each) and waits until they all sit in it.
fn park_workers(threads: usize, mut park: impl FnMut(usize)) {
    GATE_OPEN.store(false, Ordering::Release);
    let target = GATED.load(Ordering::Acquire) + threads;
    for i in 0..threads {
        park(i);
    }
    while GATED.load(Ordering::Acquire) < target {
        std::thread::yield_now();
    }
}

/// Opens the gate and times the workers until `target` executions finished.
fn open_and_time(target: usize) -> Duration {
    let start = Instant::now();
    GATE_OPEN.store(true, Ordering::Release);
    sleep_until(target);
    start.elapsed()
}

/// Creates and submits [`EXECUTIONS`] tiny executions round-robin over `lanes`; returns the
/// counter value at which they are all done.
fn submit_gears(lanes: &[Lane], shard: &ShardId) -> usize {
    submit_gears_n(lanes, shard, EXECUTIONS, Duration::ZERO)
}

/// Creates and submits `n` executions round-robin over `lanes`, each job busy for `work`
/// (none when zero); returns the counter value at which they are all done.
fn submit_gears_n(lanes: &[Lane], shard: &ShardId, n: usize, work: Duration) -> usize {
    let target = DONE.load(Ordering::Acquire) + n;
    for i in 0..n {
        let execution = Execution::new(ExecutionId::new(shard, i as u64));
        let job: Job = if work.is_zero() {
            Box::new(|_| Ok(Outcome::default()))
        } else {
            Box::new(move |_| {
                let start = Instant::now();
                while start.elapsed() < work {
                    std::hint::spin_loop();
                }
                Ok(Outcome::default())
            })
        };
        lanes[i % lanes.len()].submit(
            execution,
            job,
            Some(Box::new(|e| {
                black_box(e);
                DONE.fetch_add(1, Ordering::Release);
            })),
        );
    }
    target
}

type PeerJob = Box<dyn FnOnce() + Send>;

/// The hand-written peer: `threads` workers draining one channel of boxed closures.
struct ChannelPool {
    sender: Option<crossbeam::channel::Sender<PeerJob>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl ChannelPool {
    fn new(threads: usize) -> Self {
        let (sender, receiver) = crossbeam::channel::unbounded::<PeerJob>();
        let workers = (0..threads)
            .map(|_| {
                let receiver = receiver.clone();
                std::thread::spawn(move || {
                    while let Ok(job) = receiver.recv() {
                        job();
                    }
                })
            })
            .collect();
        Self {
            sender: Some(sender),
            workers,
        }
    }

    fn submit(&self, job: PeerJob) {
        let _ = self.sender.as_ref().expect("pool is running").send(job);
    }

    fn submit_all(&self) -> usize {
        let target = DONE.load(Ordering::Acquire) + EXECUTIONS;
        for i in 0..EXECUTIONS {
            self.submit(Box::new(move || {
                black_box(i);
                DONE.fetch_add(1, Ordering::Release);
            }));
        }
        target
    }
}

impl Drop for ChannelPool {
    fn drop(&mut self) {
        self.sender = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn bench_workers(c: &mut Criterion, threads: usize) {
    let shard = ShardId::standalone();
    let plural = if threads == 1 { "" } else { "s" };
    let mut group = common::flat_group(
        c,
        format!("executor_{threads}_worker{plural}"),
        Duration::from_secs(8),
        EXECUTIONS as u64,
    );
    {
        let executor = Executor::new(threads);
        let one = [executor.lane()];
        let many: Vec<Lane> = (0..EXECUTIONS / PER_LANE)
            .map(|_| executor.lane())
            .collect();
        let gates: Vec<Lane> = (0..threads).map(|_| executor.lane()).collect();
        group.bench_function("gears/1_lane", |b| {
            b.iter(|| wait_for(submit_gears(&one, &shard)))
        });
        group.bench_function("gears/1000_lanes", |b| {
            b.iter(|| wait_for(submit_gears(&many, &shard)))
        });
        let drain = |lanes: &[Lane], n: usize, work: Duration, iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                park_workers(threads, |i| {
                    gates[i].submit(
                        Execution::new(ExecutionId::new(&shard, 0)),
                        Box::new(|_| {
                            gate();
                            Ok(Outcome::default())
                        }),
                        None,
                    )
                });
                let target = submit_gears_n(lanes, &shard, n, work);
                total += open_and_time(target);
            }
            total
        };
        group.bench_function("gears/1_lane_drain", |b| {
            b.iter_custom(|iters| drain(&one, EXECUTIONS, Duration::ZERO, iters))
        });
        group.bench_function("gears/1000_lanes_drain", |b| {
            b.iter_custom(|iters| drain(&many, EXECUTIONS, Duration::ZERO, iters))
        });
        // Jobs with real work (5 µs each, 100k of them over 100 lanes): here the lanes
        // do spread over the workers.
        group.throughput(Throughput::Elements(WORK_EXECUTIONS as u64));
        let work_lanes = &many[..WORK_EXECUTIONS / PER_LANE];
        group.bench_function("gears/1000_per_lane_drain_5us_jobs", |b| {
            b.iter_custom(|iters| drain(work_lanes, WORK_EXECUTIONS, WORK, iters))
        });
        group.throughput(Throughput::Elements(EXECUTIONS as u64));
    }
    {
        let pool = ChannelPool::new(threads);
        group.bench_function("hand_written", |b| b.iter(|| wait_for(pool.submit_all())));
        group.bench_function("hand_written_drain", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    park_workers(threads, |_| pool.submit(Box::new(gate)));
                    let target = pool.submit_all();
                    total += open_and_time(target);
                }
                total
            })
        });
    }
    group.finish();
}

fn executor_1_worker(c: &mut Criterion) {
    bench_workers(c, 1);
}

fn executor_2_workers(c: &mut Criterion) {
    bench_workers(c, 2);
}

criterion_group!(benches, executor_1_worker, executor_2_workers);
criterion_main!(benches);
