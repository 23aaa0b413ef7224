// Hash routes, so control serves one page at `/` and never needs to know the
// panel's paths: #/functions, #/functions/<name>, #/functions/<name>/executions,
// #/executions/<id>, #/users, #/audit, #/account, #/login.

export type Route =
  | { page: "login" }
  | { page: "functions" }
  | { page: "function"; name: string; tab: "overview" | "executions" | "usage" | "settings" }
  | { page: "execution"; id: string }
  | { page: "users" }
  | { page: "audit" }
  | { page: "account" }
  | { page: "not-found"; path: string };

export function parse(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/functions";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: "functions" };
  switch (parts[0]) {
    case "login":
    case "users":
    case "audit":
    case "account":
      if (parts.length === 1) return { page: parts[0] };
      break;
    case "functions":
      if (parts.length === 1) return { page: "functions" };
      if (parts.length === 2) return { page: "function", name: parts[1], tab: "overview" };
      if (parts.length === 3 && (parts[2] === "executions" || parts[2] === "usage" || parts[2] === "settings")) {
        return { page: "function", name: parts[1], tab: parts[2] };
      }
      break;
    case "executions":
      if (parts.length === 2) return { page: "execution", id: parts[1] };
      break;
  }
  return { page: "not-found", path };
}

export function href(route: Route): string {
  switch (route.page) {
    case "login":
    case "users":
    case "audit":
    case "account":
      return `#/${route.page}`;
    case "functions":
      return "#/functions";
    case "function":
      return route.tab === "overview"
        ? `#/functions/${encodeURIComponent(route.name)}`
        : `#/functions/${encodeURIComponent(route.name)}/${route.tab}`;
    case "execution":
      return `#/executions/${encodeURIComponent(route.id)}`;
    case "not-found":
      return `#${route.path}`;
  }
}
