import type { Api } from "../api";
import { bytes, count, micros, outcome, time } from "../format";
import { href } from "../router";
import { ErrorNote, HeaderTable, Loading, useLoad } from "../ui/common";

export function ExecutionPage({ api, id }: { api: Api; id: string }) {
  const e = useLoad(() => api.execution(id), [id]);
  const x = e.data;
  return (
    <main>
      {x ? (
        <p>
          <a href={href({ page: "function", name: x.function, tab: "executions" })}>← {x.function} executions</a>
        </p>
      ) : null}
      <h1>Call {id}</h1>
      <ErrorNote error={e.error} />
      {e.loading && !x ? <Loading what="the call" /> : null}
      {x ? (
        <>
          <dl class="stats">
            <dt>Request</dt>
            <dd class="mono">
              {x.method} {x.path || "/"}
              {x.async ? " (async)" : ""}
            </dd>
            <dt>Outcome</dt>
            <dd class={outcome(x.outcome).ok ? "ok" : "bad"}>{outcome(x.outcome).label}</dd>
            <dt>Status</dt>
            <dd>{x.status}</dd>
            {x.error ? (
              <>
                <dt>Error</dt>
                <dd>{x.error}</dd>
              </>
            ) : null}
            <dt>Exit code</dt>
            <dd>{x.exit_code}</dd>
            <dt>Started</dt>
            <dd>{time(x.started_at)} UTC</dd>
            <dt>Wall time</dt>
            <dd>{micros(x.usage.wall_us)}</dd>
            <dt>Fuel</dt>
            <dd>{count(x.usage.fuel)}</dd>
            <dt>Peak memory</dt>
            <dd>{bytes(x.usage.peak_memory_bytes)}</dd>
            <dt>Bytes in / out</dt>
            <dd>
              {bytes(x.usage.bytes_in)} / {bytes(x.usage.bytes_out)}
            </dd>
            <dt>Worker</dt>
            <dd class="mono">{x.worker_id}</dd>
            <dt>Module</dt>
            <dd class="mono">{x.module_sha256.slice(0, 16)}</dd>
            {(x.attempts ?? 1) > 1 ? (
              <>
                <dt>Runs</dt>
                <dd>{x.attempts} (delivery ran it again; the caller got the first run's answer)</dd>
              </>
            ) : null}
          </dl>
          {x.reruns && x.reruns.length > 0 ? (
            <>
              <h2>Later runs</h2>
              <table>
                <thead>
                  <tr>
                    <th>Started</th>
                    <th>Worker</th>
                    <th>Outcome</th>
                    <th>Wall time</th>
                    <th>Fuel</th>
                  </tr>
                </thead>
                <tbody>
                  {x.reruns.map((r) => (
                    <tr key={`${r.worker_id}-${r.started_at}`}>
                      <td>{time(r.started_at)} UTC</td>
                      <td class="mono">{r.worker_id}</td>
                      <td class={outcome(r.outcome).ok ? "ok" : "bad"}>{outcome(r.outcome).label}</td>
                      <td>{micros(r.wall_us)}</td>
                      <td>{count(r.fuel)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
          <h2>Response headers</h2>
          <HeaderTable headers={x.headers ?? []} empty="The function set no headers." />
          <h2>stderr</h2>
          {x.stderr_tail ? <pre class="stderr">{x.stderr_tail}</pre> : <p class="muted">Nothing on stderr.</p>}
        </>
      ) : null}
    </main>
  );
}
