//! The panel: the built single-page app (`panel/dist`) embedded at build
//! time and served at `/`, same origin as `/v1`. Hashed assets are cached for
//! a year; `index.html` is revalidated on every load. Every answer carries a
//! strict Content-Security-Policy: only this origin's scripts, styles and API,
//! no inline code, no framing.

use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

include!(concat!(env!("OUT_DIR"), "/panel_assets.rs"));

/// The panel's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|(_, b, t)| (*b, *t))
}

fn respond(path: &str) -> Response {
    let (status, body, kind, cache) = match asset(path) {
        Some((body, kind)) if path == "/index.html" => (StatusCode::OK, body, kind, "no-cache"),
        Some((body, kind)) => (StatusCode::OK, body, kind, "public, max-age=31536000, immutable"),
        None if ASSETS.is_empty() => (
            StatusCode::SERVICE_UNAVAILABLE,
            &b"The panel is not built into this binary (panel/dist was empty at build time)."[..],
            "text/plain; charset=utf-8",
            "no-store",
        ),
        None => (StatusCode::NOT_FOUND, &b"not found"[..], "text/plain; charset=utf-8", "no-store"),
    };
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// `GET /` (and `/index.html`) and `GET /assets/...`.
pub(crate) fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let index = warp::path::end().or(warp::path!("index.html")).unify().map(|| respond("/index.html"));
    let assets = warp::path("assets")
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| respond(&format!("/assets/{}", tail.as_str())));
    warp::get().and(index.or(assets).unify())
}
