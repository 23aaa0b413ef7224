//! Hostile guests against the sandbox: each is stopped by the right limit
//! with the right outcome, and the same runtime then serves a normal call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use olin::{CompileError, Limits, RunContext, Runtime};
use olin_proto::v1::{InvocationRequest, InvocationResponse, Limits as ReqLimits, Outcome};

const HELLO: &[u8] = include_bytes!("../../examples/hello/hello.wasm");

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../test-support/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap()
}

fn runtime() -> Runtime {
    Runtime::new(Limits::MAXIMUM.memory_pages())
}

fn run(rt: &Runtime, wasm: &[u8], limits: ReqLimits) -> InvocationResponse {
    let (module, _) = rt.compile(wasm).unwrap();
    let req = InvocationRequest {
        invocation_id: "h".into(),
        function: "hostile".into(),
        method: "GET".into(),
        limits: Some(limits),
        ..Default::default()
    };
    let ctx = RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    rt.run(&module, &req, &ctx)
}

fn small() -> ReqLimits {
    ReqLimits { fuel: 50_000_000, memory_bytes: 32 << 20, wall_ms: 5_000, max_output_bytes: 1 << 20 }
}

/// After every hostile guest, a normal guest on the same runtime succeeds.
fn still_healthy(rt: &Runtime) {
    let r = run(rt, HELLO, ReqLimits::default());
    assert_eq!(r.outcome(), Outcome::Ok, "{}", r.error);
    assert_eq!(r.status, 200);
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let rt = runtime();
    let r = run(&rt, &fixture("loop.wat"), small());
    assert_eq!(r.outcome(), Outcome::FuelExhausted, "{}", r.error);
    assert_eq!(r.status, 502);
    assert_eq!(r.usage.unwrap().fuel_used, 50_000_000);
    still_healthy(&rt);
}

#[test]
fn infinite_loop_with_unlimited_fuel_hits_the_wall_clock() {
    let rt = runtime();
    let limits = ReqLimits { fuel: Limits::MAXIMUM.fuel, wall_ms: 300, ..small() };
    let started = Instant::now();
    let r = run(&rt, &fixture("loop.wat"), limits);
    assert_eq!(r.outcome(), Outcome::Timeout, "{}", r.error);
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < Duration::from_secs(20), "stopped near the deadline, not by fuel");
    still_healthy(&rt);
}

#[test]
fn sleeping_forever_hits_the_wall_clock() {
    let rt = runtime();
    let r = run(&rt, &fixture("sleepy.wat"), ReqLimits { wall_ms: 300, ..small() });
    assert_eq!(r.outcome(), Outcome::Timeout, "{}", r.error);
    still_healthy(&rt);
}

#[test]
fn memory_grow_bomb_is_capped() {
    let rt = runtime();
    let r = run(&rt, &fixture("grow.wat"), small());
    assert_eq!(r.outcome(), Outcome::MemoryExceeded, "{}", r.error);
    let peak = r.usage.unwrap().peak_memory_bytes;
    assert!(peak <= 32 << 20, "peak {peak} within the 32 MiB cap");
    still_healthy(&rt);
}

#[test]
fn declared_memory_above_the_maximum_is_rejected() {
    let rt = runtime();
    match rt.compile(&fixture("bigmem.wat")) {
        Err(CompileError::MemoryTooLarge { declared_pages: 20_000, .. }) => {}
        other => panic!("expected MemoryTooLarge, got {:?}", other.map(|_| ())),
    }
    // Within the maximum but above this function's own limit: refused at instantiation.
    let r = run(&rt, &fixture("mem32.wat"), ReqLimits { memory_bytes: 16 << 20, ..small() });
    assert_eq!(r.outcome(), Outcome::MemoryExceeded, "{}", r.error);
    let r = run(&rt, &fixture("mem32.wat"), small());
    assert_eq!(r.outcome(), Outcome::Ok, "{}", r.error);
    still_healthy(&rt);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn stdout_flood_stops_at_the_cap() {
    let rt = runtime();
    let before = rss_kib();
    let r = run(&rt, &fixture("flood.wat"), ReqLimits { max_output_bytes: 10 << 20, ..small() });
    assert_eq!(r.outcome(), Outcome::OutputTooLarge, "{}", r.error);
    assert!(r.body.is_empty());
    let usage = r.usage.unwrap();
    assert!(usage.bytes_out <= 10 << 20, "{}", usage.bytes_out);
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "a 100 MiB flood grew the process by {grown} KiB");
    still_healthy(&rt);
}

#[test]
fn unbounded_recursion_traps() {
    let rt = runtime();
    let r = run(&rt, &fixture("recurse.wat"), small());
    assert!(matches!(r.outcome(), Outcome::GuestError | Outcome::FuelExhausted), "{:?}: {}", r.outcome(), r.error);
    assert_eq!(r.status, 502);
    still_healthy(&rt);
}

#[test]
fn unreachable_traps() {
    let rt = runtime();
    let r = run(&rt, &fixture("unreachable.wat"), small());
    assert_eq!(r.outcome(), Outcome::GuestError);
    assert!(r.error.contains("trapped"), "{}", r.error);
    still_healthy(&rt);
}

#[test]
fn non_zero_exit_keeps_stderr_not_partial_output() {
    let rt = runtime();
    let r = run(&rt, &fixture("exit3.wat"), small());
    assert_eq!(r.outcome(), Outcome::GuestError);
    assert_eq!(r.exit_code, 3);
    assert!(r.body.is_empty(), "no partial output");
    assert_eq!(&r.stderr_tail[..], b"ERROR: giving up\n");
    still_healthy(&rt);
}

#[test]
fn invalid_cgi_output() {
    let rt = runtime();
    let r = run(&rt, &fixture("badcgi.wat"), small());
    assert_eq!(r.outcome(), Outcome::BadCgiOutput);
    assert_eq!(r.status, 502);
    still_healthy(&rt);
}

#[test]
fn ten_thousand_resource_opens_hit_the_cap() {
    let rt = runtime();
    let r = run(&rt, &fixture("opens.wat"), small());
    assert_eq!(r.outcome(), Outcome::Ok, "{}", r.error);
    assert_eq!(r.body, Bytes::from(vec![b'x'; 64]), "64 opened, the rest refused");
    let usage = r.usage.unwrap();
    let opens = usage.host_calls.iter().find(|c| c.name == "resource_open").unwrap().count;
    assert_eq!(opens, 10_000);
    still_healthy(&rt);
}

#[test]
fn garbage_is_not_a_module() {
    let rt = runtime();
    assert!(matches!(rt.compile(b"definitely not wasm"), Err(CompileError::Invalid(_))));
    let no_start = wat::parse_str("(module (memory (export \"memory\") 1))").unwrap();
    assert!(matches!(rt.compile(&no_start), Err(CompileError::NoStart)));
    let foreign = wat::parse_str("(module (import \"os\" \"system\" (func)) (func (export \"_start\")))").unwrap();
    assert!(matches!(rt.compile(&foreign), Err(CompileError::UnsupportedImport { .. })));
    let mixed = wat::parse_str(
        "(module (import \"env\" \"time_now\" (func (result i64)))
                 (import \"wasi_snapshot_preview1\" \"sched_yield\" (func (result i32)))
                 (func (export \"_start\")))",
    )
    .unwrap();
    assert!(matches!(rt.compile(&mixed), Err(CompileError::MixedAbi)));
    still_healthy(&rt);
}
