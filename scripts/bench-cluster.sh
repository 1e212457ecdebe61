#!/usr/bin/env bash
# Cluster benchmark, one run, on a release build (a 3-master Redis Cluster and one standalone
# server on loopback, started and stopped by the test harness, by PID):
#  - count() over KEYS keys on 3 masters ÷ the same on one standalone server (goal <= 1.5);
#  - round trip of an empty distributed run (goal < 2 ms);
#  - repartition shuffle throughput (MB/s, records/s): SHUFFLE_RECORDS records of RECORD_BYTES per shard;
#  - one cluster message per record (1.x) vs Gears' batches: time and bytes ratios.
# Usage: scripts/bench-cluster.sh   (KEYS=1000000 EMPTY_RUNS=2000 SHUFFLE_RECORDS=300000 RECORD_BYTES=100 PER_RECORD_RECORDS=30000)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
cargo build --release -q -p gears-example-wordcount
export KEYS=${KEYS:-1000000} EMPTY_RUNS=${EMPTY_RUNS:-2000}
LOG=target/bench-cluster.log   # the whole output, when something fails
GEARS_MODULE_DIR="$PWD/target/release" cargo test --release -q -p gears-module --test cluster \
  -- --ignored --nocapture --test-threads 1 bench_cluster 2>&1 | tee "$LOG" |
  grep -E '^(==|count|empty|repartition|one message|loaded)|panicked|FAILED|left:|right:'
