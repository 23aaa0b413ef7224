//! Runs real guests through the sandbox: the committed examples and small
//! `.wat` fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use olin::{Abi, Limits, RunContext, Runtime};
use olin_proto::v1::{Header, InvocationRequest, InvocationResponse, Outcome};

const HELLO: &[u8] = include_bytes!("../../../examples/hello/hello.wasm");
const ECHO_WAT: &str = include_str!("../../../examples/echo/echo.wat");

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

/// A module with `n` small functions, different for each `seed`.
fn bulky(seed: u32, n: u32) -> Vec<u8> {
    let funcs: String = (0..n)
        .map(|i| {
            format!(
                "(func (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const {})) (i32.const {i})))",
                seed + i
            )
        })
        .collect();
    wat::parse_str(format!(r#"(module (memory (export "memory") 1) {funcs} (func (export "_start")))"#)).unwrap()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Loads and drops `count` distinct modules; returns the resident growth in KiB.
fn churn(rt: &Runtime, count: u32) -> u64 {
    let before = rss_kib();
    for seed in 0..count {
        let (module, _) = rt.compile(&bulky(seed * 1000, 300)).unwrap();
        drop(module);
    }
    rss_kib().saturating_sub(before)
}

#[test]
fn engine_generations_free_the_code_of_dropped_modules() {
    // A Wasmer engine keeps every module's code until it is dropped: loading
    // ever new modules into one engine grows the process for good...
    let one_engine = Runtime::new(Limits::MAXIMUM.memory_pages()).with_generation_bytes(u64::MAX);
    let kept = churn(&one_engine, 150);
    // ... while generations of 4 MiB let the code of dropped modules go.
    let generations = Runtime::new(Limits::MAXIMUM.memory_pages()).with_generation_bytes(4 << 20);
    let freed = churn(&generations, 150);
    println!("150 modules: one engine grew {kept} KiB, generations of 4 MiB {freed} KiB");
    assert!(generations.generation() > 3, "{}", generations.generation());
    assert!(kept > 3 * freed.max(4096), "one engine {kept} KiB, generations {freed} KiB");
    // A module keeps its generation's engine: it still runs after rotations.
    let (old, _) = generations.compile(&bulky(7, 10)).unwrap();
    churn(&generations, 20);
    assert!(old.generation() < generations.generation());
    let ctx = RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    let r = generations.run(&old, &InvocationRequest { invocation_id: "g".into(), ..Default::default() }, &ctx);
    assert_eq!(r.outcome(), Outcome::BadCgiOutput, "it ran (and printed nothing): {}", r.error);
}
