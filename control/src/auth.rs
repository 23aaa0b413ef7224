//! Who is calling: argon2 password hashes, HS256 JWTs whose `jti` is a row
//! of `api_tokens` (so a token can be revoked at once), and the bearer check
//! every `/v1` route but `POST /v1/tokens` goes through.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{DatabaseConnection, EntityTrait};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::entity::{api_tokens, users};
use crate::error::{ApiError, Code};

/// What time it is, for token expiry: the system clock in production;
/// tests move it instead of waiting.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Utc::now))
    }

    /// A clock that reads `now`.
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// A JWT signing secret too short to resist guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "CONTROL_JWT_SECRET and each of CONTROL_JWT_VERIFY_SECRETS must be at least 32 bytes (e.g. `openssl rand -hex 32`), not {len}"
)]
pub struct ShortSecret {
    /// The secret's length.
    pub len: usize,
}

/// Hashes a password (argon2id, random salt, PHC string).
///
/// # Errors
/// Only if argon2 rejects its own parameters.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::new(Code::Internal, format!("hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so that a login
/// takes as long for an unknown name as for a wrong password.
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a password").unwrap_or_default())
}

/// What a token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    /// The token id (`api_tokens.id`).
    jti: String,
    /// Expiry, unix seconds.
    exp: i64,
    /// Issued at, unix seconds.
    iat: i64,
    /// What the token is for: absent for a bearer token; `refresh` for a
    /// browser session's cookie ([`Keys::sign_refresh`]), which is never a
    /// bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// The `typ` of a browser session's refresh token.
const REFRESH: &str = "refresh";

/// Signing and checking keys: one secret signs, it and any older ones
/// verify. Each token names its key in its header's `kid`, derived from the
/// secret ([`key_id`]), so a secret can be replaced without logging
/// everybody out (docs/operations/keys.md).
#[derive(Clone)]
pub struct Keys {
    kid: String,
    encoding: EncodingKey,
    /// Every key that verifies, the signing one first, by id.
    decoding: Vec<(String, DecodingKey)>,
}

/// The id a token carries for the secret that signed it: a truncated hash
/// of the secret (which reveals nothing of a 32-byte random secret), so
/// every replica configured with a secret agrees on its id.
pub fn key_id(secret: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new().chain_update(b"olincloud jwt key id\0").chain_update(secret.as_bytes()).finalize();
    format!("hs256-{}", hex::encode(&digest[..8]))
}

impl Keys {
    /// Keys from a shared secret.
    ///
    /// # Errors
    /// A secret shorter than 32 bytes.
    pub fn from_secret(secret: &str) -> Result<Keys, ShortSecret> {
        Keys::new(secret, &[])
    }

    /// Keys that sign with `signing` and also verify tokens signed with
    /// any of `verifying` (older secrets being retired; empty entries, as
    /// an emptied setting gives, are none).
    ///
    /// # Errors
    /// A secret shorter than 32 bytes.
    pub fn new(signing: &str, verifying: &[String]) -> Result<Keys, ShortSecret> {
        let mut decoding = Vec::new();
        let verifying = verifying.iter().map(|s| s.trim()).filter(|s| !s.is_empty());
        for secret in std::iter::once(signing).chain(verifying) {
            if secret.len() < 32 {
                return Err(ShortSecret { len: secret.len() });
            }
            let kid = key_id(secret);
            if !decoding.iter().any(|(k, _)| *k == kid) {
                decoding.push((kid, DecodingKey::from_secret(secret.as_bytes())));
            }
        }
        Ok(Keys { kid: key_id(signing), encoding: EncodingKey::from_secret(signing.as_bytes()), decoding })
    }

    /// The id of the signing key (the `kid` of new tokens).
    pub fn signing_kid(&self) -> &str {
        &self.kid
    }

    /// Signs a token for `user_id` with id `jti`, issued `now`.
    pub(crate) fn sign(
        &self,
        user_id: &str,
        jti: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        self.sign_row(user_id, jti, now, expires_at, None)
    }

