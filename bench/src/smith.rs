//! A robustness run of the sandbox on generated modules: `wasm-smith` makes
//! modules within the allowed feature set that import olin or WASI host
//! functions under their real types and export `_start` and a memory; each
//! is validated, the accepted ones compiled and run with small limits
//! through the real runtime. What is counted: panics, runs that overstay
//! their wall limit (hangs), outcomes, and the process's resident memory.
//! An abort would end the process: the caller sees it as a failed run.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use bytes::Bytes;
use olin::{Abi, Limits, RunContext, Runtime};
use olin_proto::v1::{EnvVar, InvocationRequest, Limits as ReqLimits};
use rand::{Rng, RngCore, SeedableRng};

/// A run longer than this past its wall limit counts as a hang.
const HANG: Duration = Duration::from_secs(5);

/// What a robustness run saw.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Modules generated.
    pub generated: u64,
    /// Refused by upload validation, by reason (first words of the message).
    pub refused: BTreeMap<String, u64>,
    /// Accepted by validation but not compiled (each is a disagreement
    /// between validation and the engine).
    pub compile_failures: Vec<String>,
    /// Runs by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Runs that panicked, with their seed and index.
    pub panics: Vec<String>,
    /// Runs that overstayed their wall limit by more than [`HANG`].
    pub hangs: Vec<String>,
    /// Largest resident memory seen, bytes.
    pub max_rss: u64,
    /// Resident memory before the first module, bytes.
    pub start_rss: u64,
    /// Longest single run.
    pub slowest: Duration,
    /// Whole run.
    pub elapsed: Duration,
}

impl Report {
    /// Whether nothing went wrong.
    pub fn clean(&self) -> bool {
        self.panics.is_empty() && self.hangs.is_empty() && self.compile_failures.is_empty()
    }

    /// Runs that completed (any outcome).
    pub fn ran(&self) -> u64 {
        self.outcomes.values().sum()
    }
}

/// The limits generated modules run under: small, as a hostile tenant's.
pub fn limits() -> ReqLimits {
    ReqLimits {
        fuel: 5_000_000,
        memory_bytes: 16 << 20,
        wall_ms: 200,
        max_output_bytes: 64 << 10,
        host_budget_bytes: 1 << 20,
    }
}

/// The wasm-smith configuration: the allowed feature set, the host's
/// imports for `abi`, and the exports a module must have.
pub fn config(abi: Abi) -> anyhow::Result<wasm_smith::Config> {
    let imports = wat::parse_str(olin::validate::host_imports_wat(abi))?;
    let exports = wat::parse_str(r#"(module (func (export "_start")) (memory (export "memory") 1))"#)?;
    Ok(wasm_smith::Config {
        available_imports: Some(imports),
        exports: Some(exports),
        max_imports: 16,
        // The exported memory is made in addition to these.
        max_memories: 0,
        max_memory32_bytes: 32 << 20,
        max_tables: 4,
        max_table_elements: 1_000,
        max_funcs: 20,
        max_instructions: 200,
        memory64_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        tail_call_enabled: false,
        relaxed_simd_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        compact_imports_enabled: false,
        simd_enabled: true,
        reference_types_enabled: true,
        bulk_memory_enabled: true,
        multi_value_enabled: true,
        extended_const_enabled: true,
        ..wasm_smith::Config::default()
    })
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Generates and runs `count` modules from `seed`, calling `progress` every
/// 1 000 modules.
///
/// # Errors
/// If the generator cannot be configured.
pub fn run(count: u64, seed: u64, mut progress: impl FnMut(&Report)) -> anyhow::Result<Report> {
    // Small engine generations: the code of modules no longer used is freed
    // within 64 MiB of loads, so resident memory stays flat.
    let runtime = Runtime::new(Limits::MAXIMUM.memory_pages()).with_generation_bytes(64 << 20);
    let configs = [config(Abi::Olin)?, config(Abi::WasiP1)?];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut report = Report { start_rss: rss(), ..Report::default() };
    let limits = limits();
    let wall = Duration::from_millis(limits.wall_ms);
    let mut bytes = vec![0u8; 16 << 10];
    for i in 0..count {
        let len = rng.gen_range(64..bytes.len());
        let input = bytes.get_mut(..len).unwrap_or_default();
        rng.fill_bytes(input);
        let config = configs[(i % 2) as usize].clone();
        let Ok(module) = wasm_smith::Module::new(config, &mut Unstructured::new(input)) else { continue };
        let wasm = module.to_bytes();
        report.generated += 1;
        let tag = format!("seed {seed} module {i}");
        if let Err(err) = olin::validate::validate(&wasm, Limits::MAXIMUM.memory_pages()) {
            let reason: String = err.to_string().split_whitespace().take(4).collect::<Vec<_>>().join(" ");
            *report.refused.entry(reason).or_default() += 1;
            continue;
        }
        let compiled = match runtime.compile(&wasm) {
            Ok((m, _)) => m,
            Err(err) => {
                report.compile_failures.push(format!("{tag}: {err}"));
                continue;
            }
        };
        let req = InvocationRequest {
            invocation_id: format!("smith-{i}"),
            function: "smith".into(),
            method: "POST".into(),
            path: "/x".into(),
            body: Bytes::from_static(b"generated"),
            env: vec![EnvVar::plain("TARGET_URL", "log://")],
            limits: Some(limits),
            ..Default::default()
        };
        let ctx = RunContext { worker_id: "smith", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
        let t = Instant::now();
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.run(&compiled, &req, &ctx)));
        let took = t.elapsed();
        report.slowest = report.slowest.max(took);
        match ran {
            Ok(resp) => *report.outcomes.entry(resp.outcome().header_value().to_owned()).or_default() += 1,
            Err(_) => report.panics.push(tag.clone()),
        }
        if took > wall + HANG {
            report.hangs.push(format!("{tag}: {took:?}"));
        }
        if i % 100 == 0 {
            report.max_rss = report.max_rss.max(rss());
        }
        if i % 1000 == 999 {
            progress(&report);
        }
    }
    report.max_rss = report.max_rss.max(rss());
    report.elapsed = started.elapsed();
    Ok(report)
}
