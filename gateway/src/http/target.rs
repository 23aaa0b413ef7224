//! Where a request goes: a function by path (`/f/{name}`) or by host
//! (`{name}.{base domain}`), an async result, or nowhere.

use http::HeaderMap;

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target<'a> {
    /// A function call: the function, the path after its prefix, whether
    /// it was asked for under `/async/f/`, and whether the function is
    /// served on a host of its own (`{name}.{base_domain}`): only then is
    /// the origin its alone, so only then may it set cookies.
    Function {
        name: &'a str,
        path: &'a str,
        r#async: bool,
        own_origin: bool,
    },
    /// The result of an async call.
    AsyncResult {
        id: &'a str,
    },
    NotFound,
}

/// Routes by host (`{function}.{base_domain}`, the whole path is the
/// function's) or by path (`/f/{function}/...`).
pub(super) fn target<'a>(path: &'a str, host: Option<&'a str>, base_domain: Option<&str>) -> Target<'a> {
    if let (Some((host, _)), Some(base)) = (host.and_then(|h| olin_proto::authority::host_port(h).ok()), base_domain)
        && let Some(label) = host.strip_suffix(base).and_then(|h| h.strip_suffix('.'))
        && !label.is_empty()
        && !label.contains('.')
    {
        return Target::Function { name: label, path, r#async: false, own_origin: true };
    }
    if let Some(id) = path.strip_prefix("/async/results/") {
        return Target::AsyncResult { id };
    }
    let (rest, r#async) = match (path.strip_prefix("/f/"), path.strip_prefix("/async/f/")) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return Target::NotFound,
    };
    match rest.find('/') {
        Some(i) => Target::Function { name: &rest[..i], path: &rest[i..], r#async, own_origin: false },
        None => Target::Function { name: rest, path: "", r#async, own_origin: false },
    }
}

/// The request's host name and port (CGI's `SERVER_NAME`, `SERVER_PORT`):
/// from its `Host`, else empty and the listener's own port.
pub(super) fn host_and_port(headers: &HeaderMap, local_port: u16) -> (String, u16) {
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    // A `Host` is an authority without a user part; an IPv6 name loses its brackets.
    match olin_proto::authority::host_port(host) {
        Ok((name, port)) => (name.trim_start_matches('[').trim_end_matches(']').to_owned(), port.unwrap_or(local_port)),
        Err(_) => (String::new(), local_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn targets() {
        let none = None;
        for admin in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(target(admin, none, none), Target::NotFound, "{admin} is on the admin listener only");
        }
        assert_eq!(
            target("/f/hello", none, none),
            Target::Function { name: "hello", path: "", r#async: false, own_origin: false }
        );
        assert_eq!(
            target("/f/hello/", none, none),
            Target::Function { name: "hello", path: "/", r#async: false, own_origin: false }
        );
        assert_eq!(
            target("/f/hello/a/b", none, none),
            Target::Function { name: "hello", path: "/a/b", r#async: false, own_origin: false }
        );
        assert_eq!(
            target("/async/f/hello/a", none, none),
            Target::Function { name: "hello", path: "/a", r#async: true, own_origin: false }
        );
        assert_eq!(target("/async/results/0190-ab", none, none), Target::AsyncResult { id: "0190-ab" });
        assert_eq!(target("/x", none, none), Target::NotFound);
        let base = Some("fn.example.com");
        assert_eq!(
            target("/healthz", Some("hello.fn.example.com:8080"), base),
            Target::Function { name: "hello", path: "/healthz", r#async: false, own_origin: true },
            "a function host owns its whole path"
        );
        assert_eq!(
            target("/a", Some("hello.fn.example.com"), base),
            Target::Function { name: "hello", path: "/a", r#async: false, own_origin: true }
        );
        assert_eq!(target("/healthz", Some("fn.example.com"), base), Target::NotFound);
        assert_eq!(target("/a", Some("a.b.fn.example.com"), base), Target::NotFound);
        assert_eq!(target("/a", Some("hellofn.example.com"), base), Target::NotFound);
        assert_eq!(
            target("/f/x", Some("other.org"), base),
            Target::Function { name: "x", path: "", r#async: false, own_origin: false }
        );
    }

    #[test]
    fn hosts() {
        let mut h = HeaderMap::new();
        assert_eq!(host_and_port(&h, 80), ("".into(), 80));
        h.insert("host", HeaderValue::from_static("example.com:8080"));
        assert_eq!(host_and_port(&h, 80), ("example.com".into(), 8080));
        h.insert("host", HeaderValue::from_static("[::1]:9"));
        assert_eq!(host_and_port(&h, 80), ("::1".into(), 9));
        h.insert("host", HeaderValue::from_static("[::1]"));
        assert_eq!(host_and_port(&h, 80), ("::1".into(), 80));
        h.insert("host", HeaderValue::from_static("user@example.com"));
        assert_eq!(host_and_port(&h, 80), ("".into(), 80), "a Host has no user part");
        h.insert("host", HeaderValue::from_static("example.com:http"));
        assert_eq!(host_and_port(&h, 80), ("".into(), 80), "a port that is no number: no Host");
    }
}
