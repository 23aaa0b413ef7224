//! Namespace `resource`: "everything is a URL". Small sequential fds: 0, 1
//! and 2 are the call's stdin, stdout and stderr; opened resources take the
//! lowest free fd from 3, up to a cap on open resources.
//!
//! Schemes: `log://[?prefix=p]`, `null://`, `zero://`, `random://`, and
//! `http://`/`https://` in the buffered model: the guest writes a whole
//! HTTP/1.1 request, `resource_flush` sends it (to the *opened* origin, never
//! the `Host` header) through the embedder's [`Egress`], and reads return the
//! serialized response. Network schemes are refused with -3 unless the
//! function's egress allow-list admits the host. An unknown scheme is -4, an
//! unparsable URL -2.

use std::time::{Duration, Instant};

use rand::RngCore;
use wasmer::{FunctionEnvMut, RuntimeError};

use crate::abi::log;
use crate::egress::{self, Egress, EgressError, EgressRequest, EgressResponse, Origin};
use crate::errno::{OlinError, olin};
use crate::fd::Resource;
use crate::memory;
use crate::process::{Budget, Process, Stop, with_guest, with_guest_or_stop};

/// fd of the call's stdin (the request body).
pub(crate) const STDIN: i32 = 0;
/// fd of the call's stdout (the CGI response).
pub(crate) const STDOUT: i32 = 1;
/// fd of the call's stderr (logs).
pub(crate) const STDERR: i32 = 2;

/// Longest URL `resource_open` reads.
const MAX_URL: i32 = 8 * 1024;

/// Largest request a guest may buffer in an `http(s)` resource.
const MAX_HTTP_REQUEST: usize = 10 << 20;

/// Largest response body accepted from outbound HTTP.
const MAX_HTTP_RESPONSE: usize = 10 << 20;

/// Longest single outbound exchange (the call's deadline may cut it shorter).
const MAX_HTTP_TIME: Duration = Duration::from_secs(30);

/// What the call's host budget is charged for, named in the error when it runs out.
const HTTP_BUFFERS: &str = "http resource buffers";

/// Splits `scheme://rest` and finds `prefix=` in a query.
fn parse_url(url: &str) -> Result<(&str, &str), OlinError> {
    let (scheme, rest) = url.split_once("://").ok_or(OlinError::InvalidArgument)?;
    let valid = !scheme.is_empty()
        && scheme.bytes().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        && scheme.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    if valid { Ok((scheme, rest)) } else { Err(OlinError::InvalidArgument) }
}

fn query_param<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = rest.split_once('?')?;
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// `resource_open(url_ptr, url_len) -> fd`.
pub(crate) fn open(mut env: FunctionEnvMut<'_, Process>, url_ptr: i32, url_len: i32) -> i32 {
    with_guest(&mut env, "resource_open", |p, mem| {
        olin((|| {
            if memory::u(url_len) > memory::u(MAX_URL) {
                return Err(OlinError::InvalidArgument);
            }
            let url = memory::read_str(mem, url_ptr, url_len).map_err(|_| OlinError::InvalidArgument)?;
            p.resource_urls.record(&url, &mut p.budget);
            let (scheme, rest) = parse_url(&url)?;
            let resource = match scheme.to_ascii_lowercase().as_str() {
                "log" => {
                    let prefix = query_param(rest, "prefix").map(str::to_owned);
                    // Within MAX_URL; counted so that 64 opens cannot pass the budget.
                    let held = prefix.as_ref().map_or(0, String::len);
                    p.budget.charge(held, "log resource prefixes").map_err(|_| OlinError::PermissionDenied)?;
                    Resource::Log { prefix }
                }
                "null" => Resource::Null,
                "zero" => Resource::Zero,
                "random" => Resource::Random,
                "http" | "https" => {
                    let origin = Origin::parse(&url).ok_or(OlinError::InvalidArgument)?;
                    if !egress::allowed(&p.egress_allow, &origin) {
                        let why = format!("egress to {} denied", origin.base());
                        log::line(p, "WARN", Some("olincloud"), why.as_bytes());
                        return Err(OlinError::PermissionDenied);
                    }
                    Resource::Http { origin, request: Vec::new(), response: None }
                }
                _ => return Err(OlinError::NotFound),
            };
            let held = resource.held();
            p.resources.insert(resource).inspect_err(|_| p.budget.release(held))
        })())
    })
}

