//! The OpenAPI 3.1 document served at `/v1/openapi.json`.
//!
//! Its schemas are generated from the API's types (`olin_api`, deriving
//! `utoipa::ToSchema`) and its operations from the handlers'
//! `#[utoipa::path]` attributes (`api::Operations`). This module finishes
//! what a derive cannot know: path parameters, the error answer, operation
//! ids, which routes need no token, and the maxima that depend on the
//! server's configuration ([`Bounds`]).
//!
//! Tests keep `docs/openapi.json` (from which the panel's TypeScript types
//! are generated) and `docs/api-reference.md` equal to the document, and
//! check it against the route table.

use serde_json::{Value, json};
use utoipa::OpenApi as _;

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

/// The schema of path parameter `param` of `path`.
fn path_param(path: &str, param: &str) -> Value {
    match param {
        "name" if path.starts_with("/v1/users/") => json!({"type": "string", "pattern": USERNAME}),
        "name" => json!({"type": "string", "pattern": FUNCTION_NAME}),
        "var" => json!({"type": "string", "pattern": VAR_NAME}),
        _ => json!({"type": "string"}),
    }
}

/// Sets `doc[pointer] = value` where the pointer's parent exists.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(Value::Object(map)) = doc.pointer_mut(parent) {
        map.insert(key.to_owned(), value);
    }
}

