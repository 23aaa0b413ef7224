//! Hostile guests against the sandbox: each is stopped by the right limit
//! with the right outcome, and the same runtime then serves a normal call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use olin::{CompileError, Limits, RunContext, Runtime};
use olin_proto::v1::{InvocationRequest, InvocationResponse, Limits as ReqLimits, Outcome};

const HELLO: &[u8] = include_bytes!("../../../examples/hello/hello.wasm");

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
    ReqLimits {
        fuel: 50_000_000,
        memory_bytes: 32 << 20,
        wall_ms: 5_000,
        max_output_bytes: 1 << 20,
        host_budget_bytes: 0,
    }
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

/// The wall clock stops a spinning guest at its deadline, not seconds later:
/// every run of a tight loop (and of one in a start section) ends within a
/// generous second of its 50 ms limit. (Draining the fuel counter from the
/// watchdog, before the interrupt flag, overran by up to 4 s: the guest's
/// own read-modify-write of the counter kept overwriting the drain.)
#[test]
fn spinning_guests_stop_at_their_deadline() {
    let rt = runtime();
    for name in ["loop.wat", "hostile/start_loop.wat"] {
        let (module, _) = rt.compile(&fixture(name)).unwrap();
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let req = InvocationRequest {
                invocation_id: "spin".into(),
                limits: Some(ReqLimits { fuel: Limits::MAXIMUM.fuel, wall_ms: 50, ..small() }),
                ..Default::default()
            };
            let ctx = RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
            let started = Instant::now();
            let r = rt.run(&module, &req, &ctx);
            worst = worst.max(started.elapsed());
            assert_eq!(r.outcome(), Outcome::Timeout, "{name}: {}", r.error);
        }
        println!("{name}: the slowest of 20 runs took {worst:?} for a 50 ms limit");
        assert!(worst < Duration::from_millis(1050), "{name}: {worst:?}");
    }
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

fn corpus(name: &str) -> Vec<u8> {
    fixture(&format!("hostile/{name}.wat"))
}

fn refused(name: &str) -> CompileError {
    let wasm = corpus(name);
    let err = olin::validate::validate(&wasm, Limits::MAXIMUM.memory_pages()).expect_err(name);
    // The engine refuses it the same way: upload rules are compile rules.
    let engine = runtime().compile(&wasm).map(|_| ()).expect_err(name);
    assert_eq!(err.to_string(), engine.to_string());
    err
}

#[test]
fn the_feature_set_and_table_sizes_are_refused_at_upload() {
    assert!(matches!(refused("memories"), CompileError::Invalid(m) if m.contains("multiple memories")));
    assert!(matches!(refused("shared_wait"), CompileError::Invalid(m) if m.contains("threads")));
    assert!(matches!(refused("memory64"), CompileError::Invalid(m) if m.contains("memory64")));
    assert!(matches!(refused("table_initial"), CompileError::TableTooLarge { declared: 10_000_000, .. }));
    assert!(matches!(refused("wrong_signature"), CompileError::ImportSignature { .. }));
    assert!(matches!(refused("reserved_export"), CompileError::ReservedExport { .. }));
    let imports: String = (0..100_000).map(|_| r#"(import "env" "time_now" (func (result i64)))"#).collect();
    let many = wat::parse_str(format!(r#"(module {imports} (func (export "_start")))"#)).unwrap();
    let err = olin::validate::validate(&many, 2048).unwrap_err();
    assert!(matches!(err, CompileError::TooManyImports { count: 100_000, .. }), "{err}");
}

#[test]
fn iovec_floods_copy_nothing_they_cannot_keep() {
    let rt = runtime();
    let limits = ReqLimits { memory_bytes: 32 << 20, ..small() };
    let before = rss_kib();
    let r = run(&rt, &corpus("iovec_badfd"), limits);
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"8"[..]), "{}", r.error);
    let r = run(&rt, &corpus("iovec_stdout"), limits);
    assert_eq!(r.outcome(), Outcome::OutputTooLarge, "{}", r.error);
    let r = run(&rt, &corpus("iovec_stderr"), limits);
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"0"[..]), "{}", r.error);
    assert_eq!(r.stderr_tail.len(), 64 << 10, "only the tail is kept");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "2 GiB of iovecs grew the process by {grown} KiB");
    still_healthy(&rt);
}

#[test]
fn tables_cannot_grow_past_the_engine_cap() {
    let rt = runtime();
    let r = run(&rt, &corpus("table_grow"), small());
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"rrg"[..]), "{}", r.error);
    still_healthy(&rt);
}

#[test]
fn a_start_section_runs_on_the_calls_fuel() {
    let rt = runtime();
    let r = run(&rt, &corpus("start_loop"), small());
    assert_eq!(r.outcome(), Outcome::FuelExhausted, "{}", r.error);
    assert_eq!(r.usage.unwrap().fuel_used, small().fuel);
    let r = run(&rt, &corpus("start_loop"), ReqLimits { fuel: Limits::MAXIMUM.fuel, wall_ms: 300, ..small() });
    assert_eq!(r.outcome(), Outcome::Timeout, "{}", r.error);
    still_healthy(&rt);
}

