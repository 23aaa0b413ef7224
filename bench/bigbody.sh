#!/usr/bin/env bash
# 1 MiB bodies through the platform (#23 benchmark 4): wrk POSTs 1 MiB to
# the olin `echo` guest, which answers it back, at 16 connections, through
# olin-gateway -> core NATS (GATEWAY_SYNC_PATH=direct) -> olin-worker, and
# to the in-process floor (the same sandbox behind a plain HTTP server), in
# interleaved rounds. MiB/s counts the body each way.
# Target: gateway >= 0.5 of the floor's MiB/s.
# Writes bench/results/bigbody.{md,json}.
#
#   bench/bigbody.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-5}"
rounds="${2:-3}"
source scripts/services.sh
olin_apt_install wrk:wrk python3:python3
olin_test_nats_server

echo "==> building (release)"
cargo build --release --locked -p olin-gateway -p olin-worker -p olin-bench --bins >/dev/null

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
nats_port=$(port) gw_port=$(port) floor_port=$(port)
printf 'max_payload: 16777216\n' >"$tmp/nats.conf"
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/js" -c "$tmp/nats.conf" 2>"$tmp/nats.log" & pids+=($!)
nats="nats://127.0.0.1:$nats_port"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
mkdir -p "$tmp/modules"
target/release/deploy "$nats" "$tmp/modules" echo examples/echo/echo.wasm
NATS_URL="$nats" MODULE_STORE="file://$tmp/modules" WORKER_LISTEN=127.0.0.1:0 WORKER_CONCURRENCY=8 RUST_LOG=warn \
  target/release/olin-worker 2>"$tmp/worker.log" & pids+=($!)
NATS_URL="$nats" GATEWAY_LISTEN="127.0.0.1:$gw_port" GATEWAY_ADMIN_LISTEN=127.0.0.1:0 GATEWAY_SYNC_PATH=direct RUST_LOG=warn \
  target/release/olin-gateway 2>"$tmp/gateway.log" & pids+=($!)
target/release/floor inprocess "127.0.0.1:$floor_port" >/dev/null & pids+=($!)

cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
declare -A urls=([gateway]="http://127.0.0.1:$gw_port/f/echo" [floor]="http://127.0.0.1:$floor_port/f/echo")
for name in gateway floor; do
  for _ in $(seq 100); do curl -fs -o /dev/null -d x "${urls[$name]}" && break; sleep 0.1; done
  # The whole MiB comes back.
  got=$(head -c 1048576 /dev/zero | tr '\0' x | curl -fs --data-binary @- "${urls[$name]}" | wc -c)
  [ "$got" = 1048576 ] || { echo "$name answered $got bytes, not 1048576" >&2; cat "$tmp"/*.log >&2; exit 1; }
done

mkdir -p "$tmp/wrk"
for name in gateway floor; do wrk -t2 -c16 -d2s -s "$tmp/post.lua" "${urls[$name]}" >/dev/null; done
for r in $(seq "$rounds"); do
  for name in gateway floor; do
    echo "==> round $r/$rounds: $name"
    wrk -t2 -c16 -d"${dur}s" --latency -s "$tmp/post.lua" "${urls[$name]}" >"$tmp/wrk/$name.$r.txt"
  done
done

mkdir -p bench/results
python3 - "$tmp/wrk" "$dur" "$rounds" <<'PY'
import datetime, json, os, re, statistics, sys
wrk, dur, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rps(name, r):
    text = open(f"{wrk}/{name}.{r}.txt").read()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad and int(bad.group(1)):
        raise SystemExit(f"{name} round {r}: {bad.group(1)} failed responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
g = [rps("gateway", r) for r in range(1, rounds + 1)]
f = [rps("floor", r) for r in range(1, rounds + 1)]
ratios = [a / b for a, b in zip(g, f)]
mib = lambda x: round(2 * x, 1)  # 1 MiB in and 1 MiB out per call
metrics = {
    "gateway_mib_per_s": mib(statistics.median(g)),
    "floor_mib_per_s": mib(statistics.median(f)),
    "gateway_over_floor": round(statistics.median(ratios), 2),
}
json.dump(metrics, open("bench/results/bigbody.json", "w"), indent=1)
r = metrics["gateway_over_floor"]
with open("bench/results/bigbody.md", "w") as out:
    out.write("# bigbody: 1 MiB echo through the gateway against the in-process floor\n\n")
    out.write(f"- date: {datetime.date.today()}\n- machine: {os.cpu_count()} cores\n")
    out.write(f"- command: `bench/bigbody.sh {dur} {rounds}` (wrk -t2 -c16, POST 1 MiB to the olin `echo` guest, {rounds} interleaved rounds; release builds; loopback)\n")
    out.write("- MiB/s counts the body in and out (2 MiB per call); medians over rounds\n\n")
    out.write("| target | calls/s (rounds) | MiB/s |\n|---|---|---|\n")
    out.write(f"| gateway (direct path) | {', '.join(f'{x:.0f}' for x in g)} | {metrics['gateway_mib_per_s']} |\n")
    out.write(f"| in-process floor | {', '.join(f'{x:.0f}' for x in f)} | {metrics['floor_mib_per_s']} |\n")
    out.write(f"\ngateway / floor: {r} ({min(ratios):.2f}-{max(ratios):.2f}); target >= 0.5: {'met' if r >= 0.5 else 'not met'}\n")
print(open("bench/results/bigbody.md").read())
PY
