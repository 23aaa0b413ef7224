//! User management, for admins; and the first admin at start-up.

use chrono::{DateTime, Utc};
use olin_api::{
    NewUser, PasswordReset, Revoked, Role, TokenInfo, TokenList, User, UserDelete, UserList, UserPatch, UserQuota,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ModelTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use warp::reply::Response;

use super::{Api, Request, audit, created, new_id, next_cursor, no_content, ok};
use crate::auth;
use crate::entity::{api_tokens, functions, users};
use crate::error::ApiError;

/// Checks a username: 1-64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub(super) fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
        && name.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "invalid username {name:?}: use 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )))
    }
}

/// Longest password accepted, in characters (at most 4 KiB of UTF-8:
/// hashing cost grows with it).
pub(super) const MAX_PASSWORD_CHARS: usize = 1024;

pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(8..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::unprocessable("the password must be 8 to 1024 characters"));
    }
    Ok(())
}

/// Hashes `password` off the async threads.
pub(super) async fn hash(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(crate::error::Code::Internal, e.to_string()))?
}

/// Revokes every token of `user_id` still valid, but `except`; returns
/// how many.
pub(super) async fn revoke_all(
    db: &impl ConnectionTrait,
    user_id: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, ApiError> {
    let mut q = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, Expr::value(now))
        .filter(api_tokens::Column::UserId.eq(user_id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .filter(api_tokens::Column::ExpiresAt.gt(now));
    if let Some(id) = except {
        q = q.filter(api_tokens::Column::Id.ne(id));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// The user the route's `{name}` names, or 404.
async fn named(db: &DatabaseConnection, params: &[String]) -> Result<users::Model, ApiError> {
    let name = params.first().map(String::as_str).unwrap_or_default();
    users::Entity::find()
        .filter(users::Column::Username.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("user", name))
}

/// Whether `user` is an admin who can act (enabled).
fn acting_admin(user: &users::Model) -> bool {
    Role::from_stored(&user.role) == Role::Admin && user.disabled_at.is_none()
}

/// 409 if `user` is the last enabled admin: nobody could manage users
/// after they lost the role, were disabled or deleted.
async fn keep_an_admin(db: &DatabaseConnection, user: &users::Model, what: &str) -> Result<(), ApiError> {
    if !acting_admin(user) {
        return Ok(());
    }
    let others = users::Entity::find()
        .filter(users::Column::Role.eq(Role::Admin.as_str()))
        .filter(users::Column::DisabledAt.is_null())
        .filter(users::Column::Id.ne(&user.id))
        .count(db)
        .await?;
    if others == 0 {
        return Err(ApiError::conflict(format!("{:?} is the last enabled admin: cannot {what}", user.username)));
    }
    Ok(())
}

/// Creates a user row after checking name and password.
async fn insert_user(db: &DatabaseConnection, new: &NewUser) -> Result<users::Model, ApiError> {
    check_username(&new.username)?;
    check_password(&new.password)?;
    if users::Entity::find().filter(users::Column::Username.eq(&new.username)).one(db).await?.is_some() {
        return Err(ApiError::conflict(format!("user {:?} already exists", new.username)));
    }
    let hash = hash(&new.password).await?;
    let row = users::ActiveModel {
        id: Set(new_id()),
        username: Set(new.username.clone()),
        password_hash: Set(hash),
        role: Set(new.role.as_str().to_owned()),
        ..Default::default()
    };
    row.insert(db).await.map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::conflict(format!("user {:?} already exists", new.username))
        }
        _ => e.into(),
    })
}

/// `POST /v1/users` (admin).
#[utoipa::path(post, path = "/v1/users", summary = "Create a user (admin)",
    request_body = NewUser, responses((status = 201, body = olin_api::User)))]
pub(super) async fn create(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let new: NewUser = req.json()?;
    let user = insert_user(&api.db, &new).await?;
    audit(api, &req, Some(&caller.user), Some(&user.id), "user_created", &user.username, json!({"role": user.role}))
        .await;
    created(&user_json(&user))
}

/// `GET /v1/users` (admin), by username.
#[utoipa::path(get, path = "/v1/users", summary = "List users (admin), paginated",
    params(olin_api::Page), responses((status = 200, body = UserList)))]
