//! The hostile corpus against a real `olin-worker` process behind a real
//! gateway: each hostile module is refused (the check control runs at
//! upload, and the worker's own compile when one is deployed around it) or
//! ends with its outcome; the worker's resident memory grows by at most the
//! call's memory cap plus its host budget plus 64 MiB (peak resident, read
//! from `/proc`); and the next normal call on the same worker succeeds.
//! Then memory admission: a worker with a 1 GiB budget never runs more
//! calls of 512 MiB at once than fit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use olin_proto::v1::{EnvVar, Limits};
use olin_test_support::{GatewayBuilder, NatsServer, S3Server, WorkerProcess, deploy, deploy_route, fixtures};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKER: &str = env!("CARGO_BIN_EXE_olin-worker");
const MIB: u64 = 1 << 20;

/// What a case must end with.
enum Expect {
    /// Refused by upload validation with a message containing this; a
    /// worker given it anyway answers `MODULE_UNAVAILABLE`.
    Refused(&'static str),
    /// Answered with this outcome, status and (if given) body.
    Runs(&'static str, u16, Option<&'static str>),
}

struct Case {
    name: &'static str,
    wasm: Vec<u8>,
    limits: Limits,
    expect: Expect,
}

fn hostile(name: &str) -> Vec<u8> {
    fixtures::wat(&format!("hostile/{name}.wat"))
}

fn limits(memory_mib: u64) -> Limits {
    Limits { fuel: 2_000_000_000, memory_bytes: memory_mib * MIB, wall_ms: 20_000, ..Default::default() }
}

fn corpus() -> Vec<Case> {
    use Expect::{Refused, Runs};
    let imports: String = (0..100_000).map(|_| r#"(import "env" "time_now" (func (result i64)))"#).collect();
    let many_imports = wat::parse_str(format!(r#"(module {imports} (func (export "_start")))"#)).unwrap();
    let case = |name: &'static str, wasm: Vec<u8>, limits: Limits, expect| Case { name, wasm, limits, expect };
    vec![
        case("iovec-badfd", hostile("iovec_badfd"), limits(32), Runs("OK", 200, Some("8"))),
        case("iovec-stdout", hostile("iovec_stdout"), limits(32), Runs("OUTPUT_TOO_LARGE", 502, None)),
        case("iovec-stderr", hostile("iovec_stderr"), limits(32), Runs("OK", 200, Some("0"))),
        case("table-grow", hostile("table_grow"), limits(32), Runs("OK", 200, Some("rrg"))),
        case("table-initial", hostile("table_initial"), limits(32), Refused("10000000 entries")),
        case("memories", hostile("memories"), limits(128), Refused("multiple memories")),
        case("shared-wait", hostile("shared_wait"), limits(32), Refused("threads")),
        case("memory64", hostile("memory64"), limits(32), Refused("memory64")),
        case("wrong-signature", hostile("wrong_signature"), limits(32), Refused("wasi_snapshot_preview1::fd_write")),
        case("reserved-export", hostile("reserved_export"), limits(32), Refused("reserved")),
        case("imports-100k", many_imports, limits(32), Refused("100000 imports")),
        case("start-loop", hostile("start_loop"), limits(32), Runs("FUEL_EXHAUSTED", 502, None)),
        case(
            "start-loop-wall",
            hostile("start_loop"),
            Limits { fuel: 200_000_000_000, wall_ms: 300, ..limits(32) },
            Runs("TIMEOUT", 504, None),
        ),
        case("opens-million", hostile("opens_million"), limits(32), Runs("OK", 200, Some("done"))),
        case("http-flood", hostile("http_flood"), limits(32), Runs("MEMORY_EXCEEDED", 502, None)),
        case("big-copies", hostile("big_copies"), limits(64), Runs("OK", 200, Some("00000"))),
        case("random-huge", hostile("random_huge"), limits(64), Runs("OK", 200, Some("0"))),
        case("status-1xx", hostile("status_1xx"), limits(32), Runs("BAD_CGI_OUTPUT", 502, None)),
        case("grow-bomb", fixtures::wat("grow.wat"), limits(32), Runs("MEMORY_EXCEEDED", 502, None)),
        case("stdout-flood", fixtures::wat("flood.wat"), limits(32), Runs("OUTPUT_TOO_LARGE", 502, None)),
        case("loop", fixtures::wat("loop.wat"), limits(32), Runs("FUEL_EXHAUSTED", 502, None)),
        case(
            "loop-wall",
            fixtures::wat("loop.wat"),
            Limits { fuel: 200_000_000_000, wall_ms: 300, ..limits(32) },
            Runs("TIMEOUT", 504, None),
        ),
        case("recurse", fixtures::wat("recurse.wat"), limits(32), Runs("GUEST_ERROR", 502, None)),
        case("declared-over-cap", fixtures::wat("mem32.wat"), limits(16), Runs("MEMORY_EXCEEDED", 502, None)),
    ]
}

/// `VmRSS` and `VmHWM` (peak) of a process, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the process's peak resident size to its current one.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// An HTTP server on 127.0.0.1 answering every request with 10 MiB.
async fn big_upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let body = vec![b'x'; 10 << 20];
        let body: &'static [u8] = Box::leak(body.into_boxed_slice());
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = sock.write_all(h.as_bytes()).await;
                let _ = sock.write_all(body).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hostile_corpus_never_takes_the_worker_down() {
    olin_test_support::init_tracing();
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let store = s3.store_args();
    let port = big_upstream().await;
    deploy(&client, &store, "hello", fixtures::HELLO_WASM).await;
    deploy(&client, &store, "getenv", &fixtures::wat("getenv.wat")).await;
    deploy(&client, &store, "clock", &hostile("clock")).await;
    let cases = corpus();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for c in &cases {
        let limits = c.limits;
        deploy_route(&client, &store, c.name, &c.wasm, |r| {
            r.limits = Some(limits);
            r.env = vec![EnvVar::plain("TARGET_URL", format!("http://127.0.0.1:{port}/"))];
            r.egress_allow = vec![format!("127.0.0.1:{port}")];
        })
        .await;
    }
    let worker = WorkerProcess::spawn(
        WORKER,
        &nats.url(),
        &store,
        &[("WORKER_CONCURRENCY", "1"), ("WORKER_EGRESS_ALLOW_CIDRS", "127.0.0.0/8")],
    )
    .await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();
    for c in &cases {
        gateway.wait_for_route(&http, c.name).await;
    }
    gateway.wait_for_route(&http, "hello").await;
    let hello = http.get(gateway.function_url("hello", "/")).send().await.unwrap();
    assert_eq!(hello.status(), 200);

    let max_pages = olin::Limits::MAXIMUM.memory_pages();
    let mut report = Vec::new();
    for c in &cases {
        if let Expect::Refused(why) = c.expect {
            let err = olin::validate::validate(&c.wasm, max_pages).expect_err(c.name).to_string();
            assert!(err.contains(why), "{}: refused for {why:?}, but: {err}", c.name);
        }
        reset_peak(worker.pid());
        let (before, _) = rss(worker.pid());
        let r = http.get(gateway.function_url(c.name, "/")).send().await.unwrap();
        let (status, outcome) = (r.status().as_u16(), r.headers().get("olin-outcome").cloned());
        let body = r.text().await.unwrap();
        let (_, peak) = rss(worker.pid());
        let grown = peak.saturating_sub(before);
        let bound = c.limits.memory_bytes + olin::Limits::DEFAULT.host_budget_bytes + 64 * MIB;
        report.push(format!("{:<18} {status} {:>6} KiB", c.name, grown >> 10));
        match c.expect {
            Expect::Refused(_) => {
                assert_eq!(status, 503, "{}: {body}", c.name);
                assert!(body.contains("MODULE_UNAVAILABLE"), "{}: {body}", c.name);
            }
            Expect::Runs(want, want_status, want_body) => {
                assert_eq!(outcome.as_ref().map(|v| v.to_str().unwrap()), Some(want), "{}: {status} {body}", c.name);
                assert_eq!(status, want_status, "{}: {body}", c.name);
                if let Some(b) = want_body {
                    assert_eq!(body, b, "{}", c.name);
                }
            }
        }
        assert!(grown <= bound, "{}: the worker grew by {} MiB, over {} MiB", c.name, grown >> 20, bound >> 20);
        let ok = http.get(gateway.function_url("hello", "/after")).send().await.unwrap();
        assert_eq!(ok.status(), 200, "the worker serves normally after {}", c.name);
    }
    println!("case               status  peak growth\n{}", report.join("\n"));

    // Edges of the CGI request, on the same worker.
    let r = http.get(gateway.function_url("hello", "/a%00b")).send().await.unwrap();
    assert_eq!(r.status(), 400, "an encoded NUL in the path is refused before any guest runs");
    assert_eq!(r.headers()["olin-error"], "BAD_PATH");
    gateway.wait_for_route(&http, "getenv").await;
    let r = http
        .get(gateway.function_url("getenv", "/?HTTP_X_FORWARDED_FOR"))
        .header("X_Forwarded_For", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, String::new()),
        "a `_` header never reaches the guest"
    );
    gateway.wait_for_route(&http, "clock").await;
    let started = Instant::now();
    let r = http.get(gateway.function_url("clock", "/")).send().await.unwrap();
    let wall = started.elapsed().as_nanos() as u64;
    let body = r.text().await.unwrap();
    for ns in body.lines().map(|l| l.parse::<u64>().unwrap()) {
        assert!(ns < wall, "a guest clock reads {ns} ns, more than its whole call ({wall} ns): it leaks uptime");
    }
}

/// Fills (touches) all of a memory of 512 MiB minus a page, then answers "ok".
const TOUCH_512: &str = r#"(module
  (import "env" "io_get_stdout" (func $stdout (result i32)))
  (import "env" "resource_write" (func $write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 8191)
  (data (i32.const 0) "Content-Type: text/plain\n\nok")
  (func (export "_start")
    (memory.fill (i32.const 64) (i32.const 1) (i32.sub (i32.mul (i32.const 8191) (i32.const 65536)) (i32.const 64)))
    (drop (call $write (call $stdout) (i32.const 0) (i32.const 28)))))"#;

fn metric(text: &str, name: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with(name) && !l.starts_with('#')).unwrap_or_else(|| panic!("{name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_wait_for_memory_instead_of_risking_the_worker() {
    olin_test_support::init_tracing();
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let client = nats.client().await;
    let store = s3.store_args();
    let limits = Limits { memory_bytes: 512 * MIB, wall_ms: 30_000, ..Default::default() };
    deploy_route(&client, &store, "touch", &wat::parse_str(TOUCH_512).unwrap(), |r| r.limits = Some(limits)).await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let env = [("WORKER_CONCURRENCY", "8"), ("WORKER_MEMORY_BUDGET_MIB", "1024"), ("WORKER_LISTEN", listen.as_str())];
    let worker = WorkerProcess::spawn(WORKER, &nats.url(), &store, &env).await;
    let gateway = GatewayBuilder::new(&nats.url()).start().await;
    let http = reqwest::Client::new();
    gateway.wait_for_route(&http, "touch").await;

    let scrape = || async { http.get(format!("http://{listen}/metrics")).send().await.unwrap().text().await.unwrap() };
    let text = scrape().await;
    let ran_before = metric(&text, "olin_worker_executions_total");
    let discarded_before = metric(&text, "olin_worker_memory_pool_discarded_total");
    reset_peak(worker.pid());
    let (before, _) = rss(worker.pid());
    let started = Instant::now();
    let calls = (0..16).map(|i| {
        let (http, url) = (http.clone(), gateway.function_url("touch", &format!("/{i}")));
        tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap(), (200, "ok".to_owned()));
    }
    let took = started.elapsed();
    let (_, peak) = rss(worker.pid());
    let text = scrape().await;
    let budget = metric(&text, "olin_worker_memory_budget_bytes");
    let most = metric(&text, "olin_worker_memory_reserved_peak_bytes");
    let reservation = 512 * MIB + olin::Limits::DEFAULT.host_budget_bytes + olin::Limits::DEFAULT.max_output_bytes;
    println!(
        "16 calls of 512 MiB in {took:?}: most reserved {} MiB of {} MiB, at most {} at once; peak resident growth {} MiB",
        most >> 20,
        budget >> 20,
        most / reservation,
        peak.saturating_sub(before) >> 20
    );
    assert_eq!(budget, 1024 * MIB);
    assert!(most <= budget, "reserved {most} of {budget}");
    assert!(most / reservation <= 2, "at most two such calls at once");
    assert!(peak.saturating_sub(before) <= budget, "the worker grew by {} MiB", peak.saturating_sub(before) >> 20);
    assert_eq!(metric(&text, "olin_worker_memory_reserved_bytes"), 0);
    assert_eq!(metric(&text, "olin_worker_executions_total") - ran_before, 16);
    // Each 512 MiB memory went back to the kernel, not kept resident in the
    // pool, whose regions were reused (at most one per slot was reserved).
    assert_eq!(metric(&text, "olin_worker_memory_pool_discarded_total") - discarded_before, 16);
    let reserved = metric(&text, "olin_worker_memory_pool_reserved_total");
    assert!(reserved <= 8, "{reserved} regions for 8 slots");
    assert!(metric(&text, "olin_worker_memory_pool_reused_total") >= 16 - reserved);
}
