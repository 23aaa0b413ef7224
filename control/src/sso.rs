//! Single sign-on through the organisation's OpenID providers (Keycloak,
//! Dex, Gitea, Google, Entra, ...): their configuration, discovery, the
//! authorization-code flow with PKCE, the device flow, and ID token checks.
//!
//! The `openidconnect` crate parses discovery documents and key sets and
//! verifies ID tokens (signature, issuer, audience, expiry, nonce); the
//! requests are ours, over the control plane's HTTP client, with a time
//! limit, no redirects and a cap on every answer's size. The routes that use
//! this are in `api/sso.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreIdToken,
    CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClaimsVerificationError, ClientId, ClientSecret, IssuerUrl, Nonce, ProviderMetadata,
    SignatureVerificationError,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};

/// One configured provider, as the operator writes it (`CONTROL_OIDC_CONFIG`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its id in URLs and in `identities.provider`: 1-32 of a-z, 0-9, `-`.
    pub id: String,
    /// Its name for people; the id when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The issuer URL (discovery is `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client registered with the provider.
    pub client_id: String,
    /// Its secret, inline ...
    #[serde(default)]
    pub client_secret: Option<String>,
    /// ... or in a file (a mounted Kubernetes Secret).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim a new user's name is made from (then `email`'s local part,
    /// then the subject).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim that grants the admin role (a dotted path into the ID
    /// token, e.g. `groups` or `realm_access.roles`): a string or a list of
    /// strings. When set, each sign-in sets the user's role from it; when
    /// absent, roles are managed in Olincloud only.
    #[serde(default)]
    pub admin_claim: Option<String>,
    /// Values of `admin_claim` that make an admin.
    #[serde(default)]
    pub admin_values: Vec<String>,
    /// Whether `olinctl login --sso` may use the provider's device flow
    /// (when it has one); otherwise it uses a browser and a loopback redirect.
    #[serde(default = "yes")]
    pub device_flow: bool,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(str::to_owned).to_vec()
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

fn yes() -> bool {
    true
}

/// The file (or inline document) of `CONTROL_OIDC_CONFIG`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    providers: Vec<ProviderConfig>,
}

/// A provider configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SsoConfigError {
    /// The file could not be read.
    #[error("CONTROL_OIDC_CONFIG: reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the expected JSON.
    #[error("CONTROL_OIDC_CONFIG: {0}")]
    Parse(serde_json::Error),
    /// A provider's setting is wrong.
    #[error("CONTROL_OIDC_CONFIG: provider {id:?}: {problem}")]
    Provider {
        /// The provider's id.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// Providers need the public URL for their redirect URI.
    #[error("CONTROL_PUBLIC_URL is required with OpenID providers: their redirect URI is built from it")]
    NoPublicUrl,
}

/// Reads `CONTROL_OIDC_CONFIG`: a JSON document `{"providers": [...]}`,
/// inline (starting with `{`) or in the file it names.
///
/// # Errors
/// An unreadable file, bad JSON, unknown fields, a bad provider.
pub fn parse_config(setting: &str) -> Result<Vec<ProviderConfig>, SsoConfigError> {
    let text = if setting.trim_start().starts_with('{') {
        setting.to_owned()
    } else {
        std::fs::read_to_string(setting).map_err(|source| SsoConfigError::Read { path: setting.to_owned(), source })?
    };
    let file: ConfigFile = serde_json::from_str(&text).map_err(SsoConfigError::Parse)?;
    let mut seen = Vec::new();
    for p in &file.providers {
        let bad = |problem: &str| SsoConfigError::Provider { id: p.id.clone(), problem: problem.to_owned() };
        let id_ok = (1..=32).contains(&p.id.len())
            && p.id.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !id_ok {
            return Err(bad("the id must be 1-32 of a-z, 0-9 and '-'"));
        }
        if seen.contains(&p.id) {
            return Err(bad("configured twice"));
        }
        seen.push(p.id.clone());
        IssuerUrl::new(p.issuer.clone()).map_err(|e| bad(&format!("issuer: {e}")))?;
        if p.client_secret.is_some() == p.client_secret_file.is_some() {
            return Err(bad("give exactly one of client_secret and client_secret_file"));
        }
        if p.admin_claim.is_some() && p.admin_values.is_empty() {
            return Err(bad("admin_claim needs admin_values"));
        }
    }
    Ok(file.providers)
}

