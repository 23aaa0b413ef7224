#!/usr/bin/env bash
# A three-node JetStream cluster with replicated (R3) streams against one
# NATS server, in one run on this machine: the gateway path (olin-gateway ->
# JetStream -> olin-worker -> Wasmer) with the olin `echo` guest at 16
# connections, each setup with its own gateway and worker, in interleaved
# rounds (medians reported). All nodes and services share the same cores.
# Writes bench/results/cluster.{md,json}.
#
#   bench/cluster.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-6}"
rounds="${2:-3}"
source scripts/services.sh
olin_apt_install wrk:wrk nats-server:nats-server python3:python3

echo "==> building (release)"
cargo build --release --locked -p olin-gateway -p olin-worker -p olin-bench --bins >/dev/null

tmp="$(mktemp -d)"
pids=()
cleanup() {
  # Services before NATS (last started, first stopped); anything still up after 10 s is killed.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# One server.
printf 'max_payload: 16777216\n' >"$tmp/single.conf"
nats-server -a 127.0.0.1 -p 14422 -js -sd "$tmp/single" -c "$tmp/single.conf" 2>"$tmp/single.log" & pids+=($!)
single=nats://127.0.0.1:14422

# Three servers routed to each other.
cluster=""
for i in 0 1 2; do
  routes=""
  for j in 0 1 2; do [ "$j" != "$i" ] && routes="$routes nats-route://127.0.0.1:1643$j"; done
  printf 'max_payload: 16777216\nserver_name: n%s\ncluster {\n  name: bench\n  listen: "127.0.0.1:1643%s"\n  routes: [%s]\n}\n' \
    "$i" "$i" "$(echo $routes | tr ' ' ',')" >"$tmp/n$i.conf"
  nats-server -a 127.0.0.1 -p "1443$i" -js -sd "$tmp/n$i" -c "$tmp/n$i.conf" 2>"$tmp/n$i.log" & pids+=($!)
  cluster="${cluster:+$cluster,}nats://127.0.0.1:1443$i"
done
wait_port 14422; wait_port 14430; wait_port 14431; wait_port 14432

mkdir -p "$tmp/modules"
target/release/deploy "$single" "$tmp/modules" echo examples/echo/echo.wasm
# The cluster elects its JetStream leader first: try until it takes the route.
for attempt in $(seq 60); do
  OLIN_JS_REPLICAS=3 target/release/deploy "$cluster" "$tmp/modules" echo examples/echo/echo.wasm 2>/dev/null && break
  [ "$attempt" = 60 ] && { echo "the cluster's JetStream never came up" >&2; exit 1; }
  sleep 0.5
done

start() { # name nats-url replicas gateway-port
  NATS_URL="$2" OLIN_JS_REPLICAS="$3" MODULE_STORE="file://$tmp/modules" WORKER_LISTEN=127.0.0.1:0 \
    WORKER_CONCURRENCY=8 RUST_LOG=warn target/release/olin-worker 2>"$tmp/$1-worker.log" & pids+=($!)
  NATS_URL="$2" OLIN_JS_REPLICAS="$3" GATEWAY_LISTEN="127.0.0.1:$4" GATEWAY_ADMIN_LISTEN=127.0.0.1:0 RUST_LOG=warn \
    target/release/olin-gateway 2>"$tmp/$1-gateway.log" & pids+=($!)
}
start single "$single" 1 18380
start r3 "$cluster" 3 18381
declare -A urls=([single]="http://127.0.0.1:18380/f/echo" [r3]="http://127.0.0.1:18381/f/echo")
order=(single r3)
for name in "${order[@]}"; do
  for _ in $(seq 100); do curl -fs -o /dev/null "${urls[$name]}" && break; sleep 0.2; done
  curl -fs -o /dev/null "${urls[$name]}" || { echo "$name is not answering" >&2; cat "$tmp/$name-gateway.log" >&2; exit 1; }
done

mkdir -p "$tmp/wrk"
for name in "${order[@]}"; do wrk -t2 -c16 -d2s "${urls[$name]}" >/dev/null; done   # warm-up
for r in $(seq "$rounds"); do
  for name in "${order[@]}"; do
    echo "==> round $r/$rounds: $name, 16 connections"
    wrk -t2 -c16 -d"${dur}s" --latency "${urls[$name]}" >"$tmp/wrk/$name.$r.txt"
  done
done

python3 - "$tmp/wrk" "$dur" "$rounds" <<'PY'
import datetime, json, os, platform, re, statistics, sys
d, dur, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)$", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
def run(name, r):
    t = open(os.path.join(d, f"{name}.{r}.txt")).read()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)),
            "p50": ms(re.search(r"\s50%\s+(\S+)", t).group(1)), "p99": ms(re.search(r"\s99%\s+(\S+)", t).group(1)),
            "non2xx": int(bad.group(1)) if bad else 0}
runs = {n: [run(n, r) for r in range(1, rounds + 1)] for n in ("single", "r3")}
out, rows = {}, []
for n, rs in runs.items():
    med = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p99")}
    out.update({f"{n}_c16_rps": round(med["rps"], 2), f"{n}_c16_p50_ms": med["p50"], f"{n}_c16_p99_ms": med["p99"],
                f"{n}_c16_non2xx": sum(x["non2xx"] for x in rs)})
    rows.append(f"| {n} | 16 | {med['rps']:.0f} ({min(x['rps'] for x in rs):.0f}-{max(x['rps'] for x in rs):.0f}) "
                f"| {med['p50']:.2f} | {med['p99']:.2f} | {out[f'{n}_c16_non2xx']} |")
ratios = [a["rps"] / b["rps"] for a, b in zip(runs["r3"], runs["single"])]
out.update({"r3_over_single_c16": statistics.median(ratios), "r3_over_single_c16_min": min(ratios),
            "r3_over_single_c16_max": max(ratios), "rounds": rounds, "seconds_per_run": float(dur)})
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
md = f"""# cluster: three replicated NATS nodes against one

- date: {datetime.date.today()}
- machine: {os.cpu_count()} cores, {cpu}
- command: `bench/cluster.sh {dur} {rounds}` (wrk, {dur} s per run, {rounds} interleaved rounds, loopback; every process on the same cores)
- single: one nats-server, streams R1; r3: three nats-servers routed to each other, every stream and bucket R3
  (`OLIN_JS_REPLICAS=3`), the services given all three URLs; each setup has its own olin-gateway and
  olin-worker (WORKER_CONCURRENCY=8), the olin `echo` guest
- figures are medians over the rounds (req/s range in brackets); the ratio is the median of per-round ratios

| setup | conns | req/s (range) | p50 ms | p99 ms | non-2xx |
|---|---|---|---|---|---|
{chr(10).join(rows)}

R3 over single at 16 connections: {out['r3_over_single_c16']:.2f} ({out['r3_over_single_c16_min']:.2f}-{out['r3_over_single_c16_max']:.2f})
"""
os.makedirs("bench/results", exist_ok=True)
open("bench/results/cluster.md", "w").write(md)
json.dump(out, open("bench/results/cluster.json", "w"), indent=2, sort_keys=True)
print(md)
PY
