//! A function's environment values.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::listing;
use chrono::{DateTime, Utc};

/// One value (a secret's is never shown again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvValue {
    /// The variable's name.
    pub name: String,
    /// The value; null for a secret.
    #[schema(required = true)]
    pub value: Option<String>,
    /// Whether it is a secret.
    pub secret: bool,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

listing!(
    /// Values by name.
    EnvList of EnvValue
);

/// `PUT /v1/functions/{name}/env/{var}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnv {
    /// The value: at most 8192 characters, without NUL.
    #[schema(max_length = 8192, pattern = "^[^\\u0000]*$")]
    pub value: String,
    /// A secret is stored sealed and never shown again.
    #[serde(default)]
    pub secret: bool,
}
