//! The one error type of the API and its mapping to HTTP: every failure is
//! `{"error": {"code", "message"}}` with the status its code implies. This
//! file is the only place where codes meet statuses.

use sea_orm::DbErr;
use tracing::error;
use warp::Reply as _;
use warp::http::StatusCode;
use warp::reply::Response;

/// What went wrong, as a client can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The request is malformed (JSON, fields, parameters).
    BadRequest,
    /// No valid token.
    Unauthorized,
    /// A valid token without the role the route needs.
    Forbidden,
    /// No such resource, or not the caller's.
    NotFound,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// The name is taken, or the state forbids it.
    Conflict,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// Not the media type the route takes.
    UnsupportedMediaType,
    /// Well-formed but unacceptable (an invalid module, an invalid name).
    Unprocessable,
    /// A dependency (database, object store, NATS) failed.
    Unavailable,
    /// Too much in progress (request bodies held): retry later.
    Busy,
    /// Too many attempts (failed logins): wait `Retry-After` seconds.
    TooManyRequests,
    /// A bug.
    Internal,
    /// Single sign-on: the ID token's signature does not verify with the
    /// provider's keys (after fetching them again).
    IdTokenSignature,
    /// Single sign-on: the ID token is for another client.
    IdTokenAudience,
    /// Single sign-on: the ID token has expired (beyond the allowed skew).
    IdTokenExpired,
    /// Single sign-on: the ID token's nonce is not the one this sign-in sent.
    IdTokenNonce,
    /// Single sign-on: the ID token names another issuer.
    IdTokenIssuer,
    /// Single sign-on: the ID token is wrong in another way.
    IdTokenInvalid,
    /// Single sign-on: the callback does not belong to a sign-in this
    /// browser started here (state or cookie missing, altered or old).
    SsoState,
    /// Single sign-on: the provider failed or refused.
    SsoProvider,
    /// Device sign-in: the person has not finished yet; poll again.
    AuthorizationPending,
    /// Device sign-in: polling too fast; wait longer between polls.
    SlowDown,
    /// Device sign-in: the device code expired; start again.
    ExpiredToken,
    /// Device sign-in: the person refused.
    AccessDenied,
}

impl Code {
    fn status(self) -> StatusCode {
        match self {
            Code::BadRequest => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Code::Unavailable | Code::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::IdTokenSignature
            | Code::IdTokenAudience
            | Code::IdTokenExpired
            | Code::IdTokenNonce
            | Code::IdTokenIssuer
            | Code::IdTokenInvalid
            | Code::SsoState => StatusCode::UNAUTHORIZED,
            Code::SsoProvider => StatusCode::BAD_GATEWAY,
            Code::AuthorizationPending | Code::SlowDown | Code::ExpiredToken => StatusCode::BAD_REQUEST,
            Code::AccessDenied => StatusCode::FORBIDDEN,
        }
    }

    /// The machine-readable name in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::Unprocessable => "unprocessable",
            Code::Unavailable => "unavailable",
            Code::Busy => "busy",
            Code::TooManyRequests => "too_many_requests",
            Code::Internal => "internal",
            Code::IdTokenSignature => "id_token_signature",
            Code::IdTokenAudience => "id_token_audience",
            Code::IdTokenExpired => "id_token_expired",
            Code::IdTokenNonce => "id_token_nonce",
            Code::IdTokenIssuer => "id_token_issuer",
            Code::IdTokenInvalid => "id_token_invalid",
            Code::SsoState => "sso_state",
            Code::SsoProvider => "sso_provider",
            Code::AuthorizationPending => "authorization_pending",
            Code::SlowDown => "slow_down",
            Code::ExpiredToken => "expired_token",
            Code::AccessDenied => "access_denied",
        }
    }
}

/// An API failure: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    /// What kind of failure.
    pub code: Code,
    /// What happened and, where it helps, what to do.
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`), when that is the answer.
    pub retry_after: Option<u64>,
    /// Answered before the request body was read in full: the connection
    /// closes after the answer, so no client sends its next request after
    /// the unread rest of a body.
    pub close: bool,
}

impl ApiError {
    /// An error of `code`.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        let retry_after = (code == Code::Busy).then_some(1);
        ApiError { code, message: message.into(), retry_after, close: false }
    }

    /// The same error, closing the connection after it (see [`ApiError::close`]).
    pub fn closing(self) -> ApiError {
        ApiError { close: true, ..self }
    }

    /// 429, to be retried after `secs` seconds.
    pub fn too_many_requests(message: impl Into<String>, secs: u64) -> ApiError {
        ApiError { retry_after: Some(secs), ..ApiError::new(Code::TooManyRequests, message) }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadRequest, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Unauthorized, message)
    }

    /// 404 for a resource the caller does not have (absent or someone else's).
    pub fn not_found(what: &str, name: &str) -> ApiError {
        ApiError::new(Code::NotFound, format!("{what} {name:?} not found"))
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Conflict, message)
    }

    /// 422.
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Unprocessable, message)
    }

    /// 503 (logged: the cause stays in the logs, not in the answer).
    pub fn unavailable(what: &str, err: &dyn std::fmt::Display) -> ApiError {
        error!(%err, what, "dependency failed");
        ApiError::new(Code::Unavailable, format!("{what} is unavailable; try again"))
    }

    /// The HTTP response (with `Retry-After` when the error has one).
    pub fn response(&self) -> Response {
        let body = olin_api::ErrorBody {
            error: olin_api::ErrorDetail { code: self.code.as_str().to_owned(), message: self.message.clone() },
        };
        let mut resp = warp::reply::with_status(warp::reply::json(&body), self.code.status()).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert("retry-after", warp::http::HeaderValue::from(secs));
        }
        if self.close {
            resp.headers_mut().insert("connection", warp::http::HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> ApiError {
        ApiError::unavailable("the database", &err)
    }
}

/// Maps warp's own rejections (no route, wrong method, body too large, bad
/// content length) to the one error shape.
pub(crate) async fn recover(rejection: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    let err = if rejection.is_not_found() {
        ApiError::new(Code::NotFound, "no such route; see /v1/openapi.json")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(Code::PayloadTooLarge, "the request body is too large")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(Code::MethodNotAllowed, "method not allowed on this path")
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::bad_request("a Content-Length is required")
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query string: {e}"))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::bad_request(e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::bad_request(e.to_string())
    } else {
        error!(?rejection, "unhandled rejection");
        ApiError::new(Code::Internal, "internal error")
    };
    Ok(err.response())
}

/// Answers a handler's result: its reply, or its error in the one shape.
pub(crate) fn respond<R: warp::Reply>(result: Result<R, ApiError>) -> Response {
    match result {
        Ok(r) => r.into_response(),
        Err(e) => e.response(),
    }
}
