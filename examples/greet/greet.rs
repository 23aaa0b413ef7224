//! greet: an Olincloud function in Rust on the olin ABI, using the
//! dependency-free guest library in `guest/rust/olin-guest`.
//!
//!   GET /?name=Ada   greets (the greeting comes from the function's
//!                    environment value GREETING, default "Hello")
//!   GET /random      a random number from the host
//!   GET /panic       panics: the call fails with the message in its stderr
//!   anything else    404
//!
//! Build: ../build.sh (Debian's rustc with libstd-rust-dev-wasm32).

use olin_guest::cgi::{Request, Response};
use olin_guest::{Level, log};

fn handle() -> Result<(), Box<dyn std::error::Error>> {
    let req = Request::read()?;
    let response = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "" | "/") => {
            let name = req.query_param("name").unwrap_or_else(|| "world".to_owned());
            let greeting = olin_guest::env::get("GREETING").unwrap_or_else(|| "Hello".to_owned());
            log(Level::Info, &format!("greeting {name}"));
            Response::text(200, format!("{greeting}, {name}! (Rust on the olin ABI, host {})\n", olin_guest::runtime_name()))
        }
        ("GET", "/random") => Response::text(200, format!("{}\n", olin_guest::random_u64())),
        ("GET", "/panic") => panic!("asked to panic"),
        _ => Response::text(404, format!("no route for {} {}\n", req.method, req.path)),
    };
    response.header("X-Powered-By", "olin-guest").send()?;
    Ok(())
}

olin_guest::entrypoint!(handle);