/// `resource_read(fd, ptr, len) -> n`: returns the bytes actually read; -5 at
/// the end, -2 for a bad fd or pointer, -1 for a write-only stream.
pub(crate) fn read(mut env: FunctionEnvMut<'_, Process>, fd: i32, ptr: i32, len: i32) -> i32 {
    with_guest(&mut env, "resource_read", |p, mem| {
        olin((|| {
            let bad = |_: memory::Fault| OlinError::InvalidArgument;
            memory::check(mem, ptr, len).map_err(bad)?;
            let (at, n) = (memory::u(ptr), memory::u(len));
            let len = usize::try_from(n).map_err(|_| OlinError::InvalidArgument)?;
            // Copied straight from where the bytes are (or made a chunk at a
            // time): a read is never a guest-sized host buffer.
            let copied = match fd {
                STDIN => {
                    let data = p.read_stdin(len);
                    memory::write(mem, at, data).map_err(bad)?;
                    data.len()
                }
                STDOUT | STDERR => return Err(OlinError::Unknown),
                _ => match p.resources.get(fd).ok_or(OlinError::InvalidArgument)? {
                    Resource::Zero => {
                        memory::fill(mem, at, n, |c| c.fill(0)).map_err(bad)?;
                        len
                    }
                    Resource::Random => {
                        memory::fill(mem, at, n, |c| rand::rngs::OsRng.fill_bytes(c)).map_err(bad)?;
                        len
                    }
                    Resource::Null => 0,
                    Resource::Log { .. } => return Err(OlinError::Unknown),
                    // A read before flush has no response to read.
                    Resource::Http { response: None, .. } => return Err(OlinError::Unknown),
                    Resource::Http { response: Some((body, pos)), .. } => {
                        let start = (*pos).min(body.len());
                        let end = start.saturating_add(len).min(body.len());
                        *pos = end;
                        let data = body.get(start..end).unwrap_or_default();
                        memory::write(mem, at, data).map_err(bad)?;
                        data.len()
                    }
                },
            };
            if copied == 0 && len > 0 {
                return Err(OlinError::Eof);
            }
            i32::try_from(copied).map_err(|_| OlinError::Unknown)
        })())
    })
}

/// `resource_write(fd, ptr, len) -> n`: always complete; a stdout write past
/// the output cap stops the guest, and so does an `http(s)` request buffer
/// past the call's host budget. Bytes are copied only where they are kept,
/// after the caps are checked: a bad fd or a `null://` write copies nothing,
/// stderr copies only its tail, a log line only its head.
pub(crate) fn write(mut env: FunctionEnvMut<'_, Process>, fd: i32, ptr: i32, len: i32) -> Result<i32, RuntimeError> {
    with_guest_or_stop(&mut env, "resource_write", |p, mem| {
        let range = [(memory::u(ptr), memory::u(len))];
        if memory::ranges(mem, &range).is_err() {
            return Ok(OlinError::InvalidArgument.code());
        }
        let n = i32::try_from(memory::u(len)).unwrap_or(i32::MAX);
        let r = match fd {
            STDOUT => p.write_stdout(mem, &range, memory::u(len))?.map(|()| n).map_err(|_| OlinError::InvalidArgument),
            STDERR => p.write_stderr(mem, &range).map(|()| n).map_err(|_| OlinError::InvalidArgument),
            STDIN => Err(OlinError::Unknown),
            _ => match p.resources.get(fd) {
                None => Err(OlinError::InvalidArgument),
                Some(Resource::Log { prefix }) => {
                    let prefix = prefix.clone();
                    match log::read_message(mem, ptr, len) {
                        Ok(msg) => {
                            log::line(p, "INFO", prefix.as_deref(), &msg);
                            Ok(n)
                        }
                        Err(_) => Err(OlinError::InvalidArgument),
                    }
                }
                Some(Resource::Null | Resource::Zero) => Ok(n),
                Some(Resource::Random) => Err(OlinError::Unknown),
                Some(Resource::Http { request, .. }) => {
                    let add = memory::u(len) as usize;
                    if request.len() + add > MAX_HTTP_REQUEST {
                        Err(OlinError::Unknown)
                    } else {
                        p.budget.charge(add, HTTP_BUFFERS)?;
                        match memory::read_append(mem, memory::u(ptr), memory::u(len), request) {
                            Ok(()) => Ok(n),
                            Err(_) => {
                                p.budget.release(add);
                                Err(OlinError::InvalidArgument)
                            }
                        }
                    }
                }
            },
        };
        Ok(olin(r))
    })
}

