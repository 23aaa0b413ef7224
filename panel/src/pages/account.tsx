import { useState } from "preact/hooks";
import type { Api, TokenInfo, User } from "../api";
import { time } from "../format";
import { DataTable, ErrorNote, Loading, Section, useAction, useLoad } from "../ui/common";

/** Your account: your password, and your tokens and sessions. */
export function Account({ api, me }: { api: Api; me: User }) {
  const tokens = useLoad(() => api.tokens(), []);
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const change = useAction();
  const revoke = useAction();
  const [done, setDone] = useState<string | null>(null);
  return (
    <main>
      <h1>Your account</h1>
      <p class="muted">
        {me.username} · {me.role} · since {time(me.created_at)}
      </p>
      <Section title="Password">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void change.run(async () => {
              setDone(null);
              if (next !== again) throw new Error("The new passwords differ.");
              const r = await api.changePassword(current, next);
              setCurrent("");
              setNext("");
              setAgain("");
              setDone(`Password changed; ${r.revoked} other token(s) and session(s) revoked.`);
              tokens.reload();
            });
          }}
        >
          <label>
            Current password
            <input name="current-password" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
          </label>
          <label>
            New password
            <input name="new-password" type="password" autocomplete="new-password" required minLength={8} value={next} onInput={(e) => setNext(e.currentTarget.value)} />
          </label>
          <label>
            New password again
            <input name="new-password-again" type="password" autocomplete="new-password" required minLength={8} value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={change.busy}>
            Change password
          </button>
        </form>
        {change.error?.status === 403 ? (
          <p class="error" role="alert">
            The current password is wrong.
          </p>
        ) : (
          <ErrorNote error={change.error} />
        )}
        {done ? (
          <p class="muted" role="status">
            {done}
          </p>
        ) : null}
      </Section>
      <Section title="Tokens and sessions">
        <ErrorNote error={tokens.error} />
        <ErrorNote error={revoke.error} />
        {tokens.loading && !tokens.data ? <Loading what="your tokens" /> : null}
        <DataTable
          head={["Id", "Created", "Expires", ""]}
          rows={tokens.data?.items.filter((t) => t.revoked_at === null)}
          empty="No live tokens."
          row={(t: TokenInfo) => (
            <tr key={t.id}>
              <td class="mono">{t.id}</td>
              <td>{time(t.created_at)}</td>
              <td>{time(t.expires_at)}</td>
              <td>
                {t.current ? (
                  <span class="muted">this session</span>
                ) : (
                  <button disabled={revoke.busy} onClick={() => void revoke.run(async () => (await api.revokeToken(t.id), tokens.reload()))}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          )}
        />
      </Section>
    </main>
  );
}
