//! Per-call cost of the sandbox, in one run: a fresh `Store` + instance +
//! `_start` + CGI environment + output parse, for the olin `echo` guest and
//! the C `hello` WASI guest, with and without metering, next to the bare
//! Wasmer floor (fresh store + instance + call of an empty `_start` with one
//! page of memory and no imports).
//!
//! Run: `cargo run --release -p olin-bench --bin runtime [-- ITERATIONS [echo|hello]]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use olin::{Limits, RunContext, Runtime};
use olin_bench::{Stats, machine, record, today};
use olin_proto::v1::{Header, InvocationRequest, Outcome};

const HELLO: &[u8] = include_bytes!("../../../examples/hello/hello.wasm");
const ECHO: &[u8] = include_bytes!("../../../examples/echo/echo.wasm");

fn request() -> InvocationRequest {
    InvocationRequest {
        invocation_id: "0190aa00-0000-7000-8000-000000000000".into(),
        function: "bench".into(),
        method: "POST".into(),
        path: "/some/path".into(),
        query: "a=1&b=2".into(),
        headers: vec![
            Header { name: "host".into(), value: Bytes::from_static(b"localhost:8080") },
            Header { name: "user-agent".into(), value: Bytes::from_static(b"bench/1.0") },
            Header { name: "accept".into(), value: Bytes::from_static(b"*/*") },
            Header { name: "content-type".into(), value: Bytes::from_static(b"text/plain") },
        ],
        body: Bytes::from_static(b"hello, benchmark"),
        remote_addr: "127.0.0.1:50000".into(),
        scheme: "http".into(),
        host: "localhost".into(),
        server_port: 8080,
        ..Default::default()
    }
}

/// One timed case: runs one call per invocation.
type Case<'a> = Box<dyn FnMut() -> anyhow::Result<()> + 'a>;

fn guest<'a>(rt: &'a Runtime, wasm: &[u8]) -> anyhow::Result<Case<'a>> {
    let (module, _) = rt.compile(wasm)?;
    let req = request();
    let ctx = RunContext { worker_id: "bench", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    let first = rt.run(&module, &req, &ctx);
    anyhow::ensure!(first.outcome() == Outcome::Ok, "guest failed: {}", first.error);
    let expected = first.body.len();
    Ok(Box::new(move || {
        // Every call is checked: a call that failed fast (a refused memory,
        // say) would otherwise pass for a fast one.
        let resp = black_box(rt.run(&module, &req, &ctx));
        anyhow::ensure!(
            resp.outcome() == Outcome::Ok && resp.body.len() == expected,
            "guest failed: {} ({} body bytes)",
            resp.error,
            resp.body.len()
        );
        Ok(())
    }))
}

fn floor() -> anyhow::Result<Case<'static>> {
    let engine = wasmer::Engine::default();
    let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)?;
    let module = wasmer::Module::new(&engine, wasm)?;
    Ok(Box::new(move || {
        let mut store = wasmer::Store::new(engine.clone());
        let instance = wasmer::Instance::new(&mut store, &module, &wasmer::imports! {})?;
        let start: wasmer::TypedFunction<(), ()> = instance.exports.get_typed_function(&store, "_start")?;
        start.call(&mut store)?;
        Ok(())
    }))
}