    /// Signs the refresh token of the browser session `jti` of `user_id`:
    /// it only ever buys bearer tokens of that session
    /// (`POST /v1/auth/session`), never calls a route itself.
    pub(crate) fn sign_refresh(
        &self,
        user_id: &str,
        jti: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        self.sign_row(user_id, jti, now, expires_at, Some(REFRESH))
    }

    /// Signs a token of row `jti`, of the kind `typ` names.
    fn sign_row(
        &self,
        user_id: &str,
        jti: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        typ: Option<&str>,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user_id.to_owned(),
            jti: jti.to_owned(),
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            typ: typ.map(str::to_owned),
        };
        self.sign_claims(&claims)
    }

    /// Signs any claims with the signing key (each kind of token carries a
    /// `typ` of its own, or `exp`/`sub`/`jti` that others lack).
    pub(crate) fn sign_claims<T: Serialize>(&self, claims: &T) -> Result<String, ApiError> {
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| ApiError::new(Code::Internal, format!("signing failed: {e}")))
    }

    /// The claims of `token` if one of these keys signed it (the one its
    /// `kid` names; a token from before key ids, any), with the claims
    /// `required`. Expiry is the caller's to check, by the control plane's
    /// [`Clock`] (not the library's).
    pub(crate) fn verify_claims<T: serde::de::DeserializeOwned>(&self, token: &str, required: &[&str]) -> Option<T> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.set_required_spec_claims(required);
        let kid = jsonwebtoken::decode_header(token).ok()?.kid;
        self.decoding
            .iter()
            .filter(|(k, _)| kid.as_ref().is_none_or(|kid| kid == k))
            .find_map(|(_, key)| jsonwebtoken::decode::<T>(token, key, &validation).ok())
            .map(|t| t.claims)
    }

    /// The claims of the bearer token `token` if it verifies and has not
    /// expired at `now`.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let claims: Claims = self.verify_claims(token, &["exp", "sub", "jti"])?;
        (claims.typ.is_none() && claims.exp > now.timestamp()).then_some(claims)
    }

    /// The user and session ids of the refresh token `token` if it verifies
    /// and has not expired at `now`.
    pub(crate) fn verify_refresh(&self, token: &str, now: DateTime<Utc>) -> Option<(String, String)> {
        let claims: Claims = self.verify_claims(token, &["exp", "sub", "jti"])?;
        (claims.typ.as_deref() == Some(REFRESH) && claims.exp > now.timestamp()).then_some((claims.sub, claims.jti))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Their user row.
    pub user: users::Model,
    /// The token they called with.
    pub token_id: String,
}

impl Caller {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        olin_api::Role::from_stored(&self.user.role) == olin_api::Role::Admin
    }

    /// 403 unless the caller is an admin.
    ///
    /// # Errors
    /// [`Code::Forbidden`] for other users.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::new(Code::Forbidden, "this needs the admin role")) }
    }
}

