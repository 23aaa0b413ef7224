//! The audit log: every change made through the API, who made it, from
//! where, and whether it was refused.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::list::listing;

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Its id (time-ordered).
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who acted: their username at the time; null for an anonymous
    /// caller (a failed login).
    #[schema(required = true)]
    pub actor: Option<String>,
    /// What: `login`, `function_created`, `deploy`, `user_updated`, ...;
    /// for a refused change, its method and route (`DELETE /v1/users/{name}`).
    pub action: String,
    /// On what: a function's or user's name, a token id; for a refused
    /// change, the route's parameters joined with `/`.
    pub target: String,
    /// `ok`, or the HTTP status of a refused change (`403`, `409`, ...).
    pub outcome: String,
    /// The client's address, as control saw it (null for entries from
    /// before addresses were recorded).
    #[schema(required = true)]
    pub source: Option<String>,
    /// What changed (never a secret or password): an object.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

listing!(
    /// Audit entries, newest first.
    AuditList of AuditEntry
);

/// `GET /v1/audit` query: filters (all must match) and paging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only entries of this actor (username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Most entries in the page.
    #[serde(default = "crate::list::default_limit")]
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: u64,
    /// The `next` cursor of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}
