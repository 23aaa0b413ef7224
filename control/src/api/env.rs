//! A function's own environment values, delivered to each run next to the
//! CGI variables. A value marked secret is never returned after it is set
//! (listings show `null`) and never logged, and it is stored and published
//! sealed under the platform's key (`olin_proto::sealed`): only the worker
//! opens it, just before a run.

use olin_api::{EnvList, EnvValue, SetEnv};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, ModelTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use warp::reply::Response;

use super::deployments::publish_route;
use super::{Api, Request, audit_fn, new_id, no_content, ok, owned_from};
use crate::entity::{function_env, functions};
use crate::error::{ApiError, Code};

/// Names the platform sets itself (RFC 3875 and ours): a function cannot
/// override them.
const RESERVED: &[&str] = &[
    "AUTH_TYPE",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_IDENT",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "HTTPS",
    "RUN_ID",
    "WORKER_ID",
];

/// Most values per function, and bytes per value.
const MAX_VALUES: usize = 100;
/// Characters per value (at most 32 KiB of UTF-8).
const MAX_VALUE_CHARS: usize = 8 * 1024;

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !ok {
        return Err(ApiError::unprocessable(format!(
            "invalid variable name {name:?}: use letters, digits and '_', not starting with a digit"
        )));
    }
    if RESERVED.contains(&name) || name.starts_with("HTTP_") {
        return Err(ApiError::conflict(format!("{name} is set by the platform for each request")));
    }
    Ok(())
}

/// `GET /v1/functions/{name}/env`.
#[utoipa::path(get, path = "/v1/functions/{name}/env", summary = "Environment values (secrets as null)",
    responses((status = 200, body = EnvList)))]
pub(super) async fn list(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let rows = function_env::Entity::find()
        .filter(function_env::Column::FunctionId.eq(&f.id))
        .order_by_asc(function_env::Column::Name)
        .all(&api.db)
        .await?;
    let items = rows
        .into_iter()
        .map(|e| EnvValue {
            value: (!e.secret).then_some(e.value),
            name: e.name,
            secret: e.secret,
            updated_at: e.updated_at,
        })
        .collect();
    ok(&EnvList::all(items))
}

/// `PUT /v1/functions/{name}/env/{var}`: sets one value.
#[utoipa::path(put, path = "/v1/functions/{name}/env/{var}", summary = "Set an environment value",
    request_body = SetEnv, responses((status = 204)))]
pub(super) async fn set(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let name = params.get(1).cloned().unwrap_or_default();
    check_name(&name)?;
    let body: SetEnv = req.json()?;
    if body.value.chars().count() > MAX_VALUE_CHARS || body.value.contains('\0') {
        return Err(ApiError::unprocessable(format!("values are at most {MAX_VALUE_CHARS} characters, without NUL")));
    }
    // What is stored: a secret sealed for this function and name.
    let (value, key_id) = if body.secret {
        let ring = api.secrets.as_ref().ok_or_else(|| {
            ApiError::new(
                Code::Unavailable,
                "secret values need a sealing key, which this control plane lacks (OLIN_SECRETS_KEYS)",
            )
        })?;
        let (id, sealed) =
            ring.seal(&f.name, &name, &body.value).map_err(|e| ApiError::unavailable("sealing the value", &e))?;
        (sealed, Some(id))
    } else {
        (body.value, None)
    };
    let existing = function_env::Entity::find()
        .filter(function_env::Column::FunctionId.eq(&f.id))
        .filter(function_env::Column::Name.eq(&name))
        .one(&api.db)
        .await?;
    match existing {
        Some(row) => {
            let mut active: function_env::ActiveModel = row.into();
            active.value = Set(value);
            active.secret = Set(body.secret);
            active.key_id = Set(key_id);
            active.update(&api.db).await?;
        }
        None => {
            let count =
                function_env::Entity::find().filter(function_env::Column::FunctionId.eq(&f.id)).count(&api.db).await?;
            if count >= MAX_VALUES as u64 {
                return Err(ApiError::unprocessable(format!("a function has at most {MAX_VALUES} values")));
            }
            function_env::ActiveModel {
                id: Set(new_id()),
                function_id: Set(f.id.clone()),
                name: Set(name.clone()),
                value: Set(value),
                secret: Set(body.secret),
                key_id: Set(key_id),
                ..Default::default()
            }
            .insert(&api.db)
            .await?;
        }
    }
    publish_route(api, &f).await?;
    audit_fn(api, &req, &caller, &f, "env_set", json!({"name": name, "secret": body.secret})).await;
    no_content()
}

