//! CGI (RFC 3875), as pure functions: the request environment a guest sees,
//! and the parse of what it prints on stdout into an HTTP response.
//!
//! Nothing here touches Wasmer or the network, so every rule is unit-tested.

use bytes::Bytes;
use olin_proto::header_policy::HOP_BY_HOP;
use olin_proto::v1::{Header, InvocationRequest};
use thiserror::Error;

/// Value of `SERVER_SOFTWARE`.
pub const SERVER_SOFTWARE: &str = concat!("Olincloud/", env!("CARGO_PKG_VERSION"));

/// Most bytes of header block a guest may print before its body.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// A call's environment, laid out as a C `environ` block: `KEY=VALUE\0`
/// entries back to back in one buffer, with where each starts.
///
/// One buffer instead of two strings per variable: building it costs a few
/// allocations whatever the request holds, and WASI's `environ_get` copies
/// it into the guest in one write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    block: Vec<u8>,
    /// (start of the entry, length of its key, length of the entry without its NUL).
    entries: Vec<(u32, u32, u32)>,
}

impl Environment {
    fn with_capacity(entries: usize, bytes: usize) -> Self {
        Environment { block: Vec::with_capacity(bytes), entries: Vec::with_capacity(entries) }
    }

    /// Appends `key=` followed by each of `parts`.
    fn push(&mut self, key: &str, parts: &[&str]) {
        let start = self.begin(key.as_bytes());
        for part in parts {
            self.extend(part.as_bytes());
        }
        self.end(start, key.len());
    }

    /// Starts an entry `key=` to be continued with [`Environment::extend`]
    /// and ended with [`Environment::end`].
    fn begin(&mut self, key: &[u8]) -> usize {
        let start = self.block.len();
        self.block.extend_from_slice(key);
        self.block.push(b'=');
        start
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.block.extend_from_slice(bytes);
    }

    fn end(&mut self, start: usize, key_len: usize) {
        let len = self.block.len() - start;
        self.block.push(0);
        // The block is bounded by the request (a few MiB at most): u32 holds it.
        self.entries.push((start as u32, key_len as u32, len as u32));
    }

    /// Appends `key=` and `n` in decimal, without going through `fmt`.
    fn push_number(&mut self, key: &str, n: u64) {
        let start = self.begin(key.as_bytes());
        self.decimal(n);
        self.end(start, key.len());
    }

    fn decimal(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.block.extend_from_slice(&digits[at..]);
    }

    /// Appends `key=` and `ip` (dotted quad written by hand: `Display` for
    /// addresses is slow, and every call has one).
    fn push_ip(&mut self, key: &str, ip: std::net::IpAddr) {
        match ip {
            std::net::IpAddr::V4(v4) => {
                let start = self.begin(key.as_bytes());
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.block.push(b'.');
                    }
                    self.decimal(u64::from(octet));
                }
                self.end(start, key.len());
            }
            std::net::IpAddr::V6(v6) => self.push(key, &[&v6.to_string()]),
        }
    }

    fn entry(&self, (start, key_len, len): (u32, u32, u32)) -> (&str, &str) {
        let (start, key_len, len) = (start as usize, key_len as usize, len as usize);
        let text = |from: usize, to: usize| {
            // Every entry was written from `str`s, split at ASCII `=`.
            self.block.get(from..to).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
        };
        (text(start, start + key_len), text(start + key_len + 1, start + len))
    }

    /// Every variable, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|e| self.entry(*e))
    }

    /// The value of `key`, if set (keys compared as bytes, so a lookup
    /// checks the UTF-8 of the value it finds only).
    pub fn get(&self, key: &str) -> Option<&str> {
        let named = |(start, key_len, _): &(u32, u32, u32)| {
            self.block.get(*start as usize..(*start + *key_len) as usize) == Some(key.as_bytes())
        };
        self.entries.iter().find(|e| named(e)).map(|e| self.entry(*e).1)
    }

    /// The longest key's length.
    pub fn max_key_len(&self) -> usize {
        self.entries.iter().map(|(_, k, _)| *k as usize).max().unwrap_or(0)
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `KEY=VALUE\0` entries back to back.
    pub fn block(&self) -> &[u8] {
        &self.block
    }

    /// Where each entry starts in [`Environment::block`].
    pub fn offsets(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|(start, _, _)| *start)
    }
}

