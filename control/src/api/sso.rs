//! Signing in through OpenID providers, and browser sessions.
//!
//! The browser's flow: `GET /v1/auth/sso/{provider}/login` sends it to the
//! provider with `state`, `nonce` and a PKCE challenge, and keeps them in a
//! signed cookie (nothing is stored for a stranger who never comes back);
//! the provider sends it back to `.../callback`, where the code is
//! exchanged, the ID token checked, the user found by issuer and subject (or
//! provisioned), and a browser session started.
//!
//! A browser session is a row of `api_tokens` with two faces: an `HttpOnly`
//! cookie (`olin_session`, sent only to `/v1/auth/session`) that buys bearer
//! tokens of a few minutes with `POST /v1/auth/session`, and those tokens,
//! which carry the row's id. Revoking the row (logging out, an admin's
//! revocation, a password change) ends both at once.
//!
//! `olinctl login --sso` uses the provider's device flow through
//! `.../device` and `.../device/token` (control holds the client secret),
//! or, without one, the browser flow with a loopback `return_to` and a
//! `challenge` (the SHA-256 of a secret only olinctl knows): the loopback
//! address receives a code good for a minute, which buys a token only with
//! that secret (`POST /v1/auth/sso/exchange`). A page that sends someone's
//! browser through a sign-in towards a port of their machine gets nothing,
//! and no token ever sits in a URL.

use chrono::{DateTime, Duration, Utc};
use olin_api::{DevicePoll, DeviceStart, LoopbackExchange, SignInMethods, SsoProvider, Token};
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::users::user_json;
use super::{Api, Request, audit, created, new_id, no_content, ok};
use crate::auth;
use crate::entity::{api_tokens, identities, users};
use crate::error::{ApiError, Code};
use crate::sso::Identity;

/// The cookie that carries a sign-in in progress (path `/v1/auth/sso/`).
const SIGN_IN_COOKIE: &str = "olin_sso";
/// The cookie of a browser session (path `/v1/auth/session`).
const SESSION_COOKIE: &str = "olin_session";
/// How long a sign-in may take at the provider.
const SIGN_IN_TTL: i64 = 600;
/// How long a loopback sign-in's code may wait to be exchanged.
const HANDOFF_TTL: i64 = 60;

/// What the sign-in cookie holds, signed with the token keys.
#[derive(Debug, Serialize, Deserialize)]
struct SignIn {
    /// Always `sso`: no other token of ours is one of these.
    typ: String,
    exp: i64,
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    /// A loopback sign-in's challenge: SHA-256 (base64url) of the secret
    /// its code is exchanged with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    challenge: Option<String>,
}

/// What a loopback sign-in's code holds, signed with the token keys.
#[derive(Debug, Serialize, Deserialize)]
struct Handoff {
    /// Always `loopback`.
    typ: String,
    exp: i64,
    /// The user signed in.
    sub: String,
    challenge: String,
}

/// `GET /v1/auth/providers`: how one may sign in here.
#[utoipa::path(get, path = "/v1/auth/providers", summary = "How one may sign in: passwords, OpenID providers",
    responses((status = 200, body = SignInMethods)))]
