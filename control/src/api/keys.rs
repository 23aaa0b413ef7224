//! Invoke keys of private functions: created (the key is shown once),
//! listed (never the key), revoked. Only the key's sha256 is stored and
//! published in the route, where the gateway checks it.

use chrono::Utc;
use olin_api::{InvokeKey, InvokeKeyList, NewKey};
use rand::RngCore as _;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;
use sha2::Digest as _;
use warp::reply::Response;

use super::deployments::publish_route;
use super::{Api, Request, audit_fn, created, new_id, no_content, ok, owned_from};
use crate::entity::invoke_keys;
use crate::error::ApiError;

fn key_json(k: invoke_keys::Model) -> InvokeKey {
    InvokeKey {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        key: None,
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

/// `POST /v1/functions/{name}/keys`: a new key, returned this once.
#[utoipa::path(post, path = "/v1/functions/{name}/keys", summary = "Create an invoke key (shown once)",
    request_body = NewKey, responses((status = 201, body = InvokeKey)))]
pub(super) async fn create(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let new: NewKey = req.json()?;
    if new.name.trim().is_empty() || new.name.len() > 100 {
        return Err(ApiError::unprocessable("the key name must be 1 to 100 characters"));
    }
    let mut secret = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut secret);
    let key = format!("oik_{}", hex::encode(secret));
    let row = invoke_keys::ActiveModel {
        id: Set(new_id()),
        function_id: Set(f.id.clone()),
        name: Set(new.name),
        prefix: Set(key.chars().take(10).collect()),
        key_hash: Set(hex::encode(sha2::Sha256::digest(key.as_bytes()))),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&api.db)
    .await?;
    publish_route(api, &f).await?;
    audit_fn(api, &req, &caller, &f, "invoke_key_created", json!({"key": row.id})).await;
    created(&InvokeKey { key: Some(key), ..key_json(row) })
}

/// `GET /v1/functions/{name}/keys`.
#[utoipa::path(get, path = "/v1/functions/{name}/keys", summary = "List invoke keys",
    responses((status = 200, body = InvokeKeyList)))]
pub(super) async fn list(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (_, f) = owned_from(api, params, &req).await?;
    let rows = invoke_keys::Entity::find()
        .filter(invoke_keys::Column::FunctionId.eq(&f.id))
        .order_by_asc(invoke_keys::Column::CreatedAt)
        .all(&api.db)
        .await?;
    ok(&InvokeKeyList::all(rows.into_iter().map(key_json).collect()))
}

/// `DELETE /v1/functions/{name}/keys/{id}`: revokes the key; the gateway
/// refuses it as soon as the route is republished.
#[utoipa::path(delete, path = "/v1/functions/{name}/keys/{id}", summary = "Revoke an invoke key",
    responses((status = 204)))]
pub(super) async fn revoke(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let (caller, f) = owned_from(api, params, &req).await?;
    let id = params.get(1).map(String::as_str).unwrap_or_default();
    let row = invoke_keys::Entity::find_by_id(id.to_owned())
        .one(&api.db)
        .await?
        .filter(|k| k.function_id == f.id)
        .ok_or_else(|| ApiError::not_found("invoke key", id))?;
    if row.revoked_at.is_none() {
        let mut active: invoke_keys::ActiveModel = row.into();
        active.revoked_at = Set(Some(Utc::now()));
        active.update(&api.db).await?;
        publish_route(api, &f).await?;
        audit_fn(api, &req, &caller, &f, "invoke_key_revoked", json!({"key": id})).await;
    }
    no_content()
}
