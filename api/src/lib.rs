//! The control plane's `/v1` API as Rust types: one model that control
//! serves, `olinctl` sends and reads, and the OpenAPI document (and from it
//! the panel's TypeScript types) describes. Change a field here and the
//! document, `docs/api-reference.md` and `panel/src/schema.d.ts` must be
//! regenerated, or CI fails.
//!
//! Requests refuse fields they do not know (`deny_unknown_fields`), and the
//! document says so (`additionalProperties: false`). Limits that depend on
//! the server's configuration (largest memory, token lifetime, call limits)
//! are filled into the document by control at run time.
//!
//! # Layout
//! - [`error`]: the one error body.
//! - [`list`]: paging of listings, and the list wrappers.
//! - [`users`]: logging in, tokens, users and quotas.
//! - [`functions`]: functions, their limits and patches.
//! - [`versions`]: uploaded modules.
//! - [`deployments`]: deploys, canaries, rollbacks.
//! - [`env`]: environment values.
//! - [`keys`]: invoke keys.
//! - [`executions`]: execution records, usage and quotas.
//! - [`invoke`]: the panel's try-it call.
//! - [`audit`]: the audit log.
//! - [`sso`]: signing in through OpenID providers.

#![warn(missing_docs)]

pub mod audit;
pub mod deployments;
pub mod env;
pub mod error;
pub mod executions;
pub mod functions;
pub mod invoke;
pub mod keys;
pub mod list;
pub mod sso;
pub mod users;
pub mod versions;

pub use audit::{AuditEntry, AuditFilter, AuditList};
pub use deployments::{Canary, Deployment, DeploymentKind, DeploymentList, NewDeployment, Rollback};
pub use env::{EnvList, EnvValue, SetEnv};
pub use error::{ErrorBody, ErrorDetail};
pub use executions::{
    Execution, ExecutionFilter, ExecutionList, ExecutionUsage, Percentiles, QuotaKind, QuotaStanding, Rerun,
    SeriesPoint, SeriesQuery, Usage, UsageSeries, Window,
};
pub use functions::{
    ActiveDeployment, Function, FunctionList, FunctionPatch, LastHour, Limits, LimitsPatch, NewFunction, RateLimit,
    RatePatch, Visibility,
};
pub use invoke::{Header, HeaderInput, TryIt, TryItMethod, TryItResult};
pub use keys::{InvokeKey, InvokeKeyList, NewKey};
pub use list::{Listing, Page};
pub use sso::{DevicePoll, DeviceStart, LoopbackExchange, SignInMethods, SsoProvider};
pub use users::{
    Login, Me, NewUser, PasswordChange, PasswordReset, QuotaPatch, Revoked, Role, Token, TokenInfo, TokenList, User,
    UserDelete, UserList, UserPatch, UserQuota,
};
pub use versions::{Abi, Version, VersionList};

/// For a nested object field (`#[serde(default, deserialize_with =
/// "object")]`): serde builds a struct from an array too (`[1, 2]` for
/// `{"a": 1, "b": 2}`), but the document says object, so only an object (or
/// null) is taken.
///
/// # Errors
/// Anything but an object or null, or an object that is not a `T`.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::Deserialize as _;
    use serde::de::Error as _;
    let map: Option<serde_json::Map<String, serde_json::Value>> = Option::deserialize(d)?;
    map.map(|m| serde_json::from_value(serde_json::Value::Object(m)).map_err(D::Error::custom)).transpose()
}