pub(super) async fn providers(api: &Api, _: &[String], _: Request) -> Result<Response, ApiError> {
    ok(&SignInMethods {
        local_passwords: api.local_passwords,
        providers: api
            .sso
            .providers
            .iter()
            .map(|p| SsoProvider {
                id: p.cfg.id.clone(),
                name: p.cfg.name.clone().unwrap_or_else(|| p.cfg.id.clone()),
                device_flow: p.cfg.device_flow,
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginQuery {
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    challenge: Option<String>,
}

/// `GET /v1/auth/sso/{provider}/login`: sends the browser to the provider.
#[utoipa::path(get, path = "/v1/auth/sso/{provider}/login",
    summary = "Sign in through an OpenID provider (a browser is redirected there)",
    params(("provider" = String, Path), ("return_to" = Option<String>, Query,
        description = "Where to go afterwards: a path of this site (default `/`), or a loopback URL `http://127.0.0.1:PORT/...` that receives `?token=` (olinctl)")),
    responses((status = 303, description = "To the provider's sign-in page")))]
pub(super) async fn login(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let p = api.sso.provider(params.first().map(String::as_str).unwrap_or_default())?;
    let q: LoginQuery = req.query()?;
    let return_to = q.return_to.unwrap_or_else(|| "/".to_owned());
    let loopback = matches!(Destination::parse(&return_to)?, Destination::Loopback(_));
    let challenge_ok = q.challenge.as_ref().is_some_and(|c| c.len() == 43 && c.bytes().all(is_base64url));
    if loopback && !challenge_ok {
        return Err(ApiError::bad_request(
            "a loopback return_to needs challenge: the base64url SHA-256 (43 characters) of a secret of yours",
        ));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (state, nonce) = (CsrfToken::new_random().secret().clone(), Nonce::new_random().secret().clone());
    let url = api.sso.authorize_url(p, &state, &nonce, challenge.as_str()).await?;
    let sign_in = SignIn {
        typ: "sso".into(),
        exp: (api.clock.now() + Duration::seconds(SIGN_IN_TTL)).timestamp(),
        provider: p.cfg.id.clone(),
        state,
        nonce,
        verifier: verifier.secret().clone(),
        return_to,
        challenge: q.challenge.filter(|_| loopback),
    };
    let cookie = Cookie {
        name: SIGN_IN_COOKIE,
        value: api.keys.sign_claims(&sign_in)?,
        path: "/v1/auth/sso/",
        max_age: SIGN_IN_TTL,
        // Lax: the provider sends the browser back with a cross-site GET.
        same_site: "Lax",
        secure: api.sso.secure_cookies(),
    };
    with_cookie(redirect(&url)?, &cookie)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `GET /v1/auth/sso/{provider}/callback`: the provider's answer.
#[utoipa::path(get, path = "/v1/auth/sso/{provider}/callback",
    summary = "Where the OpenID provider sends the browser back (the redirect URI to register)",
    params(("provider" = String, Path), ("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query), ("error_description" = Option<String>, Query)),
    responses((status = 303, description = "Signed in: to `return_to`"),
        (status = 401, description = "`sso_state`, or the ID token refused (`id_token_*`)", body = olin_api::ErrorBody)))]
pub(super) async fn callback(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let browser = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match finish(api, params, &req).await {
        // A person in a browser gets a page that says what went wrong and
        // leads back to the sign-in, with the same status and code.
        Err(err) if browser => Ok(error_page(&err)),
        answer => answer,
    }
}

/// A refused sign-in as a page.
fn error_page(err: &ApiError) -> Response {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Sign-in refused</title>\
         <h1>Sign-in refused</h1><p>{}</p><p><code>{}</code></p><p><a href=\"/#/login\">Back to the sign-in page</a></p>",
        escape(&err.message),
        err.code.as_str()
    );
    let mut resp = err.response();
    *resp.body_mut() = body.into();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

/// The callback's work: the sign-in checked and the session started.
async fn finish(api: &Api, params: &[String], req: &Request) -> Result<Response, ApiError> {
    let p = api.sso.provider(params.first().map(String::as_str).unwrap_or_default())?;
    let q: CallbackQuery = req.query()?;
    let now = api.clock.now();
    let stale = || {
        ApiError::new(
            Code::SsoState,
            "this sign-in was not started in this browser, or is over 10 minutes old: start again",
        )
    };
    let sign_in = cookie(req, SIGN_IN_COOKIE)
        .and_then(|c| api.keys.verify_claims::<SignIn>(&c, &["exp"]))
        .filter(|s| s.typ == "sso" && s.exp > now.timestamp() && s.provider == p.cfg.id)
        .ok_or_else(stale)?;
    if q.state.as_deref() != Some(sign_in.state.as_str()) {
        return Err(stale());
    }
    if let Some(error) = q.error {
        let code = if error == "access_denied" { Code::AccessDenied } else { Code::SsoProvider };
        let detail = q.error_description.unwrap_or_default();
        return Err(ApiError::new(code, format!("the provider refused the sign-in: {error} {detail}")));
    }
    let code = q.code.ok_or_else(|| ApiError::bad_request("the provider sent neither a code nor an error"))?;
    let identity = api.sso.exchange_code(p, &code, &sign_in.verifier, &sign_in.nonce, now).await?;
    let user = signed_in(api, req, &identity).await?;
    let clear = Cookie::cleared(SIGN_IN_COOKIE, "/v1/auth/sso/", api.sso.secure_cookies());
    match Destination::parse(&sign_in.return_to)? {
        Destination::Site(path) => {
            let (_, session) = start_session(api, &user).await?;
            with_cookie(with_cookie(redirect(&path)?, &clear)?, &session)
        }
        Destination::Loopback(mut url) => {
            let challenge = sign_in.challenge.ok_or_else(stale)?;
            let handoff = Handoff {
                typ: "loopback".into(),
                exp: (now + Duration::seconds(HANDOFF_TTL)).timestamp(),
                sub: user.id.clone(),
                challenge,
            };
            url.query_pairs_mut().append_pair("code", &api.keys.sign_claims(&handoff)?);
            with_cookie(redirect(url.as_str())?, &clear)
        }
    }
}

/// `POST /v1/auth/sso/exchange`: a loopback sign-in's code and secret for a token.
#[utoipa::path(post, path = "/v1/auth/sso/exchange",
    summary = "Exchange a loopback sign-in's code, with its secret, for a token (olinctl)",
    request_body = LoopbackExchange,
    responses((status = 201, body = Token), (status = 401, description = "A wrong, used-up or old code, or the wrong secret", body = olin_api::ErrorBody)))]
pub(super) async fn exchange(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let ask: LoopbackExchange = req.json()?;
    let now = api.clock.now();
    let refused =
        || ApiError::unauthorized("this sign-in code is wrong, over a minute old, or not yours: sign in again");
    let handoff = api
        .keys
        .verify_claims::<Handoff>(&ask.code, &["exp", "sub"])
        .filter(|h| h.typ == "loopback" && h.exp > now.timestamp())
        .ok_or_else(refused)?;
    let digest = sha2::Sha256::digest(ask.verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    if !crate::auth::same(challenge.as_bytes(), handoff.challenge.as_bytes()) {
        return Err(refused());
    }
    let user = users::Entity::find_by_id(handoff.sub).one(&api.db).await?.ok_or_else(refused)?;
    if user.disabled_at.is_some() {
        return Err(auth::disabled());
    }
    created(&super::tokens::issue(api, &user, api.token_ttl_secs).await?)
}

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// `POST /v1/auth/sso/{provider}/device`: starts a device sign-in.
#[utoipa::path(post, path = "/v1/auth/sso/{provider}/device",
    summary = "Start a device sign-in (olinctl login --sso)", params(("provider" = String, Path)),
    responses((status = 201, body = DeviceStart),
        (status = 409, description = "The provider has no device flow here", body = olin_api::ErrorBody)))]
pub(super) async fn device_start(api: &Api, params: &[String], _: Request) -> Result<Response, ApiError> {
    let p = api.sso.provider(params.first().map(String::as_str).unwrap_or_default())?;
    created(&api.sso.device_start(p).await?)
}

/// `POST /v1/auth/sso/{provider}/device/token`: one poll of a device sign-in.
#[utoipa::path(post, path = "/v1/auth/sso/{provider}/device/token",
    summary = "Poll a device sign-in: a token once the person has signed in", params(("provider" = String, Path)),
    request_body = DevicePoll,
    responses((status = 201, body = Token),
        (status = 400, description = "`authorization_pending`, `slow_down` or `expired_token`", body = olin_api::ErrorBody)))]
