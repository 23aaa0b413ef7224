// The settings tab: visibility, limits, egress, environment values.
import { useState } from "preact/hooks";
import type { Api, EnvVar, Fn } from "../../api";
import { href } from "../../router";
import { ErrorNote, Section, useAction, useLoad } from "../../ui/common";

export function Settings({ api, fn, reload }: { api: Api; fn: Fn; reload: () => void }) {
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
