#!/usr/bin/env bash
# The benchmark report (issue 6): builds in release mode, starts every server it needs
# (MariaDB through scripts/db.sh, redis-server with and without the rgsync module, the small
# HTTP app), runs the demo's spike test against direct MariaDB upserts, Redis + write-behind
# and plain Redis -- at protocol level and through the HTTP app --, the drain rate, then folds
# in scripts/bench-module.sh, scripts/bench-cluster.sh (when present) and the criterion
# summary, and writes bench-results/: report.md, spike.csv (every second of every run), PNG
# charts. Every server it starts is stopped by PID on exit.
#
#   scripts/bench-report.sh [--quick|--full|--demo] [--out DIR] [--note "text for the report"]
#
# --quick (default): 16 s spikes, smaller module/drain sizes, criterion results reused when
#   target/criterion has them (else a short run of the benchmarks with goals, pipeline.rs);
#   about 3.5 minutes with an up-to-date build.
# --full: the demo's stages at half their durations (70 s per spike), full module sizes
#   (1M hashes, 1M cluster keys), a short criterion run of every benchmark.
# --demo: as --full with the demo's own stages (140 s per spike).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=quick
OUT=bench-results
NOTE=${BENCH_NOTE:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --demo) MODE=demo ;;
    --full) MODE=full ;;
    --out) OUT=$2; shift ;;
    --note) NOTE=$2; shift ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "unknown argument $1 (want --quick, --full, --demo, --out DIR, --note TEXT)" >&2; exit 2 ;;
  esac
  shift
done
T_START=$(date +%s)
# section TITLE: prints the header; the seconds each section took go to machine.txt (timings=).
SECTION=; SECTION_AT=$T_START; TIMINGS=
section() {
  local now; now=$(date +%s)
  [ -n "$SECTION" ] && TIMINGS="$TIMINGS${TIMINGS:+, }$SECTION $(( now - SECTION_AT )) s"
  SECTION=$2; SECTION_AT=$now
  echo "== $1"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "$MODE" = quick ]; then
  STAGES=quick; SETTLE=1; DRAIN_N=50000; CAP_N=100000; CAP_ROUNDS=5; MOD_N=50000; MOD_HASHES=100000; CRIT_ARGS="--warm-up-time 0.5 --measurement-time 1"
else
  # --full: the demo's stages at half their durations; --demo: the demo's own (140 s each).
  STAGES=$MODE; SETTLE=2; DRAIN_N=200000; CAP_N=200000; CAP_ROUNDS=7; MOD_N=200000; MOD_HASHES=1000000; CRIT_ARGS="--warm-up-time 0.5 --measurement-time 1.5"
fi

section "dependencies" deps
bash scripts/install-deps.sh >/dev/null
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -z "${BENCH_FONT:-}" ]; then
  echo "bench: installing fonts-dejavu-core (chart text)"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-dejavu-core >/dev/null
fi

# MariaDB (and PostgreSQL, which db.sh also starts): remember which were down, to stop those.
mariadb_was_up=no; pg_was_up=no
mariadb-admin ping >/dev/null 2>&1 && mariadb_was_up=yes
pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && pg_was_up=yes
bash scripts/db.sh
DB=gears_bench
ODBC="Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=$DB;Uid=test;Pwd=test;"
mariadb -e "CREATE DATABASE IF NOT EXISTS $DB;
  GRANT ALL ON $DB.* TO 'test'@'localhost'; GRANT ALL ON $DB.* TO 'test'@'127.0.0.1';"
# Per-table rows-changed counters (information_schema.TABLE_STATISTICS); restored on exit.
USERSTAT_BEFORE=$(mariadb -N -e "SELECT @@userstat")
mariadb -e "SET GLOBAL userstat=1"

S=$(mktemp -d /tmp/gears-bench.XXXXXX)
APP_PID=
cleanup() {
  set +e
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
  for d in "$S"/*; do [ -d "$d" ] && stop_redis "$d"; done
  [ -n "${USERSTAT_BEFORE:-}" ] && mariadb -e "SET GLOBAL userstat=$USERSTAT_BEFORE" 2>/dev/null
  if [ "$mariadb_was_up" = no ]; then
    pid=$(cat /run/mysqld/mysqld.pid 2>/dev/null)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && echo "bench: stopped mariadb (pid $pid)"
  fi
  if [ "$pg_was_up" = no ]; then
    for f in /var/lib/postgresql/*/*/postmaster.pid; do
      [ -f "$f" ] || continue
      pid=$(head -1 "$f"); kill "$pid" 2>/dev/null && echo "bench: stopped postgresql (pid $pid)"
    done
  fi
  rm -rf "$S"
}
source scripts/lib.sh
trap cleanup EXIT

section "release build (bench-harness, rgsync module)" build
cargo build --release -q -p bench-harness -p rgsync-module
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
B="$TARGET/release/gears-bench"
RGSYNC="$TARGET/release/librgsync.so"

rm -rf "$OUT"; mkdir -p "$OUT/spike"
OUT=$(cd "$OUT" && pwd)

