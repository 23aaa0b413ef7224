#!/usr/bin/env bash
# Horizontal scaling of workers, on this machine with real processes: a
# function that sleeps 50 ms, workers with 4 slots each, a steady load of 32
# connections (wrk) through the gateway, with 1 and then 4 worker processes.
# The floor of each run is its ideal: slots / 50 ms (80 calls/s per worker).
# Target: 4 workers >= 3.2x the throughput of 1.
# Writes bench/results/scaling.{md,json}.
#
#   bench/scaling.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10}"
source scripts/services.sh
olin_apt_install wrk:wrk nats-server:nats-server python3:python3 wat2wasm:wabt

echo "==> building (release)"
cargo build --release --locked -p olin-gateway -p olin-worker >/dev/null
cargo build --release --locked -p olin-bench --bin deploy >/dev/null

tmp="$(mktemp -d)"
pids=()
workers=()
cleanup() {
  for p in "${workers[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${workers[@]}" "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

nats_port=14242 gw_port=18190
printf 'max_payload: 16777216\n' >"$tmp/nats.conf"
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/js" -c "$tmp/nats.conf" 2>"$tmp/nats.log" & pids+=($!)
nats="nats://127.0.0.1:$nats_port"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done

mkdir -p "$tmp/modules"
wat2wasm bench/nap50.wat -o "$tmp/nap50.wasm"
target/release/deploy "$nats" "$tmp/modules" nap "$tmp/nap50.wasm"
NATS_URL="$nats" GATEWAY_LISTEN="127.0.0.1:$gw_port" RUST_LOG=warn \
  target/release/olin-gateway 2>"$tmp/gateway.log" & pids+=($!)
url="http://127.0.0.1:$gw_port/f/nap/?x=1"

start_workers() { # n
  for i in $(seq "$1"); do
    NATS_URL="$nats" MODULE_STORE="file://$tmp/modules" WORKER_LISTEN=127.0.0.1:0 WORKER_CONCURRENCY=4 \
      WORKER_ID="bench-$i" RUST_LOG=warn target/release/olin-worker 2>>"$tmp/worker.log" & workers+=($!)
  done
  for _ in $(seq 100); do curl -fs -o /dev/null "$url" && break; sleep 0.1; done
  curl -fs -o /dev/null "$url" || { echo "nap is not answering at $url" >&2; cat "$tmp"/*.log >&2; exit 1; }
  sleep 1
}
stop_workers() {
  for p in "${workers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
  workers=()
}

mkdir -p "$tmp/wrk"
for n in 1 4; do
  echo "==> $n worker(s)"
  start_workers "$n"
  wrk -t2 -c32 -d2s "$url" >/dev/null   # warm-up
  wrk -t2 -c32 -d"${dur}s" --latency "$url" >"$tmp/wrk/$n.txt"
  grep -E "Requests/sec|Non-2xx|Socket errors" "$tmp/wrk/$n.txt" || true
  stop_workers
done

mkdir -p bench/results
python3 - "$tmp/wrk" "$dur" <<'PY'
import datetime, json, os, re, sys
wrk, dur = sys.argv[1], sys.argv[2]
def parse(n):
    text = open(f"{wrk}/{n}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", text)
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    return {
        "rps": rps,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in err.groups()) if err else 0,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else None,
    }
one, four = parse(1), parse(4)
ratio = round(four["rps"] / one["rps"], 2)
metrics = {
    "workers_1_rps": one["rps"], "workers_4_rps": four["rps"], "scaling_4_over_1": ratio,
    "workers_1_of_ideal": round(one["rps"] / 80, 2), "workers_4_of_ideal": round(four["rps"] / 320, 2),
    "workers_1_p50_ms": one["p50_ms"], "workers_4_p50_ms": four["p50_ms"],
    "failed_responses": one["non_2xx"] + four["non_2xx"] + one["socket_errors"] + four["socket_errors"],
}
json.dump(metrics, open("bench/results/scaling.json", "w"), indent=1)
with open("bench/results/scaling.md", "w") as f:
    f.write("# scaling: worker processes under steady load\n\n")
    f.write(f"- date: {datetime.date.today()}\n- machine: {os.cpu_count()} cores\n")
    f.write(f"- command: `bench/scaling.sh {dur}` (wrk -t2 -c32 -d{dur}s through olin-gateway; nats-server 2.9 file store)\n")
    f.write("- function: olin ABI guest sleeping 50 ms (`bench/nap50.wat`); each worker `WORKER_CONCURRENCY=4`\n")
    f.write("- ideal (floor of each run): slots / 50 ms = 80 calls/s per worker\n\n")
    f.write("| workers | calls/s | of ideal | p50 | failed |\n|---|---|---|---|---|\n")
    for n, m, ideal in ((1, one, 80), (4, four, 320)):
        f.write(f"| {n} | {m['rps']:.0f} | {m['rps']/ideal:.2f} | {m['p50_ms']:.1f} ms | {m['non_2xx'] + m['socket_errors']} |\n")
    f.write(f"\n4 workers / 1 worker: {ratio}; target >= 3.2: {'met' if ratio >= 3.2 else 'not met'}\n")
print(open("bench/results/scaling.md").read())
PY
