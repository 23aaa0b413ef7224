#!/usr/bin/env bash
# The gateway benchmark, all in one run on this machine (wrk on loopback):
#   - gateway path: wrk -> olin-gateway -> core NATS (GATEWAY_SYNC_PATH=direct)
#     -> olin-worker -> Wasmer, for the olin `echo` guest and the C
#     `hello` WASI guest; and the same through a second gateway that queues
#     every call (GATEWAY_SYNC_PATH=queue: JetStream);
#   - in-process floor: the same sandbox code behind a plain HTTP server, no NATS;
#   - JetStream floor: publish -> pull -> reply -> ack, no wasm;
#   - direct floor: core NATS to a queue-group subscriber and back, no wasm;
#   - classic CGI peer: the same hello.c compiled natively, under lighttpd mod_cgi.
# at 1, 16 and 64 connections, in interleaved rounds (medians reported: these
# machines are noisy, single runs of the same setup differ by 10%).
# Writes bench/results/gateway.{md,json}.
#
#   bench/gateway.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-8}"
rounds="${2:-3}"
source scripts/services.sh
olin_apt_install wrk:wrk lighttpd:lighttpd gcc:gcc python3:python3
# The nats-server release the manifests deploy (as the tests use).
olin_test_nats_server
export OLIN_BENCH_NATS="$(nats-server --version)"

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

nats_port=14222 gw_port=18180 floor_port=18181 js_port=18182 cgi_port=18183 queue_gw_port=18184 direct_port=18185 nats_mon_port=18186
printf 'max_payload: 16777216\n' >"$tmp/nats.conf"
nats-server -a 127.0.0.1 -p "$nats_port" -m "$nats_mon_port" -js -sd "$tmp/js" -c "$tmp/nats.conf" 2>"$tmp/nats.log" & pids+=($!)
nats="nats://127.0.0.1:$nats_port"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done

mkdir -p "$tmp/modules"
target/release/deploy "$nats" "$tmp/modules" echo examples/echo/echo.wasm
target/release/deploy "$nats" "$tmp/modules" hello examples/hello/hello.wasm

# 8 slots (4 per core): the guests are short, so slots mostly wait on the queue's round trips;
# 16 slots measured about 4% fewer gateway req/s on 2 cores (more threads to schedule), see README.md.
NATS_URL="$nats" MODULE_STORE="file://$tmp/modules" WORKER_LISTEN=127.0.0.1:0 WORKER_CONCURRENCY=8 RUST_LOG=warn \
  target/release/olin-worker 2>"$tmp/worker.log" & pids+=($!)
NATS_URL="$nats" GATEWAY_LISTEN="127.0.0.1:$gw_port" GATEWAY_ADMIN_LISTEN=127.0.0.1:0 GATEWAY_SYNC_PATH=direct RUST_LOG=warn \
  target/release/olin-gateway 2>"$tmp/gateway.log" & pids+=($!)
NATS_URL="$nats" GATEWAY_LISTEN="127.0.0.1:$queue_gw_port" GATEWAY_ADMIN_LISTEN=127.0.0.1:0 GATEWAY_SYNC_PATH=queue \
  RUST_LOG=warn target/release/olin-gateway 2>"$tmp/gateway-queue.log" & pids+=($!)
target/release/floor inprocess "127.0.0.1:$floor_port" >/dev/null & pids+=($!)
target/release/floor jetstream "127.0.0.1:$js_port" "$nats" >/dev/null & pids+=($!)
target/release/floor direct "127.0.0.1:$direct_port" "$nats" >/dev/null & pids+=($!)

mkdir -p "$tmp/www"
gcc -O2 -o "$tmp/www/hello.cgi" examples/hello/hello.c
cat >"$tmp/lighttpd.conf" <<CONF
server.document-root = "$tmp/www"
server.bind = "127.0.0.1"
server.port = $cgi_port
server.modules = ("mod_cgi")
cgi.assign = (".cgi" => "")
server.errorlog = "$tmp/lighttpd.err"
CONF
lighttpd -D -f "$tmp/lighttpd.conf" & pids+=($!)

declare -A urls=(
  [gateway_echo]="http://127.0.0.1:$gw_port/f/echo"
  [gateway_hello]="http://127.0.0.1:$gw_port/f/hello/world?x=1"
  [queued_echo]="http://127.0.0.1:$queue_gw_port/f/echo"
  [queued_hello]="http://127.0.0.1:$queue_gw_port/f/hello/world?x=1"
  [floor_echo]="http://127.0.0.1:$floor_port/f/echo"
  [floor_hello]="http://127.0.0.1:$floor_port/f/hello"
  [jetstream_floor]="http://127.0.0.1:$js_port/"
  [direct_floor]="http://127.0.0.1:$direct_port/"
  [lighttpd_hello]="http://127.0.0.1:$cgi_port/hello.cgi/world?x=1"
)
order=(gateway_echo gateway_hello queued_echo queued_hello floor_echo floor_hello jetstream_floor direct_floor lighttpd_hello)
for name in "${order[@]}"; do
  for _ in $(seq 100); do curl -fs -o /dev/null "${urls[$name]}" && break; sleep 0.1; done
  curl -fs -o /dev/null "${urls[$name]}" || { echo "$name is not answering at ${urls[$name]}" >&2; exit 1; }
done

# What every process the benchmark started (wrk excluded) has spent: a
# "cpu command ticks" line per process, its CPU time in clock ticks (user +
# system, with reaped children: lighttpd's CGI processes), a "switches tid N"
# line per thread (context switches), and "nats-messages N", the messages
# nats-server has taken in and sent out.
usage_now() {
  local p f t
  for p in "${pids[@]}"; do
    # Fields after the command name (which may hold spaces): 12-15 of the rest are utime stime cutime cstime.
    f="$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null)" || continue
    read -r -a f <<<"$f"
    echo "cpu $(cat "/proc/$p/comm") $((f[11] + f[12] + f[13] + f[14]))"
    # Per thread, so that a thread that ends between two readings drops out
    # instead of taking its switches with it.
    for t in /proc/"$p"/task/*; do
      awk -v t="${t##*/}" '/ctxt_switches/ { n += $2 } END { print "switches", t, n + 0 }' "$t/status" 2>/dev/null || true
    done
  done
  curl -fs "http://127.0.0.1:$nats_mon_port/varz" | python3 -c \
    'import json, sys; v = json.load(sys.stdin); print("nats-messages", v["in_msgs"] + v["out_msgs"])'
}
export OLIN_BENCH_CLK_TCK="$(getconf CLK_TCK)"

mkdir -p "$tmp/wrk"
for name in "${order[@]}"; do wrk -t2 -c16 -d2s "${urls[$name]}" >/dev/null; done   # warm-up
# Interleaved rounds: every target at one connection count runs back to back,
# so a round's ratios compare runs seconds apart; the report takes medians.
for r in $(seq "$rounds"); do
  for c in 1 16 64; do
    t=2; [ "$c" = 1 ] && t=1
    for name in "${order[@]}"; do
      echo "==> round $r/$rounds: $name, $c connection(s)"
      usage_now >"$tmp/wrk/$name.$c.$r.use0"
      wrk -t"$t" -c"$c" -d"${dur}s" --latency "${urls[$name]}" >"$tmp/wrk/$name.$c.$r.txt"
      usage_now >"$tmp/wrk/$name.$c.$r.use1"
    done
  done
done

python3 bench/wrk_report.py "$tmp/wrk" "$dur" "$rounds"
