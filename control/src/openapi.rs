//! The OpenAPI 3 document served at `/v1/openapi.json`, built from the
//! route table (`api::table`) and the descriptions below; a test checks that
//! every route has its description and every description a route.

use serde_json::{Map, Value, json};

/// Per operation: method, path, summary, request body schema, success
/// status, response schema (`None`: no body).
type Doc = (&'static str, &'static str, &'static str, Option<&'static str>, u16, Option<&'static str>);

pub(crate) const DOCS: &[Doc] = &[
    ("POST", "/v1/tokens", "Log in: username and password for a bearer token", Some("Login"), 201, Some("Token")),
    ("GET", "/v1/tokens", "List your tokens (never their secrets)", None, 200, Some("TokenList")),
    ("DELETE", "/v1/tokens/{id}", "Revoke a token at once", None, 204, None),
    ("GET", "/v1/me", "Who the token belongs to", None, 200, Some("User")),
    ("POST", "/v1/users", "Create a user (admin)", Some("NewUser"), 201, Some("User")),
    ("GET", "/v1/users", "List users (admin), paginated", None, 200, Some("UserList")),
    ("PATCH", "/v1/users/{name}", "Set a user's monthly quotas (admin)", Some("UserPatch"), 200, Some("User")),
    ("POST", "/v1/functions", "Create a function", Some("NewFunction"), 201, Some("Function")),
    ("GET", "/v1/functions", "List your functions, paginated by name", None, 200, Some("FunctionList")),
    ("GET", "/v1/functions/{name}", "Show a function", None, 200, Some("Function")),
    (
        "PATCH",
        "/v1/functions/{name}",
        "Change visibility, limits, egress allow-list, async attempts, rate or concurrency limit",
        Some("FunctionPatch"),
        200,
        Some("Function"),
    ),
    ("DELETE", "/v1/functions/{name}", "Delete a function and its route (modules are kept)", None, 204, None),
    (
        "POST",
        "/v1/functions/{name}/versions",
        "Upload a module (application/wasm, or multipart field `module`); validated, stored by sha256",
        Some("Module"),
        201,
        Some("Version"),
    ),
    ("GET", "/v1/functions/{name}/versions", "List versions, newest first", None, 200, Some("VersionList")),
    (
        "POST",
        "/v1/functions/{name}/deployments",
        "Deploy a version, optionally with a canary share for a second",
        Some("NewDeployment"),
        201,
        Some("Deployment"),
    ),
    ("GET", "/v1/functions/{name}/deployments", "Deployment history, newest first", None, 200, Some("DeploymentList")),
    (
        "POST",
        "/v1/functions/{name}/rollback",
        "Re-point to an earlier version (default: the previous one)",
        Some("Rollback"),
        201,
        Some("Deployment"),
    ),
    (
        "POST",
        "/v1/functions/{name}/invoke",
        "Call the function through the gateway and return its answer (the panel's try-it)",
        Some("TryIt"),
        200,
        Some("TryItResult"),
    ),
    (
        "GET",
        "/v1/functions/{name}/executions",
        "Executions, newest first; filters outcome, since, until; paging limit, after",
        None,
        200,
        Some("ExecutionList"),
    ),
    ("GET", "/v1/functions/{name}/usage", "Usage of a function over since..until", None, 200, Some("Usage")),
    (
        "GET",
        "/v1/functions/{name}/usage/series",
        "Usage of a function over time in equal buckets (since, until: default the last 24 hours; buckets: default 48)",
        None,
        200,
        Some("UsageSeries"),
    ),
    ("GET", "/v1/executions/{id}", "One invocation by id", None, 200, Some("Execution")),
    ("GET", "/v1/usage", "Usage of all your functions over since..until", None, 200, Some("Usage")),
    ("GET", "/v1/functions/{name}/env", "Environment values (secrets as null)", None, 200, Some("EnvList")),
    ("PUT", "/v1/functions/{name}/env/{var}", "Set an environment value", Some("SetEnv"), 204, None),
    ("DELETE", "/v1/functions/{name}/env/{var}", "Unset an environment value", None, 204, None),
    ("POST", "/v1/functions/{name}/keys", "Create an invoke key (shown once)", Some("NewKey"), 201, Some("InvokeKey")),
    ("GET", "/v1/functions/{name}/keys", "List invoke keys", None, 200, Some("InvokeKeyList")),
    ("DELETE", "/v1/functions/{name}/keys/{id}", "Revoke an invoke key", None, 204, None),
    ("GET", "/v1/openapi.json", "This document", None, 200, None),
];

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

/// A request body: like [`obj`], and the server refuses fields it does not
/// know (`deny_unknown_fields`), so the document says so.
fn input(props: Value, required: &[&str]) -> Value {
    let mut o = obj(props, required);
    o["additionalProperties"] = json!(false);
    o
}

/// The maxima the server checks requests against, which depend on its
/// configuration: the document states them as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Largest `limits.memory_bytes` a function may have.
    pub(crate) max_memory_bytes: u64,
    /// Longest token lifetime (`expires_in`), in seconds.
    pub(crate) token_ttl_secs: u64,
    /// Largest rate limit (and burst) a function may set.
    pub(crate) max_rate: u32,
    /// Largest concurrency limit a function may set.
    pub(crate) max_concurrency: u32,
}

