#!/usr/bin/env bash
# rgsync benchmark: starts MariaDB (scripts/db.sh), a plain redis-server and one with the
# rgsync module (release builds, 127.0.0.1), runs recipes-rgsync/examples/rgsync_bench.rs (front
# end, drain, lag) and scripts/bench-capture.sh (the capture overhead alone, redis-benchmark,
# median of alternated rounds) and prints throughput, latency, drain rate, lag and the ratios of
# the issue. About 4.5 minutes with the defaults.
#   scripts/bench-rgsync.sh [seconds per run (10)] [backlog entries (1000000)] [steady rate (20000)] [capture rounds (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/db.sh >/dev/null
cargo build --release -q -p rgsync-module
cargo build --release -q -p recipes-rgsync --example rgsync_bench
source scripts/lib.sh
SCRATCH=$(mktemp -d)
trap 'stop_redis "$SCRATCH/plain"; stop_redis "$SCRATCH/wb"; rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM
start_redis "$SCRATCH/plain"; PLAIN=$REDIS_PORT
start_redis "$SCRATCH/wb" --loadmodule "$PWD/target/release/librgsync.so"; WB=$REDIS_PORT
echo "== redis $(redis-server --version | awk '{print $3}'), MariaDB $(mariadb -N -e 'select version()'), $(nproc) cores"
target/release/examples/rgsync_bench "$PLAIN" "$WB" "${1:-10}" "${2:-1000000}" "${3:-20000}"
echo "== capture overhead alone (scripts/bench-capture.sh: writer paused, redis-benchmark, 48 clients)"
bash scripts/bench-capture.sh "$PLAIN" "$WB" bench temp "${4:-5}" 100000 | tee "$SCRATCH/capture.info"
value() { awk -F= -v k="$1" '$1 == k { print $2 }' "$SCRATCH/capture.info"; }
echo "capture overhead: HSET with job (writer paused) / plain HSET = $(value median_capture_over_plain) (goal >= 0.8); / Lua HSET+XADD = $(value median_capture_over_lua) (goal >= 1); medians of $(value rounds) alternated rounds; server time per write $(value usec_capture_hset) us with the capture, $(value usec_lua_eval) us Lua EVAL, $(value usec_plain_hset) us plain HSET"
