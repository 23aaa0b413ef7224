//! Deployments: which version (or two, during a canary) serves a function.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::listing;
use chrono::{DateTime, Utc};

/// How a deployment came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentKind {
    /// A deploy.
    Deploy,
    /// A rollback to an earlier version.
    Rollback,
}

impl DeploymentKind {
    /// As stored and written.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Deploy => "deploy",
            DeploymentKind::Rollback => "rollback",
        }
    }

    /// The stored kind.
    pub fn from_stored(s: &str) -> DeploymentKind {
        if s == "rollback" { DeploymentKind::Rollback } else { DeploymentKind::Deploy }
    }
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    /// Its id.
    pub id: String,
    /// The version it serves.
    pub version: i32,
    /// Its canary version, if it had one.
    #[schema(required = true)]
    pub canary_version: Option<i32>,
    /// The canary's share in percent (0 without one).
    pub canary_percent: i32,
    /// Whether it serves now.
    pub active: bool,
    /// How it came about.
    pub kind: DeploymentKind,
    /// When.
    pub created_at: DateTime<Utc>,
}

listing!(
    /// Deployments, newest first.
    DeploymentList of Deployment
);

/// A second version taking a share of the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// The canary version's number.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub version: i32,
    /// Its share of the calls, in percent.
    #[schema(minimum = 1, maximum = 99)]
    pub percent: i32,
}

/// `POST /v1/functions/{name}/deployments`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// The version number to deploy.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub version: i32,
    /// Optionally, a second version taking a share of the calls.
    #[serde(default, deserialize_with = "crate::object", skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

/// `POST /v1/functions/{name}/rollback` (the body is optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version to return to; default: the one deployed before the
    /// current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub version: Option<i32>,
}