impl Default for Bounds {
    fn default() -> Self {
        let caps = crate::quota::CallLimitMaxima::default();
        Bounds {
            max_memory_bytes: 1 << 30,
            token_ttl_secs: 30 * 24 * 3600,
            max_rate: caps.rate_cap(),
            max_concurrency: caps.concurrency_cap(),
        }
    }
}

/// Function names: DNS labels.
const FUNCTION_NAME: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
/// Environment variable names.
const VAR_NAME: &str = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";
/// Usernames.
const USERNAME: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
/// An egress allow-list entry: a host name whose last label starts with a
/// letter (no IP literals), or `*.domain`, with an optional port.
const EGRESS_ENTRY: &str = "^(\\*\\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?$";

fn list_of(item: &str) -> Value {
    obj(
        json!({"items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next": {"type": "string", "nullable": true}}),
        &["items"],
    )
}

fn schemas(b: Bounds) -> Value {
    let s = json!({"type": "string"});
    let i = json!({"type": "integer"});
    let t = json!({"type": "string", "format": "date-time"});
    let nt = json!({"type": "string", "format": "date-time", "nullable": true});
    let ni = json!({"type": "integer", "nullable": true});
    let usage = obj(json!({"wall_us": i, "fuel": i, "peak_memory_bytes": i, "bytes_in": i, "bytes_out": i}), &[]);
    let headers = json!({"type": "array", "items": obj(json!({"name": s, "value": s}), &["name", "value"])});
    // What HTTP allows in a header value (and `HeaderValue::from_str` takes).
    let header_value = json!({"type": "string", "pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$"});
    let request_headers = json!({"type": "array", "items": input(json!({
        "name": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
        "value": header_value}), &["name", "value"])});
    let max = olin::Limits::MAXIMUM;
    let bounded = |max: u64| {
        json!({"type": "integer", "minimum": 0, "maximum": max, "nullable": true,
        "description": "0 clears it (the server default); absent or null leaves it"})
    };
    let mut limits_patch = input(
        json!({"fuel": bounded(max.fuel), "memory_bytes": bounded(b.max_memory_bytes),
            "wall_ms": bounded(max.wall.as_millis() as u64), "max_output_bytes": bounded(max.max_output_bytes),
            "host_budget_bytes": bounded(max.host_budget_bytes)}),
        &[],
    );
    limits_patch["nullable"] = json!(true);
    let version = json!({"type": "integer", "minimum": 1, "maximum": i32::MAX});
    let rate_limit = json!({"type": "object", "nullable": true,
        "description": "Calls per second admitted across every gateway, with a burst; null: none",
        "properties": {"per_second": i, "burst": i}});
    let mut rate_patch = input(
        json!({"per_second": {"type": "integer", "minimum": 0, "maximum": b.max_rate,
                "description": "0 clears the limit (the operator's maximum, if any, applies)"},
            "burst": {"type": "integer", "minimum": 1, "maximum": b.max_rate, "nullable": true,
                "description": "Calls admitted at once after a quiet spell; default: per_second"}}),
        &["per_second"],
    );
    rate_patch["nullable"] = json!(true);
    let quota_value = json!({"type": "integer", "minimum": 0, "maximum": i64::MAX, "nullable": true,
        "description": "0 clears the quota; absent or null leaves it"});
    let mut quota_patch = input(json!({"calls_per_month": quota_value, "fuel_per_month": quota_value}), &[]);
    quota_patch["nullable"] = json!(true);
    let user_quota = obj(json!({"calls_per_month": ni, "fuel_per_month": ni}), &[]);
    let standing = json!({"type": "object", "description": "This calendar month (UTC) against the caller's quotas",
        "properties": {"month": s, "calls": i, "fuel": i, "calls_per_month": ni, "fuel_per_month": ni,
            "exceeded": {"type": "string", "enum": ["calls", "fuel", null], "nullable": true}, "resets_at": t}});
    // Outside the big map below: serde_json's macro recursion limit.
    let execution = obj(
        json!({"invocation_id": s, "function": s, "deployment_id": s, "module_sha256": s, "outcome": s,
            "status": i, "exit_code": i, "usage": usage, "headers": headers, "stderr_tail": s, "error": s,
            "worker_id": s, "method": s, "path": s, "async": {"type": "boolean"}, "started_at": t, "finished_at": t}),
        &["invocation_id", "outcome", "status"],
    );
    json!({
        "Error": obj(json!({"error": obj(json!({"code": s, "message": s}), &["code", "message"])}), &["error"]),
        "Login": input(json!({"username": {"type": "string", "pattern": USERNAME},
            "password": {"type": "string", "maxLength": 1024},
            "expires_in": {"type": "integer", "minimum": 1, "maximum": b.token_ttl_secs}}), &["username", "password"]),
        "Token": obj(json!({"token": s, "id": s, "expires_at": t, "user": {"$ref": "#/components/schemas/User"}}), &["token", "id"]),
        "TokenInfo": obj(json!({"id": s, "created_at": t, "expires_at": t, "revoked_at": nt, "current": {"type": "boolean"}}), &["id"]),
        "TokenList": list_of("TokenInfo"),
        "User": obj(json!({"id": s, "username": s, "role": {"type": "string", "enum": ["admin", "user"]}, "created_at": t,
            "quota": user_quota}), &["id", "username", "role"]),
        "UserPatch": input(json!({"quota": quota_patch}), &[]),
        "UserList": list_of("User"),
        "NewUser": input(json!({"username": {"type": "string", "pattern": USERNAME},
            "password": {"type": "string", "minLength": 8, "maxLength": 1024},
            "role": {"type": "string", "enum": ["admin", "user"]}}), &["username", "password"]),
        "Limits": obj(json!({"fuel": ni, "memory_bytes": ni, "wall_ms": ni, "max_output_bytes": ni, "host_budget_bytes": ni}), &[]),
        "Function": obj(json!({"id": s, "name": s, "visibility": {"type": "string", "enum": ["public", "private"]},
            "url": s, "limits": {"$ref": "#/components/schemas/Limits"}, "egress_allow": {"type": "array", "items": s},
            "async_max_attempts": ni, "created_at": t, "updated_at": t, "rate_limit": rate_limit,
            "max_concurrency": {"type": "integer", "nullable": true, "description": "Most calls at once; null: none"},
            "deployment": {"type": "object", "nullable": true, "description": "The active deployment, null before the first deploy",
                "properties": {"id": s, "version": i, "canary_version": ni, "canary_percent": ni}},
            "last_hour": {"type": "object", "description": "Calls that started in the last hour, and how many of them failed",
                "properties": {"calls": i, "errors": i}}}),
            &["id", "name", "visibility", "url", "deployment", "last_hour"]),
        "FunctionList": list_of("Function"),
        "NewFunction": input(json!({"name": {"type": "string", "pattern": FUNCTION_NAME},
            "visibility": {"type": "string", "enum": ["public", "private"]}}), &["name"]),
        "FunctionPatch": input(json!({"visibility": {"type": "string", "enum": ["public", "private", null], "nullable": true},
            "limits": limits_patch, "egress_allow": {"type": "array", "maxItems": 100, "nullable": true,
                "items": {"type": "string", "pattern": EGRESS_ENTRY, "maxLength": 253}},
            "async_max_attempts": {"type": "integer", "minimum": 1, "maximum": 10, "nullable": true},
            "rate_limit": rate_patch,
            "max_concurrency": {"type": "integer", "minimum": 0, "maximum": b.max_concurrency, "nullable": true,
                "description": "0 clears the limit (the operator's maximum, if any, applies)"}}), &[]),
        "Module": {"type": "string", "format": "binary"},
        "Version": obj(json!({"id": s, "number": i, "sha256": s, "size_bytes": i, "abi": {"type": "string", "enum": ["olin", "wasi_p1"]},
            "imports": {"type": "array", "items": s}, "created_at": t}), &["id", "number", "sha256"]),
        "VersionList": list_of("Version"),
        "NewDeployment": input(json!({"version": version, "canary": input(json!({"version": version,
            "percent": {"type": "integer", "minimum": 1, "maximum": 99}}), &["version", "percent"])}), &["version"]),
        "Rollback": input(json!({"version": version}), &[]),
        "Deployment": obj(json!({"id": s, "version": i, "canary_version": ni, "canary_percent": i, "active": {"type": "boolean"},
            "kind": {"type": "string", "enum": ["deploy", "rollback"]}, "created_at": t}), &["id", "version", "active", "kind"]),
        "DeploymentList": list_of("Deployment"),
        "UsageSeries": obj(json!({"function": s, "since": t, "until": t, "step_seconds": {"type": "number"},
            "points": {"type": "array", "items": obj(json!({"start": t, "calls": i, "errors": i,
                "errors_by_outcome": {"type": "object", "additionalProperties": i},
                "wall_us": obj(json!({"p50": ni, "p99": ni}), &[]), "fuel": i}), &["start", "calls", "errors"])}}),
            &["since", "until", "step_seconds", "points"]),
        "TryIt": input(json!({"method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]},
            "path": {"type": "string", "pattern": "^(/[^\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$"},
            "headers": request_headers, "body": s, "invoke_key": {"type": "string", "nullable": true, "pattern": header_value["pattern"]}}), &[]),
        "TryItResult": obj(json!({"url": s, "status": i, "headers": headers,
            "body": {"type": "string", "nullable": true}, "body_base64": {"type": "string", "nullable": true},
            "truncated": {"type": "boolean"}}), &["status", "headers"]),
        "Execution": execution,
        "ExecutionList": list_of("Execution"),
        "Usage": obj(json!({"since": nt, "until": nt, "calls": i, "errors": i, "errors_by_outcome": {"type": "object", "additionalProperties": i},
            "wall_us": obj(json!({"p50": ni, "p99": ni}), &[]), "fuel": i, "bytes_in": i, "bytes_out": i,
            "quota": standing}), &["calls", "errors"]),
        "EnvValue": obj(json!({"name": s, "value": {"type": "string", "nullable": true}, "secret": {"type": "boolean"}, "updated_at": t}), &["name", "secret"]),
        "EnvList": list_of("EnvValue"),
        "SetEnv": input(json!({"value": {"type": "string", "maxLength": 8192, "pattern": "^[^\\u0000]*$"},
            "secret": {"type": "boolean"}}), &["value"]),
        "NewKey": input(json!({"name": {"type": "string", "minLength": 1, "maxLength": 100}}), &["name"]),
        "InvokeKey": obj(json!({"id": s, "name": s, "prefix": s, "key": s, "created_at": t, "revoked_at": nt}), &["id", "name", "prefix"]),
        "InvokeKeyList": list_of("InvokeKey"),
    })
}

