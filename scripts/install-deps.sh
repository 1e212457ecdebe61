#!/usr/bin/env bash
# Installs the Debian 12 packages Gears needs, only those that are missing.
# Safe to run repeatedly; used by the README's commands and by .ci/run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  redis-server redis-tools
  unixodbc unixodbc-dev odbcinst odbc-mariadb libsqliteodbc odbc-postgresql
  mariadb-server mariadb-client postgresql sqlite3
  libclang-dev build-essential pkg-config
  procps  # kill, pkill: the test kit signals the servers it started by PID
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all system packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
for pair in fmt:rustfmt clippy:clippy; do
  if ! cargo "${pair%%:*}" --version >/dev/null 2>&1; then
    echo "install-deps: cargo ${pair%%:*} is missing: run 'rustup component add ${pair##*:}'" >&2
    exit 1
  fi
done
