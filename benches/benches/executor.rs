//! Executor overhead: enqueue → run → complete of 1M tiny executions (the job returns an
//! empty outcome at once), on 1 and 2 workers.
//!
//! - `gears/1_lane`: every execution in one lane, the case of one registration firing
//!   (FIFO, so at most one worker serves it whatever the pool size);
//! - `gears/1000_lanes`: one lane per 1000 executions, submitted round-robin, which lets
//!   the workers run in parallel (1 → 2 worker scaling);
//! - `hand_written`: the floor of any pool: boxed closures sent over one crossbeam channel
//!   to the same number of threads (no `Execution`, no ids, no lanes).
//!
//! Each iteration submits everything, then waits for a shared counter (bumped by each
//! `on_done`) to reach the total, spinning with `yield_now`. Throughput is in elements, so
//! criterion's time per iteration / 1M is the cost per execution.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use gears_core::execution::{Execution, ExecutionId, Outcome};
use gears_core::executor::{Executor, Lane};
use gears_core::host::ShardId;

const EXECUTIONS: usize = 1_000_000;
const PER_LANE: usize = 1_000;

/// Finished executions, all runs together (each run waits for its own total).
static DONE: AtomicUsize = AtomicUsize::new(0);

fn wait_for(target: usize) {
    while DONE.load(Ordering::Acquire) < target {
        std::thread::yield_now();
    }
}

fn run_gears(lanes: &[Lane], shard: &ShardId) {
    let target = DONE.load(Ordering::Acquire) + EXECUTIONS;
    for i in 0..EXECUTIONS {
        let execution = Execution::new(ExecutionId::new(shard, i as u64));
        lanes[i % lanes.len()].submit(
            execution,
            Box::new(|_| Ok(Outcome::default())),
            Some(Box::new(|e| {
                black_box(e);
                DONE.fetch_add(1, Ordering::Release);
            })),
        );
    }
    wait_for(target);
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

    fn run(&self) {
        let sender = self.sender.as_ref().expect("pool is running");
        let target = DONE.load(Ordering::Acquire) + EXECUTIONS;
        for i in 0..EXECUTIONS {
            let _ = sender.send(Box::new(move || {
                black_box(i);
                DONE.fetch_add(1, Ordering::Release);
            }));
        }
        wait_for(target);
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
    let mut group = c.benchmark_group(format!("executor_{threads}_worker{plural}"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(EXECUTIONS as u64));
    {
        let executor = Executor::new(threads);
        let one = [executor.lane()];
        group.bench_function("gears/1_lane", |b| b.iter(|| run_gears(&one, &shard)));
        let many: Vec<Lane> = (0..EXECUTIONS / PER_LANE)
            .map(|_| executor.lane())
            .collect();
        group.bench_function("gears/1000_lanes", |b| b.iter(|| run_gears(&many, &shard)));
    }
    {
        let pool = ChannelPool::new(threads);
        group.bench_function("hand_written", |b| b.iter(|| pool.run()));
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