/// `DELETE /v1/functions/{name}/env/{var}`.
#[utoipa::path(delete, path = "/v1/functions/{name}/env/{var}", summary = "Unset an environment value",
    responses((status = 204)))]
pub(super) async fn unset(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let name = params.get(1).cloned().unwrap_or_default();
    let row = function_env::Entity::find()
        .filter(function_env::Column::FunctionId.eq(&f.id))
        .filter(function_env::Column::Name.eq(&name))
        .one(&api.db)
        .await?
        .ok_or_else(|| ApiError::not_found("variable", &name))?;
    row.delete(&api.db).await?;
    publish_route(api, &f).await?;
    audit_fn(api, &req, &caller, &f, "env_unset", json!({"name": name})).await;
    no_content()
}

/// What [`reseal`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Secret values sealed again under the current key (or for the first
    /// time, if they were stored in clear).
    pub values: usize,
    /// Functions whose route was published again.
    pub functions: usize,
}

/// Why stored secrets could not be sealed again.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    /// Reading or writing values failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A value does not open (its key is not configured, or it is corrupt).
    #[error("secret {name} of function {function}: {source}")]
    Open {
        /// The function.
        function: String,
        /// The variable.
        name: String,
        /// Why.
        source: olin_proto::sealed::SealError,
    },
    /// Sealing under the current key failed.
    #[error("sealing: {0}")]
    Seal(#[source] olin_proto::sealed::SealError),
    /// A route carrying the new values could not be published.
    #[error("publishing a route: {0}")]
    Publish(#[source] ApiError),
}

/// Seals every secret value not under the current key again (rotation), and
/// any stored in clear, then republishes the routes that carry them.
///
/// # Errors
/// A value under a key the keyring lacks (its id is named), or a database or
/// NATS failure.
pub(crate) async fn reseal(api: &Api) -> Result<Resealed, ResealError> {
    let db = &api.db;
    let Some(ring) = &api.secrets else {
        let clear = function_env::Entity::find()
            .filter(function_env::Column::Secret.eq(true))
            .filter(function_env::Column::KeyId.is_null())
            .count(db)
            .await?;
        if clear > 0 {
            tracing::warn!(values = clear, "secret values are stored in clear: set OLIN_SECRETS_KEYS");
        }
        return Ok(Resealed::default());
    };
    let mut done = Resealed::default();
    // The functions touched, by id (each loaded once, then republished).
    let mut touched = std::collections::BTreeMap::<String, functions::Model>::new();
    let mut after = String::new();
    loop {
        // Only the values not under the current key: a start with nothing
        // to rotate reads no rows.
        let stale = sea_orm::Condition::any()
            .add(function_env::Column::KeyId.is_null())
            .add(function_env::Column::KeyId.ne(ring.current()));
        let rows = function_env::Entity::find()
            .filter(function_env::Column::Secret.eq(true))
            .filter(stale)
            .filter(function_env::Column::Id.gt(after.clone()))
            .order_by_asc(function_env::Column::Id)
            .limit(500)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after.clone_from(&last.id);
        for row in rows {
            let f = match touched.get(&row.function_id) {
                Some(f) => f.clone(),
                None => match functions::Entity::find_by_id(row.function_id.clone()).one(db).await? {
                    Some(f) => f,
                    None => continue,
                },
            };
            let plain = match &row.key_id {
                None => row.value.clone(),
                Some(id) => ring.open(&f.name, &row.name, id, &row.value).map_err(|source| ResealError::Open {
                    function: f.name.clone(),
                    name: row.name.clone(),
                    source,
                })?,
            };
            let (id, sealed) = ring.seal(&f.name, &row.name, &plain).map_err(ResealError::Seal)?;
            let mut active: function_env::ActiveModel = row.into();
            active.value = Set(sealed);
            active.key_id = Set(Some(id));
            active.update(db).await?;
            done.values += 1;
            touched.insert(f.id.clone(), f);
        }
    }
    for f in touched.values() {
        publish_route(api, f).await.map_err(ResealError::Publish)?;
        done.functions += 1;
    }
    Ok(done)
}
