// Small building blocks shared by the pages.

import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, type Header } from "../api";

/** Loads `load()` and re-runs it when `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
} {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load()
      .then((d) => {
        if (live) {
          setData(d);
          setError(null);
        }
      })
      .catch((e: unknown) => {
        if (live) setError(asApiError(e));
      })
      .finally(() => {
        if (live) setLoading(false);
      });
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(0, "client", e instanceof Error ? e.message : String(e));
}

/** An error in words, with what to do when it is a lost session. */
export function ErrorNote({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
      {error.unauthorized ? (
        <>
          {" "}
          <a href="#/login">Log in again</a>.
        </>
      ) : null}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** Runs an action from a button or form, tracking busy state and its error. */
export function useAction(): {
  busy: boolean;
  error: ApiError | null;
  run: (action: () => Promise<void>) => Promise<void>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(null) };
}

/** A table of `rows` (one `<tr>` each from `row`) under `head`, scrolling
 * sideways on narrow screens; `empty` when there are none, nothing while loading. */
export function DataTable<T>({
  head,
  rows,
  row,
  empty,
}: {
  head: string[];
  rows: T[] | undefined;
  row: (item: T, index: number) => JSX.Element;
  empty: ComponentChildren;
}) {
  if (!rows) return null;
  if (rows.length === 0) return <p class="muted">{empty}</p>;
  return (
    <div class="scroll">
      <table>
        <thead>
          <tr>
            {head.map((h, i) => (
              <th key={i} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{rows.map(row)}</tbody>
      </table>
    </div>
  );
}

/** HTTP headers as a two-column table, in their order. */
export function HeaderTable({ headers, empty }: { headers: Header[]; empty: ComponentChildren }) {
  return (
    <DataTable
      head={["Header", "Value"]}
      rows={headers}
      empty={empty}
      row={(h: Header, i: number) => (
        <tr key={i}>
          <td class="mono">{h.name}</td>
          <td class="mono">{h.value}</td>
        </tr>
      )}
    />
  );
}

/** Paging of a listing: back to its first page, and on to the next (`next`: the listing's cursor). */
export function Pager({
  after,
  next,
  onPage,
  labels = ["First page", "Next page"],
}: {
  after: string | undefined;
  next: string | null | undefined;
  onPage: (after: string | undefined) => void;
  labels?: [string, string];
}) {
  return (
    <nav class="pager">
      {after !== undefined ? <button onClick={() => onPage(undefined)}>{labels[0]}</button> : null}
      {next ? <button onClick={() => onPage(next)}>{labels[1]}</button> : null}
    </nav>
  );
}
