#!/usr/bin/env bash
# The whole test suite: installs what is missing, then format check, clippy with warnings as
# errors, and every test of the workspace (unit, integration, compile-fail, doctests).
set -euo pipefail
cd "$(dirname "$0")/.."
# No incremental caches: a clean CI checkout gains nothing from them and they double target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
bash scripts/install-deps.sh
echo "== databases for the rgsync tests (MariaDB, PostgreSQL on 127.0.0.1)"
bash scripts/db.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build (the example modules the integration tests load into redis-server)"
cargo build --workspace
echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
echo "== disk used by target/: $(du -sh target 2>/dev/null | cut -f1)"
