#!/usr/bin/env python3
"""Turns the wrk outputs of bench/gateway.sh into bench/results/gateway.{md,json}.

Usage: bench/wrk_report.py <dir of NAME.CONNS.txt> <seconds per run>
"""
import json, os, re, subprocess, sys, datetime
d, dur = sys.argv[1], sys.argv[2]
def ms(v):
    m = re.match(r"([\d.]+)(ns|us|ms|s|m)$", v)
    if not m:
        raise SystemExit(f"unparsable wrk latency {v!r}")
    n, u = m.groups()
    return float(n) * {"ns": 1e-6, "us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[u]
rows, metrics = [], {}
order = ["gateway_echo", "gateway_hello", "floor_echo", "floor_hello", "jetstream_floor", "lighttpd_hello"]
for name in order:
    for c in (1, 16, 64):
        text = open(os.path.join(d, f"{name}.{c}.txt")).read()
        if "Requests/sec" not in text:
            raise SystemExit(f"wrk failed for {name} at {c} connections:\n{text}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
        p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        errs = int(errors.group(1)) if errors else 0
        rows.append((name, c, rps, p50, p99, errs))
        metrics[f"{name}_c{c}_rps"] = rps
        metrics[f"{name}_c{c}_p50_ms"] = p50
        metrics[f"{name}_c{c}_p99_ms"] = p99
        metrics[f"{name}_c{c}_non2xx"] = errs
r = lambda a, b: metrics[a] / metrics[b] if metrics[b] else 0.0
ratios = {
    "gateway_echo_over_floor_c16": r("gateway_echo_c16_rps", "floor_echo_c16_rps"),
    "gateway_hello_over_floor_c16": r("gateway_hello_c16_rps", "floor_hello_c16_rps"),
    "gateway_hello_over_lighttpd_c16": r("gateway_hello_c16_rps", "lighttpd_hello_c16_rps"),
    "gateway_echo_over_jetstream_floor_c16": r("gateway_echo_c16_rps", "jetstream_floor_c16_rps"),
}
metrics.update(ratios)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
md = [f"# gateway: the queue against its floors", "",
      f"- date: {datetime.date.today()}", f"- machine: {os.cpu_count()} cores, {cpu}",
      f"- command: `bench/gateway.sh {dur}` (wrk, {dur} s per run, loopback; every process on the same 2 cores)",
      "- gateway path: olin-gateway -> JetStream (nats-server 2.9) -> olin-worker (WORKER_CONCURRENCY=16) -> Wasmer; separate processes",
      "- in-process floor: the same sandbox behind a plain HTTP server; JetStream floor: publish, pull, reply, ack, no wasm;",
      "  lighttpd: the same hello.c compiled natively, fork/exec per request (mod_cgi)", "",
      "| target | conns | req/s | p50 ms | p99 ms | non-2xx |", "|---|---|---|---|---|---|"]
for name, c, rps, p50, p99, errs in rows:
    md.append(f"| {name} | {c} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {errs} |")
ok = lambda b: "met" if b else "not met"
md += ["", "| ratio at 16 connections | value | target |", "|---|---|---|",
       f"| gateway echo / in-process floor echo | {ratios['gateway_echo_over_floor_c16']:.2f} | >= 0.50: {ok(ratios['gateway_echo_over_floor_c16'] >= 0.5)} |",
       f"| gateway hello / in-process floor hello | {ratios['gateway_hello_over_floor_c16']:.2f} | >= 0.50: {ok(ratios['gateway_hello_over_floor_c16'] >= 0.5)} |",
       f"| gateway hello (C WASI) / lighttpd native CGI | {ratios['gateway_hello_over_lighttpd_c16']:.2f} | >= 2.0: {ok(ratios['gateway_hello_over_lighttpd_c16'] >= 2.0)} |",
       f"| gateway echo / JetStream floor | {ratios['gateway_echo_over_jetstream_floor_c16']:.2f} | (context) |",
       "", f"p50 of the olin echo guest through the gateway at 1 connection: {metrics['gateway_echo_c1_p50_ms']:.3f} ms (target <= 0.6 ms: {ok(metrics['gateway_echo_c1_p50_ms'] <= 0.6)})", ""]
out = os.path.join("bench", "results")
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "gateway.md"), "w").write("\n".join(md))
json.dump(metrics, open(os.path.join(out, "gateway.json"), "w"), indent=2, sort_keys=True)
print("\n".join(md))