/// The query parameters a route takes: exactly those its handler parses.
fn query_params(method: &str, path: &str) -> &'static [&'static str] {
    match (method, path) {
        ("GET", "/v1/functions" | "/v1/users") => &["limit", "after"],
        ("GET", p) if p.ends_with("/executions") => &["limit", "after", "outcome", "since", "until"],
        ("GET", p) if p.ends_with("/usage") => &["since", "until"],
        ("GET", p) if p.ends_with("/series") => &["since", "until", "buckets"],
        _ => &[],
    }
}

fn operation(doc: &Doc) -> Value {
    let (method, path, summary, body, ok, response) = *doc;
    let mut params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| {
            let schema = match p {
                "name" => json!({"type": "string", "pattern": FUNCTION_NAME}),
                "var" => json!({"type": "string", "pattern": VAR_NAME}),
                _ => json!({"type": "string"}),
            };
            json!({"name": p, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    for q in query_params(method, path) {
        let schema = match *q {
            "limit" => {
                let max = if path.ends_with("/executions") { 500 } else { 200 };
                json!({"type": "integer", "minimum": 1, "maximum": max, "default": 50})
            }
            "buckets" => json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 48}),
            "since" | "until" => json!({"type": "string", "format": "date-time"}),
            _ => json!({"type": "string"}),
        };
        params.push(json!({"name": q, "in": "query", "required": false, "schema": schema}));
    }
    let mut responses = Map::new();
    let ok_body = match response {
        Some(r) => {
            json!({"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}})
        }
        None => json!({"description": "success"}),
    };
    responses.insert(ok.to_string(), ok_body);
    responses.insert(
        "default".to_owned(),
        json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
    );
    let mut op = json!({
        "summary": summary,
        "operationId": format!("{}{}", method.to_ascii_lowercase(), path.replace(['/', '{', '}', '.'], "_")),
        "parameters": params,
        "responses": responses,
    });
    if path == "/v1/tokens" && method == "POST" || path == "/v1/openapi.json" {
        op["security"] = json!([]);
    }
    if let Some(b) = body {
        let media = if b == "Module" { "application/wasm" } else { "application/json" };
        op["requestBody"] = json!({"required": b != "Rollback", "content": {media: {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    op
}

/// The whole document, with the server's own maxima.
pub(crate) fn document(bounds: Bounds) -> Value {
    let mut paths = Map::new();
    for doc in DOCS {
        let entry = paths.entry(doc.1.to_owned()).or_insert_with(|| json!({}));
        entry[doc.0.to_ascii_lowercase()] = operation(doc);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Olincloud control plane", "version": env!("CARGO_PKG_VERSION"),
            "description": "Users, tokens, functions, versions, deployments, environment, invoke keys, executions and usage."},
        "paths": paths,
        "components": {
            "schemas": schemas(bounds),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    })
}

#[cfg(test)]
/// A schema as one line of text: `{ id: string, version?: integer }`,
/// `[Function]`, `Function`.
fn schema_text(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    match schema["type"].as_str() {
        Some("array") => format!("[{}]", schema_text(&schema["items"])),
        Some("object") => {
            let required: Vec<&str> =
                schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let props: Vec<String> = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    format!("{k}{}: {}", if required.contains(&k.as_str()) { "" } else { "?" }, schema_text(v))
                })
                .collect();
            let null = if schema["nullable"] == Value::Bool(true) { " | null" } else { "" };
            format!("{{ {} }}{null}", props.join(", "))
        }
        Some(t) => {
            let mut out = schema["format"].as_str().map_or_else(|| t.to_owned(), |f| format!("{t} ({f})"));
            if let Some(values) = schema["enum"].as_array() {
                out =
                    values.iter().filter_map(Value::as_str).map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(" | ");
            }
            if schema["nullable"] == Value::Bool(true) {
                out.push_str(" | null");
            }
            out
        }
        None => "any".to_owned(),
    }
}

#[cfg(test)]
/// `docs/api-reference.md`: every operation and schema of the document.
fn markdown() -> String {
    let doc = document(Bounds::default());
    let mut out = String::from(
        "# API reference\n\nGenerated from the OpenAPI document the control plane serves at \
         `GET /v1/openapi.json` (`control/src/openapi.rs`); a test keeps this page current \
         (`OLIN_BLESS=1 cargo test -p olin-control openapi` rewrites it). Every route needs \
         `Authorization: Bearer <token>` unless marked *no auth*; every error is \
         `{\"error\": {\"code\", \"message\"}}` (see [the tour](api.md)).\n\n## Operations\n",
    );
    for (method, path, summary, body, ok, response) in DOCS {
        let open = (*path == "/v1/tokens" && *method == "POST") || *path == "/v1/openapi.json";
        out.push_str(&format!("\n### `{method} {path}`\n\n{summary}.{}\n\n", if open { " *No auth.*" } else { "" }));
        if let Some(b) = body {
            out.push_str(&format!("- request: `{b}`\n"));
        }
        out.push_str(&format!("- {ok}: {}\n", response.map_or_else(|| "no body".to_owned(), |r| format!("`{r}`"))));
    }
    out.push_str("\n## Schemas\n");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        out.push_str(&format!("\n### `{name}`\n\n```text\n{}\n```\n", schema_text(schema)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_page_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api-reference.md");
        let want = super::markdown();
        if std::env::var_os("OLIN_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(have == want, "docs/api-reference.md is stale: run `OLIN_BLESS=1 cargo test -p olin-control openapi`");
    }

    #[test]
    fn every_route_is_documented_and_every_description_routed() {
        let routes: Vec<(String, &str)> =
            crate::api::table().iter().map(|(m, p, _)| (m.as_str().to_owned(), *p)).collect();
        let docs: Vec<(String, &str)> = super::DOCS.iter().map(|d| (d.0.to_owned(), d.1)).collect();
        for r in &routes {
            assert!(docs.contains(r), "route {r:?} is not in the OpenAPI document");
        }
        for d in &docs {
            assert!(routes.contains(d), "documented {d:?} is not a route");
        }
    }
}
