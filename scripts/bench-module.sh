#!/usr/bin/env bash
# Whole-system benchmarks of the module against peers measured in the same run:
#  - sync registration (audit XADD per HSET) vs plain HSET, redis-benchmark, 48 clients;
#  - async_local registration counting events: events/s vs plain HSET rps;
#  - group-by-count over 1M hashes: Lua EVAL vs RG.RUN, and RG.RUN vs bare iteration;
#  - memory: idle RSS added by the module.
# Usage: scripts/bench-module.sh   (N=requests, HASHES=hashes to group; defaults 200000, 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
cargo build --release -q -p gears-example-city-stats -p gears-example-triggers
source scripts/lib.sh

N=${N:-200000}
HASHES=${HASHES:-1000000}
TRIGGERS="$PWD/target/release/libgears_triggers.so"
CITIES="$PWD/target/release/libgears_cities.so"
S=$(mktemp -d)
trap 'for d in "$S"/*; do stop_redis "$d"; done; rm -rf "$S"' EXIT

rps() { # port command...: requests/s of redis-benchmark
  local port=$1; shift
  redis-benchmark -p "$port" -c 48 -n "$N" -r 100000 -q "$@" 2>/dev/null |
    tr '\r' '\n' | grep 'requests per second' | tail -1 | sed -E 's/.*: ([0-9.]+) requests per second.*/\1/'
}
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rss() { redis-cli -p "$1" INFO memory | tr -d '\r' | awk -F: '/^used_memory_rss:/ { print $2 }'; }
used() { redis-cli -p "$1" INFO memory | tr -d '\r' | awk -F: '/^used_memory:/ { print $2 }'; }
# only_active PORT FUNCTION: pause every registration but FUNCTION's (each benchmark measures
# its own registration, not the example module's others).
only_active() {
  registrations "$1" |
  while read -r id fn; do
    if [ "$fn" = "$2" ]; then redis-cli -p "$1" RG.UNPAUSEREGISTRATIONS "$id" >/dev/null
    else redis-cli -p "$1" RG.PAUSEREGISTRATIONS "$id" >/dev/null; fi
  done
}

echo "== plain redis-server"
start_redis "$S/plain"; P=$REDIS_PORT
PLAIN_RSS=$(rss "$P")
PLAIN=$(rps "$P" HSET 'user:__rand_int__' name x)
stop_redis "$S/plain"

echo "== redis-server + triggers module (sync audit on user:*, async_local counter on event:*)"
start_redis "$S/trig" --loadmodule "$TRIGGERS"; T=$REDIS_PORT
MOD_RSS=$(rss "$T")
only_active "$T" audit_trail
SYNC=$(rps "$T" HSET 'user:__rand_int__' name x)
AUDITED=$(redis-cli -p "$T" XLEN audit)
only_active "$T" count_events
START=$(now)
rps "$T" SET 'event:__rand_int__' x >/dev/null
while [ "$(redis-cli -p "$T" GET events:seen)" != "$N" ]; do
  sleep 0.01
  if [ $(( ($(now) - START) / 1000000000 )) -gt 300 ]; then echo "async drain timed out" >&2; exit 1; fi
done
END=$(now)
ASYNC_SECS=$(secs "$START" "$END")
ASYNC_EPS=$(awk -v n="$N" -v s="$ASYNC_SECS" 'BEGIN { printf "%.0f", n / s }')
REG_MEM0=$(used "$T")
for i in $(seq 1 100); do redis-cli -p "$T" RG.REGISTER copy_writes ARGS "bench$i:*" >/dev/null; done
REG_MEM1=$(used "$T")
stop_redis "$S/trig"

