import { useEffect, useState } from "preact/hooks";
import { Api, type User } from "./api";
import { Account } from "./pages/account";
import { Audit } from "./pages/audit";
import { ExecutionPage } from "./pages/execution";
import { FunctionPage } from "./pages/function";
import { Functions } from "./pages/functions";
import { Login } from "./pages/login";
import { Users } from "./pages/users";
import { href, parse, type Route } from "./router";
import { asApiError, ErrorNote } from "./ui/common";

const api = new Api();

export function App() {
  const [route, setRoute] = useState<Route>(parse(location.hash));
  const [user, setUser] = useState<User | null>(null);
  const [checked, setChecked] = useState(false);
  const [error, setError] = useState<ReturnType<typeof asApiError> | null>(null);

  useEffect(() => {
    const onHash = () => setRoute(parse(location.hash));
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    // A token in this tab, or a session this browser signed in to (after
    // an SSO sign-in, or in a new tab): either gives the user.
    (api.loggedIn ? Promise.resolve(true) : api.resume())
      .then((ok) => (ok ? api.me() : null))
      .then(setUser)
      .catch((e: unknown) => {
        const err = asApiError(e);
        if (!err.unauthorized) setError(err);
      })
      .finally(() => setChecked(true));
  }, []);

  if (!checked) return null;
  if (!user || route.page === "login") {
    return (
      <Login
        api={api}
        onLogin={(u) => {
          setUser(u);
          setError(null);
          location.hash = href({ page: "functions" });
        }}
      />
    );
  }
  return (
    <>
      <header>
        <a class="brand" href={href({ page: "functions" })}>
          Olincloud
        </a>
        <nav class="main">
          <a href={href({ page: "functions" })}>Functions</a>
          <a href={href({ page: "audit" })}>Audit log</a>
          {user.role === "admin" ? <a href={href({ page: "users" })}>Users</a> : null}
        </nav>
        <a class="who" href={href({ page: "account" })}>
          {user.username}
        </a>
        <button
          onClick={() =>
            void api.logout().then(() => {
              setUser(null);
              location.hash = href({ page: "login" });
            })
          }
        >
          Log out
        </button>
      </header>
      <ErrorNote error={error} />
      {route.page === "functions" ? <Functions api={api} /> : null}
      {route.page === "function" ? <FunctionPage api={api} name={route.name} tab={route.tab} /> : null}
      {route.page === "execution" ? <ExecutionPage api={api} id={route.id} /> : null}
      {route.page === "users" ? (
        user.role === "admin" ? (
          <Users api={api} me={user} />
        ) : (
          <main>
            <h1>Users</h1>
            <p class="error">Managing users needs the admin role.</p>
          </main>
        )
      ) : null}
      {route.page === "audit" ? <Audit api={api} /> : null}
      {route.page === "account" ? <Account api={api} me={user} /> : null}
      {route.page === "not-found" ? (
        <main>
          <h1>Not found</h1>
          <p>
            There is no page at <code>{route.path}</code>. <a href={href({ page: "functions" })}>Your functions</a>.
          </p>
        </main>
      ) : null}
    </>
  );
}
