//! Logging in and out: tokens are JWTs whose id is a row, so revoking the
//! row ends the token at once.

use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{Api, Request, audit, new_id};
use crate::auth;
use crate::entity::{api_tokens, users};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
    /// Lifetime in seconds; at most the server's token TTL.
    expires_in: Option<u64>,
}

/// `POST /v1/tokens`: username and password in, a bearer token out.
pub(super) async fn create(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let login: Login = req.json()?;
    // Checked before any lookup or audit write: such a name cannot exist,
    // and what a stranger sends is never stored.
    let malformed = super::users::check_username(&login.username).is_err();
    if malformed || login.password.chars().count() > super::users::MAX_PASSWORD_CHARS {
        return Err(ApiError::unauthorized("wrong username or password"));
    }
    let ttl = login.expires_in.unwrap_or(api.token_ttl_secs);
    if ttl == 0 || ttl > api.token_ttl_secs {
        return Err(ApiError::bad_request(format!("expires_in must be 1..={} seconds", api.token_ttl_secs)));
    }
    // A throttled name or address costs no lookup and no hash.
    api.logins.check(&login.username, req.client_ip)?;
    let user = users::Entity::find().filter(users::Column::Username.eq(&login.username)).one(&api.db).await?;
    // Verify against a decoy for unknown names: same time, same answer.
    let hash = user.as_ref().map_or_else(|| auth::decoy_hash().to_owned(), |u| u.password_hash.clone());
    let password = login.password.clone();
    let ok = api.hashes.run(move || auth::verify_password(&password, &hash)).await?;
    let Some(user) = user.filter(|_| ok) else {
        api.logins.failed(&login.username, req.client_ip);
        audit(api, None, "login_failed", &login.username, json!({})).await;
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    api.logins.succeeded(&login.username);
    let expires_at = Utc::now() + Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
    let id = new_id();
    api_tokens::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user.id.clone()),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&api.db)
    .await?;
    let token = api.keys.sign(&user.id, &id, expires_at)?;
    audit(api, Some(&user.id), "login", &user.username, json!({"token_id": id})).await;
    let body = json!({"token": token, "id": id, "expires_at": expires_at, "user": user_json(&user)});
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

/// `GET /v1/tokens`: the caller's tokens (never the secrets).
pub(super) async fn list(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let rows = api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(&caller.user.id))
        .order_by_desc(api_tokens::Column::CreatedAt)
        .all(&api.db)
        .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|t| {
            json!({"id": t.id, "created_at": t.created_at, "expires_at": t.expires_at, "revoked_at": t.revoked_at,
                "current": t.id == caller.token_id})
        })
        .collect();
    Ok(warp::reply::json(&json!({"items": items})).into_response())
}

/// `DELETE /v1/tokens/{id}`: revokes one of the caller's tokens (admins: anyone's).
pub(super) async fn revoke(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let id = params.first().map(String::as_str).unwrap_or_default();
    let row = api_tokens::Entity::find_by_id(id.to_owned())
        .one(&api.db)
        .await?
        .filter(|t| t.user_id == caller.user.id || caller.is_admin())
        .ok_or_else(|| ApiError::not_found("token", id))?;
    if row.revoked_at.is_none() {
        let mut active: api_tokens::ActiveModel = row.into();
        active.revoked_at = Set(Some(Utc::now()));
        active.update(&api.db).await?;
        audit(api, Some(&caller.user.id), "token_revoked", id, json!({})).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/me`: who the token belongs to.
pub(super) async fn me(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let mut body = user_json(&caller.user);
    body["token_id"] = json!(caller.token_id);
    Ok(warp::reply::json(&body).into_response())
}

/// A user as the API shows it (never the hash).
pub(super) fn user_json(u: &users::Model) -> Value {
    json!({"id": u.id, "username": u.username, "role": u.role, "created_at": u.created_at,
        "quota": {"calls_per_month": u.quota_calls_month, "fuel_per_month": u.quota_fuel_month}})
}
