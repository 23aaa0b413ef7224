// The try-it form: calls the function through control and shows its answer.
import { useState } from "preact/hooks";
import type { Api, Fn, TryItMethod, TryItResult } from "../../api";
import { href } from "../../router";
import { ErrorNote, HeaderTable, Section, useAction } from "../../ui/common";

/** The methods a try-it call may use, as the API document lists them. */
const METHODS: TryItMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

export function TryIt({ api, fn }: { api: Api; fn: Fn }) {
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