pub(super) async fn device_token(api: &Api, params: &[String], req: Request) -> Result<Response, ApiError> {
    let p = api.sso.provider(params.first().map(String::as_str).unwrap_or_default())?;
    let poll: DevicePoll = req.json()?;
    let identity = api.sso.device_poll(p, &poll.device_code, api.clock.now()).await?;
    let user = signed_in(api, &req, &identity).await?;
    created(&super::tokens::issue(api, &user, api.token_ttl_secs).await?)
}

/// `POST /v1/auth/session`: a fresh short-lived token of the browser
/// session whose cookie comes with the request.
#[utoipa::path(post, path = "/v1/auth/session",
    summary = "A fresh short-lived token of this browser's session (its cookie)",
    responses((status = 201, body = Token), (status = 401, description = "No live session", body = olin_api::ErrorBody)))]
pub(super) async fn refresh(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let now = api.clock.now();
    let none = || ApiError::unauthorized("no live browser session: sign in");
    let (user_id, jti) =
        cookie(&req, SESSION_COOKIE).and_then(|c| api.keys.verify_refresh(&c, now)).ok_or_else(none)?;
    let (caller, ends) = auth::live(&api.db, &user_id, &jti, now).await?.ok_or_else(none)?;
    created(&session_token(api, &caller.user, &caller.token_id, ends, now)?)
}

