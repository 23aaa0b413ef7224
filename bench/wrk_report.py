#!/usr/bin/env python3
"""Turns the wrk outputs of bench/gateway.sh into bench/results/gateway.{md,json}.

Usage: bench/wrk_report.py <dir of NAME.CONNS.ROUND.txt> <seconds per run> <rounds>

Each (target, connections) pair ran once per round, every target of one
connection count back to back. Reported: the median over rounds of req/s,
p50 and p99; a ratio is the median of the per-round ratios (runs seconds
apart, so slow drift of the machine cancels), with its range.
"""
import datetime, json, os, re, statistics, sys

d, dur, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
CLK_TCK = int(os.environ.get("OLIN_BENCH_CLK_TCK", "100"))


def ms(v):
    m = re.match(r"([\d.]+)(ns|us|ms|s|m)$", v)
    if not m:
        raise SystemExit(f"unparsable wrk latency {v!r}")
    n, u = m.groups()
    return float(n) * {"ns": 1e-6, "us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[u]


def run(name, c, r):
    path = os.path.join(d, f"{name}.{c}.{r}.txt")
    text = open(path).read()
    if "Requests/sec" not in text:
        raise SystemExit(f"wrk failed for {name} at {c} connections, round {r}:\n{text}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    calls = int(re.search(r"(\d+) requests in", text).group(1))
    # What every started process but wrk spent during the run (bench/gateway.sh
    # usage_now: "command ticks switches" lines and "nats-messages N", before and after).
    ticks, messages, switches = {}, 0, ({}, {})
    for i, (suffix, sign) in enumerate((("use0", -1), ("use1", 1))):
        for l in open(os.path.join(d, f"{name}.{c}.{r}.{suffix}")):
            kind, rest = l.split(None, 1)
            if kind == "nats-messages":
                messages += sign * int(rest)
            elif kind == "switches":
                tid, n = rest.split()
                switches[i][tid] = int(n)
            else:
                comm, t = rest.rsplit(None, 1)
                ticks[comm] = ticks.get(comm, 0) + sign * int(t)
    # Threads alive at both readings (one that ended took its count along).
    switched = sum(n - switches[0][tid] for tid, n in switches[1].items() if tid in switches[0])
    per_call = {comm: t * 1e6 / CLK_TCK / max(calls, 1) for comm, t in ticks.items()}
    return {
        "cpu_us": sum(per_call.values()),
        "switches": switched / max(calls, 1),
        "messages": messages / max(calls, 1),
        "cpu_by": per_call,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1)),
        "p99": ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1)),
        "errs": int(errors.group(1)) if errors else 0,
    }


order = ["gateway_echo", "gateway_hello", "queued_echo", "queued_hello", "floor_echo", "floor_hello",
         "jetstream_floor", "direct_floor", "lighttpd_hello"]
runs = {(n, c): [run(n, c, r) for r in range(1, rounds + 1)] for n in order for c in (1, 16, 64)}
rows, metrics = [], {"rounds": rounds, "seconds_per_run": float(dur)}
for (name, c), rs in runs.items():
    med = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p99", "cpu_us", "switches", "messages")}
    errs = sum(x["errs"] for x in rs)
    lo, hi = min(x["rps"] for x in rs), max(x["rps"] for x in rs)
    rows.append((name, c, med["rps"], lo, hi, med["p50"], med["p99"], med["cpu_us"], med["switches"], med["messages"],
                 errs))
    metrics[f"{name}_c{c}_cpu_us_per_call"] = med["cpu_us"]
    metrics[f"{name}_c{c}_context_switches_per_call"] = med["switches"]
    metrics[f"{name}_c{c}_nats_messages_per_call"] = med["messages"]
    metrics[f"{name}_c{c}_rps"] = med["rps"]
    metrics[f"{name}_c{c}_p50_ms"] = med["p50"]
    metrics[f"{name}_c{c}_p99_ms"] = med["p99"]
    metrics[f"{name}_c{c}_non2xx"] = errs


def ratio(key, a, b, c=16, field="rps"):
    per_round = [x[field] / y[field] for x, y in zip(runs[(a, c)], runs[(b, c)]) if y[field]]
    metrics[key] = statistics.median(per_round)
    metrics[key + "_min"], metrics[key + "_max"] = min(per_round), max(per_round)
    return metrics[key]


ratio("gateway_echo_over_floor_c16", "gateway_echo", "floor_echo")
ratio("gateway_hello_over_floor_c16", "gateway_hello", "floor_hello")
ratio("queued_echo_over_floor_c16", "queued_echo", "floor_echo")
ratio("queued_hello_over_floor_c16", "queued_hello", "floor_hello")
ratio("gateway_echo_over_queued_echo_c16", "gateway_echo", "queued_echo")
ratio("direct_floor_over_jetstream_floor_c16", "direct_floor", "jetstream_floor")
ratio("gateway_hello_over_lighttpd_c16", "gateway_hello", "lighttpd_hello")
# Where the CPU goes, per process, at 16 connections (medians over rounds).
cpu_split = {}
for name in order:
    rs = runs[(name, 16)]
    comms = sorted({k for x in rs for k in x["cpu_by"]})
    split = {k: statistics.median(x["cpu_by"].get(k, 0.0) for x in rs) for k in comms}
    cpu_split[name] = {k: v for k, v in split.items() if v >= 1.0}
    for k, v in cpu_split[name].items():
        metrics[f"{name}_c16_cpu_us_per_call_{k.replace('-', '_')}"] = v
