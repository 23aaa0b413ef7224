//! olin-guest: write Olincloud functions in Rust against the olin ABI
//! (CommonWA). No dependencies; builds for `wasm32-unknown-unknown` with
//! any Rust from 1.63 on (Debian's `rustc` plus `libstd-rust-dev-wasm32`
//! will do):
//!
//! ```text
//! rustc --edition 2021 --crate-type rlib --crate-name olin_guest \
//!   --target wasm32-unknown-unknown -O guest/rust/olin-guest/src/lib.rs
//! ```
//!
//! A function reads its request with [`cgi::Request::read`] and answers
//! with [`cgi::Response`]; [`entrypoint!`] exports `_start`, runs it, and
//! turns an `Err` or a panic into a logged failure (exit 1).
//!
//! Unlike the original olin crate, reads map end of data (-5) to `Ok(0)`
//! (so `read_to_end` works), log levels are the three every host accepts,
//! and `_start` is a plain exported function (stable Rust).

use std::fmt;
use std::io::{self, Read, Write};

/// The raw host functions (module `env`), as the olin ABI defines them.
pub mod sys {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn env_get(key: *const u8, key_len: usize, value: *mut u8, value_len: usize) -> i32;
        pub fn io_get_stdin() -> i32;
        pub fn io_get_stdout() -> i32;
        pub fn io_get_stderr() -> i32;
        pub fn log_write(level: i32, msg: *const u8, len: usize);
        pub fn resource_open(url: *const u8, len: usize) -> i32;
        pub fn resource_read(fd: i32, buf: *mut u8, len: usize) -> i32;
        pub fn resource_write(fd: i32, buf: *const u8, len: usize) -> i32;
        pub fn resource_flush(fd: i32) -> i32;
        pub fn resource_close(fd: i32);
        pub fn runtime_exit(code: i32) -> !;
        pub fn runtime_name(buf: *mut u8, len: usize) -> i32;
        pub fn random_u64() -> i64;
        pub fn time_now() -> i64;
    }
}

/// A negative result of a host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// -1: other failure (the host logged the detail).
    Unknown,
    /// -2: bad argument, bad fd, unparsable URL.
    InvalidArgument,
    /// -3: denied by policy (e.g. the egress allow-list).
    PermissionDenied,
    /// -4: no such key or scheme.
    NotFound,
    /// -5: end of data.
    Eof,
    /// Any other negative code.
    Other(i32),
}