/// `resource_flush(fd) -> i32`: 0, -2 for a bad fd; for `http(s)`, sends
/// the buffered request (-2 if it does not parse, -1 if the exchange fails,
/// with the reason in the guest's log).
/// The response is charged to the call's host budget: the exchange may
/// receive at most what the budget has left (and at most
/// [`MAX_HTTP_RESPONSE`]); a response larger than what is left stops the
/// call (`MEMORY_EXCEEDED`, naming the budget).
pub(crate) fn flush(mut env: FunctionEnvMut<'_, Process>, fd: i32) -> Result<i32, RuntimeError> {
    with_guest_or_stop(&mut env, "resource_flush", |p, _| {
        if (STDIN..=STDERR).contains(&fd) {
            return Ok(0);
        }
        let egress = p.egress.clone();
        let deadline = p.deadline;
        let outcome = match p.resources.get(fd) {
            None => return Ok(OlinError::InvalidArgument.code()),
            Some(Resource::Http { origin, request, response }) => {
                // The request and any earlier response are let go first.
                let freed = request.len() + response.take().map_or(0, |(r, _)| r.len());
                p.budget.release(freed);
                let sent = send_http(egress.as_deref(), origin, request, deadline, &mut p.budget);
                *request = Vec::new();
                match sent {
                    Ok(serialized) => {
                        *response = Some((serialized, 0));
                        Ok(0)
                    }
                    Err(Sent::Stop(stop)) => return Err(stop),
                    Err(Sent::Failed(code, why)) => Err((code, format!("{}: {why}", origin.base()))),
                }
            }
            Some(_) => Ok(0),
        };
        Ok(match outcome {
            Ok(v) => v,
            Err((code, why)) => {
                log::line(p, "WARN", Some("olincloud"), format!("http resource: {why}").as_bytes());
                code.code()
            }
        })
    })
}

/// Why an exchange produced no response.
enum Sent {
    /// The guest gets this code; the reason goes to its log.
    Failed(OlinError, String),
    /// The call ends.
    Stop(Stop),
}