pub(super) async fn list(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let page = super::checked(req.query()?)?;
    let mut q = users::Entity::find().order_by_asc(users::Column::Username);
    if let Some(after) = &page.after {
        q = q.filter(users::Column::Username.gt(after));
    }
    let rows = q.limit(page.limit).all(&api.db).await?;
    let next = next_cursor(rows.len(), page.limit, rows.last().map(|u| u.username.clone()));
    ok(&UserList { items: rows.iter().map(user_json).collect(), next })
}

/// A quota as a column value: 0 clears it.
fn quota(name: &str, v: Option<u64>, current: Option<i64>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(current),
        Some(0) => Ok(None),
        Some(n) => i64::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::unprocessable(format!("quota.{name} must be at most {}", i64::MAX))),
    }
}

/// `PATCH /v1/users/{name}` (admin): monthly quotas of calls and fuel (0
/// clears one), role, disabled. Quotas republish the user's routes at
/// once, so raising a spent quota lets calls through again. Disabling
/// ends every token of theirs at its next use (enabling brings unrevoked
/// ones back) and refuses their logins; their functions keep serving.
#[utoipa::path(patch, path = "/v1/users/{name}", summary = "Set a user's quotas, role, or disable them (admin)",
    request_body = UserPatch, responses((status = 200, body = olin_api::User)))]
pub(super) async fn update(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let user = named(&api.db, params).await?;
    let patch: UserPatch = req.json()?;
    let demoted = patch.role == Some(Role::User);
    let disabled = patch.disabled == Some(true);
    if demoted || disabled {
        keep_an_admin(&api.db, &user, if disabled { "disable them" } else { "take the admin role" }).await?;
    }
    let mut row: users::ActiveModel = user.clone().into();
    let mut detail = serde_json::Map::new();
    if let Some(q) = &patch.quota {
        row.quota_calls_month = Set(quota("calls_per_month", q.calls_per_month, user.quota_calls_month)?);
        row.quota_fuel_month = Set(quota("fuel_per_month", q.fuel_per_month, user.quota_fuel_month)?);
    }
    if let Some(role) = patch.role {
        row.role = Set(role.as_str().to_owned());
        detail.insert("role".into(), json!(role.as_str()));
    }
    match patch.disabled {
        Some(true) if user.disabled_at.is_none() => row.disabled_at = Set(Some(api.clock.now())),
        Some(false) => row.disabled_at = Set(None),
        _ => {}
    }
    if let Some(d) = patch.disabled {
        detail.insert("disabled".into(), json!(d));
    }
    let user = row.update(&api.db).await?;
    if patch.quota.is_some() {
        crate::quota::republish_user(api, &user.id).await?;
        let quota = json!({"calls_per_month": user.quota_calls_month, "fuel_per_month": user.quota_fuel_month});
        detail.insert("quota".into(), quota);
    }
    audit(api, &req, Some(&caller.user), Some(&user.id), "user_updated", &user.username, detail.into()).await;
    ok(&user_json(&user))
}

/// `PUT /v1/users/{name}/password` (admin): sets a new password and
/// revokes every token of the user.
#[utoipa::path(put, path = "/v1/users/{name}/password", summary = "Reset a user's password (admin); revokes their tokens",
    request_body = PasswordReset, responses((status = 200, body = Revoked)))]
pub(super) async fn reset_password(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let user = named(&api.db, params).await?;
    let reset: PasswordReset = req.json()?;
    check_password(&reset.password)?;
    let hash = hash(&reset.password).await?;
    let revoked = set_password(api, &user, hash, None).await?;
    audit(
        api,
        &req,
        Some(&caller.user),
        Some(&user.id),
        "password_reset",
        &user.username,
        json!({"tokens_revoked": revoked}),
    )
    .await;
    ok(&Revoked { revoked })
}

