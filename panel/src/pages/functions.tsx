import { useState } from "preact/hooks";
import type { Api, Fn } from "../api";
import { deployed, rate } from "../format";
import { href } from "../router";
import { DataTable, ErrorNote, Loading, useAction, useLoad } from "../ui/common";

export function Functions({ api }: { api: Api }) {
  const [after, setAfter] = useState<string | undefined>(undefined);
  const page = useLoad(() => api.functions(after, 50), [after]);
  const [name, setName] = useState("");
  const [priv, setPriv] = useState(false);
  const create = useAction();
  return (
    <main>
      <h1>Functions</h1>
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
      <nav class="pager">
        {after !== undefined ? <button onClick={() => setAfter(undefined)}>First page</button> : null}
        {page.data?.next ? <button onClick={() => setAfter(page.data?.next ?? undefined)}>Next page</button> : null}
      </nav>
    </main>
  );
}
