//! Namespace `resource`: "everything is a URL". Small sequential fds: 0, 1
//! and 2 are the call's stdin, stdout and stderr; opened resources take the
//! lowest free fd from 3, up to a cap on open resources.
//!
//! Schemes: `log://[?prefix=p]`, `null://`, `zero://`, `random://`. Network
//! schemes (`http`, `https`) are refused with -3 unless the function's egress
//! allow-list admits the host; an unknown scheme is -4, an unparsable URL -2.

use rand::RngCore;
use wasmer::FunctionEnvMut;

use crate::abi::log;
use crate::errno::{OlinError, olin};
use crate::memory;
use crate::process::{Process, Stop, with_guest};

/// fd of the call's stdin (the request body).
pub(crate) const STDIN: i32 = 0;
/// fd of the call's stdout (the CGI response).
pub(crate) const STDOUT: i32 = 1;
/// fd of the call's stderr (logs).
pub(crate) const STDERR: i32 = 2;
const FIRST_FD: usize = 3;

/// Longest URL `resource_open` reads.
const MAX_URL: i32 = 8 * 1024;

/// An opened resource.
#[derive(Debug)]
pub(crate) enum Resource {
    Log { prefix: Option<String> },
    Null,
    Zero,
    Random,
}

/// The fd table of one call.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    slots: Vec<Option<Resource>>,
    cap: usize,
}

impl Resources {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            slots: Vec::new(),
            cap,
        }
    }

    fn insert(&mut self, r: Resource) -> Result<i32, OlinError> {
        let open = self.slots.iter().filter(|s| s.is_some()).count();
        if open >= self.cap {
            return Err(OlinError::PermissionDenied);
        }
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(r);
                }
                i
            }
            None => {
                self.slots.push(Some(r));
                self.slots.len() - 1
            }
        };
        i32::try_from(idx + FIRST_FD).map_err(|_| OlinError::Unknown)
    }

    fn get(&mut self, fd: i32) -> Option<&mut Resource> {
        let idx = usize::try_from(fd).ok()?.checked_sub(FIRST_FD)?;
        self.slots.get_mut(idx)?.as_mut()
    }

    fn remove(&mut self, fd: i32) -> Option<Resource> {
        let idx = usize::try_from(fd).ok()?.checked_sub(FIRST_FD)?;
        self.slots.get_mut(idx)?.take()
    }
}

/// Splits `scheme://rest` and finds `prefix=` in a query.
fn parse_url(url: &str) -> Result<(&str, &str), OlinError> {
    let (scheme, rest) = url.split_once("://").ok_or(OlinError::InvalidArgument)?;
    let valid = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        && scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic);
    if valid {
        Ok((scheme, rest))
    } else {
        Err(OlinError::InvalidArgument)
    }
}

fn query_param<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = rest.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// `resource_open(url_ptr, url_len) -> fd`.
pub(crate) fn open(mut env: FunctionEnvMut<'_, Process>, url_ptr: i32, url_len: i32) -> i32 {
    with_guest(&mut env, "resource_open", |p, mem| {
        olin((|| {
            if memory::u(url_len) > memory::u(MAX_URL) {
                return Err(OlinError::InvalidArgument);
            }
            let url =
                memory::read_str(mem, url_ptr, url_len).map_err(|_| OlinError::InvalidArgument)?;
            p.resource_urls.push(url.clone());
            let (scheme, rest) = parse_url(&url)?;
            let resource = match scheme.to_ascii_lowercase().as_str() {
                "log" => Resource::Log {
                    prefix: query_param(rest, "prefix").map(str::to_owned),
                },
                "null" => Resource::Null,
                "zero" => Resource::Zero,
                "random" => Resource::Random,
                "http" | "https" => {
                    if rest
                        .split(['/', '?', '#'])
                        .next()
                        .unwrap_or_default()
                        .is_empty()
                    {
                        return Err(OlinError::InvalidArgument);
                    }
                    // Egress is denied by default; no allow-list admits hosts yet.
                    return Err(OlinError::PermissionDenied);
                }
                _ => return Err(OlinError::NotFound),
            };
            p.resources.insert(resource)
        })())
    })
}