/// Checks an `Authorization: Bearer <jwt>` header against the signature,
/// expiry, and the token's row (which must exist and not be revoked).
///
/// # Errors
/// [`Code::Unauthorized`] in every failing case, with the same message for
/// a bad, expired or revoked token.
pub async fn authenticate(
    db: &DatabaseConnection,
    keys: &Keys,
    now: DateTime<Utc>,
    header: Option<&str>,
) -> Result<Caller, ApiError> {
    let Some(header) = header else {
        return Err(ApiError::unauthorized("missing bearer token: log in with POST /v1/tokens"));
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    let invalid = || ApiError::unauthorized("the token is invalid, expired or revoked: log in again");
    let claims = keys.verify(token.trim(), now).ok_or_else(invalid)?;
    live(db, &claims.sub, &claims.jti, now).await?.map(|(caller, _)| caller).ok_or_else(invalid)
}

/// The caller holding token row `jti` of user `user_id`, and when the row
/// expires, if it is neither revoked nor expired at `now` (`None`), and the
/// user is enabled.
///
/// # Errors
/// The database's, or [`disabled`].
pub(crate) async fn live(
    db: &DatabaseConnection,
    user_id: &str,
    jti: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Caller, DateTime<Utc>)>, ApiError> {
    let Some(row) = api_tokens::Entity::find_by_id(jti.to_owned()).one(db).await? else { return Ok(None) };
    if row.revoked_at.is_some() || row.expires_at <= now || row.user_id != user_id {
        return Ok(None);
    }
    let Some(user) = users::Entity::find_by_id(row.user_id).one(db).await? else { return Ok(None) };
    if user.disabled_at.is_some() {
        return Err(disabled());
    }
    Ok(Some((Caller { user, token_id: row.id }, row.expires_at)))
}

/// Whether `a` and `b` are equal, in a time that does not depend on where
/// they differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a disabled user, whatever their credentials.
pub(crate) fn disabled() -> ApiError {
    ApiError::unauthorized("this account is disabled: ask an admin")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("Correct horse", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_checked() {
        let keys = Keys::from_secret(&"k".repeat(32)).unwrap();
        let now = Utc::now();
        let t = keys.sign("u1", "t1", now, now + chrono::Duration::hours(1)).unwrap();
        let c = keys.verify(&t, now).unwrap();
        assert_eq!((c.sub.as_str(), c.jti.as_str()), ("u1", "t1"));
        let other = Keys::from_secret(&"z".repeat(32)).unwrap();
        assert!(other.verify(&t, now).is_none(), "another secret's signature");
        assert!(keys.verify(&t, now + chrono::Duration::hours(1)).is_none(), "expired by the clock given");
        let expired = keys.sign("u1", "t1", now, now - chrono::Duration::seconds(1)).unwrap();
        assert!(keys.verify(&expired, now).is_none());
        assert!(Keys::from_secret("short").is_err());
    }

    #[test]
    fn a_retired_key_verifies_until_it_is_removed() {
        let (old, new) = ("o".repeat(32), "n".repeat(32));
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let before = Keys::from_secret(&old).unwrap();
        let t_old = before.sign("u1", "t1", now, later).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&t_old).unwrap().kid.as_deref(), Some(key_id(&old).as_str()));

        let rotated = Keys::new(&new, std::slice::from_ref(&old)).unwrap();
        assert!(rotated.verify(&t_old, now).is_some(), "the old key still verifies");
        let t_new = rotated.sign("u1", "t2", now, later).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&t_new).unwrap().kid.as_deref(), Some(rotated.signing_kid()));
        assert_ne!(rotated.signing_kid(), before.signing_kid());
        assert!(before.verify(&t_new, now).is_none(), "a replica without the new key refuses it");

        let retired = Keys::from_secret(&new).unwrap();
        assert!(retired.verify(&t_old, now).is_none(), "the old key removed");
        assert!(retired.verify(&t_new, now).is_some());

        // A token naming one key is never checked against another: a kid
        // swapped in does not make another key's signature count.
        let header = jsonwebtoken::Header { kid: Some(key_id(&new)), ..Header::new(Algorithm::HS256) };
        let claims =
            Claims { sub: "u1".into(), jti: "t3".into(), exp: later.timestamp(), iat: now.timestamp(), typ: None };
        let mislabelled = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(old.as_bytes())).unwrap();
        assert!(rotated.verify(&mislabelled, now).is_none());
        // A token from before key ids: any configured key.
        let plain =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(old.as_bytes()))
                .unwrap();
        assert!(rotated.verify(&plain, now).is_some());
        assert!(retired.verify(&plain, now).is_none());
        assert!(Keys::new(&new, &["short".into()]).is_err());
        let emptied = Keys::new(&new, &[String::new()]).unwrap();
        assert!(emptied.verify(&t_old, now).is_none());
    }
}
