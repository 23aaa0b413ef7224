// The control plane's /v1 API, as the panel uses it. Same origin as the
// panel; the token lives in sessionStorage (gone with the tab) and goes out as
// a bearer header, never a cookie. Every failure becomes an ApiError whose
// message is fit to show a person.

export interface User {
  id: string;
  username: string;
  role: "admin" | "user";
  created_at: string;
}

export interface Limits {
  fuel: number | null;
  memory_bytes: number | null;
  wall_ms: number | null;
  max_output_bytes: number | null;
  host_budget_bytes: number | null;
}

export interface ActiveDeployment {
  id: string;
  version: number;
  canary_version: number | null;
  canary_percent: number | null;
}

/** One HTTP header, in the order it was sent. */
export interface Header {
  name: string;
  value: string;
}

export interface Fn {
  id: string;
  name: string;
  visibility: "public" | "private";
  url: string;
  limits: Limits;
  egress_allow: string[];
  async_max_attempts: number | null;
  /** Calls per second admitted across every gateway, with a burst; null: none. */
  rate_limit: { per_second: number; burst: number } | null;
  /** Most calls running at once; null: none. */
  max_concurrency: number | null;
  deployment: ActiveDeployment | null;
  /** Calls that started in the last hour, and how many failed. */
  last_hour: { calls: number; errors: number };
  created_at: string;
  updated_at: string;
}

export interface Version {
  id: string;
  number: number;
  sha256: string;
  size_bytes: number;
  abi: "olin" | "wasi_p1";
  imports: string[];
  created_at: string;
}

export interface Deployment {
  id: string;
  version: number;
  canary_version: number | null;
  canary_percent: number;
  active: boolean;
  kind: "deploy" | "rollback";
  created_at: string;
}

export interface EnvVar {
  name: string;
  value: string | null;
  secret: boolean;
  updated_at: string;
}

export interface Execution {
  invocation_id: string;
  function: string;
  deployment_id: string;
  module_sha256: string;
  outcome: string;
  status: number;
  exit_code: number;
  usage: { wall_us: number; fuel: number; peak_memory_bytes: number; bytes_in: number; bytes_out: number };
  stderr_tail: string;
  error: string;
  worker_id: string;
  method: string;
  path: string;
  async: boolean;
  /** The response headers the function set. */
  headers: Header[];
  started_at: string;
  finished_at: string;
}

/** This calendar month (UTC) against the user's quotas. */
export interface Quota {
  month: string;
  calls: number;
  fuel: number;
  calls_per_month: number | null;
  fuel_per_month: number | null;
  /** Which quota is spent (calls are refused until `resets_at`), if one is. */
  exceeded: "calls" | "fuel" | null;
  resets_at: string;
}

export interface Usage {
  /** Only in the caller's own usage (`GET /v1/usage`). */
  quota?: Quota;
  since: string | null;
  until: string | null;
  calls: number;
  errors: number;
  errors_by_outcome: Record<string, number>;
  wall_us: { p50: number | null; p99: number | null };
  fuel: number;
  bytes_in: number;
  bytes_out: number;
}

export interface SeriesPoint {
  start: string;
  calls: number;
  errors: number;
  errors_by_outcome: Record<string, number>;
  wall_us: { p50: number | null; p99: number | null };
  fuel: number;
}

export interface UsageSeries {
  function: string;
  since: string;
  until: string;
  step_seconds: number;
  points: SeriesPoint[];
}

export interface TryItResult {
  url: string;
  status: number;
  headers: Header[];
  body: string | null;
  body_base64: string | null;
  truncated: boolean;
}