/// `DELETE /v1/auth/session`: ends this browser's session (and every
/// token it bought) and clears its cookie.
#[utoipa::path(delete, path = "/v1/auth/session", summary = "Log out: end this browser's session",
    responses((status = 204)))]
pub(super) async fn end(api: &Api, _: &[String], req: Request) -> Result<Response, ApiError> {
    let now = api.clock.now();
    if let Some((user_id, jti)) = cookie(&req, SESSION_COOKIE).and_then(|c| api.keys.verify_refresh(&c, now))
        && let Some(row) = api_tokens::Entity::find_by_id(jti).one(&api.db).await?
        && row.user_id == user_id
        && row.revoked_at.is_none()
    {
        let mut active: api_tokens::ActiveModel = row.into();
        active.revoked_at = Set(Some(now));
        active.update(&api.db).await?;
    }
    with_cookie(no_content()?, &Cookie::cleared(SESSION_COOKIE, "/v1/auth/session", api.sso.secure_cookies()))
}

/// Starts a browser session of `user`: its row, its first token, and the
/// cookie that buys the next ones.
pub(super) async fn start_session(api: &Api, user: &users::Model) -> Result<(Token, Cookie), ApiError> {
    let now = api.clock.now();
    let expires_at = now + Duration::from_std(api.sessions.session).unwrap_or(Duration::hours(12));
    let id = super::tokens::token_row(api, user, expires_at).await?;
    let cookie = Cookie {
        name: SESSION_COOKIE,
        value: api.keys.sign_refresh(&user.id, &id, now, expires_at)?,
        path: "/v1/auth/session",
        max_age: (expires_at - now).num_seconds(),
        same_site: "Strict",
        secure: api.sso.secure_cookies(),
    };
    Ok((session_token(api, user, &id, expires_at, now)?, cookie))
}

/// A bearer token of session `id`: minutes long, never past the session.
fn session_token(
    api: &Api,
    user: &users::Model,
    id: &str,
    session_ends: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Token, ApiError> {
    let expires_at = (now + Duration::from_std(api.sessions.token).unwrap_or(Duration::minutes(15))).min(session_ends);
    let token = api.keys.sign(&user.id, id, now, expires_at)?;
    Ok(Token { token, id: id.to_owned(), expires_at, user: user_json(user) })
}

/// The user an identity signs in as: found by issuer and subject, or
/// provisioned at the first sign-in (named from the ID token, made unique);
/// the role follows the admin claim when one is configured. A disabled
/// user is refused.
async fn signed_in(api: &Api, req: &Request, id: &Identity) -> Result<users::Model, ApiError> {
    let now = api.clock.now();
    let known = identities::Entity::find()
        .filter(identities::Column::Issuer.eq(&id.issuer))
        .filter(identities::Column::Subject.eq(&id.subject))
        .one(&api.db)
        .await?;
    let (user, link) = match known {
        Some(link) => match users::Entity::find_by_id(link.user_id.clone()).one(&api.db).await? {
            Some(user) => (user, link),
            None => return Err(ApiError::unauthorized("this identity's user is gone: ask an admin")),
        },
        None => provision(api, req, id).await?,
    };
    if user.disabled_at.is_some() {
        audit(api, req, Some(&user), Some(&user.id), "login_refused_disabled", &user.username, json!({})).await;
        return Err(auth::disabled());
    }
    let mut user = user;
    let role = olin_api::Role::from_stored(&user.role);
    if let Some(admin) = id.admin {
        let wanted = if admin { olin_api::Role::Admin } else { olin_api::Role::User };
        if wanted != role {
            let mut active: users::ActiveModel = user.clone().into();
            active.role = Set(wanted.as_str().to_owned());
            user = active.update(&api.db).await?;
            let detail = json!({"role": wanted.as_str(), "from": "admin claim", "provider": id.provider});
            audit(api, req, Some(&user), Some(&user.id), "user_updated", &user.username, detail).await;
        }
    }
    let mut link: identities::ActiveModel = link.into();
    link.last_login_at = Set(Some(now));
    link.update(&api.db).await?;
    let detail = json!({"provider": id.provider});
    audit(api, req, Some(&user), Some(&user.id), "login", &user.username, detail).await;
    Ok(user)
}

/// Creates the user of a first sign-in and links the identity to it.
async fn provision(api: &Api, req: &Request, id: &Identity) -> Result<(users::Model, identities::Model), ApiError> {
    let base = crate::sso::username_from(&id.username_hint);
    let role = if id.admin == Some(true) { olin_api::Role::Admin } else { olin_api::Role::User };
    // Taken names get a number; past a few, a random suffix.
    let candidates = std::iter::once(base.clone()).chain((2..=9).map(|n| format!("{base}-{n}"))).chain(
        std::iter::repeat_with(|| format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])).take(3),
    );
    for name in candidates {
        let row = users::ActiveModel {
            id: Set(new_id()),
            username: Set(name),
            // No password: `verify_password` fails on this, always.
            password_hash: Set("!sso".to_owned()),
            role: Set(role.as_str().to_owned()),
            ..Default::default()
        };
        let user = match row.insert(&api.db).await {
            Ok(user) => user,
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => continue,
            Err(e) => return Err(e.into()),
        };
        let link = identities::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user.id.clone()),
            provider: Set(id.provider.clone()),
            issuer: Set(id.issuer.clone()),
            subject: Set(id.subject.clone()),
            last_login_at: Set(None),
            ..Default::default()
        };
        let link = match link.insert(&api.db).await {
            Ok(link) => link,
            Err(e) => {
                // Two first sign-ins at once: the other one won; use its user.
                let _ = users::Entity::delete_by_id(user.id.clone()).exec(&api.db).await;
                if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
                    return Err(ApiError::conflict("this identity signed in twice at once: try again"));
                }
                return Err(e.into());
            }
        };
        let detail = json!({"provider": id.provider, "role": role.as_str()});
        audit(api, req, Some(&user), Some(&user.id), "user_provisioned", &user.username, detail).await;
        return Ok((user, link));
    }
    Err(ApiError::conflict(format!("no free username near {base:?}: ask an admin")))
}