fn send_http(
    egress: Option<&dyn Egress>,
    origin: &Origin,
    raw: &[u8],
    deadline: Instant,
    budget: &mut Budget,
) -> Result<Vec<u8>, Sent> {
    let fail = |code, why: String| Sent::Failed(code, why);
    let Some(egress) = egress else {
        return Err(fail(OlinError::Unknown, "outbound HTTP is not available on this worker".to_owned()));
    };
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(fail(OlinError::InvalidArgument, "incomplete request head".into()));
        }
        Err(e) => return Err(fail(OlinError::InvalidArgument, format!("unparsable request: {e}"))),
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(fail(OlinError::InvalidArgument, "no request line".into()));
    };
    if !path.starts_with('/') {
        let why = "the request target must be a path (origin-form)".to_owned();
        return Err(fail(OlinError::InvalidArgument, why));
    }
    let mut body = raw.get(head..).unwrap_or_default().to_vec();
    let mut out_headers = vec![("host".to_owned(), origin.host_header().into_bytes())];
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if name == "content-length" {
            let len = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len {
                body.truncate(len);
            }
            continue;
        }
        let hop = ["host", "connection", "transfer-encoding", "keep-alive", "upgrade", "te"];
        if !hop.contains(&name.as_str()) {
            out_headers.push((name, h.value.to_vec()));
        }
    }
    let timeout = deadline.saturating_duration_since(Instant::now()).min(MAX_HTTP_TIME);
    if timeout.is_zero() {
        return Err(fail(OlinError::Unknown, "the call's deadline has passed".into()));
    }
    // What the response may take: the budget's rest, at most MAX_HTTP_RESPONSE.
    let room = budget.left().min(MAX_HTTP_RESPONSE);
    let sent = egress.send(EgressRequest {
        method: method.to_owned(),
        url: format!("{}{path}", origin.base()),
        headers: out_headers,
        body,
        timeout,
        max_response_bytes: room,
    });
    let resp = match sent {
        Ok(resp) => resp,
        // Larger than the budget allows, but not than the per-response cap: the budget ran out.
        Err(EgressError::TooLarge { .. }) if room < MAX_HTTP_RESPONSE => {
            return Err(Sent::Stop(budget.exhausted(HTTP_BUFFERS)));
        }
        // Permission denied, as for a host not in the allow-list: the guest
        // learns nothing of whether something listens there.
        Err(err @ EgressError::Denied) => return Err(fail(OlinError::PermissionDenied, err.to_string())),
        Err(err) => return Err(fail(OlinError::Unknown, err.to_string())),
    };
    let serialized = serialize_response(&resp);
    drop(resp);
    budget.charge(serialized.len(), HTTP_BUFFERS).map_err(Sent::Stop)?;
    Ok(serialized)
}

/// `HTTP/1.1 <status> <reason>` + headers + blank line + body, with a
/// `content-length` that matches the body.
fn serialize_response(resp: &EgressResponse) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, http_reason(resp.status)).into_bytes();
    for (name, value) in &resp.headers {
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", resp.body.len()).as_bytes());
    out.extend_from_slice(&resp.body);
    out
}

fn http_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// `resource_close(fd)`: closing an unknown fd does nothing (pa'i trapped);
/// the stdio fds stay open.
pub(crate) fn close(mut env: FunctionEnvMut<'_, Process>, fd: i32) {
    with_guest(&mut env, "resource_close", |p, _| {
        if let Some(resource) = p.resources.remove(fd) {
            p.budget.release(resource.held());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("log://?prefix=x"), Ok(("log", "?prefix=x")));
        assert_eq!(parse_url("https://example.com/a"), Ok(("https", "example.com/a")));
        assert_eq!(parse_url("nope"), Err(OlinError::InvalidArgument));
        assert_eq!(parse_url("://x"), Err(OlinError::InvalidArgument));
        assert_eq!(parse_url("1a://x"), Err(OlinError::InvalidArgument));
        assert_eq!(query_param("?prefix=app&x=1", "prefix"), Some("app"));
        assert_eq!(query_param("", "prefix"), None);
    }

    #[test]
    fn responses_serialize_as_http_1_1() {
        let r = EgressResponse {
            status: 404,
            headers: vec![("x-a".into(), b"1".to_vec()), ("content-length".into(), b"999".to_vec())],
            body: b"nope".to_vec(),
        };
        assert_eq!(serialize_response(&r), b"HTTP/1.1 404 Not Found\r\nx-a: 1\r\ncontent-length: 4\r\n\r\nnope");
    }
}
