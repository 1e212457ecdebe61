# Shared helpers for the scripts (source it). Servers are started on 127.0.0.1 only and
# stopped by PID.

# start_redis DIR [redis-server args...]: starts a daemonized redis-server on the first free
# port from 6390 up, with its files in DIR; sets REDIS_PORT. Fails with the log if it cannot.
start_redis() {
  local dir=$1; shift
  mkdir -p "$dir"
  local port
  for port in $(seq 6390 6490); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then continue; fi
    rm -f "$dir/redis.pid"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" "$@" || true
    local i
    for i in $(seq 1 50); do
      if redis-cli -p "$port" ping >/dev/null 2>&1; then REDIS_PORT=$port; return 0; fi
      sleep 0.1
    done
    if grep -q "Address already in use" "$dir/redis.log" 2>/dev/null; then continue; fi
    echo "redis-server did not start:" >&2; cat "$dir/redis.log" >&2; return 1
  done
  echo "no free port in 6390-6490" >&2; return 1
}

# stop_redis DIR: stops the server started in DIR (by PID) and waits for it to exit.
stop_redis() {
  local dir=$1
  if [ -f "$dir/redis.pid" ]; then
    local pid; pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/redis.pid"
  fi
}

# registrations PORT: one "<id> <function>" line per Gears registration of the server on PORT.
registrations() {
  redis-cli -p "$1" RG.DUMPREGISTRATIONS |
    awk 'prev == "id" { id = $0 } prev == "PD" { print id, $0 } { prev = $0 }'
}