# --- machine ----------------------------------------------------------------------------
{
  echo "mode=$MODE"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "cores=$(nproc)"
  echo "memory=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version)"
  echo "redis=$(redis-server --version | awk '{ print $3 }' | tr -d 'v=')"
  echo "mariadb=$(mariadb -N -e 'SELECT VERSION()')"
  echo "odbc=$(dpkg-query -W -f='odbc-mariadb ${Version}' odbc-mariadb 2>/dev/null || echo unknown)"
  echo "load=$LOAD_BEFORE"
  echo "wb_job=\`RGSYNC.ADD bench KEY user:{id:integer} TABLE bench_wb COLUMNS temperature:float\` with rgsync's defaults (batch 100, duration 100 ms, exactly-once checkpoint in each transaction), like the demo's default batch=100 / duration=100 ms"
  echo "module_settings=N=$MOD_N requests, HASHES=$MOD_HASHES"
  echo "note=$NOTE"
} >"$OUT/machine.txt"

reset() { "$B" reset-table --odbc "$ODBC" --table "$1"; }
# CPU accounting: PIDs of mariadbd and of a redis-server started in $S/NAME.
mariadbd_pid() { cat "$(mariadb -N -e 'SELECT @@pid_file')" 2>/dev/null || pidof mariadbd || true; }
pid_of() { cat "$S/$1/redis.pid"; }
# fresh_wb NAME: a fresh redis-server with the rgsync module and the job writing to
# bench_wb (dropped and created empty; checkpoint table too); sets WB_PORT.
fresh_wb() {
  stop_redis "$S/$1"
  reset bench_wb
  mariadb -e "DROP TABLE IF EXISTS $DB.rgsync_checkpoint"
  start_redis "$S/$1" --loadmodule "$RGSYNC"
  WB_PORT=$REDIS_PORT
  local reply
  reply=$(redis-cli -p "$WB_PORT" RGSYNC.ADD bench KEY 'user:{id:integer}' TABLE bench_wb \
    COLUMNS "temperature:float" CONNECTION "$ODBC" CREATE_TABLE yes)
  [ "$reply" = OK ] || { echo "RGSYNC.ADD failed: $reply" >&2; exit 1; }
}
fresh_plain() {
  stop_redis "$S/$1"
  start_redis "$S/$1"
  PLAIN_PORT=$REDIS_PORT
}
spike() { # scenario args...
  echo "-- $1"
  "$B" spike --scenario "$1" --stages "$STAGES" --odbc "$ODBC" --out "$OUT/spike" "${@:2}"
  sleep "$SETTLE" # let MariaDB settle between runs
}

# --- spike, protocol level --------------------------------------------------------------
section "spike test ($STAGES), protocol level" spike-protocol
reset bench_direct
DBPID=$(mariadbd_pid)
spike proto-db --target mariadb --table bench_direct --db-table bench_direct --cpu "mariadbd=$DBPID"
fresh_wb wb1
spike proto-wb --target redis --redis "redis://127.0.0.1:$WB_PORT/" --prefix user: \
  --rgsync-job bench --db-table bench_wb --cpu "redis-server=$(pid_of wb1),mariadbd=$DBPID"
stop_redis "$S/wb1"
fresh_plain plain1
spike proto-redis --target redis --redis "redis://127.0.0.1:$PLAIN_PORT/" --prefix hash: \
  --cpu "redis-server=$(pid_of plain1)"
stop_redis "$S/plain1"

# --- spike, through the HTTP app --------------------------------------------------------
section "spike test ($STAGES), through the HTTP app" spike-http
reset bench_http_direct
fresh_wb wb2
fresh_plain plain2
"$B" http-app --listen 127.0.0.1:0 --port-file "$S/app.port" --odbc "$ODBC" \
  --table bench_http_direct --wb-redis "redis://127.0.0.1:$WB_PORT/" \
  --plain-redis "redis://127.0.0.1:$PLAIN_PORT/" >"$S/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 100); do [ -s "$S/app.port" ] && break; sleep 0.05; done
[ -s "$S/app.port" ] || { echo "http app did not start:"; cat "$S/app.log"; exit 1; }
APP="127.0.0.1:$(cat "$S/app.port")"
spike http-db --target http --http "$APP" --path /db --db-table bench_http_direct \
  --cpu "http app=$APP_PID,mariadbd=$DBPID"
spike http-wb --target http --http "$APP" --path /wbredis \
  --rgsync-redis "redis://127.0.0.1:$WB_PORT/" --rgsync-job bench --db-table bench_wb \
  --cpu "http app=$APP_PID,redis-server=$(pid_of wb2),mariadbd=$DBPID"
spike http-redis --target http --http "$APP" --path /redis \
  --cpu "http app=$APP_PID,redis-server=$(pid_of plain2)"
kill "$APP_PID"; wait "$APP_PID" 2>/dev/null || true; APP_PID=
stop_redis "$S/wb2"; stop_redis "$S/plain2"

