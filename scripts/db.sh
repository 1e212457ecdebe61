#!/usr/bin/env bash
# Databases for the rgsync tests and demo: installs the ODBC drivers, MariaDB and PostgreSQL
# if missing, starts MariaDB (127.0.0.1:3306) and PostgreSQL (127.0.0.1:5432) as root without
# systemd -- reusing a server only if it already answers -- and creates the database `test`
# with the user `test` (password `test`) on both. Safe to run repeatedly.
#
#   scripts/db.sh            # install + start + create test db/user
#   scripts/db.sh status     # prints which servers answer
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(unixodbc unixodbc-dev odbcinst libsqliteodbc odbc-mariadb odbc-postgresql
  sqlite3 mariadb-server mariadb-client postgresql)
LOGDIR=${RGSYNC_DB_LOGDIR:-/tmp/rgsync-db}
mkdir -p "$LOGDIR"

mariadb_up() { mariadb-admin ping >/dev/null 2>&1; }
pg_up() { PGPASSWORD=test psql -h 127.0.0.1 -U test -d test -tAc 'select 1' >/dev/null 2>&1; }
pg_server_up() { pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }

if [ "${1:-}" = "status" ]; then
  mariadb_up && echo "mariadb: up" || echo "mariadb: down"
  pg_server_up && echo "postgresql: up" || echo "postgresql: down"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "db: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- MariaDB -----------------------------------------------------------------------------
if mariadb_up; then
  echo "db: mariadb already answers; reusing it"
else
  echo "db: starting mariadb"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  setsid /usr/bin/mysqld_safe --bind-address=127.0.0.1 >"$LOGDIR/mysqld_safe.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
  mariadb_up || { echo "db: mariadb did not start; see $LOGDIR/mysqld_safe.log and /var/log/mysql" >&2; exit 1; }
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS test;
  CREATE USER IF NOT EXISTS 'test'@'localhost' IDENTIFIED BY 'test';
  CREATE USER IF NOT EXISTS 'test'@'127.0.0.1' IDENTIFIED BY 'test';
  GRANT ALL ON test.* TO 'test'@'localhost'; GRANT ALL ON test.* TO 'test'@'127.0.0.1';
  FLUSH PRIVILEGES;"

# --- PostgreSQL --------------------------------------------------------------------------
if pg_server_up; then
  echo "db: postgresql already answers; reusing it"
else
  echo "db: starting postgresql"
  ver=$(pg_lsclusters -h | awk 'NR==1{print $1}')
  name=$(pg_lsclusters -h | awk 'NR==1{print $2}')
  [ -n "$ver" ] || { echo "db: no postgresql cluster (pg_lsclusters is empty)" >&2; exit 1; }
  pg_ctlcluster "$ver" "$name" start
  for _ in $(seq 1 60); do pg_server_up && break; sleep 0.5; done
  pg_server_up || { echo "db: postgresql did not start" >&2; exit 1; }
fi
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='test'\"" | grep -q 1 ||
  su postgres -c "psql -q -c \"CREATE USER test PASSWORD 'test';\""
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 ||
  su postgres -c "psql -q -c 'CREATE DATABASE test OWNER test;'"
pg_up || { echo "db: postgresql answers but user test cannot log in" >&2; exit 1; }
echo "db: mariadb and postgresql ready (database test, user test/test, 127.0.0.1)"
