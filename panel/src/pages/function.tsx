import { useMemo, useRef, useState } from "preact/hooks";
import type { Api, Deployment, EnvVar, Execution, Fn, TryItMethod, TryItResult, Version } from "../api";
import { bytes, count, deployed, micros, outcome, time } from "../format";
import { href } from "../router";
import { Chart } from "../ui/chart";
import { DataTable, ErrorNote, HeaderTable, Loading, Section, useAction, useLoad } from "../ui/common";

type Tab = "overview" | "executions" | "usage" | "settings";

export function FunctionPage({ api, name, tab }: { api: Api; name: string; tab: Tab }) {
  const fn = useLoad(() => api.fn(name), [name]);
  const tabs: [Tab, string][] = [
    ["overview", "Overview"],
    ["executions", "Executions"],
    ["usage", "Usage"],
    ["settings", "Settings"],
  ];
  return (
    <main>
      <p>
        <a href={href({ page: "functions" })}>← Functions</a>
      </p>
      <h1>{name}</h1>
      <nav class="tabs" aria-label="Function sections">
        {tabs.map(([t, label]) => (
          <a key={t} href={href({ page: "function", name, tab: t })} aria-current={t === tab ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <ErrorNote error={fn.error} />
      {fn.loading && !fn.data ? <Loading what={name} /> : null}
      {fn.data && tab === "overview" ? <Overview api={api} fn={fn.data} reload={fn.reload} /> : null}
      {fn.data && tab === "executions" ? <Executions api={api} fn={fn.data} /> : null}
      {fn.data && tab === "usage" ? <UsageView api={api} fn={fn.data} /> : null}
      {fn.data && tab === "settings" ? <Settings api={api} fn={fn.data} reload={fn.reload} /> : null}
    </main>
  );
}

function Overview({ api, fn, reload }: { api: Api; fn: Fn; reload: () => void }) {
  const versions = useLoad(() => api.versions(fn.name), [fn.name, fn.updated_at, fn.deployment?.id]);
  const history = useLoad(() => api.deployments(fn.name), [fn.name, fn.deployment?.id]);
  const [file, setFile] = useState<File | null>(null);
  const uploadForm = useRef<HTMLFormElement>(null);
  const [progress, setProgress] = useState<[number, number] | null>(null);
  const upload = useAction();
  const change = useAction();
  const deployFile = () =>
    upload.run(async () => {
      if (!file) return;
      const v = await api.uploadVersion(fn.name, file, (sent, total) => setProgress([sent, total]));
      await api.deploy(fn.name, v.number);
      // Clear the chosen file too, so the next deploy starts from a blank form.
      uploadForm.current?.reset();
      setFile(null);
      reload();
    });
  const live = fn.deployment;
  return (
    <>
      <Section title="Call it">
        <p class="mono">{fn.url}/</p>
        <p>
          {deployed(live)} · {fn.visibility}
        </p>
      </Section>
      <TryIt api={api} fn={fn} />
      <Section title="Deploy a new version">
        <form
          class="inline"
          ref={uploadForm}
          onSubmit={(e) => {
            e.preventDefault();
            void deployFile();
          }}
        >
          <label>
            Module (.wasm)
            <input type="file" name="module" accept=".wasm,application/wasm" required onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
          </label>
          <button type="submit" disabled={upload.busy || !file}>
            {upload.busy ? "Deploying…" : "Upload and deploy"}
          </button>
        </form>
        {progress ? (
          <p>
            <progress max={progress[1]} value={progress[0]} aria-label="Upload progress" /> {bytes(progress[0])} of {bytes(progress[1])}
          </p>
        ) : null}
        <ErrorNote error={upload.error} />
      </Section>
      <Section title="Versions">
        <ErrorNote error={versions.error ?? change.error} />
        <DataTable
          head={["Version", "sha256", "Size", "ABI", "Uploaded", ""]}
          rows={versions.data?.items}
          empty="No versions yet."
          row={(v: Version) => (
            <tr key={v.id}>
              <td>v{v.number}</td>
              <td class="mono">{v.sha256.slice(0, 12)}</td>
              <td>{bytes(v.size_bytes)}</td>
              <td>{v.abi}</td>
              <td>{time(v.created_at)}</td>
              <td>
                {live?.version === v.number ? (
                  <strong>live</strong>
                ) : (
                  <button
                    disabled={change.busy}
                    onClick={() =>
                      void change.run(async () => {
                        await api.rollback(fn.name, v.number);
                        reload();
                      })
                    }
                  >
                    {live && v.number < live.version ? "Roll back to this" : "Deploy this"}
                  </button>
                )}
              </td>
            </tr>
          )}
        />
      </Section>
      <Section title="Deployment history">
        <ErrorNote error={history.error} />
        {history.data ? (
          <ol class="history">
            {history.data.items.map((d: Deployment) => (
              <li key={d.id}>
                {time(d.created_at)}: {d.kind === "rollback" ? "rolled back to" : "deployed"} v{d.version}
                {d.canary_version ? ` (+ v${d.canary_version} at ${d.canary_percent}%)` : ""}
                {d.active ? " · live" : ""}
              </li>
            ))}
          </ol>
        ) : null}
      </Section>
    </>
  );
}

/** The methods a try-it call may use, as the API document lists them. */
const METHODS: TryItMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

function TryIt({ api, fn }: { api: Api; fn: Fn }) {
  const [call, setCall] = useState<{ method: TryItMethod; path: string; body: string; key: string }>({
    method: "GET",
    path: "/",
    body: "",
    key: "",
  });
  const [result, setResult] = useState<TryItResult | null>(null);
  const action = useAction();
  return (
    <Section title="Try it">
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            setResult(
              await api.invoke(fn.name, {
                method: call.method,
                path: call.path === "/" ? "" : call.path,
                body: call.body,
                invoke_key: call.key || undefined,
              }),
            );
          });
        }}
      >
        <label>
          Method
          <select
            name="method"
            value={call.method}
            onChange={(e) => {
              const value = e.currentTarget.value;
              setCall({ ...call, method: METHODS.find((m) => m === value) ?? "GET" });
            }}
          >
            {METHODS.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Path
          <input name="path" value={call.path} onInput={(e) => setCall({ ...call, path: e.currentTarget.value })} />
        </label>
        <label>
          Body
          <input name="body" value={call.body} onInput={(e) => setCall({ ...call, body: e.currentTarget.value })} />
        </label>
        {fn.visibility === "private" ? (
          <label>
            Invoke key
            <input name="key" type="password" value={call.key} onInput={(e) => setCall({ ...call, key: e.currentTarget.value })} />
          </label>
        ) : null}
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Calling…" : "Send"}
        </button>
      </form>
      <ErrorNote error={action.error} />
      {result ? (
        <div class="result" aria-live="polite">
          <p>
            <strong class={result.status < 400 ? "ok" : "bad"}>{result.status}</strong>{" "}
            {result.headers.find((h) => h.name === "olin-invocation-id")?.value ? (
              <a href={href({ page: "execution", id: result.headers.find((h) => h.name === "olin-invocation-id")?.value ?? "" })}>see the call</a>
            ) : null}
          </p>
          <details>
            <summary>Response headers ({result.headers.length})</summary>
            <HeaderTable headers={result.headers} empty="No headers." />
          </details>
          <pre class="response">{result.body ?? `(${result.body_base64?.length ?? 0} base64 characters of binary)`}{result.truncated ? "\n… (cut at 1 MiB)" : ""}</pre>
        </div>
      ) : null}
    </Section>
  );
}

const OUTCOMES = ["", "OK", "GUEST_ERROR", "TIMEOUT", "FUEL_EXHAUSTED", "MEMORY_EXCEEDED", "OUTPUT_TOO_LARGE", "BAD_CGI_OUTPUT", "MODULE_UNAVAILABLE", "INTERNAL"];

function Executions({ api, fn }: { api: Api; fn: Fn }) {
  const [filter, setFilter] = useState({ outcome: "", since: "", until: "" });
  const [applied, setApplied] = useState(filter);
  const [after, setAfter] = useState<string | undefined>(undefined);
  const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);
  const page = useLoad(
    () => api.executions(fn.name, { outcome: applied.outcome || undefined, since: toIso(applied.since), until: toIso(applied.until), limit: 50, after }),
    [fn.name, applied, after],
  );
  return (
    <>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          setAfter(undefined);
          setApplied(filter);
        }}
      >
        <label>
          Outcome
          <select value={filter.outcome} onChange={(e) => setFilter({ ...filter, outcome: e.currentTarget.value })}>
            {OUTCOMES.map((o) => (
              <option key={o} value={o}>
                {o ? outcome(o).label : "any"}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="datetime-local" value={filter.since} onInput={(e) => setFilter({ ...filter, since: e.currentTarget.value })} />
        </label>
        <label>
          Until
          <input type="datetime-local" value={filter.until} onInput={(e) => setFilter({ ...filter, until: e.currentTarget.value })} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={page.error} />
      {page.loading && !page.data ? <Loading what="executions" /> : null}
      <DataTable
        head={["Started", "Outcome", "Status", "Wall time", "Fuel", "Request"]}
        rows={page.data?.items}
        empty="No recorded calls match."
        row={(e: Execution) => (
          <tr key={e.invocation_id}>
            <td>
              <a href={href({ page: "execution", id: e.invocation_id })}>{time(e.started_at)}</a>
            </td>
            <td class={outcome(e.outcome).ok ? "ok" : "bad"}>{outcome(e.outcome).label}</td>
            <td>{e.status}</td>
            <td>{micros(e.usage.wall_us)}</td>
            <td>{count(e.usage.fuel)}</td>
            <td class="mono">
              {e.method} {e.path || "/"}
            </td>
          </tr>
        )}
      />
      <nav class="pager">
        {after !== undefined ? <button onClick={() => setAfter(undefined)}>Newest</button> : null}
        {page.data?.next ? <button onClick={() => setAfter(page.data?.next ?? undefined)}>Older</button> : null}
      </nav>
    </>
  );
}

function UsageView({ api, fn }: { api: Api; fn: Fn }) {
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

function Settings({ api, fn, reload }: { api: Api; fn: Fn; reload: () => void }) {
  const env = useLoad(() => api.env(fn.name), [fn.name]);
  const [v, setV] = useState({ name: "", value: "", secret: false });
  const envAction = useAction();
  const [limits, setLimits] = useState({
    memory_mib: fn.limits.memory_bytes ? String(fn.limits.memory_bytes / 1048576) : "",
    wall_ms: fn.limits.wall_ms ? String(fn.limits.wall_ms) : "",
    rate: fn.rate_limit ? String(fn.rate_limit.per_second) : "",
    burst: fn.rate_limit ? String(fn.rate_limit.burst) : "",
    concurrency: fn.max_concurrency ? String(fn.max_concurrency) : "",
  });
  const limitAction = useAction();
  const del = useAction();
  return (
    <>
      <Section title="Environment">
        <ErrorNote error={env.error ?? envAction.error} />
        {env.data && env.data.items.length > 0 ? (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Value</th>
                <th scope="col" />
              </tr>
            </thead>
            <tbody>
              {env.data.items.map((e: EnvVar) => (
                <tr key={e.name}>
                  <td class="mono">{e.name}</td>
                  <td class="mono">{e.secret ? "•••••• (secret)" : e.value}</td>
                  <td>
                    <button
                      onClick={() =>
                        void envAction.run(async () => {
                          await api.unsetEnv(fn.name, e.name);
                          env.reload();
                        })
                      }
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void envAction.run(async () => {
              await api.setEnv(fn.name, v.name.trim(), v.value, v.secret);
              setV({ name: "", value: "", secret: false });
              env.reload();
            });
          }}
        >
          <label>
            Name
            <input required value={v.name} onInput={(e) => setV({ ...v, name: e.currentTarget.value })} />
          </label>
          <label>
            Value
            <input value={v.value} type={v.secret ? "password" : "text"} onInput={(e) => setV({ ...v, value: e.currentTarget.value })} />
          </label>
          <label class="check">
            <input type="checkbox" checked={v.secret} onChange={(e) => setV({ ...v, secret: e.currentTarget.checked })} /> secret
          </label>
          <button type="submit" disabled={envAction.busy}>
            Set
          </button>
        </form>
      </Section>
      <Section title="Limits">
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            void limitAction.run(async () => {
              await api.updateFunction(fn.name, {
                limits: {
                  memory_bytes: limits.memory_mib ? Number(limits.memory_mib) * 1048576 : 0,
                  wall_ms: limits.wall_ms ? Number(limits.wall_ms) : 0,
                },
                rate_limit: { per_second: limits.rate ? Number(limits.rate) : 0, burst: limits.rate && limits.burst ? Number(limits.burst) : null },
                max_concurrency: limits.concurrency ? Number(limits.concurrency) : 0,
              });
              reload();
            });
          }}
        >
          <label>
            Memory (MiB)
            <input type="number" min="1" placeholder="default" value={limits.memory_mib} onInput={(e) => setLimits({ ...limits, memory_mib: e.currentTarget.value })} />
          </label>
          <label>
            Wall time (ms)
            <input type="number" min="1" placeholder="default" value={limits.wall_ms} onInput={(e) => setLimits({ ...limits, wall_ms: e.currentTarget.value })} />
          </label>
          <label>
            Calls per second
            <input name="rate" type="number" min="1" placeholder="no limit" value={limits.rate} onInput={(e) => setLimits({ ...limits, rate: e.currentTarget.value })} />
          </label>
          <label>
            Burst
            <input name="burst" type="number" min="1" placeholder="= rate" value={limits.burst} onInput={(e) => setLimits({ ...limits, burst: e.currentTarget.value })} />
          </label>
          <label>
            Concurrent calls
            <input name="concurrency" type="number" min="1" placeholder="no limit" value={limits.concurrency} onInput={(e) => setLimits({ ...limits, concurrency: e.currentTarget.value })} />
          </label>
          <button type="submit" disabled={limitAction.busy}>
            Save limits
          </button>
        </form>
        <p class="muted">
          Over the rate or concurrency limit, callers get <code>429 RATE_LIMITED</code> with <code>Retry-After</code>; nothing is queued.
        </p>
        <ErrorNote error={limitAction.error} />
      </Section>
      <Section title="Delete">
        <button
          class="danger"
          disabled={del.busy}
          onClick={() => {
            if (!confirm(`Delete ${fn.name}? Calls fail at once; versions are kept in storage.`)) return;
            void del.run(async () => {
              await api.deleteFunction(fn.name);
              location.hash = href({ page: "functions" });
            });
          }}
        >
          Delete {fn.name}
        </button>
        <ErrorNote error={del.error} />
      </Section>
    </>
  );
}
