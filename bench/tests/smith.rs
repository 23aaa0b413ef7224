//! The generated-module robustness run, at CI size: a few thousand
//! wasm-smith modules through the real runtime with zero panics, hangs or
//! engine disagreements, and bounded resident memory (`bench/smith.sh`
//! runs 100 000).

use olin_bench::smith;

#[test]
fn generated_modules_never_panic_hang_or_grow_the_process() {
    let count = std::env::var("OLIN_SMITH_COUNT").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000);
    let report = smith::run(count, 7, |_| {}).expect("the generator is configured");
    println!("{report:#?}");
    assert!(report.clean(), "{report:#?}");
    assert!(report.ran() > count / 2, "most generated modules are accepted and run: {report:#?}");
    let grown = report.max_rss.saturating_sub(report.start_rss);
    assert!(grown < 512 << 20, "resident memory grew by {} MiB", grown >> 20);
}
