#!/usr/bin/env bash
# The main job: installs what is missing, builds the example module in release mode, starts
# redis-server with it on a free loopback port, loads sample data, runs flows with RG.RUN
# through redis-cli, and stops the server (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

cargo build --release -p gears-example-wordcount
MODULE="$PWD/target/release/libgears_wordcount.so"

SCRATCH=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir "$SCRATCH" --logfile "$SCRATCH/redis.log" --pidfile "$SCRATCH/redis.pid" \
  --loadmodule "$MODULE" ExecutionThreads 2
cleanup() {
  if [ -f "$SCRATCH/redis.pid" ]; then kill "$(cat "$SCRATCH/redis.pid")" 2>/dev/null || true; fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
for _ in $(seq 1 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
if ! redis-cli -p "$PORT" ping >/dev/null 2>&1; then
  echo "redis-server did not start:" >&2; cat "$SCRATCH/redis.log" >&2; exit 1
fi

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
cli RG.RUN users_per_city
cli RG.RUN average_age_per_city
cli RG.RUN first_keys ARGS 'user:*' 2
cli RG.RUN faulty
ID=$(redis-cli -p "$PORT" RG.RUN word_count UNBLOCKING)
cli RG.GETRESULTSBLOCKING "$ID"
cli INFO wordcount
echo "Write-behind to SQLite arrives with the rgsync recipe (see the issues); this run covered the flows."
