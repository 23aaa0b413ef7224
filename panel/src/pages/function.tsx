// One function's page: its tabs, each in pages/function/.
import type { Api } from "../api";
import { href } from "../router";
import { ErrorNote, Loading, useLoad } from "../ui/common";
import { Executions } from "./function/executions";
import { Overview } from "./function/overview";
import { Settings } from "./function/settings";
import { UsageView } from "./function/usage";

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