/// Stores a new password hash and revokes the user's tokens but `keep`,
/// in one transaction.
pub(super) async fn set_password(
    api: &Api,
    user: &users::Model,
    hash: String,
    keep: Option<&str>,
) -> Result<u64, ApiError> {
    use sea_orm::TransactionTrait as _;
    let tx = api.db.begin().await?;
    let mut row: users::ActiveModel = user.clone().into();
    row.password_hash = Set(hash);
    row.update(&tx).await?;
    let revoked = revoke_all(&tx, &user.id, keep, api.clock.now()).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// `DELETE /v1/users/{name}` (admin): refused (409) while they own
/// functions, unless `cascade=true`, which deletes those first (routes
/// included: they stop serving). Their tokens go with them; their audit
/// entries stay, without the link.
#[utoipa::path(delete, path = "/v1/users/{name}", summary = "Delete a user (admin), with their functions only if asked",
    params(UserDelete), responses((status = 204), (status = 409, description = "they own functions, or are the last admin")))]
pub(super) async fn delete(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let query: UserDelete = req.query()?;
    let user = named(&api.db, params).await?;
    let name = &user.username;
    keep_an_admin(&api.db, &user, "delete them").await?;
    let owned = functions::Entity::find().filter(functions::Column::OwnerId.eq(&user.id)).all(&api.db).await?;
    if !owned.is_empty() && !query.cascade {
        return Err(ApiError::conflict(format!(
            "{name:?} owns {} function(s): delete them first, or pass cascade=true (olinctl users delete --cascade)",
            owned.len()
        )));
    }
    let mut deleted = Vec::new();
    for f in owned {
        api.routes.delete(&f.name).await.map_err(|e| ApiError::unavailable("the route table (NATS)", &e))?;
        deleted.push(f.name.clone());
        f.delete(&api.db).await?;
    }
    user.clone().delete(&api.db).await?;
    audit(
        api,
        &req,
        Some(&caller.user),
        Some(&user.id),
        "user_deleted",
        &user.username,
        json!({"functions_deleted": deleted}),
    )
    .await;
    no_content()
}

/// `GET /v1/users/{name}/tokens` (admin): the user's tokens, newest
/// first (never their secrets).
#[utoipa::path(get, path = "/v1/users/{name}/tokens", summary = "List a user's tokens (admin)",
    responses((status = 200, body = TokenList)))]
pub(super) async fn tokens(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let user = named(&api.db, params).await?;
    ok(&TokenList::all(token_infos(&api.db, &user.id, &caller.token_id).await?))
}

/// The tokens of `user_id`, newest first; `current` marks the caller's.
pub(super) async fn token_infos(
    db: &DatabaseConnection,
    user_id: &str,
    current: &str,
) -> Result<Vec<TokenInfo>, ApiError> {
    let rows = api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(user_id))
        .order_by_desc(api_tokens::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| TokenInfo {
            current: t.id == current,
            id: t.id,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        })
        .collect())
}

/// `DELETE /v1/users/{name}/tokens` (admin): revokes every token of the
/// user at once.
#[utoipa::path(delete, path = "/v1/users/{name}/tokens", summary = "Revoke all of a user's tokens (admin)",
    responses((status = 200, body = Revoked)))]
pub(super) async fn revoke_tokens(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let user = named(&api.db, params).await?;
    let revoked = revoke_all(&api.db, &user.id, None, api.clock.now()).await?;
    audit(api, &req, Some(&caller.user), Some(&user.id), "tokens_revoked", &user.username, json!({"revoked": revoked}))
        .await;
    ok(&Revoked { revoked })
}

/// Creates the admin `spec` (`username:password`) if there is no user at all.
/// Returns whether it did.
///
/// # Errors
/// A malformed spec, a bad name or password, or a database failure.
pub async fn bootstrap_admin(db: &DatabaseConnection, spec: &str) -> Result<bool, ApiError> {
    let (username, password) = spec
        .split_once(':')
        .ok_or_else(|| ApiError::bad_request("CONTROL_BOOTSTRAP_ADMIN must be `username:password`"))?;
    if users::Entity::find().count(db).await? > 0 {
        return Ok(false);
    }
    let new = NewUser { username: username.to_owned(), password: password.to_owned(), role: Role::Admin };
    insert_user(db, &new).await?;
    Ok(true)
}

/// A user as the API shows it (never the hash).
pub(super) fn user_json(u: &users::Model) -> User {
    User {
        id: u.id.clone(),
        username: u.username.clone(),
        role: Role::from_stored(&u.role),
        created_at: u.created_at,
        quota: UserQuota { calls_per_month: u.quota_calls_month, fuel_per_month: u.quota_fuel_month },
        disabled_at: u.disabled_at,
    }
}
