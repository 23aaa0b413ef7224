//! Logging in and out: tokens are JWTs whose id is a row, so revoking the
//! row ends the token at once.

use chrono::{Duration, Utc};
use olin_api::{Login, Me, PasswordChange, Revoked, Token, TokenList};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;
use warp::reply::Response;

use super::users::user_json;
use super::{Api, Request, audit, created, new_id, no_content, ok};
use crate::auth;
use crate::entity::{api_tokens, users};
use crate::error::ApiError;

/// `POST /v1/tokens`: username and password in, a bearer token out.
#[utoipa::path(post, path = "/v1/tokens", summary = "Log in: username and password for a bearer token",
    request_body = Login, responses((status = 201, body = Token)))]
pub(super) async fn create(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let login: Login = req.json()?;
    if !api.local_passwords {
        return Err(ApiError::new(
            crate::error::Code::Forbidden,
            "password logins are off here: sign in through your organisation's provider (GET /v1/auth/providers)",
        ));
    }
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
    let Some(user) = user.clone().filter(|_| ok) else {
        api.logins.failed(&login.username, req.client_ip);
        audit(api, &req, None, user.as_ref().map(|u| u.id.as_str()), "login_failed", &login.username, json!({})).await;
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    api.logins.succeeded(&login.username);
    if user.disabled_at.is_some() {
        audit(api, &req, Some(&user), Some(&user.id), "login_refused_disabled", &user.username, json!({})).await;
        return Err(auth::disabled());
    }
    if login.session {
        let (token, cookie) = super::sso::start_session(api, &user).await?;
        audit(api, &req, Some(&user), Some(&user.id), "login", &user.username, json!({"session": token.id})).await;
        return super::sso::with_cookie(created(&token)?, &cookie);
    }
    let token = issue(api, &user, ttl).await?;
    audit(api, &req, Some(&user), Some(&user.id), "login", &user.username, json!({"token_id": token.id})).await;
    created(&token)
}

/// A new bearer token of `user`, valid for `ttl` seconds (its own row).
pub(super) async fn issue(api: &Api, user: &users::Model, ttl: u64) -> Result<Token, ApiError> {
    let now = api.clock.now();
    let expires_at = now + Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
    let id = token_row(api, user, expires_at).await?;
    let token = api.keys.sign(&user.id, &id, now, expires_at)?;
    Ok(Token { token, id, expires_at, user: user_json(user) })
}

/// A new row of `api_tokens` for `user` (a token or a browser session),
/// live until `expires_at`; its id.
pub(super) async fn token_row(
    api: &Api,
    user: &users::Model,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<String, ApiError> {
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
    Ok(id)
}

/// `GET /v1/tokens`: the caller's tokens (never the secrets).
#[utoipa::path(get, path = "/v1/tokens", summary = "List your tokens (never their secrets)",
    responses((status = 200, body = TokenList)))]
pub(super) async fn list(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    ok(&TokenList::all(super::users::token_infos(&api.db, &caller.user.id, &caller.token_id).await?))
}

/// `DELETE /v1/tokens/{id}`: revokes one of the caller's tokens (admins: anyone's).
#[utoipa::path(delete, path = "/v1/tokens/{id}", summary = "Revoke a token at once", responses((status = 204)))]
pub(super) async fn revoke(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let id = params.first().map(String::as_str).unwrap_or_default();
    let row = api_tokens::Entity::find_by_id(id.to_owned())
        .one(&api.db)
        .await?
        .filter(|t| t.user_id == caller.user.id || caller.is_admin())
        .ok_or_else(|| ApiError::not_found("token", id))?;
    if row.revoked_at.is_none() {
        let owner = row.user_id.clone();
        let mut active: api_tokens::ActiveModel = row.into();
        active.revoked_at = Set(Some(Utc::now()));
        active.update(&api.db).await?;
        audit(api, &req, Some(&caller.user), Some(&owner), "token_revoked", id, json!({})).await;
    }
    no_content()
}

/// `GET /v1/me`: who the token belongs to.
#[utoipa::path(get, path = "/v1/me", summary = "Who the token belongs to", responses((status = 200, body = Me)))]
pub(super) async fn me(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    ok(&Me { user: user_json(&caller.user), token_id: caller.token_id })
}

/// `PUT /v1/me/password`: changes the caller's password, given the current
/// one, and revokes their other tokens (this one keeps working).
#[utoipa::path(put, path = "/v1/me/password", summary = "Change your password; revokes your other tokens",
    request_body = PasswordChange, responses((status = 200, body = Revoked)))]
pub(super) async fn change_password(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    let change: PasswordChange = req.json()?;
    super::users::check_password(&change.new_password)?;
    // Throttled like logins: a stolen token must not become a way to
    // guess the password.
    api.logins.check(&caller.user.username, req.client_ip)?;
    let (current, hash) = (change.current_password.clone(), caller.user.password_hash.clone());
    let right = current.chars().count() <= super::users::MAX_PASSWORD_CHARS
        && api.hashes.run(move || auth::verify_password(&current, &hash)).await?;
    if !right {
        // Audited as a refused change by the router.
        api.logins.failed(&caller.user.username, req.client_ip);
        return Err(ApiError::new(crate::error::Code::Forbidden, "the current password is wrong"));
    }
    api.logins.succeeded(&caller.user.username);
    let hash = super::users::hash(&change.new_password).await?;
    let revoked = super::users::set_password(api, &caller.user, hash, Some(&caller.token_id)).await?;
    audit(
        api,
        &req,
        Some(&caller.user),
        Some(&caller.user.id),
        "password_changed",
        &caller.user.username,
        json!({"tokens_revoked": revoked}),
    )
    .await;
    ok(&Revoked { revoked })
}
