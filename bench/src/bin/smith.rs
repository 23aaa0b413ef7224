//! The generated-module robustness run (`olin_bench::smith`) at scale:
//! zero panics, zero hangs, bounded resident memory.
//!
//! Run: `cargo run --release -p olin-bench --bin smith [-- COUNT [SEED]]`
//! (default 100 000 modules, seed 1), or `bench/smith.sh`.

use olin_bench::smith::{self, Report};
use olin_bench::{machine, record, today};
use serde_json::{Map, json};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    let report = smith::run(count, seed, |r: &Report| {
        eprintln!(
            "{} generated, {} ran, {} panics, {} hangs, rss {} MiB",
            r.generated,
            r.ran(),
            r.panics.len(),
            r.hangs.len(),
            r.max_rss >> 20
        );
    })?;
    let limits = smith::limits();
    let refused: u64 = report.refused.values().sum();
    let mut md = format!(
        "# Generated-module robustness run\n\n\
         {date}, {machine}. Command: `cargo run --release -p olin-bench --bin smith -- {count} {seed}`.\n\n\
         wasm-smith 0.263 modules within the allowed feature set, importing olin or WASI host functions \
         (alternately) under their real types, exporting `_start` and `memory`; each validated, the \
         accepted compiled and run through `Runtime::run` with fuel {fuel}, memory {mem} MiB, wall {wall} ms, \
         output {out} KiB, host budget {host} KiB.\n\n\
         | what | count |\n|---|---|\n\
         | modules generated | {gen} |\n| refused by validation | {refused} |\n\
         | accepted but not compiled | {cf} |\n| runs | {ran} |\n| panics | {panics} |\n| hangs (wall + 5 s) | {hangs} |\n\n\
         Resident memory: {start} MiB at start, at most {max} MiB. Slowest run: {slow:?}. Whole run: {el:.0?}.\n\n\
         | outcome | runs |\n|---|---|\n",
        date = today(),
        machine = machine(),
        fuel = limits.fuel,
        mem = limits.memory_bytes >> 20,
        wall = limits.wall_ms,
        out = limits.max_output_bytes >> 10,
        host = limits.host_budget_bytes >> 10,
        gen = report.generated,
        cf = report.compile_failures.len(),
        ran = report.ran(),
        panics = report.panics.len(),
        hangs = report.hangs.len(),
        start = report.start_rss >> 20,
        max = report.max_rss >> 20,
        slow = report.slowest,
        el = report.elapsed,
    );
    for (outcome, n) in &report.outcomes {
        md.push_str(&format!("| {outcome} | {n} |\n"));
    }
    md.push_str("\n| refused because | modules |\n|---|---|\n");
    for (why, n) in &report.refused {
        md.push_str(&format!("| {why} ... | {n} |\n"));
    }
    for line in report.panics.iter().chain(&report.hangs).chain(&report.compile_failures) {
        md.push_str(&format!("\n- {line}"));
    }
    let mut m = Map::new();
    m.insert("modules_generated".into(), json!(report.generated));
    m.insert("modules_refused".into(), json!(refused));
    m.insert("compile_failures".into(), json!(report.compile_failures.len()));
    m.insert("runs".into(), json!(report.ran()));
    m.insert("panics".into(), json!(report.panics.len()));
    m.insert("hangs".into(), json!(report.hangs.len()));
    m.insert("rss_start_mib".into(), json!(report.start_rss >> 20));
    m.insert("rss_max_mib".into(), json!(report.max_rss >> 20));
    m.insert("slowest_run_ms".into(), json!(report.slowest.as_millis() as u64));
    m.insert("elapsed_s".into(), json!(report.elapsed.as_secs()));
    record("smith", &md, &m)?;
    anyhow::ensure!(report.clean(), "the run was not clean: see bench/results/smith.md");
    Ok(())
}