ratio("gateway_echo_cpu_over_floor_c16", "gateway_echo", "floor_echo", field="cpu_us")
ratio("gateway_hello_cpu_over_floor_c16", "gateway_hello", "floor_hello", field="cpu_us")


ratio("direct_floor_over_jetstream_floor_p50_c1", "direct_floor", "jetstream_floor", c=1, field="p50")
# Through the platform at one connection: at most the in-process floor's p50
# plus the direct path's bare round trip, plus 10% (per round).
for guest in ("echo", "hello"):
    budget = [1.1 * (f["p50"] + d["p50"]) for f, d in zip(runs[(f"floor_{guest}", 1)], runs[("direct_floor", 1)])]
    got = [x["p50"] for x in runs[(f"gateway_{guest}", 1)]]
    metrics[f"gateway_{guest}_p50_c1_over_budget"] = statistics.median(g / b for g, b in zip(got, budget))

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nats = os.environ.get("OLIN_BENCH_NATS", "nats-server")
md = ["# gateway: the direct path and the queue against their floors", "",
      f"- date: {datetime.date.today()}", f"- machine: {os.cpu_count()} cores, {cpu}",
      f"- command: `bench/gateway.sh {dur} {rounds}` (wrk, {dur} s per run, {rounds} interleaved rounds, loopback; "
      "every process on the same 2 cores)",
      f"- gateway path: olin-gateway -> core NATS ({nats}; GATEWAY_SYNC_PATH=direct) -> olin-worker "
      "(WORKER_CONCURRENCY=8) -> Wasmer; queued: a second gateway with GATEWAY_SYNC_PATH=queue (JetStream, file "
      "storage) to the same worker; separate processes",
      "- in-process floor: the same sandbox behind a plain HTTP server; JetStream floor: publish, pull, reply, ack, "
      "no wasm; direct floor: core NATS to a queue-group subscriber and back, no wasm;",
      "  lighttpd: the same hello.c compiled natively, fork/exec per request (mod_cgi)",
      "- each figure is the median over the rounds (req/s range in brackets); a ratio is the median of the",
      "  per-round ratios, whose two runs were seconds apart",
      "- CPU µs/call: user + system time of every process the run started (gateways, worker, nats-server, floors,",
      "  lighttpd and its CGI children; wrk excluded), over the run's calls; idle services add a little to each;",
      "  switches/call: context switches of those processes' threads (alive through the run); msgs/call: messages nats-server took in",
      "  plus those it sent out (a message through it counts twice)", "",
      "| target | conns | req/s (range) | p50 ms | p99 ms | CPU µs/call | switches/call | msgs/call | non-2xx |",
      "|---|---|---|---|---|---|---|---|---|"]
for name, c, rps, lo, hi, p50, p99, cpu_us, sw, msgs, errs in rows:
    md.append(f"| {name} | {c} | {rps:.0f} ({lo:.0f}-{hi:.0f}) | {p50:.2f} | {p99:.2f} | {cpu_us:.0f} | {sw:.1f} | "
              f"{msgs:.1f} | {errs} |")
ok = lambda b: "met" if b else "not met"


def line(label, key, target=None, at_most=False):
    v, lo, hi = metrics[key], metrics[key + "_min"], metrics[key + "_max"]
    if target is None:
        verdict = "(context)"
    elif at_most:
        verdict = f"<= {target:.2f}: {ok(v <= target)}"
    else:
        verdict = f">= {target:.2f}: {ok(v >= target)}"
    return f"| {label} | {v:.2f} ({lo:.2f}-{hi:.2f}) | {verdict} |"


md += ["", "| ratio | median (range) | target |", "|---|---|---|",
       line("c16: gateway echo / in-process floor echo", "gateway_echo_over_floor_c16", 0.9),
       line("c16: gateway hello / in-process floor hello", "gateway_hello_over_floor_c16", 0.9),
       line("c16: direct floor / JetStream floor (req/s)", "direct_floor_over_jetstream_floor_c16", 2.0),
       line("c1: direct floor / JetStream floor (p50)", "direct_floor_over_jetstream_floor_p50_c1", 0.5, True),
       line("c16: gateway echo / queued echo", "gateway_echo_over_queued_echo_c16"),
       line("c16: queued echo / in-process floor echo", "queued_echo_over_floor_c16"),
       line("c16: queued hello / in-process floor hello", "queued_hello_over_floor_c16"),
       line("c16: gateway hello (C WASI) / lighttpd native CGI", "gateway_hello_over_lighttpd_c16", 2.0),
       line("c16: CPU per call, gateway echo / in-process floor echo", "gateway_echo_cpu_over_floor_c16"),
       line("c16: CPU per call, gateway hello / in-process floor hello", "gateway_hello_cpu_over_floor_c16"),
       ""]
md += ["CPU µs per call at 16 connections, by process (processes under 1 µs left out):", ""]
for name in order:
    md.append(f"- {name}: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(cpu_split[name].items(), key=lambda kv: -kv[1])))
md.append("")
for guest in ("echo", "hello"):
    v = metrics[f"gateway_{guest}_p50_c1_over_budget"]
    md.append(f"p50 of `{guest}` through the gateway at 1 connection over 1.1 x (in-process floor p50 + direct floor "
              f"p50): {v:.2f} (target <= 1.00: {ok(v <= 1.0)})")
md.append("")
out = os.path.join("bench", "results")
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "gateway.md"), "w").write("\n".join(md))
json.dump(metrics, open(os.path.join(out, "gateway.json"), "w"), indent=2, sort_keys=True)
print("\n".join(md))