/// The discovery document, with the device endpoint `openidconnect`'s core
/// type leaves out.
type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// RFC 8628's discovery field.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceEndpoint {
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for DeviceEndpoint {}

/// The most bytes read of any answer from a provider.
const MAX_ANSWER: usize = 1 << 20;
/// How long a request to a provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a discovery document is kept before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches of a key set for an unknown key id:
/// a stranger's forged tokens cannot make us hammer the provider.
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Clock skew allowed between us and the provider, on expiry.
const SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// Who signed in: the provider's subject and what the ID token says.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The provider's configured id.
    pub(crate) provider: String,
    /// The issuer, as the ID token names it.
    pub(crate) issuer: String,
    /// The subject: the user's stable id at the issuer.
    pub(crate) subject: String,
    /// What a new user's name is made from.
    pub(crate) username_hint: String,
    /// The role the admin claim gives (`None`: no admin claim configured).
    pub(crate) admin: Option<bool>,
}

/// One provider at run time.
pub(crate) struct Provider {
    pub(crate) cfg: ProviderConfig,
    secret: String,
    issuer: IssuerUrl,
    known: tokio::sync::Mutex<Option<Known>>,
}

/// What was discovered, and when.
struct Known {
    metadata: Metadata,
    fetched: Instant,
    /// When the key set was last fetched again for an unknown key.
    keys_refetched: Option<Instant>,
}

/// Every configured provider.
pub(crate) struct Sso {
    pub(crate) providers: Vec<Provider>,
    /// Where browsers reach control (`CONTROL_PUBLIC_URL`), without a
    /// trailing slash.
    pub(crate) public_url: String,
    http: reqwest::Client,
}

