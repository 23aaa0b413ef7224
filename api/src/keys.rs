//! Invoke keys of private functions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::list::listing;
use chrono::{DateTime, Utc};

/// An invoke key (the key itself only in the answer that created it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvokeKey {
    /// Its id.
    pub id: String,
    /// A label for people.
    pub name: String,
    /// Its first characters, to recognise it by.
    pub prefix: String,
    /// The key: shown once, when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

listing!(
    /// Keys, oldest first.
    InvokeKeyList of InvokeKey
);

/// `POST /v1/functions/{name}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A label for people (where the key is used).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}
