// The control plane's /v1 API, as the panel uses it. Same origin as the
// panel. A sign-in (password or SSO) starts a browser session: its refresh
// token is an HttpOnly cookie only /v1/auth/session sees, and it buys bearer
// tokens of a few minutes, kept in sessionStorage (gone with the tab) and sent
// as a header, never a cookie. A 401 buys a fresh one once and retries. Every
// failure becomes an ApiError whose message is fit to show a person.

import { Validator } from "@cfworker/json-schema";
import { components as documented } from "../../docs/openapi.json";
import type { components } from "./schema";

/** The API's types, generated from its OpenAPI document (src/schema.d.ts). */
export type Schemas = components["schemas"];
export type User = Schemas["User"];
export type Limits = Schemas["Limits"];
export type ActiveDeployment = Schemas["ActiveDeployment"];
/** One HTTP header, in the order it was sent. */
export type Header = Schemas["Header"];
export type Fn = Schemas["Function"];
export type Version = Schemas["Version"];
export type Deployment = Schemas["Deployment"];
export type EnvVar = Schemas["EnvValue"];
export type Execution = Schemas["Execution"];
/** This calendar month (UTC) against the user's quotas. */
export type Quota = Schemas["QuotaStanding"];
export type Usage = Schemas["Usage"];
export type SeriesPoint = Schemas["SeriesPoint"];
export type UsageSeries = Schemas["UsageSeries"];
export type TryIt = Schemas["TryIt"];
export type TryItMethod = Schemas["TryItMethod"];
export type TryItResult = Schemas["TryItResult"];
export type FunctionPatch = Schemas["FunctionPatch"];
export type SignInMethods = Schemas["SignInMethods"];
export type UserPatch = Schemas["UserPatch"];
export type Role = Schemas["Role"];
export type AuditEntry = Schemas["AuditEntry"];
export type TokenInfo = Schemas["TokenInfo"];

const validators = new Map<keyof Schemas, Validator>();

/**
 * Checks that `value` is a `name` as the API document describes it (the
 * boundary between the server and every page): a server that answers
 * something else is an error here, not a blank field three screens later.
 * The validator interprets the schema (no generated code: the panel's CSP
 * forbids eval).
 */
export function checked<K extends keyof Schemas>(name: K, value: unknown): Schemas[K] {
  let v = validators.get(name);
  if (!v) {
    v = new Validator({ $ref: `#/components/schemas/${name}`, components: documented } as object, "2020-12", true);
    validators.set(name, v);
  }
  const result = v.validate(value);
  if (!result.valid) {
    // The deepest error names the field that is wrong.
    const first = result.errors.reduce<(typeof result.errors)[number] | undefined>(
      (deepest, e) => (deepest && deepest.instanceLocation.length >= e.instanceLocation.length ? deepest : e),
      undefined,
    );
    const where = first?.instanceLocation.replace(/^#/, "") || "the answer";
    throw new ApiError(0, "bad_answer", `The control plane answered with an unexpected ${name} (${where}: ${first?.error ?? "invalid"}).`);
  }
  return value as Schemas[K];
}

/** A failed API call: the server's error code and message, or what went wrong on the way. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The session is gone (expired or revoked token): log in again. */
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  until?: string;
  limit?: number;
  after?: string;
}

export interface ExecutionFilter {
  outcome?: string;
  since?: string;
  until?: string;
  limit?: number;
  after?: string;
}

const TOKEN_KEY = "olincloud.token";

/** Where the token is kept; tests pass a Map-backed one. */
export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Reads an error body of any shape into an ApiError. */
export async function errorFrom(resp: Response): Promise<ApiError> {
  const text = await resp.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code && body.error.message) {
      return new ApiError(resp.status, body.error.code, body.error.message);
    }
  } catch {
    // not JSON: fall through
  }
  const excerpt = text.trim().slice(0, 200);
  return new ApiError(resp.status, "http_error", `The server answered ${resp.status}${excerpt ? `: ${excerpt}` : ""}`);
}

export class Api {
  constructor(
    private readonly base: string = "/v1",
    private readonly store: TokenStore = sessionStorage,
    private readonly fetchFn: Fetch = (input, init) => fetch(input, init),
  ) {}

  get loggedIn(): boolean {
    return this.store.getItem(TOKEN_KEY) !== null;
  }