impl Sso {
    /// Providers from their configuration; nothing is fetched until the
    /// first sign-in (a provider that is down does not stop control).
    ///
    /// # Errors
    /// A secret file that cannot be read, no public URL.
    pub(crate) fn new(cfgs: Vec<ProviderConfig>, public_url: Option<&str>) -> Result<Sso, SsoConfigError> {
        let public_url = match public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if cfgs.is_empty() => String::new(),
            None => return Err(SsoConfigError::NoPublicUrl),
        };
        let mut providers = Vec::new();
        for cfg in cfgs {
            let secret = match (&cfg.client_secret, &cfg.client_secret_file) {
                (Some(s), _) => s.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|source| SsoConfigError::Read { path: path.display().to_string(), source })?
                    .trim()
                    .to_owned(),
                (None, None) => String::new(),
            };
            let issuer = IssuerUrl::new(cfg.issuer.clone())
                .map_err(|e| SsoConfigError::Provider { id: cfg.id.clone(), problem: e.to_string() })?;
            providers.push(Provider { cfg, secret, issuer, known: tokio::sync::Mutex::new(None) });
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| SsoConfigError::Provider { id: "*".into(), problem: format!("HTTP client: {e}") })?;
        Ok(Sso { providers, public_url, http })
    }

    /// The provider `id`, or 404.
    pub(crate) fn provider(&self, id: &str) -> Result<&Provider, ApiError> {
        self.providers.iter().find(|p| p.cfg.id == id).ok_or_else(|| ApiError::not_found("sign-in provider", id))
    }

    /// The redirect URI registered with provider `id`.
    pub(crate) fn redirect_uri(&self, id: &str) -> String {
        format!("{}/v1/auth/sso/{id}/callback", self.public_url)
    }

    /// Whether the cookies we set must be `Secure`.
    pub(crate) fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The URL to send the browser to, for a sign-in with `state`, `nonce`
    /// and the PKCE `challenge` (S256).
    pub(crate) async fn authorize_url(
        &self,
        p: &Provider,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<String, ApiError> {
        let metadata = p.metadata(&self.http).await?;
        let mut url = url::Url::parse(metadata.authorization_endpoint().as_str())
            .map_err(|e| provider_error(&p.cfg.id, format!("its authorization endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.cfg.client_id)
            .append_pair("redirect_uri", &self.redirect_uri(&p.cfg.id))
            .append_pair("scope", &p.scopes())
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges an authorization code (with its PKCE verifier) for the ID
    /// token, and checks it against `nonce`.
    pub(crate) async fn exchange_code(
        &self,
        p: &Provider,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, ApiError> {
        let redirect = self.redirect_uri(&p.cfg.id);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier),
        ];
        let id_token = match self.token_request(p, &form).await? {
            TokenAnswer::IdToken(t) => t,
            TokenAnswer::Error { error, description } => {
                return Err(provider_error(&p.cfg.id, format!("the code was refused: {error} {description}")));
            }
        };
        let nonce = Nonce::new(nonce.to_owned());
        self.verify(p, &id_token, Some(&nonce), now).await
    }

    /// Starts a device sign-in (RFC 8628).
    pub(crate) async fn device_start(&self, p: &Provider) -> Result<olin_api::DeviceStart, ApiError> {
        let metadata = p.metadata(&self.http).await?;
        let endpoint = match (&metadata.additional_metadata().device_authorization_endpoint, p.cfg.device_flow) {
            (Some(e), true) => e.clone(),
            _ => {
                return Err(ApiError::conflict(format!(
                    "provider {:?} has no device flow here: sign in through a browser",
                    p.cfg.id
                )));
            }
        };
        let scope = p.scopes();
        let form = [("client_id", p.cfg.client_id.as_str()), ("scope", scope.as_str())];
        let req = with_form(self.http.post(endpoint).basic_auth(&p.cfg.client_id, Some(&p.secret)), &form);
        let (status, body) = send(req).await.map_err(|e| provider_error(&p.cfg.id, e))?;
        if !status.is_success() {
            return Err(provider_error(
                &p.cfg.id,
                format!("the device flow was refused ({status}): {}", excerpt(&body)),
            ));
        }
        #[derive(Deserialize)]
        struct Answer {
            device_code: String,
            user_code: String,
            verification_uri: String,
            #[serde(default)]
            verification_uri_complete: Option<String>,
            expires_in: u64,
            #[serde(default)]
            interval: Option<u64>,
        }
        let a: Answer =
            serde_json::from_slice(&body).map_err(|e| provider_error(&p.cfg.id, format!("its device answer: {e}")))?;
        Ok(olin_api::DeviceStart {
            device_code: a.device_code,
            user_code: a.user_code,
            verification_uri: a.verification_uri,
            verification_uri_complete: a.verification_uri_complete,
            expires_in: a.expires_in,
            interval: a.interval.unwrap_or(5).max(1),
        })
    }

    /// Polls a device sign-in once: the identity when the person is done;
    /// [`Code::AuthorizationPending`] or [`Code::SlowDown`] before.
    pub(crate) async fn device_poll(
        &self,
        p: &Provider,
        device_code: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, ApiError> {
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)];
        match self.token_request(p, &form).await? {
            // No nonce in the device flow: the token came straight from the
            // provider's token endpoint to us, for our client.
            TokenAnswer::IdToken(t) => self.verify(p, &t, None, now).await,
            TokenAnswer::Error { error, description } => Err(match error.as_str() {
                "authorization_pending" => {
                    ApiError::new(Code::AuthorizationPending, "the sign-in is not finished yet; poll again")
                }
                "slow_down" => ApiError::new(Code::SlowDown, "polling too fast: wait 5 more seconds between polls"),
                "expired_token" => ApiError::new(Code::ExpiredToken, "the device code expired: start again"),
                "access_denied" => ApiError::new(Code::AccessDenied, "the sign-in was refused at the provider"),
                _ => provider_error(&p.cfg.id, format!("the device code was refused: {error} {description}")),
            }),
        }
    }

    /// One request to the token endpoint, with the client's credentials.
    async fn token_request(&self, p: &Provider, form: &[(&str, &str)]) -> Result<TokenAnswer, ApiError> {
        let metadata = p.metadata(&self.http).await?;
        let endpoint = metadata
            .token_endpoint()
            .ok_or_else(|| provider_error(&p.cfg.id, "its discovery document has no token endpoint"))?;
        let req = with_form(self.http.post(endpoint.as_str()).basic_auth(&p.cfg.client_id, Some(&p.secret)), form);
        let (status, body) = send(req).await.map_err(|e| provider_error(&p.cfg.id, e))?;
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            id_token: Option<String>,
            #[serde(default)]
            error: Option<String>,
            #[serde(default)]
            error_description: Option<String>,
        }
        let a: Answer = serde_json::from_slice(&body).map_err(|e| {
            provider_error(&p.cfg.id, format!("its token answer ({status}) is not JSON: {e}: {}", excerpt(&body)))
        })?;
        match (a.id_token, a.error) {
            (Some(t), None) if status.is_success() => Ok(TokenAnswer::IdToken(t)),
            (_, Some(error)) => Ok(TokenAnswer::Error { error, description: a.error_description.unwrap_or_default() }),
            _ => Err(provider_error(&p.cfg.id, format!("its token answer ({status}) has no ID token"))),
        }
    }

    /// Checks an ID token: signature by the provider's keys (fetched again,
    /// at most every few seconds, when it names a key we do not know: the
    /// provider rotated), issuer, audience, expiry (with a minute of skew),
    /// and the nonce when one was sent.
    async fn verify(
        &self,
        p: &Provider,
        id_token: &str,
        nonce: Option<&Nonce>,
        now: DateTime<Utc>,
    ) -> Result<Identity, ApiError> {
        let token: CoreIdToken =
            id_token.parse().map_err(|e| id_error(Code::IdTokenInvalid, format!("it is not a JWT: {e}")))?;
        let mut refetched = false;
        loop {
            let metadata = p.metadata(&self.http).await?;
            let verifier = CoreIdTokenVerifier::new_confidential_client(
                ClientId::new(p.cfg.client_id.clone()),
                ClientSecret::new(p.secret.clone()),
                p.issuer.clone(),
                metadata.jwks().clone(),
            )
            .set_time_fn(move || now - SKEW);
            let checked = match nonce {
                Some(n) => token.claims(&verifier, n).map(drop),
                None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(drop),
            };
            match checked {
                Ok(()) => break,
                Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                    if !refetched =>
                {
                    refetched = true;
                    p.refresh_keys(&self.http).await?;
                }
                Err(e) => return Err(claims_error(e)),
            }
        }
        // Verified: the payload's other claims can be read as they are.
        let claims = payload(id_token)?;
        let text = |name: &str| claim(&claims, name).and_then(|v| v.as_str()).map(str::to_owned);
        let subject = text("sub").ok_or_else(|| id_error(Code::IdTokenInvalid, "it has no subject"))?;
        let username_hint = text(&p.cfg.username_claim)
            .or_else(|| text("email").map(|e| e.split('@').next().unwrap_or_default().to_owned()))
            .unwrap_or_else(|| subject.clone());
        let admin = p.cfg.admin_claim.as_deref().map(|path| {
            let values: Vec<&str> = match claim(&claims, path) {
                Some(serde_json::Value::String(s)) => vec![s.as_str()],
                Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
                _ => Vec::new(),
            };
            values.iter().any(|v| p.cfg.admin_values.iter().any(|a| a == v))
        });
        Ok(Identity {
            provider: p.cfg.id.clone(),
            issuer: text("iss").unwrap_or_else(|| p.cfg.issuer.clone()),
            subject,
            username_hint,
            admin,
        })
    }
}

impl Provider {
    /// The scopes asked for, `openid` first.
    fn scopes(&self) -> String {
        let mut scopes = vec!["openid"];
        scopes.extend(self.cfg.scopes.iter().map(String::as_str).filter(|s| *s != "openid"));
        scopes.join(" ")
    }

    /// The discovery document (and key set): fetched at the first use and
    /// again after an hour; the last good one while the provider is down.
    async fn metadata(&self, http: &reqwest::Client) -> Result<Metadata, ApiError> {
        let mut known = self.known.lock().await;
        if let Some(k) = known.as_ref().filter(|k| k.fetched.elapsed() < METADATA_TTL) {
            return Ok(k.metadata.clone());
        }
        match Metadata::discover_async(self.issuer.clone(), &client_fn(http)).await {
            Ok(metadata) => {
                let keys_refetched = known.as_ref().and_then(|k| k.keys_refetched);
                *known = Some(Known { metadata: metadata.clone(), fetched: Instant::now(), keys_refetched });
                Ok(metadata)
            }
            Err(err) => match known.as_ref() {
                Some(k) => {
                    tracing::warn!(provider = %self.cfg.id, %err, "discovery failed; using the document fetched before");
                    Ok(k.metadata.clone())
                }
                None => Err(provider_error(&self.cfg.id, format!("discovery failed: {}", chain(&err)))),
            },
        }
    }

    /// Fetches the key set again (the provider rotated its keys), unless
    /// that was done moments ago.
    async fn refresh_keys(&self, http: &reqwest::Client) -> Result<(), ApiError> {
        let mut known = self.known.lock().await;
        let Some(k) = known.as_mut() else { return Ok(()) };
        if k.keys_refetched.is_some_and(|at| at.elapsed() < JWKS_MIN_INTERVAL) {
            return Ok(());
        }
        k.keys_refetched = Some(Instant::now());
        let jwks = CoreJsonWebKeySet::fetch_async(k.metadata.jwks_uri(), &client_fn(http))
            .await
            .map_err(|e| provider_error(&self.cfg.id, format!("fetching its keys failed: {}", chain(&e))))?;
        tracing::info!(provider = %self.cfg.id, keys = jwks.keys().len(), "provider keys fetched again");
        k.metadata = k.metadata.clone().set_jwks(jwks);
        Ok(())
    }
}

/// A token endpoint's answer.
enum TokenAnswer {
    IdToken(String),
    Error { error: String, description: String },
}

/// A failure to talk to a provider, as `openidconnect` sees it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

/// Our HTTP client as `openidconnect` calls it: no redirects, the time
/// limit, and at most [`MAX_ANSWER`] bytes read.
fn client_fn(
    http: &reqwest::Client,
) -> impl Fn(openidconnect::HttpRequest) -> BoxFuture<'static, Result<openidconnect::HttpResponse, HttpError>> {
    let http = http.clone();
    move |request: openidconnect::HttpRequest| {
        let http = http.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let req = http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
            let (status, headers, body) = send_full(req).await.map_err(HttpError)?;
            let mut resp = openidconnect::HttpResponse::new(body);
            *resp.status_mut() = status;
            *resp.headers_mut() = headers;
            Ok(resp)
        })
    }
}

