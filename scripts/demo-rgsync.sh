#!/usr/bin/env bash
# Write-behind into the embedded default, SQLite: builds the rgsync module (release), starts
# redis-server with it on a free loopback port, adds a job with RGSYNC.ADD, writes hashes
# (upserts, a partial update, a delete, an acknowledged write), waits for the writer to drain
# and prints the SQLite table with sqlite3. Stops the server by PID.
#
#   scripts/demo-rgsync.sh              # standalone
#   source scripts/demo-rgsync.sh; demo_rgsync   # from another script (uses scripts/lib.sh)
set -euo pipefail

demo_rgsync() {
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  (cd "$root" && cargo build --release -q -p rgsync-module)
  local module="$root/target/release/librgsync.so"
  # shellcheck source=lib.sh
  source "$root/scripts/lib.sh"
  local scratch; scratch=$(mktemp -d)
  start_redis "$scratch/redis" --loadmodule "$module"
  local port=$REDIS_PORT
  local db="$scratch/app.db"
  r() { redis-cli -p "$port" "$@"; }
  echo "== rgsync: write-behind of user:* hashes into the SQLite file $db"
  echo "> RGSYNC.ADD users KEY user:{id:integer} TABLE users COLUMNS \"name city age:integer\" CONNECTION \"Driver={SQLite3};Database=$db\" CREATE_TABLE yes"
  r RGSYNC.ADD users KEY 'user:{id:integer}' TABLE users COLUMNS "name city age:integer" \
    CONNECTION "Driver={SQLite3};Database=$db" CREATE_TABLE yes DURATION 50
  r HSET user:1 name ann city paris age 31 >/dev/null
  r HSET user:2 name bob city rome age 45 >/dev/null
  r HSET user:3 name cid city paris age 27 >/dev/null
  r HSET user:4 name dee city oslo age 38 '#' '=ack-dee' >/dev/null   # asks for an ack
  r HSET user:1 age 32 >/dev/null                                      # partial update
  r DEL user:2 >/dev/null                                              # delete
  echo "> HSET user:1..4, HSET user:1 age 32, DEL user:2"
  local i
  for i in $(seq 1 100); do
    [ "$(r RGSYNC.STATUS users | sed -n '/^backlog$/{n;p}')" = "0" ] && break
    sleep 0.1
  done
  echo "> sqlite3 $db 'SELECT * FROM users ORDER BY id'"
  sqlite3 -header -column "$db" 'SELECT * FROM users ORDER BY id'
  echo "> XRANGE {user:4}ack-dee - +    (the ack, written after the commit)"
  r XRANGE '{user:4}ack-dee' - +
  echo "> RGSYNC.STATUS users"
  r RGSYNC.STATUS users | paste - - | head -14
  stop_redis "$scratch/redis"
  rm -rf "$scratch"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cd "$(dirname "$0")/.."
  bash scripts/install-deps.sh >/dev/null
  demo_rgsync
fi