  /** Calls the API; the answer is checked against `schema` (`null`: no body). */
  private async request<K extends keyof Schemas>(method: string, path: string, schema: K, body?: unknown): Promise<Schemas[K]>;
  private async request(method: string, path: string, schema: null, body?: unknown): Promise<void>;
  private async request(method: string, path: string, schema: keyof Schemas | null, body?: unknown): Promise<unknown> {
    let resp = await this.send(method, path, body);
    // The session's token expired: buy the next one with the session's
    // cookie, once, and try again.
    if (resp.status === 401 && this.store.getItem(TOKEN_KEY) !== null && (await this.resume())) {
      resp = await this.send(method, path, body);
    }
    if (!resp.ok) {
      const err = await errorFrom(resp);
      if (err.unauthorized) this.store.removeItem(TOKEN_KEY);
      throw err;
    }
    if (schema === null) return undefined;
    let answer: unknown;
    try {
      answer = await resp.json();
    } catch {
      throw new ApiError(resp.status, "bad_answer", `The control plane answered ${resp.status} without the JSON expected.`);
    }
    return checked(schema, answer);
  }

  /** One request with the current token, if any. */
  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    const token = this.store.getItem(TOKEN_KEY);
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await this.fetchFn(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, "network", `Cannot reach the control plane (${e instanceof Error ? e.message : String(e)}).`);
    }
  }

  /** Logs in with a password: a browser session, whose first token is kept. */
  async login(username: string, password: string): Promise<User> {
    const t = await this.request("POST", "/tokens", "Token", { username, password, session: true });
    this.store.setItem(TOKEN_KEY, t.token);
    return t.user;
  }

  /**
   * Buys a token of this browser's session (its cookie, set at a sign-in);
   * false when there is no live session.
   */
  async resume(): Promise<boolean> {
    let resp: Response;
    try {
      resp = await this.fetchFn(`${this.base}/auth/session`, { method: "POST", headers: {} });
    } catch {
      return false;
    }
    if (!resp.ok) {
      this.store.removeItem(TOKEN_KEY);
      return false;
    }
    const t = checked("Token", await resp.json());
    this.store.setItem(TOKEN_KEY, t.token);
    return true;
  }

  /** How one may sign in here: passwords, and the OpenID providers. */
  signInMethods(): Promise<SignInMethods> {
    return this.request("GET", "/auth/providers", "SignInMethods");
  }

  /** Where the browser goes to sign in through provider `id`, coming back to the panel. */
  ssoUrl(id: string): string {
    return `${this.base}/auth/sso/${encodeURIComponent(id)}/login?return_to=${encodeURIComponent("/")}`;
  }

  /** Ends the session (its cookie and every token it bought) and forgets the token. */
  async logout(): Promise<void> {
    try {
      await this.fetchFn(`${this.base}/auth/session`, { method: "DELETE", headers: {} });
      const me = await this.request("GET", "/me", "Me");
      await this.request("DELETE", `/tokens/${encodeURIComponent(me.token_id)}`, null);
    } catch {
      // already ended, expired or revoked: forgetting it is all that is left
    } finally {
      this.store.removeItem(TOKEN_KEY);
    }
  }

  me(): Promise<User> {
    return this.request("GET", "/me", "Me");
  }

  functions(after?: string, limit = 100): Promise<Schemas["FunctionList"]> {
    return this.request("GET", `/functions${query({ after, limit })}`, "FunctionList");
  }

  fn(name: string): Promise<Fn> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}`, "Function");
  }

  createFunction(name: string, visibility: "public" | "private" = "public"): Promise<Fn> {
    return this.request("POST", "/functions", "Function", { name, visibility });
  }

  updateFunction(name: string, patch: FunctionPatch): Promise<Fn> {
    return this.request("PATCH", `/functions/${encodeURIComponent(name)}`, "Function", patch);
  }

  deleteFunction(name: string): Promise<void> {
    return this.request("DELETE", `/functions/${encodeURIComponent(name)}`, null);
  }

  versions(name: string): Promise<Schemas["VersionList"]> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/versions`, "VersionList");
  }

  deployments(name: string): Promise<Schemas["DeploymentList"]> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/deployments`, "DeploymentList");
  }

  deploy(name: string, version: number, canary?: { version: number; percent: number }): Promise<Deployment> {
    return this.request("POST", `/functions/${encodeURIComponent(name)}/deployments`, "Deployment", canary ? { version, canary } : { version });
  }

  rollback(name: string, version?: number): Promise<Deployment> {
    return this.request("POST", `/functions/${encodeURIComponent(name)}/rollback`, "Deployment", version === undefined ? {} : { version });
  }

  /** Uploads a module (application/wasm) with upload progress; resolves to the new version. */
  async uploadVersion(name: string, module: Blob, onProgress: (sent: number, total: number) => void): Promise<Version> {
    try {
      return await this.uploadOnce(name, module, onProgress);
    } catch (e) {
      // The session's token expired: buy the next one and upload again.
      if (e instanceof ApiError && e.unauthorized && (await this.resume())) return this.uploadOnce(name, module, onProgress);
      throw e;
    }
  }

  private uploadOnce(name: string, module: Blob, onProgress: (sent: number, total: number) => void): Promise<Version> {
    const token = this.store.getItem(TOKEN_KEY);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${this.base}/functions/${encodeURIComponent(name)}/versions`);
      xhr.setRequestHeader("content-type", "application/wasm");
      if (token) xhr.setRequestHeader("authorization", `Bearer ${token}`);
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : module.size);
      xhr.onerror = () => reject(new ApiError(0, "network", "The upload failed: cannot reach the control plane."));
      xhr.onload = async () => {
        const resp = new Response(xhr.responseText, { status: xhr.status });
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(checked("Version", await resp.json()));
          } catch (e) {
            reject(e instanceof ApiError ? e : new ApiError(xhr.status, "bad_answer", "The upload's answer is not JSON."));
          }
        } else {
          const err = await errorFrom(resp);
          if (err.unauthorized) this.store.removeItem(TOKEN_KEY);
          reject(err);
        }
      };
      xhr.send(module);
    });
  }

  env(name: string): Promise<Schemas["EnvList"]> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/env`, "EnvList");
  }

  setEnv(name: string, variable: string, value: string, secret: boolean): Promise<void> {
    return this.request("PUT", `/functions/${encodeURIComponent(name)}/env/${encodeURIComponent(variable)}`, null, { value, secret });
  }

  unsetEnv(name: string, variable: string): Promise<void> {
    return this.request("DELETE", `/functions/${encodeURIComponent(name)}/env/${encodeURIComponent(variable)}`, null);
  }

  executions(name: string, filter: ExecutionFilter = {}): Promise<Schemas["ExecutionList"]> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/executions${query({ ...filter })}`, "ExecutionList");
  }

  /** Calls the function through the gateway, by way of control (same origin). */
  invoke(name: string, call: TryIt): Promise<TryItResult> {
    return this.request("POST", `/functions/${encodeURIComponent(name)}/invoke`, "TryItResult", call);
  }

  execution(id: string): Promise<Execution> {
    return this.request("GET", `/executions/${encodeURIComponent(id)}`, "Execution");
  }

  usageSeries(name: string, since: string, buckets: number): Promise<UsageSeries> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/usage/series${query({ since, buckets })}`, "UsageSeries");
  }

  /** All of the caller's functions, with their quota standing this month. */
  myUsage(): Promise<Usage> {
    return this.request("GET", "/usage", "Usage");
  }

  /** Admins: the users, by name. */
  users(after?: string, limit = 100): Promise<Schemas["UserList"]> {
    return this.request("GET", `/users${query({ after, limit })}`, "UserList");
  }

  createUser(username: string, password: string, role: Role): Promise<User> {
    return this.request("POST", "/users", "User", { username, password, role });
  }

  updateUser(name: string, patch: UserPatch): Promise<User> {
    return this.request("PATCH", `/users/${encodeURIComponent(name)}`, "User", patch);
  }

  /** Admins: sets a user's password; every token of theirs is revoked. */
  resetPassword(name: string, password: string): Promise<Schemas["Revoked"]> {
    return this.request("PUT", `/users/${encodeURIComponent(name)}/password`, "Revoked", { password });
  }

  revokeUserTokens(name: string): Promise<Schemas["Revoked"]> {
    return this.request("DELETE", `/users/${encodeURIComponent(name)}/tokens`, "Revoked");
  }

  /** Admins: deletes a user; with `cascade`, their functions too (else 409 while they own any). */
  deleteUser(name: string, cascade: boolean): Promise<void> {
    return this.request("DELETE", `/users/${encodeURIComponent(name)}${query({ cascade: cascade ? "true" : undefined })}`, null);
  }

  /** Your own password; your other tokens and sessions are revoked. */
  changePassword(current_password: string, new_password: string): Promise<Schemas["Revoked"]> {
    return this.request("PUT", "/me/password", "Revoked", { current_password, new_password });
  }

  /** Your tokens and sessions (never their secrets). */
  tokens(): Promise<Schemas["TokenList"]> {
    return this.request("GET", "/tokens", "TokenList");
  }

  revokeToken(id: string): Promise<void> {
    return this.request("DELETE", `/tokens/${encodeURIComponent(id)}`, null);
  }

  /** The audit log, newest first: everything for admins, your own for users. */
  audit(filter: AuditFilter = {}): Promise<Schemas["AuditList"]> {
    return this.request("GET", `/audit${query({ ...filter })}`, "AuditList");
  }

  usage(name: string, since?: string, until?: string): Promise<Usage> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/usage${query({ since, until })}`, "Usage");
  }
}