# --- drain rate -------------------------------------------------------------------------
section "drain rate ($DRAIN_N changes)" drain
fresh_wb wb3
"$B" drain --redis "redis://127.0.0.1:$WB_PORT/" --job bench --n "$DRAIN_N" --out "$OUT/drain.info" ||
  echo "error=drain measurement failed" >>"$OUT/drain.info"
stop_redis "$S/wb3"

# --- capture overhead -------------------------------------------------------------------
# The capture alone (the writer paused, so it does not compete for the cores), plain HSETs and
# a Lua EVAL doing HSET+XADD, alternated for $CAP_ROUNDS rounds: scripts/bench-capture.sh.
section "capture overhead (writer paused; redis-benchmark, 48 clients, $CAP_ROUNDS rounds of $CAP_N requests)" capture
fresh_wb wb4
fresh_plain plain4
bash scripts/bench-capture.sh "$PLAIN_PORT" "$WB_PORT" bench temperature "$CAP_ROUNDS" "$CAP_N" >"$OUT/capture.info"
cat "$OUT/capture.info"
stop_redis "$S/wb4"; stop_redis "$S/plain4"

# --- module rows ------------------------------------------------------------------------
section "module benchmarks (scripts/bench-module.sh, N=$MOD_N HASHES=$MOD_HASHES)" module
if N=$MOD_N HASHES=$MOD_HASHES bash scripts/bench-module.sh >"$OUT/module.log" 2>&1; then
  sed -n '/^| benchmark/,$p' "$OUT/module.log" >"$OUT/module.md"
else
  echo "module_error=scripts/bench-module.sh failed (exit $?); see module.log" >>"$OUT/machine.txt"
fi

# --- cluster rows -----------------------------------------------------------------------
if [ -f scripts/bench-cluster.sh ]; then
  if [ "$MODE" = quick ]; then
    CLUSTER_ENV="KEYS=100000 EMPTY_RUNS=500 SHUFFLE_RECORDS=50000 PER_RECORD_RECORDS=10000"
  else
    CLUSTER_ENV="KEYS=1000000 EMPTY_RUNS=2000"
  fi
  echo "cluster_settings=\`$CLUSTER_ENV scripts/bench-cluster.sh\`" >>"$OUT/machine.txt"
  section "cluster benchmarks ($CLUSTER_ENV scripts/bench-cluster.sh)" cluster
  if env $CLUSTER_ENV timeout 1200 bash scripts/bench-cluster.sh >"$OUT/cluster.log" 2>&1 &&
    grep -qE '^(count|empty|\|)' "$OUT/cluster.log"; then
    cp "$OUT/cluster.log" "$OUT/cluster.md"
  else
    echo "not measured: scripts/bench-cluster.sh failed or printed no result (see cluster.log)" >"$OUT/cluster.missing"
  fi
else
  echo "not measured: scripts/bench-cluster.sh missing" | tee "$OUT/cluster.missing"
fi

# --- criterion --------------------------------------------------------------------------
CRIT="$TARGET/criterion"
# Results worth reusing: those of the benchmarks with goals (pipeline.rs).
have_crit() {
  [ -f "$CRIT/fused_map_filter_count/gears/new/estimates.json" ] &&
    [ -f "$CRIT/count_by_10k_keys/gears/new/estimates.json" ]
}
if [ "$MODE" = quick ] && have_crit; then
  newest=$(find "$CRIT" -name estimates.json -path '*/new/*' -printf '%TY-%Tm-%Td %TH:%TM\n' | sort | tail -1)
  echo "criterion_note=Reused the criterion results already in target/criterion (newest $newest; quick mode does not rerun them)." >>"$OUT/machine.txt"
else
  # Quick mode without earlier results: only the benchmarks that carry goals (pipeline.rs).
  CRIT_BENCH=""; [ "$MODE" = quick ] && CRIT_BENCH="--bench pipeline"
  section "criterion ($CRIT_BENCH $CRIT_ARGS)" criterion
  # Bounded: a benchmark that stalls (seen on a loaded 2-core machine) must not hang the report.
  CRIT_TIMEOUT=$([ "$MODE" = quick ] && echo 600 || echo 1800)
  if timeout "$CRIT_TIMEOUT" cargo bench -q -p gears-benches $CRIT_BENCH -- $CRIT_ARGS >"$OUT/criterion.log" 2>&1; then
    echo "criterion_note=Measured in this run: \`cargo bench -p gears-benches $CRIT_BENCH -- $CRIT_ARGS\` (sample size 10)." >>"$OUT/machine.txt"
  else
    echo "criterion_note=cargo bench failed or exceeded ${CRIT_TIMEOUT} s (see criterion.log; last: $(grep '^Benchmarking' "$OUT/criterion.log" | tail -1 | cut -d: -f1)); the results it finished are shown." >>"$OUT/machine.txt"
  fi
fi

section report report
echo "duration=$(( $(date +%s) - T_START )) s (mode $MODE, build included)" >>"$OUT/machine.txt"
echo "timings=$TIMINGS" >>"$OUT/machine.txt"
"$B" report --dir "$OUT" --criterion "$CRIT"
echo "bench: done in $(( $(date +%s) - T_START )) s; see $OUT/report.md"
