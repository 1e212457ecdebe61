#!/usr/bin/env bash
# rgsync benchmark: starts MariaDB (scripts/db.sh), a plain redis-server and one with the
# rgsync module (release builds, 127.0.0.1), runs recipes-rgsync/examples/rgsync_bench.rs and
# prints throughput, latency, drain rate, lag and the ratios of the issue.
#   scripts/bench-rgsync.sh [seconds per run (10)] [backlog entries (1000000)] [steady rate (20000)]
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
