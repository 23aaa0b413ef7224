// The usage tab: calls, errors, latency and fuel over time.
import { useMemo, useState } from "preact/hooks";
import type { Api, Fn } from "../../api";
import { bytes, count, micros, outcome } from "../../format";
import { Chart } from "../../ui/chart";
import { ErrorNote, useLoad } from "../../ui/common";

export function UsageView({ api, fn }: { api: Api; fn: Fn }) {
  const [hours, setHours] = useState(24);
  const since = new Date(Date.now() - hours * 3600_000).toISOString();
  const usage = useLoad(() => api.usage(fn.name, since), [fn.name, hours]);
  const series = useLoad(() => api.usageSeries(fn.name, since, 48), [fn.name, hours]);
  const u = usage.data;
  const s = series.data;
  // Built once per load: a Chart rebuilds its canvas when these change.
  const times = useMemo(() => (s ? s.points.map((p) => Date.parse(p.start) / 1000) : []), [s]);
  const charts = useMemo(
    () =>
      s
        ? {
            calls: [
              { label: "calls", values: s.points.map((p) => p.calls), color: "#2458c6" },
              { label: "errors", values: s.points.map((p) => p.errors), color: "#b3261e" },
            ],
            wall: [
              { label: "p50", values: s.points.map((p) => p.wall_us.p50), color: "#1e7d32", format: micros },
              { label: "p99", values: s.points.map((p) => p.wall_us.p99), color: "#c77700", format: micros },
            ],
            fuel: [{ label: "fuel", values: s.points.map((p) => p.fuel), color: "#6a3fb5", format: count }],
          }
        : null,
    [s],
  );
  return (
    <>
      <label>
        Window
        <select value={String(hours)} onChange={(e) => setHours(Number(e.currentTarget.value))}>
          <option value="1">last hour</option>
          <option value="24">last 24 hours</option>
          <option value="168">last 7 days</option>
        </select>
      </label>
      <ErrorNote error={usage.error ?? series.error} />
      {u ? (
        <dl class="stats">
          <dt>Calls</dt>
          <dd>{count(u.calls)}</dd>
          <dt>Errors</dt>
          <dd>
            {count(u.errors)}
            {Object.entries(u.errors_by_outcome).map(([o, n]) => ` · ${outcome(o).label}: ${n}`)}
          </dd>
          <dt>Wall time p50 / p99</dt>
          <dd>
            {micros(u.wall_us.p50)} / {micros(u.wall_us.p99)}
          </dd>
          <dt>Fuel</dt>
          <dd>{count(u.fuel)}</dd>
          <dt>Bytes in / out</dt>
          <dd>
            {bytes(u.bytes_in)} / {bytes(u.bytes_out)}
          </dd>
        </dl>
      ) : null}
      {s && charts ? (
        <div class="charts">
          <Chart title={`Calls and errors per ${Math.round(s.step_seconds / 60)} min`} times={times} lines={charts.calls} />
          <Chart title="Wall time" times={times} lines={charts.wall} />
          <Chart title="Fuel" times={times} lines={charts.fuel} />
        </div>
      ) : null}
    </>
  );
}