/// `req` with `pairs` as its form body.
fn with_form(req: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    req.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(pairs).unwrap_or_default())
}

/// Sends `req` and reads at most [`MAX_ANSWER`] bytes of its answer.
async fn send(req: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    send_full(req).await.map(|(status, _, body)| (status, body))
}

/// [`send`], with the answer's headers.
async fn send_full(
    req: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), String> {
    let mut resp = req.send().await.map_err(|e| chain(&e))?;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| chain(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("its answer is over {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body))
}

/// An error and its causes, on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// The start of an answer, for an error message.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

/// 502: the provider failed or refused (logged with the detail).
fn provider_error(id: &str, detail: impl std::fmt::Display) -> ApiError {
    tracing::warn!(provider = id, %detail, "sign-in provider failed");
    ApiError::new(Code::SsoProvider, format!("sign-in provider {id:?}: {detail}"))
}

fn id_error(code: Code, detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(code, format!("the provider's ID token was refused: {detail}"))
}

/// The precise answer to an ID token that does not verify.
fn claims_error(err: ClaimsVerificationError) -> ApiError {
    let code = match &err {
        ClaimsVerificationError::SignatureVerification(_) => Code::IdTokenSignature,
        ClaimsVerificationError::InvalidAudience(_) => Code::IdTokenAudience,
        ClaimsVerificationError::Expired(_) => Code::IdTokenExpired,
        ClaimsVerificationError::InvalidNonce(_) => Code::IdTokenNonce,
        ClaimsVerificationError::InvalidIssuer(_) => Code::IdTokenIssuer,
        _ => Code::IdTokenInvalid,
    };
    id_error(code, err)
}

/// The claims of a (verified) JWT's payload.
fn payload(jwt: &str) -> Result<serde_json::Value, ApiError> {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| id_error(Code::IdTokenInvalid, "its payload is not JSON"))
}

/// The claim at a dotted `path` (`realm_access.roles`).
fn claim<'a>(claims: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

/// A username made from `hint`: lower case, other characters as `-`, at
/// most 48 characters (room for a `-N` suffix), starting with a letter or
/// digit; `user` if nothing is left.
pub(crate) fn username_from(hint: &str) -> String {
    let mapped: String = hint
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c) { c } else { '-' })
        .collect();
    let trimmed: String = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).chars().take(48).collect();
    if trimmed.is_empty() { "user".to_owned() } else { trimmed }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn usernames_are_made_valid() {
        assert_eq!(username_from("Alice.Smith"), "alice.smith");
        assert_eq!(username_from("Zoë Ünal"), "zo---nal");
        assert_eq!(username_from("__x"), "x");
        assert_eq!(username_from("!!!"), "user");
        assert_eq!(username_from(&"a".repeat(100)).len(), 48);
    }

    #[test]
    fn claims_are_found_by_path() {
        let c = serde_json::json!({"groups": ["a"], "realm_access": {"roles": ["admin"]}});
        assert_eq!(claim(&c, "realm_access.roles"), Some(&serde_json::json!(["admin"])));
        assert_eq!(claim(&c, "groups.x"), None);
    }

    #[test]
    fn configurations_are_checked() {
        let ok = r#"{"providers": [{"id": "corp", "issuer": "https://id.example.com", "client_id": "c", "client_secret": "s"}]}"#;
        let p = parse_config(ok).unwrap();
        assert_eq!((p[0].scopes.len(), p[0].device_flow), (3, true));
        for (bad, why) in [
            (r#"{"providers": [{"id": "Corp", "issuer": "https://x", "client_id": "c", "client_secret": "s"}]}"#, "id"),
            (r#"{"providers": [{"id": "c", "issuer": "https://x", "client_id": "c"}]}"#, "exactly one"),
            (
                r#"{"providers": [{"id": "c", "issuer": "https://x", "client_id": "c", "client_secret": "s", "admin_claim": "groups"}]}"#,
                "admin_values",
            ),
            (
                r#"{"providers": [{"id": "c", "issuer": "https://x", "client_id": "c", "client_secret": "s", "bogus": 1}]}"#,
                "unknown field",
            ),
        ] {
            let err = parse_config(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(parse_config("/nonexistent/oidc.json").unwrap_err().to_string().contains("reading"));
    }
}
