#!/usr/bin/env bash
# The main job: installs what is missing, builds the example module in release mode, starts
# redis-server with it on a free loopback port, loads sample data, runs flows with RG.RUN
# through redis-cli, and stops the server (by PID); then a write-behind into SQLite with the
# rgsync module (scripts/demo-rgsync.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

cargo build --release -p gears-example-wordcount
MODULE="$PWD/target/release/libgears_wordcount.so"

source scripts/lib.sh
SCRATCH=$(mktemp -d)
trap 'stop_redis "$SCRATCH"; rm -rf "$SCRATCH"' EXIT
start_redis "$SCRATCH" --loadmodule "$MODULE" ExecutionThreads 2
PORT=$REDIS_PORT

cli() { echo "> redis-cli $*"; redis-cli -p "$PORT" "$@"; echo; }

echo "== redis-server $(redis-server --version | awk '{print $3}') on port $PORT with $MODULE"
redis-cli -p "$PORT" SET doc:1 "Redis keeps the data close" >/dev/null
redis-cli -p "$PORT" SET doc:2 "Gears keeps the compute close to the data" >/dev/null
for u in "ann paris 31" "bob rome 45" "cid paris 27" "dee oslo 38"; do
  set -- $u
  redis-cli -p "$PORT" HSET "user:$1" city "$2" age "$3" >/dev/null
done

cli RG.DUMPFUNCTIONS
cli RG.RUN word_count
cli RG.RUN first_keys ARGS 'user:*' 2
cli RG.RUN faulty
ID=$(redis-cli -p "$PORT" RG.RUN word_count UNBLOCKING)
cli RG.GETRESULTSBLOCKING "$ID"
cli INFO wordcount
stop_redis "$SCRATCH"

# Write-behind into the embedded default, SQLite (the rgsync module, its own redis-server).
source scripts/demo-rgsync.sh
demo_rgsync
