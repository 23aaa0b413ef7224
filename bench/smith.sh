#!/usr/bin/env bash
# The generated-module robustness run at scale (see bench/src/smith.rs):
# wasm-smith modules within the allowed feature set through the real runtime.
# Target: zero panics, zero hangs, zero modules that validate but do not
# compile, resident memory bounded. Writes bench/results/smith.{md,json}.
#
#   bench/smith.sh [modules] [seed]      (default 100000 modules, seed 1)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-100000}"
seed="${2:-1}"
echo "==> building (release)"
cargo build --release --locked -p olin-bench --bin smith >/dev/null
echo "==> $count modules, seed $seed"
RUST_LOG=warn target/release/smith "$count" "$seed"
