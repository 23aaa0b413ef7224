//! fetch: an Olincloud function in Rust that calls out over `https` through
//! the olin resource API (the host makes the request: TLS verified, time and
//! size capped, only to hosts on the function's egress allow-list).
//!
//!   GET /   fetches FETCH_URL (the function's environment; default
//!           https://example.com/) and answers with the upstream status
//!           line, the size of its body and its first line
//!
//! Deploy it with the host allowed, e.g.
//!   olinctl deploy fetch examples/fetch/fetch.wasm
//!   curl -X PATCH .../v1/functions/fetch -d '{"egress_allow": ["example.com"]}'
//! A host not on the list is refused (PermissionDenied) and the function
//! answers 502 saying so.
//!
//! Build: ../build.sh (Debian's rustc with libstd-rust-dev-wasm32).

use std::io::{Read, Write};

use olin_guest::cgi::{Request, Response};
use olin_guest::{Level, Resource, log};

/// `https://host[:port]/path` -> (origin, host header, path).
fn split(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    Some((format!("https://{authority}"), authority.to_owned(), path.to_owned()))
}

fn handle() -> Result<(), Box<dyn std::error::Error>> {
    let _req = Request::read()?;
    let url = olin_guest::env::get("FETCH_URL").unwrap_or_else(|| "https://example.com/".to_owned());
    let (origin, host, path) = match split(&url) {
        Some(parts) => parts,
        None => {
            return Response::text(500, format!("FETCH_URL {url:?} is not an https:// URL\n")).send().map_err(Into::into)
        }
    };
    let mut upstream = match Resource::open(&origin) {
        Ok(r) => r,
        Err(e) => {
            log(Level::Warning, &format!("opening {origin}: {e}"));
            return Response::text(502, format!("cannot open {origin}: {e} (is the host on the egress allow-list?)\n"))
                .send()
                .map_err(Into::into);
        }
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: olincloud-fetch-example\r\nConnection: close\r\n\r\n");
    upstream.write_all(request.as_bytes())?;
    if let Err(e) = upstream.flush() {
        log(Level::Warning, &format!("fetching {url}: {e}"));
        return Response::text(502, format!("fetching {url} failed: {e} (the reason is in this call's stderr: olinctl logs <function>)\n"))
            .send()
            .map_err(Into::into);
    }
    let mut raw = Vec::new();
    upstream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or("").to_owned();
    let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    log(Level::Info, &format!("fetched {url}: {status_line}"));
    Response::text(
        200,
        format!("fetched {url}\nstatus: {status_line}\nbody: {} bytes\nfirst line: {first}\n", body.len()),
    )
    .send()?;
    Ok(())
}

olin_guest::entrypoint!(handle);
