// The executions tab: recent calls, filtered by outcome, paged.
import { useState } from "preact/hooks";
import type { Api, Execution, Fn } from "../../api";
import { count, micros, outcome, time } from "../../format";
import { href } from "../../router";
import { DataTable, ErrorNote, Loading, Pager, useLoad } from "../../ui/common";

const OUTCOMES = ["", "OK", "GUEST_ERROR", "TIMEOUT", "FUEL_EXHAUSTED", "MEMORY_EXCEEDED", "OUTPUT_TOO_LARGE", "BAD_CGI_OUTPUT", "MODULE_UNAVAILABLE", "INTERNAL"];

export function Executions({ api, fn }: { api: Api; fn: Fn }) {
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
      <Pager after={after} next={page.data?.next} onPage={setAfter} labels={["Newest", "Older"]} />
    </>
  );
}
