import { useState } from "preact/hooks";
import type { Api, Role, User } from "../api";
import { time } from "../format";
import { DataTable, ErrorNote, Loading, Pager, useAction, useLoad } from "../ui/common";

/** Admins: the users, and what can be done to each. */
export function Users({ api, me }: { api: Api; me: User }) {
  const [after, setAfter] = useState<string | undefined>(undefined);
  const page = useLoad(() => api.users(after, 50), [after]);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("user");
  const create = useAction();
  const act = useAction();
  const [done, setDone] = useState<string | null>(null);
  const run = (what: string, action: () => Promise<unknown>) =>
    void act.run(async () => {
      setDone(null);
      await action();
      setDone(what);
      page.reload();
    });
  return (
    <main>
      <h1>Users</h1>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void create.run(async () => {
            await api.createUser(username.trim(), password, role);
            setDone(`Created ${username.trim()}.`);
            setUsername("");
            setPassword("");
            page.reload();
          });
        }}
      >
        <label>
          New user
          <input name="new-username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="new-password" type="password" autocomplete="new-password" required minLength={8} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select name="new-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            <option value="user">user</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" disabled={create.busy}>
          Create
        </button>
      </form>
      <ErrorNote error={create.error} />
      <ErrorNote error={act.error} />
      {done ? (
        <p class="muted" role="status">
          {done}
        </p>
      ) : null}
      <ErrorNote error={page.error} />
      {page.loading && !page.data ? <Loading what="users" /> : null}
      <DataTable
        head={["User", "Role", "Status", "Created", ""]}
        rows={page.data?.items}
        empty="No users."
        row={(u: User) => (
          <tr key={u.id} data-user={u.username}>
            <td>{u.username}</td>
            <td>{u.role}</td>
            <td class={u.disabled_at ? "bad" : undefined}>{u.disabled_at ? `disabled ${time(u.disabled_at)}` : "enabled"}</td>
            <td>{time(u.created_at)}</td>
            <td>
              {u.id === me.id ? (
                <span class="muted">you</span>
              ) : (
                <UserActions api={api} user={u} busy={act.busy} run={run} />
              )}
            </td>
          </tr>
        )}
      />
      <Pager after={after} next={page.data?.next} onPage={setAfter} />
    </main>
  );
}

function UserActions({
  api,
  user,
  busy,
  run,
}: {
  api: Api;
  user: User;
  busy: boolean;
  run: (what: string, action: () => Promise<unknown>) => void;
}) {
  const [password, setPassword] = useState("");
  const [cascade, setCascade] = useState(false);
  const name = user.username;
  const other: Role = user.role === "admin" ? "user" : "admin";
  return (
    <details>
      <summary>Manage</summary>
      <div class="actions">
        <button disabled={busy} onClick={() => run(`${name} is now ${other === "admin" ? "an admin" : "a user"}.`, () => api.updateUser(name, { role: other }))}>
          Make {other}
        </button>
        {user.disabled_at ? (
          <button disabled={busy} onClick={() => run(`${name} is enabled.`, () => api.updateUser(name, { disabled: false }))}>
            Enable
          </button>
        ) : (
          <button disabled={busy} class="danger" onClick={() => run(`${name} is disabled: their tokens stopped working.`, () => api.updateUser(name, { disabled: true }))}>
            Disable
          </button>
        )}
        <button
          disabled={busy}
          onClick={() => run(`${name}'s tokens are revoked.`, async () => `${(await api.revokeUserTokens(name)).revoked}`)}
        >
          Revoke tokens
        </button>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            run(`${name}'s password is reset; their tokens are revoked.`, () => api.resetPassword(name, password));
            setPassword("");
          }}
        >
          <input
            name="reset-password"
            type="password"
            autocomplete="new-password"
            placeholder="new password"
            required
            minLength={8}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
          <button type="submit" disabled={busy}>
            Reset password
          </button>
        </form>
        <label class="check">
          <input type="checkbox" name="cascade" checked={cascade} onChange={(e) => setCascade(e.currentTarget.checked)} /> with their functions
        </label>
        <button
          class="danger"
          disabled={busy}
          onClick={() => {
            if (confirm(`Delete ${name}${cascade ? " and every function of theirs" : ""}? This cannot be undone.`)) {
              run(`${name} is deleted.`, () => api.deleteUser(name, cascade));
            }
          }}
        >
          Delete
        </button>
      </div>
    </details>
  );
}
