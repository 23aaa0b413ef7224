//! Which HTTP headers cross the line between the platform and a function,
//! pure and shared: the worker applies the response side (and logs what it
//! drops in the call's record), the gateway applies both sides again, since
//! the answer and the request are its own.

use crate::subject;

/// Headers the platform frames itself: a function's value is dropped.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers that never reach a function: the platform's credential
/// for it (its invoke key) and a proxy's.
pub const WITHHELD_REQUEST_HEADERS: &[&str] = &[subject::HTTP_INVOKE_KEY, "proxy-authorization"];

/// Why a response header a function set does not reach the client, or
/// `None` if it does. `own_origin`: the function is served on a host of its
/// own (`{name}.{base domain}`); under `/f/{name}/` every function shares the
/// gateway's origin, so one function's cookie would be every function's.
pub fn response_header_refused(name: &str, own_origin: bool) -> Option<&'static str> {
    if name.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("olin-")) {
        Some("Olin-* headers are the platform's")
    } else if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        Some("the platform frames the response (hop-by-hop header)")
    } else if !own_origin && name.eq_ignore_ascii_case("set-cookie") {
        Some("cookies need the function's own origin (host routing): under /f/ every function shares one origin")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_header_policy() {
        // (name, passes under path routing, passes under host routing)
        for (name, path, host) in [
            ("Content-Type", true, true),
            ("X-Anything", true, true),
            ("Set-Cookie", false, true),
            ("set-cookie", false, true),
            ("Olin-Error", false, false),
            ("olin-outcome", false, false),
            ("Connection", false, false),
            ("Transfer-Encoding", false, false),
            ("Olin", true, true),
            ("é", true, true),
        ] {
            assert_eq!(response_header_refused(name, false).is_none(), path, "{name} under path routing");
            assert_eq!(response_header_refused(name, true).is_none(), host, "{name} under host routing");
        }
    }
}
