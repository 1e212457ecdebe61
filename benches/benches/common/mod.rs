//! What the criterion benches share: one way to set up a group of long, flat-sampled runs.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};

/// A group of 10 flat samples after a 1 s warm-up, measured for `measure`, reporting
/// `elements` per iteration as its throughput.
pub(crate) fn flat_group<'a>(
    c: &'a mut Criterion,
    name: impl Into<String>,
    measure: Duration,
    elements: u64,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measure)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(elements));
    group
}
