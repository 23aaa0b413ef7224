#!/usr/bin/env bash
# Execution-event ingestion into Postgres against the plain multi-row INSERT
# floor, in one run (see bench/src/bin/ingest.rs). Target: >= 15,000 events/s.
# Writes bench/results/ingest.{md,json}.
#
#   bench/ingest.sh [events]
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
source scripts/services.sh
olin_apt_install nats-server:nats-server
olin_start_postgres
db="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

echo "==> building (release)"
cargo build --release --locked -p olin-bench --bin ingest >/dev/null

tmp="$(mktemp -d)"
nats-server -a 127.0.0.1 -p 14232 -js -sd "$tmp/js" 2>"$tmp/nats.log" & nats_pid=$!
trap 'kill $nats_pid 2>/dev/null || true; wait $nats_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/14232) 2>/dev/null && break; sleep 0.1; done

echo "==> $events events"
RUST_LOG=warn target/release/ingest nats://127.0.0.1:14232 "$db" "$events" | tee "$tmp/out.json"
mkdir -p bench/results
cp "$tmp/out.json" bench/results/ingest.json
python3 - "$tmp/out.json" >bench/results/ingest.md <<'PY'
import json, sys, datetime, os
m = json.load(open(sys.argv[1]))
rate, floor = m["ingest_events_per_s"], m["floor_insert_events_per_s"]
print("# ingest: execution events into Postgres\n")
print(f"- date: {datetime.date.today()}")
print(f"- machine: {os.cpu_count()} cores")
print(f"- command: `bench/ingest.sh {m['events']}` (PostgreSQL 15 on loopback, nats-server 2.9 file store)")
print("- floor: the same rows stored by ingestion's own batch insert (`INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING`, 1,000 per statement), no NATS")
print("- reference: multi-row `INSERT ... VALUES ... ON CONFLICT DO NOTHING`, 1,000 rows per statement (the previous insert)")
print("- ingestion: events already in `OLIN_EVENTS`; control started on an empty database, timed until the last row\n")
print("| path | events/s |")
print("|---|---|")
print(f"| floor (UNNEST batch insert) | {floor:.0f} |")
print(f"| reference (multi-row VALUES insert) | {m['values_insert_events_per_s']:.0f} |")
print(f"| control ingestion, one event per message | {rate:.0f} |")
print(f"| control ingestion, {m['events_per_message_batched']} events per message | {m['ingest_batched_events_per_s']:.0f} |")
print(f"\ningestion / floor: {m['ingest_over_floor']}; target >= 15,000 events/s: {'met' if rate >= 15000 else 'not met'}")
PY
cat bench/results/ingest.md
