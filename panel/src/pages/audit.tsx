import { useState } from "preact/hooks";
import type { Api, AuditEntry, AuditFilter } from "../api";
import { time } from "../format";
import { DataTable, ErrorNote, Loading, Pager, useLoad } from "../ui/common";

/** The audit log: everything for admins, your own actions and those on your things otherwise. */
export function Audit({ api }: { api: Api }) {
  const [filter, setFilter] = useState<AuditFilter>({});
  const [draft, setDraft] = useState<AuditFilter>({});
  const [after, setAfter] = useState<string | undefined>(undefined);
  const page = useLoad(() => api.audit({ ...filter, after, limit: 50 }), [filter, after]);
  const field = (key: "actor" | "action" | "target", label: string) => (
    <label>
      {label}
      <input name={key} value={draft[key] ?? ""} onInput={(e) => setDraft({ ...draft, [key]: e.currentTarget.value.trim() || undefined })} />
    </label>
  );
  return (
    <main>
      <h1>Audit log</h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          setAfter(undefined);
          setFilter(draft);
        }}
      >
        {field("actor", "Who")}
        {field("action", "Action")}
        {field("target", "On what")}
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={page.error} />
      {page.loading && !page.data ? <Loading what="the audit log" /> : null}
      <DataTable
        head={["When", "Who", "Action", "On what", "Outcome", "From", "Detail"]}
        rows={page.data?.items}
        empty="Nothing recorded matches."
        row={(a: AuditEntry) => (
          <tr key={a.id}>
            <td>{time(a.at)}</td>
            <td>{a.actor ?? <span class="muted">anonymous</span>}</td>
            <td class="mono">{a.action}</td>
            <td class="mono">{a.target}</td>
            <td class={a.outcome === "ok" ? undefined : "bad"}>{a.outcome}</td>
            <td class="mono">{a.source ?? ""}</td>
            <td class="mono">{Object.keys(a.detail ?? {}).length ? JSON.stringify(a.detail) : ""}</td>
          </tr>
        )}
      />
      <Pager after={after} next={page.data?.next} onPage={setAfter} labels={["Newest", "Older"]} />
    </main>
  );
}
