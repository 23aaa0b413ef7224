//! Pooled linear memories: a call never sees a byte of an earlier call's
//! memory, nor any of it past its own memory's size, whichever way the
//! region was cleaned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;

use olin::{Limits, Module, PoolConfig, RunContext, Runtime};
use olin_proto::v1::{InvocationRequest, Outcome};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../test-support/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap()
}

fn call(rt: &Runtime, module: &Module, query: &str) -> (Outcome, String) {
    let req = InvocationRequest {
        invocation_id: "p".into(),
        function: "scribble".into(),
        method: "GET".into(),
        query: query.into(),
        ..Default::default()
    };
    let ctx = RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    let r = rt.run(module, &req, &ctx);
    (r.outcome(), String::from_utf8_lossy(&r.body).into_owned())
}

/// One free region, so every call reuses the previous call's memory.
fn runtime(keep_resident_bytes: usize) -> Runtime {
    Runtime::with_pool(Limits::MAXIMUM.memory_pages(), Some(PoolConfig { max_free: 1, keep_resident_bytes }))
}

#[test]
fn a_guest_sees_only_zeros_and_its_own_data_after_a_call_that_filled_memory() {
    // Filled to 8 pages (512 KiB, cleaned by zeroing the touched pages) and
    // to 40 pages (2.5 MiB, above what is kept resident: handed back to the
    // kernel); and with nothing kept resident at all.
    for (keep, fills) in [(1 << 20, ["f02", "f08", "f40"]), (0, ["f02", "f08", "f40"])] {
        let rt = runtime(keep);
        let (module, _) = rt.compile(&fixture("scribble.wat")).unwrap();
        for fill in fills {
            let (outcome, body) = call(&rt, &module, fill);
            assert_eq!(outcome, Outcome::Ok);
            assert_eq!(body, "clean\n", "before {fill}");
            let (outcome, body) = call(&rt, &module, "");
            assert_eq!(outcome, Outcome::Ok);
            assert_eq!(body, "clean\n", "after {fill}: a byte of the previous call, or a page too many");
        }
        let stats = rt.pool_stats().unwrap();
        assert_eq!(stats.reserved.load(Ordering::Relaxed), 1, "one region served every call");
        assert_eq!(stats.reused.load(Ordering::Relaxed), 5);
        let (zeroed, discarded) = (stats.zeroed.load(Ordering::Relaxed), stats.discarded.load(Ordering::Relaxed));
        if keep == 0 {
            assert_eq!((zeroed, discarded), (0, 6));
        } else {
            assert_eq!(discarded, 1, "only the 40-page memory is handed back");
            assert_eq!(zeroed, 5);
        }
    }
}

#[test]
fn memory_past_a_guests_size_traps_though_an_earlier_call_used_it() {
    let rt = runtime(1 << 20);
    let (scribble, _) = rt.compile(&fixture("scribble.wat")).unwrap();
    let (peek, _) = rt.compile(&fixture("peek.wat")).unwrap();
    assert_eq!(call(&rt, &scribble, "f08").1, "clean\n");
    let (outcome, _) = call(&rt, &peek, "");
    assert_eq!(outcome, Outcome::GuestError, "a load past the memory's one page traps");
    assert_eq!(rt.pool_stats().unwrap().reused.load(Ordering::Relaxed), 1);
    // And the region still serves a clean call.
    assert_eq!(call(&rt, &scribble, "").1, "clean\n");
}

#[test]
fn without_a_pool_every_call_maps_its_own_memory() {
    let rt = Runtime::with_pool(Limits::MAXIMUM.memory_pages(), None);
    let (module, _) = rt.compile(&fixture("scribble.wat")).unwrap();
    assert_eq!(call(&rt, &module, "f08").1, "clean\n");
    assert_eq!(call(&rt, &module, "").1, "clean\n");
    assert!(rt.pool_stats().is_none());
}
