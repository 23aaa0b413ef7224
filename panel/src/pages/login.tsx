import { useState } from "preact/hooks";
import type { Api, User } from "../api";
import { ErrorNote, useAction } from "../ui/common";

export function Login({ api, onLogin }: { api: Api; onLogin: (u: User) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const action = useAction();
  return (
    <main class="narrow">
      <h1>Log in to Olincloud</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => onLogin(await api.login(username, password)));
        }}
      >
        <label>
          Username
          <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Logging in…" : "Log in"}
        </button>
      </form>
      {action.error?.unauthorized ? (
        <p class="error" role="alert">
          Wrong username or password.
        </p>
      ) : (
        <ErrorNote error={action.error} />
      )}
    </main>
  );
}