/// Builds the RFC 3875 environment for `req`: the meta-variables, one
/// `HTTP_*` per request header (never `HTTP_PROXY`), `RUN_ID`, `WORKER_ID`,
/// then the function's own configuration, which cannot shadow any of those.
/// Nothing of the worker's own environment is included.
pub fn environment(req: &InvocationRequest, worker_id: &str) -> Environment {
    let guess = 512
        + req.path.len() * 2
        + req.query.len() * 2
        + req.headers.iter().map(|h| h.name.len() + h.value.len() + 8).sum::<usize>()
        + req.env.iter().map(|v| v.name.len() + v.value.len() + 2).sum::<usize>();
    let mut env = Environment::with_capacity(24 + req.headers.len() + req.env.len(), guess);

    env.push("GATEWAY_INTERFACE", &["CGI/1.1"]);
    env.push("SERVER_SOFTWARE", &[SERVER_SOFTWARE]);
    env.push("SERVER_PROTOCOL", &["HTTP/1.1"]);
    env.push("SERVER_NAME", &[&req.host]);
    env.push_number("SERVER_PORT", u64::from(req.server_port));
    env.push("REQUEST_METHOD", &[&req.method]);
    env.push("REQUEST_SCHEME", &[if req.scheme.is_empty() { "http" } else { &req.scheme }]);
    if req.scheme == "https" {
        env.push("HTTPS", &["on"]);
    }
    if req.query.is_empty() {
        env.push("REQUEST_URI", &["/f/", &req.function, &req.path]);
    } else {
        env.push("REQUEST_URI", &["/f/", &req.function, &req.path, "?", &req.query]);
    }
    env.push("SCRIPT_NAME", &["/f/", &req.function]);
    env.push("PATH_INFO", &[&percent_decode(&req.path)]);
    env.push("QUERY_STRING", &[&req.query]);
    // The gateway sends a socket address (`1.2.3.4:5678`, `[::1]:5678`); a
    // bare address, or anything else a hand-made request carries, passes as is.
    match req.remote_addr.parse::<std::net::SocketAddr>() {
        Ok(sock) => {
            env.push_ip("REMOTE_ADDR", sock.ip());
            env.push_number("REMOTE_PORT", u64::from(sock.port()));
        }
        Err(_) => env.push("REMOTE_ADDR", &[&req.remote_addr]),
    }
    if !req.body.is_empty() || header(&req.headers, "content-length").is_some() {
        env.push_number("CONTENT_LENGTH", req.body.len() as u64);
    }
    if let Some(ct) = header(&req.headers, "content-type") {
        env.push("CONTENT_TYPE", &[&String::from_utf8_lossy(ct)]);
    }
    env.push("RUN_ID", &[&req.invocation_id]);
    env.push("WORKER_ID", &[worker_id]);
    let platform_len = env.len();

    // Repeated headers are folded into the first one's variable, as RFC
    // 9110 allows. Names compare without case (a name with `_` never
    // passes, so equal names are equal variables); the gateway caps the
    // header count, which bounds this quadratic scan.
    let mut name = Vec::with_capacity(64);
    for (i, h) in req.headers.iter().enumerate() {
        if !http_var_name(&h.name, &mut name) || h.value.contains(&0) {
            continue;
        }
        if name == b"HTTP_PROXY" || name == b"HTTP_CONTENT_TYPE" || name == b"HTTP_CONTENT_LENGTH" {
            continue;
        }
        let same = |o: &Header| o.name.eq_ignore_ascii_case(&h.name) && !o.value.contains(&0);
        if req.headers[..i].iter().any(same) {
            continue;
        }
        let sep: &[u8] = if name == b"HTTP_COOKIE" { b"; " } else { b", " };
        let start = env.begin(&name);
        env.extend(String::from_utf8_lossy(&h.value).as_bytes());
        for more in req.headers[i + 1..].iter().filter(|o| same(o)) {
            env.extend(sep);
            env.extend(String::from_utf8_lossy(&more.value).as_bytes());
        }
        env.end(start, name.len());
    }
    // A sealed secret (key_id set) reaches a guest only opened by the worker.
    for var in req.env.iter().filter(|v| v.key_id.is_empty()) {
        let reserved =
            var.name.starts_with("HTTP_") || env.iter().take(platform_len).any(|(k, _)| k == var.name.as_str());
        if !reserved && !var.name.is_empty() && !var.name.contains(['=', '\0']) && !var.value.contains('\0') {
            env.push(&var.name, &[&var.value]);
        }
    }
    env
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_ref())
}

