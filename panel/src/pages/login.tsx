import { useEffect, useState } from "preact/hooks";
import type { Api, SignInMethods, User } from "../api";
import { ErrorNote, useAction } from "../ui/common";

export function Login({ api, onLogin }: { api: Api; onLogin: (u: User) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [methods, setMethods] = useState<SignInMethods | null>(null);
  const action = useAction();
  useEffect(() => {
    // Without the list, the password form still works.
    api.signInMethods().then(setMethods, () => setMethods({ local_passwords: true, providers: [] }));
  }, [api]);
  const passwords = methods?.local_passwords ?? true;
  return (
    <main class="narrow">
      <h1>Log in to Olincloud</h1>
      {methods && methods.providers.length > 0 ? (
        <nav class="sso" aria-label="Single sign-on">
          {methods.providers.map((p) => (
            <a class="button" href={api.ssoUrl(p.id)} key={p.id}>
              Sign in with {p.name}
            </a>
          ))}
        </nav>
      ) : null}
      {passwords ? (
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
      ) : null}
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
