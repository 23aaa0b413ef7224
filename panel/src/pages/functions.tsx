import { useState } from "preact/hooks";
import type { Api, Fn, Quota } from "../api";
import { count, deployed, rate, time } from "../format";
import { href } from "../router";
import { DataTable, ErrorNote, Loading, Pager, useAction, useLoad } from "../ui/common";

export function Functions({ api }: { api: Api }) {
  const [after, setAfter] = useState<string | undefined>(undefined);
  const page = useLoad(() => api.functions(after, 50), [after]);
  const usage = useLoad(() => api.myUsage(), []);
  const [name, setName] = useState("");
  const [priv, setPriv] = useState(false);
  const create = useAction();
  return (
    <main>
      <h1>Functions</h1>
      {usage.data?.quota ? <QuotaNote q={usage.data.quota} /> : null}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void create.run(async () => {
            const f = await api.createFunction(name.trim(), priv ? "private" : "public");
            location.hash = href({ page: "function", name: f.name, tab: "overview" });
          });
        }}
      >
        <label>
          New function
          <input name="name" placeholder="my-function" required pattern="[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label class="check">
          <input type="checkbox" checked={priv} onChange={(e) => setPriv(e.currentTarget.checked)} /> private
        </label>
        <button type="submit" disabled={create.busy}>
          Create
        </button>
      </form>
      <ErrorNote error={create.error} />
      <ErrorNote error={page.error} />
      {page.loading && !page.data ? <Loading what="functions" /> : null}
      <DataTable
        head={["Name", "Deployed", "Calls (last hour)", "Visibility", "URL"]}
        rows={page.data?.items}
        empty={
          <>
            No functions yet: create one above, or deploy with <code>olinctl deploy NAME FILE.wasm</code>.
          </>
        }
        row={(f: Fn) => (
          <tr key={f.id}>
            <td>
              <a href={href({ page: "function", name: f.name, tab: "overview" })}>{f.name}</a>
            </td>
            <td>{deployed(f.deployment)}</td>
            <td class={f.last_hour?.errors ? "bad" : undefined}>{rate(f.last_hour)}</td>
            <td>{f.visibility}</td>
            <td class="mono">{f.url}</td>
          </tr>
        )}
      />
      <Pager after={after} next={page.data?.next} onPage={setAfter} />
    </main>
  );
}

/** This month's calls and fuel against the user's quotas, if any is set. */
function QuotaNote({ q }: { q: Quota }) {
  if (q.calls_per_month === null && q.fuel_per_month === null) return null;
  const part = (used: number, max: number | null, what: string) => (max === null ? `${count(used)} ${what}` : `${count(used)} of ${count(max)} ${what}`);
  return (
    <p class={q.exceeded ? "error" : "muted"}>
      This month: {part(q.calls, q.calls_per_month, "calls")}, {part(q.fuel, q.fuel_per_month, "fuel")}.
      {q.exceeded ? ` Your monthly ${q.exceeded} quota is spent: calls are refused (429) until ${time(q.resets_at)}.` : ` Resets ${time(q.resets_at)}.`}
    </p>
  );
}
