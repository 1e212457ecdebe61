#!/usr/bin/env bash
# The main job: installs what is missing, builds the examples in release mode and runs every
# registered example flow on an in-memory single server and a 3-shard cluster.
# (Runs inside redis-server once the gears-module issue lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo run --release -p gears-examples --bin gears-demo
