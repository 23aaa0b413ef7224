//! Logging in, tokens, users and their monthly quotas.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::listing;
use chrono::{DateTime, Utc};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, besides everything a user does.
    Admin,
    /// Owns functions.
    #[default]
    User,
}

impl Role {
    /// The role as stored and written: `admin` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// The stored role; anything unknown is a plain user.
    pub fn from_stored(s: &str) -> Role {
        if s == "admin" { Role::Admin } else { Role::User }
    }
}

/// `POST /v1/tokens`: a username and password for a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Who logs in.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub username: String,
    /// Their password.
    #[schema(max_length = 1024)]
    pub password: String,
    /// The token's lifetime in seconds; at most the server's token TTL
    /// (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub expires_in: Option<u64>,
    /// A browser session instead of a long-lived token: the answer's token
    /// lasts minutes, and an `HttpOnly` cookie buys the next ones at
    /// `POST /v1/auth/session` until the session ends (`expires_in` does
    /// not apply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session: bool,
}

/// A bearer token, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// The bearer token (a JWT).
    pub token: String,
    /// Its id: revoke it with `DELETE /v1/tokens/{id}`.
    pub id: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whose it is.
    pub user: User,
}

/// A token as listings show it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it is the token of this request.
    pub current: bool,
}

listing!(
    /// The caller's tokens, newest first.
    TokenList of TokenInfo
);

/// A user's monthly quotas; null: none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct UserQuota {
    /// Calls per calendar month (UTC).
    #[schema(required = true)]
    pub calls_per_month: Option<i64>,
    /// Fuel per calendar month (UTC).
    #[schema(required = true)]
    pub fuel_per_month: Option<i64>,
}

/// A user (never their password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Their id.
    pub id: String,
    /// Their name.
    pub username: String,
    /// What they may do.
    pub role: Role,
    /// When they were created.
    pub created_at: DateTime<Utc>,
    /// Their monthly quotas.
    pub quota: UserQuota,
    /// When an admin disabled them (their tokens stop working and they
    /// cannot log in; their functions keep serving); null: enabled.
    #[serde(default)]
    #[schema(required = true)]
    pub disabled_at: Option<DateTime<Utc>>,
}

/// `GET /v1/me`: the user a token belongs to, and the token's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// The id of the token of this request.
    pub token_id: String,
}

listing!(
    /// Users by name.
    UserList of User
);

/// `POST /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1-64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub username: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// Default: `user`.
    #[serde(default)]
    pub role: Role,
}

/// A change of quotas: a value sets it, 0 clears it, absent or null
/// leaves it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaPatch {
    /// Calls per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub calls_per_month: Option<u64>,
    /// Fuel per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub fuel_per_month: Option<u64>,
}

/// `PATCH /v1/users/{name}` (admin): what is present changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// The user's monthly quotas.
    #[serde(default, deserialize_with = "crate::object", skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaPatch>,
    /// Their role (the last enabled admin keeps theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Disable (every token of theirs fails at once, logins are refused)
    /// or enable them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `PUT /v1/users/{name}/password` (admin): a new password; every token
/// of the user is revoked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// `PUT /v1/me/password`: your own password; your other tokens are
/// revoked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    #[schema(max_length = 1024)]
    pub current_password: String,
    /// The new one: 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// `DELETE /v1/users/{name}` query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserDelete {
    /// Delete the user's functions with them (refused with 409 otherwise
    /// when they own any).
    #[serde(default)]
    pub cascade: bool,
}

/// Tokens revoked at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    /// How many were still valid.
    pub revoked: u64,
}
