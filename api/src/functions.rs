//! Functions: a DNS-label name, a visibility, limits, an egress allow-list,
//! call limits, and the deployment that serves it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::listing;
use chrono::{DateTime, Utc};

/// Who may call a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone with its URL.
    #[default]
    Public,
    /// Callers presenting one of its invoke keys.
    Private,
}

impl Visibility {
    /// As stored and written: `public` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    /// The stored visibility; anything unknown is private (the safe side).
    pub fn from_stored(s: &str) -> Visibility {
        if s == "public" { Visibility::Public } else { Visibility::Private }
    }
}

/// A function's own limits; null: the server's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Limits {
    /// Fuel (metered instructions) per call.
    #[schema(required = true)]
    pub fuel: Option<i64>,
    /// Linear memory per call.
    #[schema(required = true)]
    pub memory_bytes: Option<i64>,
    /// Wall time per call.
    #[schema(required = true)]
    pub wall_ms: Option<i64>,
    /// Response bytes per call.
    #[schema(required = true)]
    pub max_output_bytes: Option<i64>,
    /// Host-side buffers per call.
    #[schema(required = true)]
    pub host_budget_bytes: Option<i64>,
}

/// Calls per second admitted across every gateway, with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateLimit {
    /// The sustained rate.
    pub per_second: u32,
    /// Calls admitted at once after a quiet spell.
    pub burst: u32,
}

/// The active deployment of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActiveDeployment {
    /// The deployment's id.
    pub id: String,
    /// The version serving the calls (all of them but the canary's share).
    pub version: i32,
    /// The canary version, during a canary.
    #[schema(required = true)]
    pub canary_version: Option<i32>,
    /// The canary's share of the calls, in percent, during a canary.
    #[schema(required = true)]
    pub canary_percent: Option<i32>,
}

/// Calls that started in the last hour, and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct LastHour {
    /// Calls.
    pub calls: i64,
    /// Calls that did not end OK.
    pub errors: i64,
}

/// A function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Function {
    /// Its id.
    pub id: String,
    /// Its name (a DNS label).
    pub name: String,
    /// Who may call it.
    pub visibility: Visibility,
    /// Where it is called.
    pub url: String,
    /// Its own limits.
    pub limits: Limits,
    /// The hosts its guests may reach.
    pub egress_allow: Vec<String>,
    /// Attempts of an async call; null: the server's default.
    #[schema(required = true)]
    pub async_max_attempts: Option<i32>,
    /// Its rate limit; null: none.
    #[schema(required = true)]
    pub rate_limit: Option<RateLimit>,
    /// Most calls at once; null: none.
    #[schema(required = true)]
    pub max_concurrency: Option<u32>,
    /// The active deployment; null before the first deploy.
    #[schema(required = true)]
    pub deployment: Option<ActiveDeployment>,
    /// Its calls of the last hour.
    pub last_hour: LastHour,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

listing!(
    /// Functions by name.
    FunctionList of Function
);

/// `POST /v1/functions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFunction {
    /// 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub name: String,
    /// Default: public.
    #[serde(default)]
    pub visibility: Visibility,
}

/// A change of limits: a value sets it (within the server's maxima), 0
/// clears it (the server default), absent or null leaves it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    /// Fuel per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub fuel: Option<u64>,
    /// Memory per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub memory_bytes: Option<u64>,
    /// Wall time per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub wall_ms: Option<u64>,
    /// Response bytes per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub max_output_bytes: Option<u64>,
    /// Host-side buffers per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub host_budget_bytes: Option<u64>,
}

/// A rate limit to set.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatePatch {
    /// Calls per second; 0 clears the limit (the operator's maximum, if
    /// any, applies).
    #[schema(minimum = 0)]
    pub per_second: u32,
    /// Calls admitted at once after a quiet spell; default: `per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub burst: Option<u32>,
}

/// `PATCH /v1/functions/{name}`: what is present changes; the route is
/// republished, so the next call runs with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionPatch {
    /// Who may call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Its own limits.
    #[serde(default, deserialize_with = "crate::object", skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsPatch>,
    /// The hosts its guests may reach (replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100, value_type = Option<Vec<EgressEntry>>)]
    pub egress_allow: Option<Vec<String>>,
    /// Attempts of an async call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10)]
    pub async_max_attempts: Option<u32>,
    /// Its rate limit.
    #[serde(default, deserialize_with = "crate::object", skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RatePatch>,
    /// Most calls at once; 0 clears the limit (the operator's maximum, if
    /// any, applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub max_concurrency: Option<u32>,
}

/// One egress allow-list entry: a host name, `*.domain`, with an optional
/// `:port` (IP literals and `*` only where the operator allows them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(
    pattern = "^(\\*\\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?$"
)]
pub struct EgressEntry(pub String);
