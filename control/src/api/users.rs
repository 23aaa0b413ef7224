//! User management, for admins; and the first admin at start-up.

use olin_api::{NewUser, Role, User, UserList, UserPatch, UserQuota};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;
use warp::reply::Response;

use super::{Api, Request, audit, created, new_id, next_cursor, ok};
use crate::auth;
use crate::entity::users;
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

fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(8..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::unprocessable("the password must be 8 to 1024 characters"));
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
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(crate::error::Code::Internal, e.to_string()))??;
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
    audit(api, Some(&caller.user.id), "user_created", &user.username, json!({"role": user.role})).await;
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
/// clears one). The user's routes are republished at once, so raising a
/// spent quota lets calls through again.
#[utoipa::path(patch, path = "/v1/users/{name}", summary = "Set a user's monthly quotas (admin)",
    request_body = UserPatch, responses((status = 200, body = olin_api::User)))]
pub(super) async fn update(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let caller = req.caller(api).await?;
    caller.require_admin()?;
    let name = params.first().map(String::as_str).unwrap_or_default();
    let user = users::Entity::find()
        .filter(users::Column::Username.eq(name))
        .one(&api.db)
        .await?
        .ok_or_else(|| ApiError::not_found("user", name))?;
    let patch: UserPatch = req.json()?;
    let mut row: users::ActiveModel = user.clone().into();
    if let Some(q) = &patch.quota {
        row.quota_calls_month = Set(quota("calls_per_month", q.calls_per_month, user.quota_calls_month)?);
        row.quota_fuel_month = Set(quota("fuel_per_month", q.fuel_per_month, user.quota_fuel_month)?);
    }
    let user = row.update(&api.db).await?;
    crate::quota::republish_user(api, &user.id).await?;
    let detail = json!({"quota": {"calls_per_month": user.quota_calls_month, "fuel_per_month": user.quota_fuel_month}});
    audit(api, Some(&caller.user.id), "user_updated", &user.username, detail).await;
    ok(&user_json(&user))
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
    }
}
