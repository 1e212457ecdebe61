#!/usr/bin/env bash
# The capture overhead alone (issue 5), used by bench-rgsync.sh and bench-report.sh: on a plain
# redis-server and on one with an rgsync job whose writer is paused (so nothing but the capture
# runs with each write), redis-benchmark with 48 clients sends, back to back in each round,
# plain HSETs, HSETs on the job's keys, and a Lua EVAL doing HSET+XADD on the plain server (the
# hand-written alternative), after waiting for the machine to be quiet, in an order that
# alternates round to round. This machine's speed drifts between rounds; a round's three runs
# see nearly the same machine, so the verdict is the median of the rounds' ratios.
#
#   scripts/bench-capture.sh <plain port> <rgsync port> <job> <field> [rounds (5)] [requests (100000)]
#
# The rgsync server runs this one job, on keys user:<integer>. Prints key=value lines: each round's req/s
# (plain=, capture=, lua=), the server's own time per call (INFO commandstats, reset first),
# the changes the job captured, and the medians of the rounds' ratios. The writer is left
# paused (the caller resumes it, or stops the server).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PLAIN=$1 WB=$2 JOB=$3 FIELD=$4 ROUNDS=${5:-5} N=${6:-100000}

WRITER=$(registrations "$WB" | awk '$2 == "rgsync_writer" { print $1 }' | head -1)
[ -n "$WRITER" ] || { echo "no rgsync_writer registration on port $WB" >&2; exit 1; }
redis-cli -p "$WB" RG.PAUSEREGISTRATIONS "$WRITER" >/dev/null
redis-cli -p "$PLAIN" CONFIG RESETSTAT >/dev/null
redis-cli -p "$WB" CONFIG RESETSTAT >/dev/null

captured() {
  redis-cli -p "$WB" RGSYNC.STATUS "$JOB" | awk 'prev == "captured" { print; exit } { prev = $0 }'
}
rb() { # port command...: requests/s
  redis-benchmark -p "$1" -c 48 -n "$N" -r 1000000 --csv "${@:2}" 2>/dev/null |
    tail -1 | awk -F'","' '{ print $2 }'
}
usec_per_call() { # port command: the server's own time per call
  redis-cli -p "$1" INFO commandstats | tr -d '\r' |
    awk -F'usec_per_call=' -v c="cmdstat_$2:" 'index($0, c) == 1 { split($2, a, ","); print a[1] }'
}
LUA="redis.call('HSET', KEYS[1], '$FIELD', ARGV[1]); redis.call('XADD', 'wb', '*', 'k', KEYS[1], '$FIELD', ARGV[1])"
BEFORE=$(captured)
P=(); C=(); L=()
# idle_share: the share of the machine's CPU time left idle over one second (/proc/stat).
idle_share() {
  local a b
  a=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.2f\n", (t > 0 ? (y[1] - x[1]) / t : 1) }'
}
# Whatever ran before (a database still flushing after a drain, a build) would slow the
# rounds' first runs more than their last ones: wait until the machine is quiet (at least
# 85 % idle over a second), at most 60 s.
WAITED=0
IDLE=$(idle_share)
while awk -v i="$IDLE" 'BEGIN { exit !(i < 0.85) }' && [ "$WAITED" -lt 60 ]; do
  WAITED=$((WAITED + 1))
  IDLE=$(idle_share)
done
# Rounds alternate their order (plain, capture, Lua; then Lua, capture, plain), the capture
# always in the middle: a machine that speeds up or slows down over the rounds favours neither
# peer.
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then
    p=$(rb "$PLAIN" HSET 'user:__rand_int__' "$FIELD" 36.6)
    c=$(rb "$WB" HSET 'user:__rand_int__' "$FIELD" 36.6)
    l=$(rb "$PLAIN" EVAL "$LUA" 1 'user:__rand_int__' 36.6)
  else
    l=$(rb "$PLAIN" EVAL "$LUA" 1 'user:__rand_int__' 36.6)
    c=$(rb "$WB" HSET 'user:__rand_int__' "$FIELD" 36.6)
    p=$(rb "$PLAIN" HSET 'user:__rand_int__' "$FIELD" 36.6)
  fi
  P+=("$p") C+=("$c") L+=("$l")
done
# median_ratio "a b c" "x y z": the median of a/x, b/y, c/z.
median_ratio() {
  paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
    awk '$2 > 0 { print $1 / $2 }' | sort -g |
    awk '{ r[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.2f\n", r[(NR + 1) / 2]; else printf "%.2f\n", (r[NR / 2] + r[NR / 2 + 1]) / 2 }'
}
echo "requests=$N"
echo "rounds=$ROUNDS"
echo "quiet_wait_s=$WAITED idle_before=$IDLE"
echo "plain=${P[*]}"
echo "capture=${C[*]}"
echo "lua=${L[*]}"
# Server time per call: plain HSET (its server also ran the EVALs' HSETs, same cost), HSET
# with the capture, the whole EVAL.
echo "usec_plain_hset=$(usec_per_call "$PLAIN" hset)"
echo "usec_capture_hset=$(usec_per_call "$WB" hset)"
echo "usec_lua_eval=$(usec_per_call "$PLAIN" eval)"
echo "captured=$(( $(captured) - BEFORE )) of $(( ROUNDS * N ))"
echo "median_capture_over_plain=$(median_ratio "${C[*]}" "${P[*]}")"
echo "median_capture_over_lua=$(median_ratio "${C[*]}" "${L[*]}")"
