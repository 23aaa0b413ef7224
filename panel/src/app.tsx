import { useEffect, useState } from "preact/hooks";
import { Api, type User } from "./api";
import { ExecutionPage } from "./pages/execution";
import { FunctionPage } from "./pages/function";
import { Functions } from "./pages/functions";
import { Login } from "./pages/login";
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
        <span class="who">{user.username}</span>
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