export interface Page<T> {
  items: T[];
  next: string | null;
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

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    const token = this.store.getItem(TOKEN_KEY);
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let resp: Response;
    try {
      resp = await this.fetchFn(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, "network", `Cannot reach the control plane (${e instanceof Error ? e.message : String(e)}).`);
    }
    if (!resp.ok) {
      const err = await errorFrom(resp);
      if (err.unauthorized) this.store.removeItem(TOKEN_KEY);
      throw err;
    }
    if (resp.status === 204) return undefined as T;
    return (await resp.json()) as T;
  }

  async login(username: string, password: string): Promise<User> {
    const t = await this.request<{ token: string; user: User }>("POST", "/tokens", { username, password });
    this.store.setItem(TOKEN_KEY, t.token);
    return t.user;
  }

  /** Revokes the token (best effort) and forgets it. */
  async logout(): Promise<void> {
    try {
      const me = await this.request<{ token_id: string }>("GET", "/me");
      await this.request<void>("DELETE", `/tokens/${encodeURIComponent(me.token_id)}`);
    } catch {
      // already expired or revoked: forgetting it is all that is left
    } finally {
      this.store.removeItem(TOKEN_KEY);
    }
  }

  me(): Promise<User> {
    return this.request("GET", "/me");
  }

  functions(after?: string, limit = 100): Promise<Page<Fn>> {
    return this.request("GET", `/functions${query({ after, limit })}`);
  }

  fn(name: string): Promise<Fn> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}`);
  }

  createFunction(name: string, visibility: "public" | "private" = "public"): Promise<Fn> {
    return this.request("POST", "/functions", { name, visibility });
  }

  updateFunction(
    name: string,
    patch: Partial<Pick<Fn, "visibility" | "egress_allow" | "max_concurrency">> & {
      limits?: Partial<Limits>;
      rate_limit?: { per_second: number; burst?: number | null };
    },
  ): Promise<Fn> {
    return this.request("PATCH", `/functions/${encodeURIComponent(name)}`, patch);
  }

  deleteFunction(name: string): Promise<void> {
    return this.request("DELETE", `/functions/${encodeURIComponent(name)}`);
  }

  versions(name: string): Promise<{ items: Version[] }> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/versions`);
  }

  deployments(name: string): Promise<{ items: Deployment[] }> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/deployments`);
  }

  deploy(name: string, version: number, canary?: { version: number; percent: number }): Promise<Deployment> {
    return this.request("POST", `/functions/${encodeURIComponent(name)}/deployments`, canary ? { version, canary } : { version });
  }

  rollback(name: string, version?: number): Promise<Deployment> {
    return this.request("POST", `/functions/${encodeURIComponent(name)}/rollback`, version === undefined ? {} : { version });
  }

  /** Uploads a module (application/wasm) with upload progress; resolves to the new version. */
  uploadVersion(name: string, module: Blob, onProgress: (sent: number, total: number) => void): Promise<Version> {
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
          resolve((await resp.json()) as Version);
        } else {
          const err = await errorFrom(resp);
          if (err.unauthorized) this.store.removeItem(TOKEN_KEY);
          reject(err);
        }
      };
      xhr.send(module);
    });
  }

  env(name: string): Promise<{ items: EnvVar[] }> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/env`);
  }

  setEnv(name: string, variable: string, value: string, secret: boolean): Promise<void> {
    return this.request("PUT", `/functions/${encodeURIComponent(name)}/env/${encodeURIComponent(variable)}`, { value, secret });
  }

  unsetEnv(name: string, variable: string): Promise<void> {
    return this.request("DELETE", `/functions/${encodeURIComponent(name)}/env/${encodeURIComponent(variable)}`);
  }

  executions(name: string, filter: ExecutionFilter = {}): Promise<Page<Execution>> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/executions${query({ ...filter })}`);
  }

  /** Calls the function through the gateway, by way of control (same origin). */
  invoke(
    name: string,
    call: { method: string; path: string; body: string; headers?: Header[]; invoke_key?: string },
  ): Promise<TryItResult> {
    return this.request("POST", `/functions/${encodeURIComponent(name)}/invoke`, call);
  }

  execution(id: string): Promise<Execution> {
    return this.request("GET", `/executions/${encodeURIComponent(id)}`);
  }

  usageSeries(name: string, since: string, buckets: number): Promise<UsageSeries> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/usage/series${query({ since, buckets })}`);
  }

  /** All of the caller's functions, with their quota standing this month. */
  myUsage(): Promise<Usage> {
    return this.request("GET", "/usage");
  }

  usage(name: string, since?: string, until?: string): Promise<Usage> {
    return this.request("GET", `/functions/${encodeURIComponent(name)}/usage${query({ since, until })}`);
  }
}