echo "== group-by-count over $HASHES hashes (100 cities)"
start_redis "$S/wc" --loadmodule "$CITIES" ExecutionThreads 1; W=$REDIS_PORT
redis-cli -p "$W" EVAL "for i=1,tonumber(ARGV[1]) do redis.call('HSET','user:'..i,'city','c'..(i%100),'age',tostring(20+i%50)) end return 1" 0 "$HASHES" >/dev/null
LUA='local c="0" local n={} repeat local r=redis.call("SCAN",c,"MATCH","user:*","COUNT",1000) c=r[1] for _,k in ipairs(r[2]) do local city=redis.call("HGET",k,"city") n[city]=(n[city] or 0)+1 end until c=="0" local out={} for k,v in pairs(n) do out[#out+1]=k out[#out+1]=v end return out'
# The floor of any SCAN-based reader: SCAN alone, no value read (Lua, same server).
SCAN_ONLY='local c="0" local n=0 repeat local r=redis.call("SCAN",c,"MATCH","user:*","COUNT",1000) c=r[1] n=n+#r[2] until c=="0" return n'
redis-cli -p "$W" RG.RUN city_counts >/dev/null # warm-up
t0=$(now); LUA_OUT=$(redis-cli -p "$W" EVAL "$LUA" 0 | wc -l); t1=$(now)
GEARS_OUT=$(redis-cli -p "$W" RG.RUN city_counts | head -c 100000 | wc -l); t2=$(now)
BARE=$(redis-cli -p "$W" RG.RUN count_keys ARGS 'user:*' | head -1); t3=$(now)
redis-cli -p "$W" EVAL "$SCAN_ONLY" 0 >/dev/null; t4=$(now)
LUA_S=$(secs "$t0" "$t1"); GEARS_S=$(secs "$t1" "$t2"); BARE_S=$(secs "$t2" "$t3"); SCAN_S=$(secs "$t3" "$t4")
redis-cli -p "$W" FLUSHALL >/dev/null
redis-benchmark -p "$W" -c 8 -n 20000 -q RG.RUN count_keys ARGS 'none:*' >/dev/null 2>&1
EXEC_RSS0=$(rss "$W")
redis-benchmark -p "$W" -c 8 -n 100000 -q RG.RUN count_keys ARGS 'none:*' >/dev/null 2>&1
EXEC_RSS1=$(rss "$W")
stop_redis "$S/wc"

cat <<REPORT

| benchmark | Gears | peer (same run) | ratio | goal |
|---|---|---|---|---|
| HSET rps, sync registration (XADD per HSET), 48 clients | $SYNC | plain HSET $PLAIN | $(ratio "$SYNC" "$PLAIN") | ≥ 0.80 |
| async_local events/s (counted exactly: $N) | $ASYNC_EPS | plain HSET $PLAIN | $(ratio "$ASYNC_EPS" "$PLAIN") | ≥ 0.5 |
| group-by-count, $HASHES hashes: Lua EVAL time ÷ RG.RUN time | ${GEARS_S} s | Lua ${LUA_S} s | $(ratio "$LUA_S" "$GEARS_S") | ≥ 5 |
| (bound) Lua EVAL time ÷ Lua SCAN alone, no value read | – | SCAN ${SCAN_S} s | $(ratio "$LUA_S" "$SCAN_S") | the best any SCAN-based reader can reach |
| RG.RUN time ÷ bare iteration (count_keys, $BARE keys) | ${GEARS_S} s | ${BARE_S} s | $(ratio "$GEARS_S" "$BARE_S") | ≤ 2 |
| idle RSS added by the module | $(( (MOD_RSS - PLAIN_RSS) / 1024 )) KiB | – | – | report |
| memory per registration (used_memory, 100 × RG.REGISTER) | $(( (REG_MEM1 - REG_MEM0) / 100 )) B | – | – | report |
| RSS drift over 100k executions (after 20k warm-up) | $(( (EXEC_RSS1 - EXEC_RSS0) / 1024 )) KiB | – | – | report |

audited entries: $AUDITED of $N HSETs; Lua reply lines $LUA_OUT, RG.RUN reply lines $GEARS_OUT
REPORT