#[test]
fn a_million_opens_keep_a_capped_url_list() {
    let rt = runtime();
    let r = run(&rt, &corpus("opens_million"), ReqLimits { fuel: 1_000_000_000, wall_ms: 60_000, ..small() });
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"done"[..]), "{}", r.error);
    let usage = r.usage.unwrap();
    assert!(usage.resource_urls_truncated);
    assert!(usage.resource_urls.len() <= 64, "{}", usage.resource_urls.len());
    let kept: usize = usage.resource_urls.iter().map(String::len).sum();
    assert!(kept <= 16 << 10, "{kept}");
    assert_eq!(usage.host_calls.iter().find(|c| c.name == "resource_open").unwrap().count, 1_000_000);
    still_healthy(&rt);
}

#[test]
fn guest_sized_lengths_never_become_host_buffers() {
    let rt = runtime();
    let before = rss_kib();
    let r = run(&rt, &corpus("big_copies"), ReqLimits { memory_bytes: 64 << 20, ..small() });
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"00000"[..]), "{}", r.error);
    let stderr = String::from_utf8_lossy(&r.stderr_tail);
    assert!(stderr.contains("[cut]"), "a long log line is cut");
    let r = run(&rt, &corpus("random_huge"), ReqLimits { memory_bytes: 64 << 20, ..small() });
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"0"[..]), "{}", r.error);
    // The guests' own memories (64 MiB each, touched) come and go; the host
    // copies would have been 16 log lines of 64 MiB and more.
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 160 * 1024, "grew by {grown} KiB");
    still_healthy(&rt);
}

#[test]
fn an_interim_status_is_bad_cgi_output() {
    let rt = runtime();
    let r = run(&rt, &corpus("status_1xx"), small());
    assert_eq!(r.outcome(), Outcome::BadCgiOutput, "{}", r.error);
}

#[test]
fn guest_clocks_start_with_the_call() {
    let rt = runtime();
    // However long this process has been up, the guest sees a clock that
    // started with its call.
    std::thread::sleep(Duration::from_millis(1200));
    let started = Instant::now();
    let r = run(&rt, &corpus("clock"), small());
    let wall = started.elapsed().as_nanos() as u64;
    assert_eq!(r.outcome(), Outcome::Ok, "{}", r.error);
    let body = String::from_utf8(r.body.to_vec()).unwrap();
    let clocks: Vec<u64> = body.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(clocks.len(), 2, "{body}");
    for ns in clocks {
        assert!(ns < wall, "{ns} ns is more than the call's {wall} ns");
    }
}

/// Answers every request with `size` bytes of body, from memory.
struct BigAnswers {
    size: usize,
    sent: std::sync::atomic::AtomicUsize,
}

impl olin::Egress for BigAnswers {
    fn send(&self, req: olin::EgressRequest) -> Result<olin::EgressResponse, olin::EgressError> {
        if self.size > req.max_response_bytes {
            return Err(olin::EgressError::TooLarge { limit: req.max_response_bytes });
        }
        self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(olin::EgressResponse { status: 200, headers: vec![], body: vec![b'x'; self.size] })
    }
}

#[test]
fn http_responses_are_charged_to_the_host_budget() {
    let rt = runtime();
    let (module, _) = rt.compile(&corpus("http_flood")).unwrap();
    let egress = std::sync::Arc::new(BigAnswers { size: 10 << 20, sent: Default::default() });
    let req = |budget: u64| InvocationRequest {
        invocation_id: "h".into(),
        function: "hostile".into(),
        method: "GET".into(),
        limits: Some(ReqLimits { host_budget_bytes: budget, ..small() }),
        env: vec![olin_proto::v1::EnvVar::plain("TARGET_URL", "http://example.com/")],
        egress_allow: vec!["example.com".into()],
        ..Default::default()
    };
    let ctx = RunContext {
        worker_id: "w",
        defaults: &Limits::DEFAULT,
        maxima: &Limits::MAXIMUM,
        egress: Some(egress.clone()),
    };
    let r = rt.run(&module, &req(0), &ctx);
    assert_eq!(r.outcome(), Outcome::MemoryExceeded, "{}", r.error);
    assert!(r.error.contains("host budget of 16777216 bytes (http resource buffers)"), "{}", r.error);
    assert_eq!(egress.sent.load(std::sync::atomic::Ordering::SeqCst), 1, "the second response did not fit");
    // With a budget for all 64 responses, the call completes.
    let small_answers = std::sync::Arc::new(BigAnswers { size: 1 << 20, sent: Default::default() });
    let ctx = RunContext { egress: Some(small_answers.clone()), ..ctx };
    let r = rt.run(&module, &req(80 << 20), &ctx);
    assert_eq!((r.outcome(), &r.body[..]), (Outcome::Ok, &b"survived"[..]), "{}", r.error);
    assert_eq!(small_answers.sent.load(std::sync::atomic::Ordering::SeqCst), 64);
}
