//! A host with an optional port, as written in a `Host` header or an egress
//! allow-list entry (`example.com:8080`, `[::1]:9`, `*.example.com`), read
//! by `http`'s authority parser (RFC 3986 section 3.2) so that every
//! service splits it the same way.

/// Why a text is not a host with an optional port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAuthority {
    /// Not an authority at all: a character no authority has, a path, two
    /// ports, unbalanced brackets.
    #[error("not a host, or host:port")]
    Syntax,
    /// It names a user (`user@host`): no platform authority carries one.
    #[error("a user part (`user@`) is not allowed")]
    UserPart,
    /// A port that is not a number from 0 to 65535 (or an empty one).
    #[error("the port is not a number from 0 to 65535")]
    Port,
}

/// The host (a slice of `text`; an IPv6 literal keeps its brackets) and
/// the port of `text`.
///
/// # Errors
/// [`BadAuthority`] saying what is wrong.
pub fn host_port(text: &str) -> Result<(&str, Option<u16>), BadAuthority> {
    let authority: http::uri::Authority = text.parse().map_err(|_| BadAuthority::Syntax)?;
    if authority.as_str().contains('@') {
        return Err(BadAuthority::UserPart);
    }
    // Without a user part the host is where `text` starts, and anything
    // after it is `:` and the port.
    let host = text.get(..authority.host().len()).ok_or(BadAuthority::Syntax)?;
    if host.len() == text.len() {
        return Ok((host, None));
    }
    authority.port_u16().map(|port| (host, Some(port))).ok_or(BadAuthority::Port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_port("example.com"), Ok(("example.com", None)));
        assert_eq!(host_port("example.com:8080"), Ok(("example.com", Some(8080))));
        assert_eq!(host_port("[::1]:9"), Ok(("[::1]", Some(9))));
        assert_eq!(host_port("[::1]"), Ok(("[::1]", None)));
        assert_eq!(host_port("*.example.com:443"), Ok(("*.example.com", Some(443))));
        assert_eq!(host_port("*"), Ok(("*", None)));
        assert_eq!(host_port("10.0.0.1:0"), Ok(("10.0.0.1", Some(0))));
        assert_eq!(host_port("x.com:99999"), Err(BadAuthority::Port));
        assert_eq!(host_port("x.com:"), Err(BadAuthority::Port));
        assert_eq!(host_port("x.com:http"), Err(BadAuthority::Port));
        assert_eq!(host_port("a@b"), Err(BadAuthority::UserPart));
        for bad in ["", "x/y", "a b", "h:1:2", "[::1", "::1", "http://x"] {
            assert_eq!(host_port(bad), Err(BadAuthority::Syntax), "{bad:?}");
        }
    }
}