/// `resource_read(fd, ptr, len) -> n`: returns the bytes actually read; -5 at
/// the end, -2 for a bad fd or pointer, -1 for a write-only stream.
pub(crate) fn read(mut env: FunctionEnvMut<'_, Process>, fd: i32, ptr: i32, len: i32) -> i32 {
    with_guest(&mut env, "resource_read", |p, mem| {
        olin((|| {
            memory::check(mem, ptr, len).map_err(|_| OlinError::InvalidArgument)?;
            let len = usize::try_from(memory::u(len)).map_err(|_| OlinError::InvalidArgument)?;
            let data: Vec<u8> = match fd {
                STDIN => p.read_stdin(len).to_vec(),
                STDOUT | STDERR => return Err(OlinError::Unknown),
                _ => match p.resources.get(fd).ok_or(OlinError::InvalidArgument)? {
                    Resource::Zero => vec![0; len],
                    Resource::Random => {
                        let mut b = vec![0; len];
                        rand::rngs::OsRng.fill_bytes(&mut b);
                        b
                    }
                    Resource::Null => Vec::new(),
                    Resource::Log { .. } => return Err(OlinError::Unknown),
                },
            };
            if data.is_empty() && len > 0 {
                return Err(OlinError::Eof);
            }
            memory::write(mem, memory::u(ptr), &data).map_err(|_| OlinError::InvalidArgument)?;
            i32::try_from(data.len()).map_err(|_| OlinError::Unknown)
        })())
    })
}

/// `resource_write(fd, ptr, len) -> n`: always complete; a stdout write past
/// the output cap stops the guest.
pub(crate) fn write(
    mut env: FunctionEnvMut<'_, Process>,
    fd: i32,
    ptr: i32,
    len: i32,
) -> Result<i32, Stop> {
    with_guest(&mut env, "resource_write", |p, mem| {
        let data = match memory::read(mem, ptr, len) {
            Ok(d) => d,
            Err(_) => return Ok(OlinError::InvalidArgument.code()),
        };
        let n = i32::try_from(data.len()).unwrap_or(i32::MAX);
        let r = match fd {
            STDOUT => {
                p.write_stdout(&data)?;
                Ok(n)
            }
            STDERR => {
                p.stderr.push(&data);
                Ok(n)
            }
            STDIN => Err(OlinError::Unknown),
            _ => match p.resources.get(fd) {
                None => Err(OlinError::InvalidArgument),
                Some(Resource::Log { prefix }) => {
                    let prefix = prefix.clone();
                    log::line(p, "INFO", prefix.as_deref(), &data);
                    Ok(n)
                }
                Some(Resource::Null | Resource::Zero) => Ok(n),
                Some(Resource::Random) => Err(OlinError::Unknown),
            },
        };
        Ok(olin(r))
    })
}

/// `resource_flush(fd) -> i32`: 0, or -2 for a bad fd.
pub(crate) fn flush(mut env: FunctionEnvMut<'_, Process>, fd: i32) -> i32 {
    with_guest(&mut env, "resource_flush", |p, _| {
        let known = (STDIN..=STDERR).contains(&fd) || p.resources.get(fd).is_some();
        olin(if known {
            Ok(0)
        } else {
            Err(OlinError::InvalidArgument)
        })
    })
}

/// `resource_close(fd)`: closing an unknown fd does nothing (pa'i trapped);
/// the stdio fds stay open.
pub(crate) fn close(mut env: FunctionEnvMut<'_, Process>, fd: i32) {
    with_guest(&mut env, "resource_close", |p, _| {
        p.resources.remove(fd);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("log://?prefix=x"), Ok(("log", "?prefix=x")));
        assert_eq!(
            parse_url("https://example.com/a"),
            Ok(("https", "example.com/a"))
        );
        assert_eq!(parse_url("nope"), Err(OlinError::InvalidArgument));
        assert_eq!(parse_url("://x"), Err(OlinError::InvalidArgument));
        assert_eq!(parse_url("1a://x"), Err(OlinError::InvalidArgument));
        assert_eq!(query_param("?prefix=app&x=1", "prefix"), Some("app"));
        assert_eq!(query_param("", "prefix"), None);
    }

    #[test]
    fn fds_are_small_sequential_and_capped() {
        let mut r = Resources::new(2);
        assert_eq!(r.insert(Resource::Null), Ok(3));
        assert_eq!(r.insert(Resource::Zero), Ok(4));
        assert_eq!(r.insert(Resource::Null), Err(OlinError::PermissionDenied));
        assert!(r.remove(3).is_some());
        assert!(r.remove(3).is_none());
        assert!(r.remove(-1).is_none());
        assert!(r.remove(1).is_none());
        assert_eq!(
            r.insert(Resource::Random),
            Ok(3),
            "the lowest free fd is reused"
        );
        assert!(r.get(4).is_some());
        assert!(r.get(99).is_none());
    }
}