fn time(case: &mut Case<'_>, iterations: usize) -> anyhow::Result<Stats> {
    for _ in 0..iterations / 10 {
        case()?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        case()?;
        samples.push(t.elapsed());
    }
    Ok(Stats::of(&mut samples))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Rounds, each timing every case in turn: the floor moves by 2x between
/// minutes on these machines, so each ratio is taken within one round and
/// the median of the rounds is reported.
const ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let pages = Limits::MAXIMUM.memory_pages();
    let metered = Runtime::new(pages);
    let unmetered = Runtime::without_metering(pages);
    // `runtime N echo|hello`: only that guest, metered, nothing recorded
    // (for profiling one case with `perf record`).
    if let Some(only) = std::env::args().nth(2) {
        let mut case = guest(&metered, if only == "echo" { ECHO } else { HELLO })?;
        let s = time(&mut case, iterations)?;
        println!("{only}: mean {:.1} µs  p50 {:.1} µs", s.mean_us, s.p50_us);
        return Ok(());
    }

    let mut cases: Vec<(&str, &str, Case<'_>)> = vec![
        ("floor", "bare Wasmer: fresh store + instance + empty _start", floor()?),
        ("olin_echo_metered", "olin echo guest, metered (production)", guest(&metered, ECHO)?),
        ("olin_echo_unmetered", "olin echo guest, no metering", guest(&unmetered, ECHO)?),
        ("wasi_hello_metered", "C WASI hello guest, metered (production)", guest(&metered, HELLO)?),
        ("wasi_hello_unmetered", "C WASI hello guest, no metering", guest(&unmetered, HELLO)?),
    ];
    let mut rounds: Vec<Vec<Stats>> = vec![Vec::new(); cases.len()];
    for round in 0..ROUNDS {
        for (i, (_, what, case)) in cases.iter_mut().enumerate() {
            let s = time(case, iterations / ROUNDS)?;
            println!("round {}: {what:<45} mean {:>6.1} µs  p50 {:>6.1} µs", round + 1, s.mean_us, s.p50_us);
            rounds[i].push(s);
        }
    }

    let mut md = format!(
        "# runtime: per-call cost of the sandbox\n\n\
         - date: {}\n- machine: {}\n- command: `cargo run --release -p olin-bench --bin runtime -- {iterations}`\n\
         - what: fresh Store + host state + instance + `_start` + CGI env build + output parse, per call; \
         {ROUNDS} interleaved rounds of {} calls per case (after {} warm-up calls each); each figure is the \
         median over the rounds, each ratio the median of the ratios taken within a round; every call's \
         outcome and body length are checked\n\
         - the floor maps, faults in and unmaps a fresh memory per call (Wasmer's default tunables); the olin \
         cases take theirs from the memory pool (`olin::pool`), which is how they can come in under it\n\n\
         | case | mean µs | p50 µs | p99 µs | mean / floor mean |\n|---|---|---|---|---|\n",
        today(),
        machine(),
        iterations / ROUNDS,
        iterations / ROUNDS / 10
    );
    let mut json = serde_json::Map::new();
    let floor_means: Vec<f64> = rounds[0].iter().map(|s| s.mean_us).collect();
    let mut ratios = Vec::new();
    for ((key, what, _), stats) in cases.iter().zip(&rounds) {
        let pick = |f: fn(&Stats) -> f64| median(stats.iter().map(f).collect());
        let (mean, p50, p99) = (pick(|s| s.mean_us), pick(|s| s.p50_us), pick(|s| s.p99_us));
        let ratio = median(stats.iter().zip(&floor_means).map(|(s, f)| s.mean_us / f.max(f64::EPSILON)).collect());
        ratios.push(ratio);
        md.push_str(&format!("| {what} | {mean:.1} | {p50:.1} | {p99:.1} | {ratio:.2}x |\n"));
        json.insert(format!("{key}_mean_us"), mean.into());
        json.insert(format!("{key}_p50_us"), p50.into());
        json.insert(format!("{key}_p99_us"), p99.into());
        json.insert(format!("{key}_mean_over_floor"), ratio.into());
        println!("{what:<50} mean {mean:>7.1} µs  p50 {p50:>7.1} µs  p99 {p99:>7.1} µs  {ratio:.2}x floor");
    }
    let (echo, hello) = (ratios[1], ratios[3]);
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    md.push_str(&format!(
        "\nTargets (#23 benchmark 1, metered as in production): olin `echo` at most 2x the floor's mean: \
         **{}** ({echo:.2}x); C WASI `hello` at most 3x: **{}** ({hello:.2}x).\n",
        verdict(echo <= 2.0),
        verdict(hello <= 3.0),
    ));
    record("runtime", &md, &json)
}
