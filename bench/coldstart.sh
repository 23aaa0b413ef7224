#!/usr/bin/env bash
# Cold starts, with real processes (nats-server, olin-control on SQLite,
# olin-gateway, olin-worker; the local-directory module store) and the C
# `hello` guest, made a new module each round (a custom section with a
# nonce: a new sha256, so nothing is cached anywhere):
#   1. deploy -> first answer: from `olinctl deploy` returning to the first
#      200 from the gateway (the deploy's prewarm has the worker fetch and
#      compile the module before its first call);
#   2. a new worker's first call: a module deployed while worker A ran (A
#      compiled it and shared the artifact through the module store), then a
#      worker B started and A stopped, so B serves the first call of that
#      module; beside it, the same with sharing off (B compiles).
# Floors, in the same run: the warm p50 of the same call (a new connection
# per call, as above) and the network round trip (the gateway's /healthz).
# Target: each cold figure at most 3x (warm p50 + round trip).
# Writes bench/results/coldstart.{md,json}.
#
#   bench/coldstart.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-10}"
source scripts/services.sh
olin_apt_install nats-server:nats-server python3:python3

echo "==> building (release)"
cargo build --release --locked -p olin-gateway -p olin-worker -p olin-control -p olin-cli >/dev/null

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
nats_port=$(port) gw_port=$(port) gw_admin=$(port) control_port=$(port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/js" 2>"$tmp/nats.log" & pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
export NATS_URL="nats://127.0.0.1:$nats_port" MODULE_STORE="file://$tmp/modules" RUST_LOG=warn
mkdir -p "$tmp/modules"

CONTROL_LISTEN="127.0.0.1:$control_port" CONTROL_ADMIN_LISTEN=127.0.0.1:0 \
  DATABASE_URL="sqlite://$tmp/control.db?mode=rwc" CONTROL_JWT_SECRET="$(head -c 32 /dev/urandom | base64)" \
  CONTROL_BOOTSTRAP_ADMIN="admin:coldstart-admin-password" CONTROL_GATEWAY_URL="http://127.0.0.1:$gw_port" \
  target/release/olin-control 2>"$tmp/control.log" & pids+=($!)
GATEWAY_LISTEN="127.0.0.1:$gw_port" GATEWAY_ADMIN_LISTEN="127.0.0.1:$gw_admin" \
  target/release/olin-gateway 2>"$tmp/gateway.log" & pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$control_port/v1/openapi.json" && break; sleep 0.1; done

export OLIN_CONFIG="$tmp/olinctl.json" OLIN_URL="http://127.0.0.1:$control_port"
echo coldstart-admin-password | target/release/olinctl login -u admin --password-stdin

# The driver starts and stops the workers itself (WORKER_* below).
export OLIN_COLDSTART_CACHE_KEY="$(head -c 32 /dev/urandom | base64)"
mkdir -p bench/results
python3 - "$rounds" "$tmp" "$gw_port" "$gw_admin" <<'PY'
import datetime, http.client, json, os, random, signal, statistics, subprocess, sys, time

rounds, tmp, gw_port, gw_admin = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
HELLO = open("examples/hello/hello.wasm", "rb").read()


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fresh_module(tag):
    """hello.wasm with a custom section holding a nonce: a new sha256."""
    name = b"olincloud-coldstart"
    payload = leb(len(name)) + name + os.urandom(16) + tag.encode()
    path = f"{tmp}/{tag}.wasm"
    open(path, "wb").write(HELLO + b"\x00" + leb(len(payload)) + payload)
    return path


def get(port, path):
    """One GET on a new connection; (status, seconds)."""
    t = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.perf_counter() - t


def first_200(path, timeout=30):
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        status, _ = get(gw_port, path)
        if status == 200:
            return time.perf_counter() - start
        time.sleep(0.001)
    raise SystemExit(f"{path} never answered 200")


def olinctl(*args):
    subprocess.run(["target/release/olinctl", *args], check=True, stdout=subprocess.DEVNULL)


workers = []


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def worker(name, shared):
    """Starts a worker process; returns once it is ready (its /readyz)."""
    port = free_port()
    env = dict(os.environ, WORKER_ID=name, WORKER_LISTEN=f"127.0.0.1:{port}", WORKER_CONCURRENCY="2",
               WORKER_CACHE_KEY=os.environ["OLIN_COLDSTART_CACHE_KEY"],
               WORKER_SHARED_ARTIFACTS="true" if shared else "false")
    log = open(f"{tmp}/worker-{name}.log", "ab")
    p = subprocess.Popen(["target/release/olin-worker"], env=env, stdout=log, stderr=log)
    workers.append(p)
    for _ in range(300):
        try:
            if get(port, "/readyz")[0] == 200:
                return p
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"worker {name} never became ready")


