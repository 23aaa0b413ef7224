//! Signing in through the organisation's OpenID providers: which providers
//! there are, and the device flow `olinctl login --sso` uses. The browser's
//! authorization-code flow is a pair of redirects
//! (`/v1/auth/sso/{provider}/login`, `.../callback`) and a session cookie
//! exchanged for short-lived tokens at `POST /v1/auth/session`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How one may sign in to this control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignInMethods {
    /// Whether username and password logins (`POST /v1/tokens`) are on.
    pub local_passwords: bool,
    /// The OpenID providers, in the operator's order.
    pub providers: Vec<SsoProvider>,
}

/// An OpenID provider users may sign in with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SsoProvider {
    /// Its id in URLs (`/v1/auth/sso/{id}/login`).
    pub id: String,
    /// Its name for people ("Sign in with ...").
    pub name: String,
    /// Whether `olinctl login --sso` may use the device flow with it (else
    /// it signs in through a browser and a loopback redirect).
    pub device_flow: bool,
}

/// A device sign-in started: show the person `verification_uri` and
/// `user_code`, then poll `POST /v1/auth/sso/{provider}/device/token` with
/// `device_code` every `interval` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceStart {
    /// The secret the poller presents; never shown to the person.
    pub device_code: String,
    /// The code the person types at `verification_uri`.
    pub user_code: String,
    /// Where the person signs in.
    pub verification_uri: String,
    /// `verification_uri` with the code filled in, if the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// Seconds until `device_code` expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// One poll of a device sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePoll {
    /// The `device_code` of [`DeviceStart`].
    pub device_code: String,
}

/// `POST /v1/auth/sso/exchange`: the code a loopback sign-in received, and
/// the verifier whose SHA-256 (base64url) was its `challenge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopbackExchange {
    /// The `code` the loopback address received (valid for a minute).
    pub code: String,
    /// The secret only the program that started the sign-in knows.
    pub verifier: String,
}
