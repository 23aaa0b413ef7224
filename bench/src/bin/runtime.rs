//! Per-call cost of the sandbox, in one run: a fresh `Store` + instance +
//! `_start` + CGI environment + output parse, for the olin `echo` guest and
//! the C `hello` WASI guest, with and without metering, next to the bare
//! Wasmer floor (fresh store + instance + call of an empty `_start` with one
//! page of memory and no imports).
//!
//! Run: `cargo run --release -p olin-bench --bin runtime [-- ITERATIONS]`

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

fn time_guest(rt: &Runtime, wasm: &[u8], iterations: usize) -> anyhow::Result<Stats> {
    let (module, _) = rt.compile(wasm)?;
    let req = request();
    let ctx = RunContext { worker_id: "bench", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    let first = rt.run(&module, &req, &ctx);
    anyhow::ensure!(first.outcome() == Outcome::Ok, "guest failed: {}", first.error);
    for _ in 0..iterations / 10 {
        black_box(rt.run(&module, &req, &ctx));
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        black_box(rt.run(&module, &req, &ctx));
        samples.push(t.elapsed());
    }
    Ok(Stats::of(&mut samples))
}

fn time_floor(iterations: usize) -> anyhow::Result<Stats> {
    let engine = wasmer::Engine::default();
    let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)?;
    let module = wasmer::Module::new(&engine, wasm)?;
    let run = || -> anyhow::Result<()> {
        let mut store = wasmer::Store::new(engine.clone());
        let instance = wasmer::Instance::new(&mut store, &module, &wasmer::imports! {})?;
        let start: wasmer::TypedFunction<(), ()> = instance.exports.get_typed_function(&store, "_start")?;
        start.call(&mut store)?;
        Ok(())
    };
    for _ in 0..iterations / 10 {
        run()?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        run()?;
        samples.push(t.elapsed());
    }
    Ok(Stats::of(&mut samples))
}

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let pages = Limits::MAXIMUM.memory_pages();
    let metered = Runtime::new(pages);
    let unmetered = Runtime::without_metering(pages);

    let floor = time_floor(iterations)?;
    let rows = [
        ("floor", "bare Wasmer: fresh store + instance + empty _start", floor),
        ("olin_echo_metered", "olin echo guest, metered (production)", time_guest(&metered, ECHO, iterations)?),
        ("olin_echo_unmetered", "olin echo guest, no metering", time_guest(&unmetered, ECHO, iterations)?),
        ("wasi_hello_metered", "C WASI hello guest, metered (production)", time_guest(&metered, HELLO, iterations)?),
        ("wasi_hello_unmetered", "C WASI hello guest, no metering", time_guest(&unmetered, HELLO, iterations)?),
    ];

    let mut md = format!(
        "# runtime: per-call cost of the sandbox\n\n\
         - date: {}\n- machine: {}\n- command: `cargo run --release -p olin-bench --bin runtime -- {iterations}`\n\
         - what: fresh Store + host state + instance + `_start` + CGI env build + output parse, per call, \
         {iterations} calls each after {} warm-up calls\n\n\
         | case | mean µs | p50 µs | p99 µs | p50 / floor p50 |\n|---|---|---|---|---|\n",
        today(),
        machine(),
        iterations / 10
    );
    let mut json = serde_json::Map::new();
    for (key, what, s) in &rows {
        let ratio = s.p50_us / floor.p50_us.max(f64::EPSILON);
        md.push_str(&format!("| {what} | {:.1} | {:.1} | {:.1} | {ratio:.1}x |\n", s.mean_us, s.p50_us, s.p99_us));
        json.insert(format!("{key}_mean_us"), s.mean_us.into());
        json.insert(format!("{key}_p50_us"), s.p50_us.into());
        json.insert(format!("{key}_p99_us"), s.p99_us.into());
        json.insert(format!("{key}_p50_over_floor"), ratio.into());
        println!(
            "{what:<50} mean {:>7.1} µs  p50 {:>7.1} µs  p99 {:>7.1} µs  {ratio:.1}x floor",
            s.mean_us, s.p50_us, s.p99_us
        );
    }
    let olin = rows[1].2.mean_us;
    let wasi = rows[3].2.mean_us;
    md.push_str(&format!(
        "\nTargets: olin guest ≤ 50 µs per call: **{}** ({olin:.1} µs mean); \
         C WASI CGI guest ≤ 100 µs per call: **{}** ({wasi:.1} µs mean).\n",
        if olin <= 50.0 { "met" } else { "not met" },
        if wasi <= 100.0 { "met" } else { "not met" },
    ));
    record("runtime", &md, &json)
}