/// Where a sign-in ends.
enum Destination {
    /// A path of this site (the panel).
    Site(String),
    /// `olinctl`'s listener on this machine.
    Loopback(url::Url),
}

impl Destination {
    /// `return_to`, if it is a path of this site or a loopback URL: never
    /// anywhere else (an open redirect would hand out tokens).
    fn parse(return_to: &str) -> Result<Destination, ApiError> {
        let bad = || {
            ApiError::bad_request(
                "return_to must be a path of this site (/...) or a loopback URL (http://127.0.0.1:PORT/...)",
            )
        };
        if return_to.len() > 2048 || return_to.chars().any(char::is_control) {
            return Err(bad());
        }
        if return_to.starts_with('/') && !return_to.starts_with("//") && !return_to.starts_with("/\\") {
            return Ok(Destination::Site(return_to.to_owned()));
        }
        let url = url::Url::parse(return_to).map_err(|_| bad())?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if url.scheme() == "http" && loopback && url.username().is_empty() {
            Ok(Destination::Loopback(url))
        } else {
            Err(bad())
        }
    }
}

/// A cookie to set.
pub(super) struct Cookie {
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: i64,
    same_site: &'static str,
    secure: bool,
}

impl Cookie {
    /// The cookie `name` deleted.
    fn cleared(name: &'static str, path: &'static str, secure: bool) -> Cookie {
        Cookie { name, value: String::new(), path, max_age: 0, same_site: "Strict", secure }
    }

    fn header(&self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite={}{secure}",
            self.name, self.value, self.path, self.max_age, self.same_site
        )
    }
}

/// `resp` with `cookie` set.
pub(super) fn with_cookie(mut resp: Response, cookie: &Cookie) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(&cookie.header())
        .map_err(|e| ApiError::new(Code::Internal, format!("cookie header: {e}")))?;
    resp.headers_mut().append(header::SET_COOKIE, value);
    Ok(resp)
}

/// 303 to `location`.
fn redirect(location: &str) -> Result<Response, ApiError> {
    let mut resp = Response::new(Default::default());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let value =
        HeaderValue::from_str(location).map_err(|e| ApiError::new(Code::Internal, format!("location header: {e}")))?;
    resp.headers_mut().insert(header::LOCATION, value);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The value of cookie `name` in the request.
fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn only_this_site_and_loopback_are_destinations() {
        for ok in ["/", "/functions/x?y=1", "http://127.0.0.1:4711/cb", "http://[::1]:80/", "http://localhost:9/"] {
            assert!(Destination::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "https://127.0.0.1:443/",
            "http://user@127.0.0.1:80/",
            "http://10.0.0.1:80/",
            "javascript:alert(1)",
            "/a\nb",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
