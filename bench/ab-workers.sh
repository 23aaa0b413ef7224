#!/usr/bin/env bash
# A/B of two olin-worker binaries behind one gateway, in one run: the
# gateway path with the olin `echo` guest at 16 connections (req/s) and at
# one (p50), each worker in turn, for a few rounds. For questions like "what
# did this worker change cost", where machines differ too much between runs.
#
#   bench/ab-workers.sh <worker-a> <worker-b> [rounds]
# Build both first (e.g. `cargo build --release -p olin-worker` at each
# commit, copying target/release/olin-worker aside); needs the release
# gateway and `deploy` (bench/gateway.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
a="$1" b="$2" rounds="${3:-3}"
tmp="$(mktemp -d)"; pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$tmp"; }
trap cleanup EXIT
printf 'max_payload: 16777216\n' >"$tmp/nats.conf"
nats-server -a 127.0.0.1 -p 14322 -js -sd "$tmp/js" -c "$tmp/nats.conf" 2>/dev/null & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/14322) 2>/dev/null && break; sleep 0.1; done
nats=nats://127.0.0.1:14322
mkdir -p "$tmp/modules"
target/release/deploy "$nats" "$tmp/modules" echo examples/echo/echo.wasm >/dev/null
NATS_URL="$nats" GATEWAY_LISTEN=127.0.0.1:18280 RUST_LOG=warn target/release/olin-gateway 2>/dev/null & pids+=($!)
url=http://127.0.0.1:18280/f/echo
for r in $(seq "$rounds"); do
  for w in "$a" "$b"; do
    NATS_URL="$nats" MODULE_STORE="file://$tmp/modules" WORKER_LISTEN=127.0.0.1:0 WORKER_CONCURRENCY=8 \
      RUST_LOG=warn "$w" 2>/dev/null & pid=$!
    for _ in $(seq 50); do curl -fs -o /dev/null "$url" && break; sleep 0.2; done
    wrk -t2 -c16 -d2s "$url" >/dev/null
    rps=$(wrk -t2 -c16 -d6s "$url" | awk '/Requests\/sec/{print $2}')
    p50=$(wrk -t1 -c1 -d4s --latency "$url" | awk '/ 50%/{print $2}')
    echo "round $r $w: c16 $rps req/s, c1 p50 $p50"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
