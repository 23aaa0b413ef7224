//! The olin ABI conformance guest (`test-support/fixtures/abi.wat`) run under
//! both import namespaces: every host function, every result code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use olin::{Limits, RunContext, Runtime};
use olin_proto::v1::{EnvVar, InvocationRequest, Outcome};

const ABI_WAT: &str = include_str!("../../../test-support/fixtures/abi.wat");

fn run_abi(namespace: &str) -> olin_proto::v1::InvocationResponse {
    let wasm = wat::parse_str(ABI_WAT.replace("\"NS\"", &format!("\"{namespace}\""))).unwrap();
    let rt = Runtime::new(Limits::MAXIMUM.memory_pages());
    let (module, _) = rt.compile(&wasm).unwrap();
    let req = InvocationRequest {
        invocation_id: "abi-1".into(),
        function: "abi".into(),
        method: "POST".into(),
        body: Bytes::from_static(b"abc"),
        env: vec![EnvVar::plain("GREETING", "hello")],
        ..Default::default()
    };
    let ctx = RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    rt.run(&module, &req, &ctx)
}

fn calls(r: &olin_proto::v1::InvocationResponse, name: &str) -> u64 {
    r.usage.as_ref().unwrap().host_calls.iter().find(|c| c.name == name).map_or(0, |c| c.count)
}

#[test]
fn every_host_function_under_both_namespaces() {
    for ns in ["env", "cwa"] {
        let r = run_abi(ns);
        let stderr = String::from_utf8_lossy(&r.stderr_tail).into_owned();
        assert_eq!(r.outcome(), Outcome::Ok, "{ns}: check {} failed ({}); stderr: {stderr}", r.exit_code, r.error);
        assert_eq!(&r.body[..], b"all ok", "{ns}");

        // Logs reach stderr, never stdout; unknown levels are info; bad UTF-8 is replaced.
        assert!(stderr.contains("ERROR: log line\n"), "{stderr}");
        assert!(stderr.contains("WARN: log line\n"), "{stderr}");
        assert_eq!(stderr.matches("INFO: log line\n").count(), 2, "level 6 and unknown level 42: {stderr}");
        assert!(stderr.contains("INFO: abi: log line\n"), "log:// with its prefix: {stderr}");
        assert!(stderr.contains("log line"), "writes to fd 2: {stderr}");
        assert!(stderr.contains("egress to https://denied.example:443 denied"), "{stderr}");

        // Counters count every call under its own name (pa'i miscounted these).
        assert_eq!(calls(&r, "env_get"), 6, "{ns}");
        assert_eq!(calls(&r, "runtime_spec_major"), 1);
        assert_eq!(calls(&r, "runtime_spec_minor"), 1);
        assert_eq!(calls(&r, "runtime_msleep"), 2);
        assert_eq!(calls(&r, "io_get_stdin"), 1);
        assert_eq!(calls(&r, "io_get_stdout"), 1);
        assert_eq!(calls(&r, "io_get_stderr"), 1);
        assert_eq!(calls(&r, "log_write"), 6);
        assert_eq!(calls(&r, "random_i64"), 1);
        assert_eq!(calls(&r, "runtime_exit"), 1);
        assert_eq!(calls(&r, "time_now"), 1);
        let usage = r.usage.as_ref().unwrap();
        assert!(usage.resource_urls.contains(&"https://denied.example/".to_owned()));
        assert!(usage.resource_urls.contains(&"log://?prefix=abi".to_owned()));
        assert_eq!(usage.bytes_in, 3);
    }
}

#[test]
fn a_function_imported_under_both_namespaces_links_once() {
    let wasm = wat::parse_str(
        r#"(module
            (import "env" "runtime_spec_minor" (func $a (result i32)))
            (import "cwa" "runtime_spec_minor" (func $b (result i32)))
            (import "env" "io_get_stdout" (func $out (result i32)))
            (import "cwa" "resource_write" (func $w (param i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "Status: 204\n\n")
            (func (export "_start")
              (if (i32.ne (i32.add (call $a) (call $b)) (i32.const 4)) (then unreachable))
              (drop (call $w (call $out) (i32.const 0) (i32.const 13)))))"#,
    )
    .unwrap();
    let rt = Runtime::new(Limits::MAXIMUM.memory_pages());
    let (module, _) = rt.compile(&wasm).unwrap();
    let ctx = RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    let r = rt.run(&module, &InvocationRequest::default(), &ctx);
    assert_eq!(r.outcome(), Outcome::Ok, "{}", r.error);
    assert_eq!(r.status, 204);
    assert_eq!(calls(&r, "runtime_spec_minor"), 2);
}
