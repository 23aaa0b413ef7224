#!/usr/bin/env bash
# Soak: the whole platform on a three-node JetStream cluster (R3) at half of
# its measured capacity, a worker process and a NATS node kill -9'ed in turn
# every few minutes (the test worker/tests/all/soak.rs; CI runs it for 2
# minutes). Records the samples, a chart of every process's resident memory
# and of the database and JetStream store sizes, and the figures:
# bench/results/soak.{md,json,png}.
#
#   bench/soak.sh [seconds]      (default 1800)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1800}"
source scripts/services.sh
olin_apt_install gnuplot:gnuplot-nox python3:python3
olin_start_postgres
# The nats-server release the manifests deploy (as the tests use).
olin_test_nats_server
export OLIN_SOAK_NATS="$(nats-server --version)"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "==> soak for $secs s (the test profile: the same build CI tests)"
verdict=passed
OLIN_SOAK_SECS="$secs" OLIN_SOAK_OUT="$out" \
  cargo nextest run --locked --workspace --no-capture -E 'test(soak_on_a_three_node_cluster)' >"$out/test.log" 2>&1 ||
  verdict=failed
grep -E -A2 '^(capacity|sent|memory|database|[0-9]+ s: killed)|PASS|FAIL|panicked' "$out/test.log" | grep -vE '^\s+[0-9]+: ' || true
[ -f "$out/summary.json" ] || { echo "the soak wrote no summary" >&2; exit 1; }

mkdir -p bench/results
cp "$out/samples.csv" bench/results/soak.csv
gnuplot <<GP
set datafile separator ','
set terminal pngcairo size 1100,700 font ',10' noenhanced
set output 'bench/results/soak.png'
set multiplot layout 2,1 title 'Soak: $secs s on a three-node NATS cluster, a worker or a NATS node killed in turn'
set xlabel 'seconds'
set ylabel 'resident MiB'
set key outside right
plot 'bench/results/soak.csv' using 1:5 every ::1 with lines title 'test process (gateways, control, load)', \
     '' using 1:6 every ::1 with lines title 'workers (sum of 3)', \
     '' using 1:7 every ::1 with lines title 'nats-server (sum of 3)'
set ylabel 'MiB'
set y2label 'rows'
set y2tics
plot 'bench/results/soak.csv' using 1:8 every ::1 with lines title 'Postgres database', \
     '' using 1:9 every ::1 with lines title 'JetStream stores', \
     '' using 1:10 every ::1 axes x1y2 with lines title 'execution records (right)'
unset multiplot
GP

grep -A1 panicked "$out/test.log" | tail -1 >"$out/why" || true
python3 - "$out/summary.json" "$secs" "$verdict" "$out/why" <<'PY'
import json, sys, datetime, os
s = json.load(open(sys.argv[1]))
flat = {k: v for k, v in s.items() if not isinstance(v, dict)}
for label, g in s["memory_growth"].items():
    flat[f"memory_growth.{label}"] = round(g, 4)
json.dump(flat, open("bench/results/soak.json", "w"), indent=1, sort_keys=True)
with open("bench/results/soak.md", "w") as md:
    md.write("# soak: three-node NATS cluster, workers and nodes killed\n\n")
    md.write(f"- date: {datetime.date.today()}\n- machine: {os.cpu_count()} cores\n")
    md.write(f"- command: `bench/soak.sh {sys.argv[2]}` (the test build; every service, three workers as processes, three {os.environ.get('OLIN_SOAK_NATS', 'nats-server')} nodes and Postgres on the same cores)\n")
    md.write(f"- load: {s['rate_per_s']:.0f} calls/s, half of the {s['capacity_per_s']:.0f} calls/s measured at the start (16 connections), alternating between two gateways\n")
    md.write(f"- faults: {s['faults']}, a worker process and a NATS node kill -9'ed in turn\n")
    why = open(sys.argv[4]).read().strip()
    md.write(f"- verdict: the test {sys.argv[3]}" + (f": `{why}`" if why else "") + "\n\n")
    md.write("| figure | value |\n|---|---|\n")
    for k in ["sent", "answered", "refused", "timed_out", "wrong", "answered_200_at_gateways", "recorded_in_usage",
              "db_mib_two_thirds", "db_mib_end", "js_mib_two_thirds", "js_mib_end"]:
        v = s[k]
        md.write(f"| {k} | {v:.1f} |\n" if isinstance(v, float) else f"| {k} | {v} |\n")
    md.write("\nResident memory, growth from warm-up (median of the 2nd quarter of each process's life) to its end (median of the last quarter), for processes that lived at least 40% of the run (`worker i.g`: slot i, generation g after kills). Asserted under 10% for each of our processes and for the NATS cluster as a whole; a single NATS node is reported only, since a node killed comes back empty and the clients that moved away stay on the others:\n\n")
    md.write("| process | growth |\n|---|---|\n")
    for label, g in sorted(s["memory_growth"].items()):
        md.write(f"| {label} | {g * 100:+.1f}% |\n")
    md.write("\n![memory and sizes over time](soak.png)\n")
print(open("bench/results/soak.md").read())
PY
[ "$verdict" = passed ]