/// `User-Agent` -> `HTTP_USER_AGENT`, written into `out`; false if the
/// name is not an HTTP token, or holds `_`: `X_Forwarded_For` would become
/// the same variable as `X-Forwarded-For`, so a client could pass off its
/// own value as the one a proxy set (nginx and Apache drop such headers for
/// CGI too).
fn http_var_name(name: &str, out: &mut Vec<u8>) -> bool {
    if name.is_empty() || name.contains('_') || !name.bytes().all(is_token_char) {
        return false;
    }
    out.clear();
    out.extend_from_slice(b"HTTP_");
    out.extend(name.bytes().map(|c| if c == b'-' { b'_' } else { c.to_ascii_uppercase() }));
    true
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Decodes `%XX` escapes; a result that is not UTF-8, or that holds a NUL
/// (which no environment variable can; the gateway refuses `%00`), keeps
/// the raw text.
fn percent_decode(s: &str) -> String {
    match percent_encoding::percent_decode_str(s).decode_utf8() {
        Ok(decoded) if !decoded.contains('\0') => decoded.into_owned(),
        _ => s.to_owned(),
    }
}

/// An HTTP response parsed from CGI output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Response headers in the order printed, without `Status` and hop-by-hop headers.
    pub headers: Vec<Header>,
    /// Everything after the blank line.
    pub body: Bytes,
}

/// Why stdout is not a CGI response. Each maps to 502 `BAD_CGI_OUTPUT`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CgiError {
    /// The guest printed nothing.
    #[error(
        "the function printed nothing on stdout (a CGI response starts with headers such as Content-Type, then a blank line)"
    )]
    Empty,
    /// No blank line ends the header block.
    #[error("no blank line ends the CGI header block")]
    NoHeaderEnd,
    /// The header block is empty: the output started with a blank line.
    #[error("the CGI header block is empty (at least Content-Type, Location or Status is required)")]
    NoHeaders,
    /// The header block is larger than [`MAX_HEADER_BLOCK`].
    #[error("the CGI header block exceeds {MAX_HEADER_BLOCK} bytes")]
    HeadersTooLarge,
    /// A header line is not `Name: value`.
    #[error("malformed CGI header line {line}: {reason}")]
    MalformedHeader {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `Status` is not a three-digit final status, 200 to 599 (a 1xx is
    /// interim: it cannot be a CGI response's status).
    #[error("invalid CGI Status {value:?}")]
    BadStatus {
        /// The value printed.
        value: String,
    },
}

/// Parses CGI output: a header block ended by a blank line (`\n` or `\r\n`
/// line ends), then the body. `Status: 404 Not Found` sets the status,
/// `Location` without `Status` is a 302, otherwise 200.
///
/// # Errors
/// [`CgiError`] when the header block is missing or malformed.
pub fn parse_output(stdout: Bytes) -> Result<Response, CgiError> {
    if stdout.is_empty() {
        return Err(CgiError::Empty);
    }
    let mut status: Option<u16> = None;
    let mut has_location = false;
    let mut headers = Vec::new();
    let mut pos = 0;
    let mut line_no = 0;
    loop {
        if pos > MAX_HEADER_BLOCK {
            return Err(CgiError::HeadersTooLarge);
        }
        let rest = stdout.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            return Err(if rest.len() + pos > MAX_HEADER_BLOCK {
                CgiError::HeadersTooLarge
            } else {
                CgiError::NoHeaderEnd
            });
        };
        line_no += 1;
        let raw = rest.get(..nl).unwrap_or_default();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        let bad = |reason| CgiError::MalformedHeader { line: line_no, reason };
        let colon = line.iter().position(|&c| c == b':').ok_or(bad("no ':'"))?;
        let (name, value) = (line.get(..colon).unwrap_or_default(), line.get(colon + 1..).unwrap_or_default());
        if name.is_empty() || !name.iter().all(|&c| is_token_char(c)) {
            return Err(bad("the name is not an HTTP token"));
        }
        let value = trim_ows(value);
        if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
            return Err(bad("the value holds a control character"));
        }
        // A token is ASCII, so this cannot fail.
        let name = String::from_utf8_lossy(name).into_owned();
        if name.eq_ignore_ascii_case("status") {
            status = Some(parse_status(value)?);
            continue;
        }
        if name.eq_ignore_ascii_case("location") {
            has_location = true;
        }
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        headers.push(Header { name, value: Bytes::copy_from_slice(value) });
    }
    if line_no == 1 {
        return Err(CgiError::NoHeaders);
    }
    let status = status.unwrap_or(if has_location { 302 } else { 200 });
    Ok(Response { status, headers, body: stdout.slice(pos..) })
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(v.len());
    let end = v.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or_default()
}

