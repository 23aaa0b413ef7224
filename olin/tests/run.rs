//! Runs real guests through the sandbox: the committed examples and small
//! `.wat` fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use olin::{Abi, Limits, RunContext, Runtime};
use olin_proto::v1::{Header, InvocationRequest, InvocationResponse, Outcome};

const HELLO: &[u8] = include_bytes!("../../examples/hello/hello.wasm");
const ECHO_WAT: &str = include_str!("../../examples/echo/echo.wat");

fn runtime() -> Runtime {
    Runtime::new(Limits::MAXIMUM.memory_pages())
}

fn request(method: &str, path: &str, body: &[u8]) -> InvocationRequest {
    InvocationRequest {
        invocation_id: "inv-1".into(),
        function: "t".into(),
        method: method.into(),
        path: path.into(),
        query: "a=1&b=two".into(),
        headers: vec![Header { name: "User-Agent".into(), value: Bytes::from_static(b"olin-test/1") }],
        body: Bytes::copy_from_slice(body),
        remote_addr: "127.0.0.1:1234".into(),
        host: "localhost".into(),
        ..Default::default()
    }
}

fn run(rt: &Runtime, wasm: &[u8], req: &InvocationRequest) -> InvocationResponse {
    let (module, _) = rt.compile(wasm).expect("compiles");
    rt.run(
        &module,
        req,
        &RunContext { worker_id: "w-test", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None },
    )
}

fn header<'a>(r: &'a InvocationResponse, name: &str) -> Option<&'a [u8]> {
    r.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_ref())
}

#[test]
fn hello_wasi_cgi() {
    let rt = runtime();
    let (module, _) = rt.compile(HELLO).unwrap();
    assert_eq!(module.abi(), Abi::WasiP1);
    let r = run(&rt, HELLO, &request("POST", "/some/path", b"12345"));
    assert_eq!(r.outcome(), Outcome::Ok, "{}: {:?}", r.error, String::from_utf8_lossy(&r.stderr_tail));
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "content-type"), Some(&b"text/plain; charset=utf-8"[..]));
    let body = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(body.contains("method: POST\n"), "{body}");
    assert!(body.contains("path: /some/path\n"), "{body}");
    assert!(body.contains("query: a=1&b=two\n"), "{body}");
    assert!(body.contains("user-agent: olin-test/1\n"), "{body}");
    assert!(body.contains("body-length: 5\n"), "{body}");
    assert!(body.contains("run-id: inv-1\n"), "{body}");
    let usage = r.usage.unwrap();
    assert!(usage.fuel_used > 0);
    assert!(usage.peak_memory_bytes >= 65536);
    assert_eq!(usage.bytes_in, 5);
    assert!(usage.host_calls.iter().any(|c| c.name == "fd_write"));
}

#[test]
fn hello_fails_with_exit_code() {
    let rt = runtime();
    let r = run(&rt, HELLO, &request("GET", "/fail", b""));
    assert_eq!(r.outcome(), Outcome::GuestError);
    assert_eq!(r.exit_code, 2);
    assert_eq!(r.status, 502);
    assert!(String::from_utf8_lossy(&r.stderr_tail).contains("asked to fail"));
    assert!(r.body.is_empty());
}

#[test]
fn echo_olin_large_body() {
    let rt = runtime();
    let wasm = wat::parse_str(ECHO_WAT).unwrap();
    let (module, _) = rt.compile(&wasm).unwrap();
    assert_eq!(module.abi(), Abi::Olin);
    let body: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let r = run(&rt, &wasm, &request("PUT", "/", &body));
    assert_eq!(r.outcome(), Outcome::Ok, "{}", r.error);
    assert_eq!(header(&r, "content-type"), Some(&b"application/octet-stream"[..]));
    assert!(r.body == body, "the 1 MiB body comes back intact");
    assert_eq!(String::from_utf8_lossy(&r.stderr_tail), "INFO: PUT\n", "logs go to stderr only");
}
