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
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1)),
        "p99": ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1)),
        "errs": int(errors.group(1)) if errors else 0,
    }


order = ["gateway_echo", "gateway_hello", "floor_echo", "floor_hello", "jetstream_floor", "lighttpd_hello"]
runs = {(n, c): [run(n, c, r) for r in range(1, rounds + 1)] for n in order for c in (1, 16, 64)}
rows, metrics = [], {"rounds": rounds, "seconds_per_run": float(dur)}
for (name, c), rs in runs.items():
    med = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p99")}
    errs = sum(x["errs"] for x in rs)
    lo, hi = min(x["rps"] for x in rs), max(x["rps"] for x in rs)
    rows.append((name, c, med["rps"], lo, hi, med["p50"], med["p99"], errs))
    metrics[f"{name}_c{c}_rps"] = med["rps"]
    metrics[f"{name}_c{c}_p50_ms"] = med["p50"]
    metrics[f"{name}_c{c}_p99_ms"] = med["p99"]
    metrics[f"{name}_c{c}_non2xx"] = errs


def ratio(key, a, b, c=16):
    per_round = [x["rps"] / y["rps"] for x, y in zip(runs[(a, c)], runs[(b, c)]) if y["rps"]]
    metrics[key] = statistics.median(per_round)
    metrics[key + "_min"], metrics[key + "_max"] = min(per_round), max(per_round)
    return metrics[key]


ratio("gateway_echo_over_floor_c16", "gateway_echo", "floor_echo")
ratio("gateway_hello_over_floor_c16", "gateway_hello", "floor_hello")
ratio("gateway_hello_over_lighttpd_c16", "gateway_hello", "lighttpd_hello")
ratio("gateway_echo_over_jetstream_floor_c16", "gateway_echo", "jetstream_floor")
p50_c1 = metrics["gateway_echo_c1_p50_ms"]
p50_c1_runs = [x["p50"] for x in runs[("gateway_echo", 1)]]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
md = ["# gateway: the queue against its floors", "",
      f"- date: {datetime.date.today()}", f"- machine: {os.cpu_count()} cores, {cpu}",
      f"- command: `bench/gateway.sh {dur} {rounds}` (wrk, {dur} s per run, {rounds} interleaved rounds, loopback; "
      "every process on the same 2 cores)",
      "- gateway path: olin-gateway -> JetStream (nats-server 2.9, file storage) -> olin-worker (WORKER_CONCURRENCY=8) "
      "-> Wasmer; separate processes",
      "- in-process floor: the same sandbox behind a plain HTTP server; JetStream floor: publish, pull, reply, ack, no wasm;",
      "  lighttpd: the same hello.c compiled natively, fork/exec per request (mod_cgi)",
      "- each figure is the median over the rounds (req/s range in brackets); a ratio is the median of the",
      "  per-round ratios, whose two runs were seconds apart", "",
      "| target | conns | req/s (range) | p50 ms | p99 ms | non-2xx |", "|---|---|---|---|---|---|"]
for name, c, rps, lo, hi, p50, p99, errs in rows:
    md.append(f"| {name} | {c} | {rps:.0f} ({lo:.0f}-{hi:.0f}) | {p50:.2f} | {p99:.2f} | {errs} |")
ok = lambda b: "met" if b else "not met"


def line(label, key, target=None):
    v, lo, hi = metrics[key], metrics[key + "_min"], metrics[key + "_max"]
    verdict = f">= {target:.2f}: {ok(v >= target)}" if target is not None else "(context)"
    return f"| {label} | {v:.2f} ({lo:.2f}-{hi:.2f}) | {verdict} |"


md += ["", "| ratio at 16 connections | median (range) | target |", "|---|---|---|",
       line("gateway echo / in-process floor echo", "gateway_echo_over_floor_c16", 0.5),
       line("gateway hello / in-process floor hello", "gateway_hello_over_floor_c16", 0.5),
       line("gateway hello (C WASI) / lighttpd native CGI", "gateway_hello_over_lighttpd_c16", 2.0),
       line("gateway echo / JetStream floor", "gateway_echo_over_jetstream_floor_c16"),
       "", f"p50 of the olin echo guest through the gateway at 1 connection: {p50_c1:.3f} ms median "
       f"(rounds: {', '.join(f'{x:.3f}' for x in p50_c1_runs)}; target <= 0.6 ms: {ok(p50_c1 <= 0.6)})", ""]
out = os.path.join("bench", "results")
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "gateway.md"), "w").write("\n".join(md))
json.dump(metrics, open(os.path.join(out, "gateway.json"), "w"), indent=2, sort_keys=True)
print("\n".join(md))