fn parse_status(value: &[u8]) -> Result<u16, CgiError> {
    let bad = || CgiError::BadStatus { value: String::from_utf8_lossy(value).into_owned() };
    let code = value.get(..3).ok_or_else(bad)?;
    if value.get(3).is_some_and(|c| *c != b' ') || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let n = code.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if (200..=599).contains(&n) { Ok(n) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olin_proto::v1::EnvVar;

    fn h(name: &str, value: &str) -> Header {
        Header { name: name.into(), value: Bytes::copy_from_slice(value.as_bytes()) }
    }

    fn request() -> InvocationRequest {
        InvocationRequest {
            invocation_id: "0190aa".into(),
            function: "hello".into(),
            method: "POST".into(),
            path: "/a%20b/c".into(),
            query: "x=1&y=%20".into(),
            headers: vec![
                h("Content-Type", "text/plain"),
                h("User-Agent", "curl/8"),
                h("X-Multi", "a"),
                h("x-multi", "b"),
                h("Proxy", "http://evil"),
                h("Cookie", "a=1"),
                h("Cookie", "b=2"),
                h("Bad Name", "x"),
                h("X-Forwarded-For", "10.0.0.1"),
                h("X_Forwarded_For", "6.6.6.6"),
            ],
            body: Bytes::from_static(b"hello"),
            remote_addr: "10.0.0.7:5555".into(),
            scheme: "https".into(),
            host: "example.com".into(),
            server_port: 443,
            env: vec![
                EnvVar::plain("GREETING", "hi"),
                EnvVar::plain("REQUEST_METHOD", "SPOOF"),
                EnvVar::plain("HTTP_HOST", "spoof"),
            ],
            ..Default::default()
        }
    }

    fn get<'a>(env: &'a Environment, k: &str) -> Option<&'a str> {
        env.get(k)
    }

    #[test]
    fn meta_variables() {
        let env = environment(&request(), "w1");
        assert_eq!(get(&env, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
        assert_eq!(get(&env, "REQUEST_METHOD"), Some("POST"));
        assert_eq!(get(&env, "SCRIPT_NAME"), Some("/f/hello"));
        assert_eq!(get(&env, "PATH_INFO"), Some("/a b/c"));
        assert_eq!(get(&env, "REQUEST_URI"), Some("/f/hello/a%20b/c?x=1&y=%20"));
        assert_eq!(get(&env, "QUERY_STRING"), Some("x=1&y=%20"));
        assert_eq!(get(&env, "CONTENT_LENGTH"), Some("5"));
        assert_eq!(get(&env, "CONTENT_TYPE"), Some("text/plain"));
        assert_eq!(get(&env, "SERVER_NAME"), Some("example.com"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("443"));
        assert_eq!(get(&env, "SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(get(&env, "HTTPS"), Some("on"));
        assert_eq!(get(&env, "REMOTE_ADDR"), Some("10.0.0.7"));
        assert_eq!(get(&env, "REMOTE_PORT"), Some("5555"));
        assert_eq!(get(&env, "RUN_ID"), Some("0190aa"));
        assert_eq!(get(&env, "WORKER_ID"), Some("w1"));
        assert!(get(&env, "SERVER_SOFTWARE").unwrap().starts_with("Olincloud/"));
    }

    #[test]
    fn http_headers_become_variables_except_proxy() {
        let env = environment(&request(), "w1");
        assert_eq!(get(&env, "HTTP_USER_AGENT"), Some("curl/8"));
        assert_eq!(get(&env, "HTTP_X_MULTI"), Some("a, b"));
        assert_eq!(get(&env, "HTTP_COOKIE"), Some("a=1; b=2"));
        assert_eq!(get(&env, "HTTP_PROXY"), None, "httpoxy");
        assert_eq!(get(&env, "HTTP_CONTENT_TYPE"), None);
        assert!(env.iter().all(|(k, _)| !k.contains(' ')));
        assert_eq!(get(&env, "HTTP_X_FORWARDED_FOR"), Some("10.0.0.1"), "a name with `_` is never passed");
    }

    #[test]
    fn an_encoded_nul_never_reaches_path_info() {
        let req = InvocationRequest { path: "/a%00b".into(), ..request() };
        assert_eq!(get(&environment(&req, "w1"), "PATH_INFO"), Some("/a%00b"));
    }

    #[test]
    fn function_env_cannot_shadow_platform_variables() {
        let env = environment(&request(), "w1");
        assert_eq!(get(&env, "GREETING"), Some("hi"));
        assert_eq!(env.iter().filter(|(k, _)| *k == "REQUEST_METHOD").count(), 1);
        assert_eq!(get(&env, "REQUEST_METHOD"), Some("POST"));
        assert_eq!(get(&env, "HTTP_HOST"), None);
    }

    #[test]
    fn no_body_no_content_length_plain_http() {
        let req = InvocationRequest { method: "GET".into(), remote_addr: "[::1]:80".into(), ..Default::default() };
        let env = environment(&req, "w");
        assert_eq!(get(&env, "CONTENT_LENGTH"), None);
        assert_eq!(get(&env, "HTTPS"), None);
        assert_eq!(get(&env, "REQUEST_SCHEME"), Some("http"));
        assert_eq!(get(&env, "REMOTE_ADDR"), Some("::1"));
        assert_eq!(get(&env, "PATH_INFO"), Some(""));
        let req = InvocationRequest { remote_addr: "0.10.200.255:0".into(), body: vec![7; 1234].into(), ..req };
        let env = environment(&req, "w");
        assert_eq!(get(&env, "REMOTE_ADDR"), Some("0.10.200.255"));
        assert_eq!(get(&env, "REMOTE_PORT"), Some("0"));
        assert_eq!(get(&env, "CONTENT_LENGTH"), Some("1234"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("0"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%2Fb"), "/a/b");
        assert_eq!(percent_decode("/100%"), "/100%");
        assert_eq!(percent_decode("/%zz"), "/%zz");
        assert_eq!(percent_decode("/%ff"), "/%ff", "not UTF-8: raw");
        assert_eq!(percent_decode("/a%00b"), "/a%00b", "a NUL: raw");
        assert_eq!(percent_decode("/caf%C3%A9"), "/café");
    }

    fn parse(s: &'static [u8]) -> Result<Response, CgiError> {
        parse_output(Bytes::from_static(s))
    }

    #[test]
    fn lf_and_crlf() {
        for out in [&b"Content-Type: text/plain\n\nhi"[..], b"Content-Type: text/plain\r\n\r\nhi"] {
            let r = parse_output(Bytes::copy_from_slice(out)).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.headers, vec![h("Content-Type", "text/plain")]);
            assert_eq!(&r.body[..], b"hi");
        }
    }

    #[test]
    fn status_header() {
        let r = parse(b"Status: 404 Not Found\nContent-Type: text/plain\n\nnope").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.headers.len(), 1);
        assert_eq!(parse(b"Status: 201\n\n").unwrap().status, 201);
        assert_eq!(parse(b"status:503 Busy\n\n").unwrap().status, 503);
        for bad in [
            &b"Status: 99\n\n"[..],
            b"Status: 100 Continue\n\n",
            b"Status: 101\n\n",
            b"Status: 600\n\n",
            b"Status: abc\n\n",
            b"Status: 2000\n\n",
            b"Status:\n\n",
        ] {
            assert!(matches!(parse_output(Bytes::copy_from_slice(bad)), Err(CgiError::BadStatus { .. })), "{bad:?}");
        }
    }

    #[test]
    fn location_redirects() {
        let r = parse(b"Location: https://example.com/\n\n").unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.headers, vec![h("Location", "https://example.com/")]);
        assert_eq!(parse(b"Location: /x\nStatus: 301 Moved\n\n").unwrap().status, 301);
    }

    #[test]
    fn body_is_kept_byte_for_byte() {
        let r = parse(b"Content-Type: a/b\n\n\n\r\nline\x00\xff").unwrap();
        assert_eq!(&r.body[..], b"\n\r\nline\x00\xff");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let r = parse(b"Content-Length: 999\nTransfer-Encoding: chunked\nConnection: close\nX-A: 1\n\nbody").unwrap();
        assert_eq!(r.headers, vec![h("X-A", "1")]);
    }

    #[test]
    fn value_whitespace_is_trimmed() {
        let r = parse(b"X-A:   spaced value \t\n\n").unwrap();
        assert_eq!(r.headers, vec![h("X-A", "spaced value")]);
    }

    #[test]
    fn malformed_outputs() {
        assert_eq!(parse(b""), Err(CgiError::Empty));
        assert_eq!(parse(b"Content-Type: text/plain"), Err(CgiError::NoHeaderEnd));
        assert_eq!(parse(b"hello world, no headers at all"), Err(CgiError::NoHeaderEnd));
        assert_eq!(parse(b"\nbody"), Err(CgiError::NoHeaders));
        assert_eq!(parse(b"\r\nbody"), Err(CgiError::NoHeaders));
        assert!(matches!(parse(b"just text\n\n"), Err(CgiError::MalformedHeader { line: 1, .. })));
        assert!(matches!(parse(b"A: 1\nBad Name: x\n\n"), Err(CgiError::MalformedHeader { line: 2, .. })));
        assert!(matches!(parse(b": x\n\n"), Err(CgiError::MalformedHeader { .. })));
        assert!(matches!(parse(b"A: \x01\n\n"), Err(CgiError::MalformedHeader { .. })));
        assert!(matches!(parse(b"A: 1\n continued\n\n"), Err(CgiError::MalformedHeader { .. })));
        let mut big = b"X: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEADER_BLOCK + 10));
        assert_eq!(parse_output(Bytes::from(big.clone())), Err(CgiError::HeadersTooLarge));
        big.extend(b"\n\n");
        assert_eq!(parse_output(Bytes::from(big)), Err(CgiError::HeadersTooLarge));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_output(Bytes::from(data));
        }

        #[test]
        fn parser_never_panics_on_header_like_input(
            lines in proptest::collection::vec("[A-Za-z:\\- \t\r]{0,12}", 0..8),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut out = lines.join("\n").into_bytes();
            out.extend_from_slice(b"\n\n");
            out.extend(body.iter());
            if let Ok(r) = parse_output(Bytes::from(out)) {
                proptest::prop_assert!((200..=599).contains(&r.status));
            }
        }

        #[test]
        fn environment_never_panics(
            path in ".{0,40}", query in ".{0,40}", remote in ".{0,30}",
            names in proptest::collection::vec(".{0,10}", 0..6),
        ) {
            let req = InvocationRequest {
                path, query, remote_addr: remote,
                headers: names.iter().map(|n| h(n, "v")).collect(),
                ..Default::default()
            };
            let env = environment(&req, "w");
            proptest::prop_assert!(env.iter().all(|(k, _)| !k.contains('=')));
            // The block is exactly the entries, each ended by a NUL.
            let rebuilt: Vec<u8> = env.iter().flat_map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes(), b"\0"].concat()).collect();
            proptest::prop_assert_eq!(env.block(), &rebuilt[..]);
            let offsets: Vec<u32> = env.offsets().collect();
            proptest::prop_assert_eq!(offsets.len(), env.len());
        }
    }
}