def stop(p):
    p.terminate()
    p.wait(timeout=30)


ms = lambda s: round(s * 1000, 2)
a = worker("a", True)

# Floors: the warm call and the round trip.
olinctl("deploy", "warm", fresh_module("warm"))
first_200("/f/warm/")
for _ in range(50):
    get(gw_port, "/f/warm/")
warm = statistics.median(get(gw_port, "/f/warm/")[1] for _ in range(300))
rtt = statistics.median(get(gw_admin, "/healthz")[1] for _ in range(300))
floor = warm + rtt
print(f"warm p50 {ms(warm)} ms, round trip p50 {ms(rtt)} ms")

# 1. deploy -> first answer, a new module each round.
deploy_first = []
for i in range(rounds):
    path = fresh_module(f"d{i}")
    olinctl("deploy", f"cold-{i}", path)
    deploy_first.append(first_200(f"/f/cold-{i}/"))
print("deploy -> first answer (ms):", [ms(x) for x in deploy_first])

# 2. a new worker's first call of a module deployed before it started.
def new_worker_first(shared, i):
    global a
    fn = f"{'s' if shared else 'c'}-{i}"
    olinctl("deploy", fn, fresh_module(fn))
    # A serves a call first: it has compiled (and, shared, stored) the artifact.
    first_200(f"/f/{fn}/")
    b = worker(f"b{fn}", shared)
    stop(a)
    status, took = get(gw_port, f"/f/{fn}/")
    assert status == 200, status
    a = b
    return took

shared = [new_worker_first(True, i) for i in range(rounds)]
compiled = [new_worker_first(False, i) for i in range(rounds)]
print("new worker, shared artifact (ms):", [ms(x) for x in shared])
print("new worker, compiling (ms):", [ms(x) for x in compiled])

med = statistics.median
metrics = {
    "warm_p50_ms": ms(warm),
    "round_trip_p50_ms": ms(rtt),
    "deploy_to_first_answer_p50_ms": ms(med(deploy_first)),
    "deploy_to_first_answer_max_ms": ms(max(deploy_first)),
    "new_worker_first_call_p50_ms": ms(med(shared)),
    "new_worker_first_call_max_ms": ms(max(shared)),
    "new_worker_compiling_first_call_p50_ms": ms(med(compiled)),
    "deploy_to_first_answer_over_floor": round(med(deploy_first) / floor, 2),
    "new_worker_first_call_over_floor": round(med(shared) / floor, 2),
    "new_worker_compiling_over_floor": round(med(compiled) / floor, 2),
}
json.dump(metrics, open("bench/results/coldstart.json", "w"), indent=1)
verdict = lambda r: "met" if r <= 3 else "not met"
with open("bench/results/coldstart.md", "w") as f:
    f.write("# coldstart: deploys and new workers, against the warm call\n\n")
    f.write(f"- date: {datetime.date.today()}\n- machine: {os.cpu_count()} cores\n")
    f.write(f"- command: `bench/coldstart.sh {rounds}` (release builds; nats-server, olin-control on SQLite, olin-gateway, olin-worker as processes on loopback; the local-directory module store)\n")
    f.write("- guest: the C `hello` (examples/hello), made a new module each round (a custom section with a nonce)\n")
    f.write("- floor: warm p50 (300 calls, a new connection each) + round trip p50 (the gateway's /healthz, 300 calls)\n\n")
    f.write("| figure | p50 | max | over floor | target <= 3x |\n|---|---|---|---|---|\n")
    f.write(f"| warm call | {ms(warm)} ms | | | |\n| round trip | {ms(rtt)} ms | | | |\n")
    for name, xs, key in (
        ("deploy returned -> first answer", deploy_first, "deploy_to_first_answer_over_floor"),
        ("first call on a new worker (shared artifact)", shared, "new_worker_first_call_over_floor"),
        ("first call on a new worker (sharing off: compiles)", compiled, "new_worker_compiling_over_floor"),
    ):
        r = metrics[key]
        target = verdict(r) if "compiles" not in name else "(context)"
        f.write(f"| {name} | {ms(med(xs))} ms | {ms(max(xs))} ms | {r} | {target} |\n")
print(open("bench/results/coldstart.md").read())
for p in workers:
    if p.poll() is None:
        p.kill()
PY