/// Finishes one operation: path parameters, the error answer, its id and
/// whether it needs a token.
fn finish_operation(method: &str, path: &str, op: &mut Value) {
    let mut params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": path_param(path, p)}))
        .collect();
    if let Some(Value::Array(query)) = op.get_mut("parameters").map(Value::take) {
        params.extend(query);
    }
    op["parameters"] = Value::Array(params);
    op["operationId"] = json!(format!("{method}{}", path.replace(['/', '{', '}', '.'], "_")));
    op["responses"]["default"] = json!({"description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let anonymous = crate::api::ANONYMOUS.iter().any(|(m, p)| m.as_str().eq_ignore_ascii_case(method) && *p == path);
    if anonymous {
        op["security"] = json!([]);
    }
    if let Some(content) = op.pointer_mut("/requestBody/content/application~1wasm") {
        // A module upload is the module's bytes.
        content["schema"] = json!({"type": "string", "format": "binary"});
    }
    // An optional body (`Option<T>` in the handler's attribute) may be left
    // out; when present it is a `T`, never JSON `null`.
    if let Some(schema) = op.pointer_mut("/requestBody/content/application~1json/schema")
        && let Some([null, body]) = schema["oneOf"].as_array().map(Vec::as_slice)
        && null["type"] == "null"
    {
        *schema = body.clone();
        op["requestBody"]["required"] = json!(false);
    }
}

/// The whole document, with the server's own maxima.
pub(crate) fn document(b: Bounds) -> Value {
    let mut doc = serde_json::to_value(crate::api::Operations::openapi()).unwrap_or(Value::Null);
    doc["info"] = json!({"title": "Olincloud control plane", "version": env!("CARGO_PKG_VERSION"),
        "description": "Users, tokens, functions, versions, deployments, environment, invoke keys, executions and usage.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}});
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            if let Value::Object(ops) = item {
                for (method, op) in ops.iter_mut() {
                    finish_operation(method, path, op);
                }
            }
        }
    }
    set(
        &mut doc,
        "/components/securitySchemes",
        json!({"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}),
    );
    doc["security"] = json!([{"bearer": []}]);
    let max = olin::Limits::MAXIMUM;
    let schemas = "/components/schemas";
    for (field, most) in [
        ("fuel", max.fuel),
        ("memory_bytes", b.max_memory_bytes),
        ("wall_ms", max.wall.as_millis() as u64),
        ("max_output_bytes", max.max_output_bytes),
        ("host_budget_bytes", max.host_budget_bytes),
    ] {
        set(&mut doc, &format!("{schemas}/LimitsPatch/properties/{field}/maximum"), json!(most));
    }
    set(&mut doc, &format!("{schemas}/Login/properties/expires_in/maximum"), json!(b.token_ttl_secs));
    set(&mut doc, &format!("{schemas}/RatePatch/properties/per_second/maximum"), json!(b.max_rate));
    set(&mut doc, &format!("{schemas}/RatePatch/properties/burst/maximum"), json!(b.max_rate));
    set(&mut doc, &format!("{schemas}/FunctionPatch/properties/max_concurrency/maximum"), json!(b.max_concurrency));
    doc
}

#[cfg(test)]
/// A schema as one line of text: `{ id: string, version?: integer | null }`,
/// `[Function]`, `Function`.
fn schema_text(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    let alternatives = |key: &str, sep: &str| -> Option<String> {
        let all = schema[key].as_array()?;
        Some(all.iter().map(schema_text).collect::<Vec<_>>().join(sep))
    };
    if let Some(text) = alternatives("oneOf", " | ").or_else(|| alternatives("allOf", " & ")) {
        return text;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let null = if types.contains(&"null") { " | null" } else { "" };
    let text = match types.iter().find(|t| **t != "null") {
        Some(&"array") => format!("[{}]", schema_text(&schema["items"])),
        Some(&"object") if schema.get("additionalProperties").is_some_and(Value::is_object) => {
            format!("{{ [key]: {} }}", schema_text(&schema["additionalProperties"]))
        }
        Some(&"object") => {
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
            format!("{{ {} }}", props.join(", "))
        }
        Some(t) => match schema["enum"].as_array() {
            Some(values) => {
                values.iter().filter_map(Value::as_str).map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(" | ")
            }
            None => schema["format"].as_str().map_or_else(|| (*t).to_owned(), |f| format!("{t} ({f})")),
        },
        None if types.is_empty() => "any".to_owned(),
        None => "null".to_owned(),
    };
    if text == "null" { text } else { format!("{text}{null}") }
}

#[cfg(test)]
/// `docs/api-reference.md`: every operation and schema of the document.
fn markdown(doc: &Value) -> String {
    let mut out = String::from(
        "# API reference\n\nGenerated from the OpenAPI document the control plane serves at \
         `GET /v1/openapi.json` (its types are in `api/src`, the `olin-api` crate); a test keeps \
         this page and `docs/openapi.json` current (`OLIN_BLESS=1 cargo test -p olin-control openapi` \
         rewrites them). Every route needs `Authorization: Bearer <token>` unless marked *no auth*; \
         every error is `{\"error\": {\"code\", \"message\"}}` (see [the tour](api.md)).\n\n## Operations\n",
    );
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let open = op["security"] == json!([]);
            let summary = op["summary"].as_str().unwrap_or_default();
            let method = method.to_uppercase();
            out.push_str(&format!(
                "\n### `{method} {path}`\n\n{summary}.{}\n\n",
                if open { " *No auth.*" } else { "" }
            ));
            let query: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if !query.is_empty() {
                out.push_str(&format!("- query: `{}`\n", query.join("`, `")));
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (media, body) in content {
                    let optional = if op["requestBody"]["required"] == json!(true) { "" } else { " (optional)" };
                    out.push_str(&format!("- request{optional}: `{}` ({media})\n", schema_text(&body["schema"])));
                }
            }
            for (status, resp) in op["responses"].as_object().into_iter().flatten().filter(|(s, _)| *s != "default") {
                let body = resp["content"]
                    .as_object()
                    .and_then(|c| c.values().next())
                    .map_or_else(|| "no body".to_owned(), |c| format!("`{}`", schema_text(&c["schema"])));
                out.push_str(&format!("- {status}: {body}\n"));
            }
        }
    }
    out.push_str("\n## Schemas\n");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        out.push_str(&format!("\n### `{name}`\n\n```text\n{}\n```\n", schema_text(schema)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `file` (from the repository root) holds `want`; with `OLIN_BLESS`
    /// set, it is rewritten first.
    fn check_generated(file: &str, want: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
        if std::env::var_os("OLIN_BLESS").is_some() {
            std::fs::write(&path, want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(have == want, "{file} is stale: run `OLIN_BLESS=1 cargo test -p olin-control openapi`");
    }

    #[test]
    fn generated_documents_are_current() {
        let doc = document(Bounds::default());
        check_generated("docs/openapi.json", &format!("{}\n", serde_json::to_string_pretty(&doc).unwrap()));
        check_generated("docs/api-reference.md", &markdown(&doc));
    }

    #[test]
    fn every_route_is_documented_and_every_description_routed() {
        let doc = document(Bounds::default());
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        let routes: Vec<(String, String)> =
            crate::api::table().iter().map(|(m, p, _)| (m.as_str().to_owned(), (*p).to_owned())).collect();
        for r in &routes {
            assert!(documented.contains(r), "route {r:?} is not in the OpenAPI document");
        }
        for d in &documented {
            assert!(routes.contains(d), "documented {d:?} is not a route");
        }
    }

    #[test]
    fn the_document_states_the_servers_maxima() {
        let b = Bounds { max_memory_bytes: 1 << 20, token_ttl_secs: 60, max_rate: 7, max_concurrency: 3 };
        let doc = document(b);
        let s = &doc["components"]["schemas"];
        assert_eq!(s["LimitsPatch"]["properties"]["memory_bytes"]["maximum"], json!(1 << 20));
        assert_eq!(s["Login"]["properties"]["expires_in"]["maximum"], json!(60));
        assert_eq!(s["RatePatch"]["properties"]["burst"]["maximum"], json!(7));
        assert_eq!(s["FunctionPatch"]["properties"]["max_concurrency"]["maximum"], json!(3));
        assert_eq!(doc["paths"]["/v1/tokens"]["post"]["security"], json!([]), "logging in needs no token");
        let upload = &doc["paths"]["/v1/functions/{name}/versions"]["post"]["requestBody"]["content"];
        assert_eq!(upload["application/wasm"]["schema"]["format"], "binary");
        let rollback = &doc["paths"]["/v1/functions/{name}/rollback"]["post"]["requestBody"];
        assert_eq!(rollback["required"], json!(false), "{rollback}");
        assert_eq!(rollback["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Rollback");
        // Requests refuse unknown fields, and the document says so.
        assert_eq!(s["NewFunction"]["additionalProperties"], json!(false));
    }
}