impl Error {
    /// `Ok(n)` for `n >= 0`, the error otherwise.
    pub fn check(code: i32) -> Result<usize, Error> {
        match code {
            n if n >= 0 => Ok(n as usize),
            -1 => Err(Error::Unknown),
            -2 => Err(Error::InvalidArgument),
            -3 => Err(Error::PermissionDenied),
            -4 => Err(Error::NotFound),
            -5 => Err(Error::Eof),
            n => Err(Error::Other(n)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unknown => write!(f, "unknown failure"),
            Error::InvalidArgument => write!(f, "invalid argument"),
            Error::PermissionDenied => write!(f, "permission denied"),
            Error::NotFound => write!(f, "not found"),
            Error::Eof => write!(f, "end of data"),
            Error::Other(n) => write!(f, "error {n}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::PermissionDenied => io::ErrorKind::PermissionDenied,
            Error::NotFound => io::ErrorKind::NotFound,
            Error::InvalidArgument => io::ErrorKind::InvalidInput,
            Error::Eof => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The function's environment: CGI variables and its own configuration.
pub mod env {
    /// The value of `key`, if set (and valid UTF-8).
    pub fn get(key: &str) -> Option<String> {
        let mut buf = vec![0u8; 256];
        loop {
            let n = unsafe { super::sys::env_get(key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                return None;
            }
            let n = n as usize;
            if n <= buf.len() {
                buf.truncate(n);
                return String::from_utf8(buf).ok();
            }
            buf.resize(n, 0);
        }
    }
}

/// Log levels every olin host accepts.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    /// 1.
    Error = 1,
    /// 3.
    Warning = 3,
    /// 6.
    Info = 6,
}

/// Writes one line to the host log (the call's stderr tail on Olincloud).
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log_write(level as i32, msg.as_ptr(), msg.len()) }
}

/// Ends the call with `code` (0 = success).
pub fn exit(code: i32) -> ! {
    unsafe { sys::runtime_exit(code) }
}

/// A random number from the host's CSPRNG.
pub fn random_u64() -> u64 {
    unsafe { sys::random_u64() as u64 }
}

/// Unix time in seconds.
pub fn now() -> i64 {
    unsafe { sys::time_now() }
}

/// The host's name (`olincloud` on Olincloud).
pub fn runtime_name() -> String {
    let mut buf = vec![0u8; 64];
    let n = unsafe { sys::runtime_name(buf.as_mut_ptr(), buf.len()) };
    buf.truncate(n.clamp(0, 64) as usize);
    String::from_utf8_lossy(&buf).into_owned()
}

/// An open resource: stdio, or a URL (`https://host/path`, `random://`, ...).
#[derive(Debug)]
pub struct Resource {
    fd: i32,
    owned: bool,
}

impl Resource {
    /// Opens `url`. `http(s)` resources are buffered: write a whole
    /// HTTP/1.1 request, [`flush`](Write::flush) sends it, reads return the
    /// response.
    ///
    /// # Errors
    /// The host's refusal: [`Error::PermissionDenied`] when the function's
    /// egress allow-list does not admit the host.
    pub fn open(url: &str) -> Result<Resource, Error> {
        let fd = unsafe { sys::resource_open(url.as_ptr(), url.len()) };
        Error::check(fd).map(|_| Resource { fd, owned: true })
    }

    /// The request body.
    pub fn stdin() -> Resource {
        Resource { fd: unsafe { sys::io_get_stdin() }, owned: false }
    }

    /// The CGI response (headers, blank line, body).
    pub fn stdout() -> Resource {
        Resource { fd: unsafe { sys::io_get_stdout() }, owned: false }
    }

    /// The log (kept as the call's stderr tail).
    pub fn stderr() -> Resource {
        Resource { fd: unsafe { sys::io_get_stderr() }, owned: false }
    }
}

impl Read for Resource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match Error::check(unsafe { sys::resource_read(self.fd, buf.as_mut_ptr(), buf.len()) }) {
            Ok(n) => Ok(n.min(buf.len())),
            Err(Error::Eof) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

impl Write for Resource {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Error::check(unsafe { sys::resource_write(self.fd, buf.as_ptr(), buf.len()) }).map_err(Into::into)
    }

    fn flush(&mut self) -> io::Result<()> {
        Error::check(unsafe { sys::resource_flush(self.fd) }).map(drop).map_err(Into::into)
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        if self.owned {
            unsafe { sys::resource_close(self.fd) }
        }
    }
}

/// CGI: the request from the environment and stdin, the response to stdout.
pub mod cgi {
    use std::io::{Read, Write};

    use super::{env, Resource};

    /// The request of this call.
    #[derive(Debug, Clone, Default)]
    pub struct Request {
        /// `GET`, `POST`, ...
        pub method: String,
        /// The path after the function's prefix (`PATH_INFO`).
        pub path: String,
        /// The raw query string.
        pub query: String,
        /// The body.
        pub body: Vec<u8>,
    }

    impl Request {
        /// Reads the request: method, path and query from the environment,
        /// the body from stdin.
        ///
        /// # Errors
        /// A failed read of the body.
        pub fn read() -> std::io::Result<Request> {
            let mut body = Vec::new();
            Resource::stdin().read_to_end(&mut body)?;
            Ok(Request {
                method: env::get("REQUEST_METHOD").unwrap_or_else(|| "GET".to_owned()),
                path: env::get("PATH_INFO").unwrap_or_default(),
                query: env::get("QUERY_STRING").unwrap_or_default(),
                body,
            })
        }

        /// A request header, by its HTTP name (`User-Agent`).
        pub fn header(&self, name: &str) -> Option<String> {
            let key: String = name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }).collect();
            match key.as_str() {
                "CONTENT_TYPE" | "CONTENT_LENGTH" => env::get(&key),
                _ => env::get(&format!("HTTP_{key}")),
            }
        }

        /// The first value of `key` in the query string, percent-decoded.
        pub fn query_param(&self, key: &str) -> Option<String> {
            form_value(&self.query, key)
        }
    }

    /// The first value of `key` in `application/x-www-form-urlencoded` text.
    pub fn form_value(text: &str, key: &str) -> Option<String> {
        text.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if decode(k) == key {
                Some(decode(v))
            } else {
                None
            }
        })
    }

    /// Percent-decoding with `+` as a space; bad escapes stay as they are.
    pub fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A response under construction.
    #[derive(Debug, Clone)]
    pub struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        /// A response with `status` and no body.
        pub fn new(status: u16) -> Response {
            Response { status, headers: Vec::new(), body: Vec::new() }
        }

        /// Adds a header.
        pub fn header(mut self, name: &str, value: &str) -> Response {
            self.headers.push((name.to_owned(), value.replace(['\r', '\n'], " ")));
            self
        }

        /// Sets the body.
        pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
            self.body = body.into();
            self
        }

        /// A `text/plain` response.
        pub fn text(status: u16, text: impl Into<String>) -> Response {
            Response::new(status).header("Content-Type", "text/plain; charset=utf-8").body(text.into())
        }

        /// Writes the response to stdout as CGI output.
        ///
        /// # Errors
        /// A failed write.
        pub fn send(self) -> std::io::Result<()> {
            let mut out = Vec::with_capacity(self.body.len() + 128);
            out.extend_from_slice(format!("Status: {}\n", self.status).as_bytes());
            for (k, v) in &self.headers {
                out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
            }
            out.push(b'\n');
            out.extend_from_slice(&self.body);
            let mut stdout = Resource::stdout();
            stdout.write_all(&out)?;
            stdout.flush()
        }
    }
}

/// Exports `_start`, which runs `$main` (a `fn() -> Result<(), E>` with
/// `E: Display`): `Ok` exits 0, `Err` logs the error and exits 1, and a
/// panic logs its message and exits 1.
#[macro_export]
macro_rules! entrypoint {
    ($main:path) => {
        #[no_mangle]
        pub extern "C" fn _start() {
            ::std::panic::set_hook(::std::boxed::Box::new(|info| {
                $crate::log($crate::Level::Error, &::std::format!("panic: {}", info));
            }));
            match $main() {
                Ok(()) => $crate::exit(0),
                Err(e) => {
                    $crate::log($crate::Level::Error, &::std::format!("error: {}", e));
                    $crate::exit(1)
                }
            }
        }
    };
}
