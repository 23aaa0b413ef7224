import { describe, expect, it } from "vitest";
import { Api, ApiError, type Fetch, type TokenStore } from "./api";

class MemoryStore implements TokenStore {
  private m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A fetch answering from `routes` ("METHOD /path" -> [status, body]) and recording calls. */
function fake(routes: Record<string, [number, unknown]>): { fetch: Fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetchFn: Fetch = async (url, init) => {
    const method = init?.method ?? "GET";
    calls.push({
      url,
      method,
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    });
    const route = routes[`${method} ${url}`];
    if (!route) return new Response("no route", { status: 404 });
    const [status, body] = route;
    if (status === 204) return new Response(null, { status });
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status });
  };
  return { fetch: fetchFn, calls };
}

const T = "2026-12-03T06:00:00.123456Z";
const ADA = {
  id: "u",
  username: "ada",
  role: "user",
  created_at: T,
  quota: { calls_per_month: null, fuel_per_month: null },
  disabled_at: null,
};
const DEPLOYMENT = {
  id: "d",
  version: 2,
  canary_version: 3,
  canary_percent: 10,
  active: true,
  kind: "deploy",
  created_at: T,
};

describe("Api", () => {
  it("buys a fresh token of the session when one expires, once, and retries", async () => {
    const store = new MemoryStore();
    store.setItem("olincloud.token", "old");
    let sessions = 0;
    const calls: string[] = [];
    const fetchFn: Fetch = async (url, init) => {
      const auth = ((init?.headers ?? {}) as Record<string, string>).authorization;
      calls.push(`${init?.method ?? "GET"} ${url} ${auth ?? "-"}`);
      if (url === "/v1/auth/session") {
        sessions += 1;
        return new Response(JSON.stringify({ token: `new${sessions}`, id: "s", expires_at: T, user: ADA }), { status: 201 });
      }
      if (auth === "Bearer new1") return new Response(JSON.stringify({ ...ADA, token_id: "s" }), { status: 200 });
      return new Response(JSON.stringify({ error: { code: "unauthorized", message: "expired" } }), { status: 401 });
    };
    const api = new Api("/v1", store, fetchFn);
    const me = await api.me();
    expect(me.username).toBe("ada");
    expect(calls).toEqual(["GET /v1/me Bearer old", "POST /v1/auth/session -", "GET /v1/me Bearer new1"]);
    // A token the fresh one cannot replace: the error, after one try.
    store.setItem("olincloud.token", "revoked");
    await expect(api.me()).rejects.toMatchObject({ status: 401 });
    expect(sessions).toBe(2);
    expect(api.loggedIn).toBe(false);
  });

  it("resumes a browser session, or says there is none", async () => {
    const store = new MemoryStore();
    const none = fake({ "POST /v1/auth/session": [401, { error: { code: "unauthorized", message: "no session" } }] });
    expect(await new Api("/v1", store, none.fetch).resume()).toBe(false);
    expect(store.getItem("olincloud.token")).toBeNull();
    const live = fake({ "POST /v1/auth/session": [201, { token: "s1", id: "s", expires_at: T, user: ADA }] });
    const api = new Api("/v1", store, live.fetch);
    expect(await api.resume()).toBe(true);
    expect(api.loggedIn).toBe(true);
    expect(api.ssoUrl("corp")).toBe("/v1/auth/sso/corp/login?return_to=%2F");
  });

  it("logs in, sends the bearer token, and forgets it on logout", async () => {
    const store = new MemoryStore();
    const { fetch, calls } = fake({
      "POST /v1/tokens": [201, { token: "t0k", id: "tid", expires_at: T, user: ADA }],
      "GET /v1/me": [200, { ...ADA, token_id: "tid" }],
      "DELETE /v1/tokens/tid": [204, null],
    });
    const api = new Api("/v1", store, fetch);
    expect(api.loggedIn).toBe(false);
    const user = await api.login("ada", "pw");
    expect(user.username).toBe("ada");
    expect(calls[0].body).toEqual({ username: "ada", password: "pw", session: true });
    expect(api.loggedIn).toBe(true);
    await api.me();
    expect(calls[1].headers.authorization).toBe("Bearer t0k");
    await api.logout();
    expect(calls.map((c) => `${c.method} ${c.url}`)).toContain("DELETE /v1/tokens/tid");
    expect(api.loggedIn).toBe(false);
  });

  it("turns the API's error body into an ApiError and drops a rejected token", async () => {
    const store = new MemoryStore();
    store.setItem("olincloud.token", "old");
    const { fetch } = fake({
      "GET /v1/me": [401, { error: { code: "unauthorized", message: "the token is revoked" } }],
      "GET /v1/functions/nope": [404, { error: { code: "not_found", message: "no function named nope" } }],
    });
    const api = new Api("/v1", store, fetch);
    await expect(api.fn("nope")).rejects.toMatchObject({ status: 404, code: "not_found", message: "no function named nope" });
    const err = await api.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).unauthorized).toBe(true);
    expect(api.loggedIn).toBe(false);
  });

  it("explains failures that are not the API's own", async () => {
    const html = fake({ "GET /v1/me": [502, "<html>Bad Gateway</html>"] });
    await expect(new Api("/v1", new MemoryStore(), html.fetch).me()).rejects.toMatchObject({
      status: 502,
      code: "http_error",
      message: "The server answered 502: <html>Bad Gateway</html>",
    });
    const down: Fetch = async () => {
      throw new TypeError("Failed to fetch");
    };
    await expect(new Api("/v1", new MemoryStore(), down).me()).rejects.toMatchObject({
      status: 0,
      code: "network",
      message: "Cannot reach the control plane (Failed to fetch).",
    });
  });

  it("builds paths and queries", async () => {
    const { fetch, calls } = fake({
      "GET /v1/functions/a-b/executions?outcome=TIMEOUT&limit=50": [200, { items: [], next: null }],
      "POST /v1/functions/a-b/deployments": [201, DEPLOYMENT],
      "POST /v1/functions/a-b/rollback": [201, { ...DEPLOYMENT, canary_version: null, canary_percent: 0, kind: "rollback" }],
      "PUT /v1/functions/a-b/env/API_KEY": [204, null],
    });
    const api = new Api("/v1", new MemoryStore(), fetch);
    await api.executions("a-b", { outcome: "TIMEOUT", limit: 50, since: "" });
    await api.deploy("a-b", 2, { version: 3, percent: 10 });
    await api.rollback("a-b");
    await api.setEnv("a-b", "API_KEY", "s3cr3t", true);
    expect(calls[1].body).toEqual({ version: 2, canary: { version: 3, percent: 10 } });
    expect(calls[2].body).toEqual({});
    expect(calls[3].body).toEqual({ value: "s3cr3t", secret: true });
  });

  it("refuses answers that are not what the API document describes", async () => {
    const { fetch } = fake({
      "GET /v1/me": [200, { ...ADA, role: "root", token_id: "tid" }],
      "GET /v1/functions/a-b/deployments": [200, { items: [{ ...DEPLOYMENT, version: "2" }], next: null }],
      "GET /v1/usage": [200, "not json"],
    });
    const api = new Api("/v1", new MemoryStore(), fetch);
    await expect(api.me()).rejects.toMatchObject({ code: "bad_answer" });
    const err = await api.deployments("a-b").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toContain("/items/0/version");
    await expect(api.myUsage()).rejects.toMatchObject({ code: "bad_answer" });
  });
});
