//! The module cache against a real (local-directory) module store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use olin::{Limits, Runtime};
use olin_module_store::ModuleStoreArgs;
use olin_module_store::{StoreError, put_module, sha256_hex};
use olin_worker::module_cache::{ArtifactKey, CacheError, DiskOptions, ModuleCache, SharedOptions};
use sha2::Digest as _;

const HELLO: &[u8] = include_bytes!("../../../examples/hello/hello.wasm");
const ECHO: &[u8] = include_bytes!("../../../examples/echo/echo.wasm");
const EXAMPLES: [&[u8]; 5] = [
    HELLO,
    ECHO,
    include_bytes!("../../../examples/form/form.wasm"),
    include_bytes!("../../../examples/greet/greet.wasm"),
    include_bytes!("../../../examples/fetch/fetch.wasm"),
];

fn runtime() -> Runtime {
    Runtime::new(Limits::MAXIMUM.memory_pages())
}

fn key(k: &str) -> ArtifactKey {
    ArtifactKey::new(k.repeat(32).as_bytes()).unwrap()
}

fn disk(dir: &std::path::Path, budget: u64, k: &str) -> Option<DiskOptions> {
    Some(DiskOptions { dir: dir.to_owned(), budget, key: key(k) })
}

/// The artifact files under a cache directory, with their sizes.
fn artifacts(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            let f = f.unwrap();
            found.push((f.path(), f.metadata().unwrap().len()));
        }
    }
    found
}

fn store(dir: &std::path::Path) -> Arc<dyn object_store::ObjectStore> {
    ModuleStoreArgs::local(dir).open().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_compile_once() {
    let dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let sha = put_module(objects.as_ref(), Bytes::from_static(HELLO)).await.unwrap();
    let cache = Arc::new(ModuleCache::new(Runtime::new(Limits::MAXIMUM.memory_pages()), objects, None, 1 << 30));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (cache, sha) = (cache.clone(), sha.clone());
        tasks.push(tokio::spawn(async move { cache.get(&sha).await.map(|_| ()) }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(cache.counters().compiles.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn missing_invalid_and_evicted_modules() {
    let dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let hello = put_module(objects.as_ref(), Bytes::from_static(HELLO)).await.unwrap();
    let echo = put_module(objects.as_ref(), Bytes::from_static(ECHO)).await.unwrap();
    let garbage = put_module(objects.as_ref(), Bytes::from_static(b"not wasm at all")).await.unwrap();
    // A budget of one byte keeps only the module in use.
    let cache = ModuleCache::new(Runtime::new(Limits::MAXIMUM.memory_pages()), objects, None, 1);

    let missing = sha256_hex(b"never uploaded");
    match cache.get(&missing).await {
        Err(CacheError::Store(StoreError::NotFound { .. })) => {}
        other => panic!("expected NotFound, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(cache.get(&garbage).await, Err(CacheError::Compile { .. })));
    assert!(matches!(cache.get("../../etc/passwd").await, Err(CacheError::Store(StoreError::BadHash { .. }))));

    cache.get(&hello).await.unwrap();
    cache.get(&echo).await.unwrap();
    cache.get(&hello).await.unwrap();
    let c = cache.counters();
    assert_eq!(c.compiles.load(Ordering::Relaxed), 3, "hello was evicted by echo, then compiled again");
    assert_eq!(c.evictions.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_module_that_does_not_compile_is_fetched_once_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let garbage = put_module(objects.as_ref(), Bytes::from_static(b"\0asm\x01\0\0\0\x01\xff")).await.unwrap();
    let cache = ModuleCache::new(runtime(), objects, None, 1 << 30);
    for _ in 0..10 {
        assert!(matches!(cache.get(&garbage).await, Err(CacheError::Compile { .. })));
    }
    let c = cache.counters();
    assert_eq!(c.fetches.load(Ordering::Relaxed), 1, "fetched once, not once per call");
    assert_eq!(c.failures_remembered.load(Ordering::Relaxed), 9);
}

#[tokio::test]
async fn tampered_artifacts_are_rejected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let hello = put_module(objects.as_ref(), Bytes::from_static(HELLO)).await.unwrap();
    let echo = put_module(objects.as_ref(), Bytes::from_static(ECHO)).await.unwrap();
    let open = |k: &str| ModuleCache::new(runtime(), objects.clone(), disk(cache_dir.path(), 1 << 30, k), 1 << 30);
    let counters = |c: &ModuleCache| {
        let c = c.counters();
        (
            c.disk_loads.load(Ordering::Relaxed),
            c.disk_rejected.load(Ordering::Relaxed),
            c.compiles.load(Ordering::Relaxed),
        )
    };
    let first = open("a");
    first.get(&hello).await.unwrap();
    first.get(&echo).await.unwrap();
    let path =
        |sha: &str| artifacts(cache_dir.path()).into_iter().find(|(p, _)| p.ends_with(format!("{sha}.art"))).unwrap().0;
    let good = std::fs::read(path(&hello)).unwrap();

    // Under the same key, the artifact is loaded, not compiled.
    let same = open("a");
    same.get(&hello).await.unwrap();
    assert_eq!(counters(&same), (1, 0, 0));

    // The old format: a plain checksum anyone can compute.
    let payload = &good[40..];
    let mut old = b"OLINART1".to_vec();
    old.extend_from_slice(&sha2::Sha256::digest(payload));
    old.extend_from_slice(payload);
    std::fs::write(path(&hello), &old).unwrap();
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1), "rejected and rebuilt");
    assert_eq!(std::fs::read(path(&hello)).unwrap(), good, "rebuilt under the key");

    // Another module's authentic artifact under this module's name.
    std::fs::copy(path(&echo), path(&hello)).unwrap();
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1), "the MAC binds the module digest");

    // Written under another key.
    let other = open("b");
    other.get(&hello).await.unwrap();
    assert_eq!(counters(&other), (0, 1, 1), "the MAC binds the key");
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1));

    // A flipped byte in the code.
    let mut flipped = std::fs::read(path(&hello)).unwrap();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    std::fs::write(path(&hello), &flipped).unwrap();
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1));
}

#[tokio::test]
async fn the_disk_tier_stays_within_its_budget_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let mut shas = Vec::new();
    for wasm in EXAMPLES {
        shas.push(put_module(objects.as_ref(), Bytes::from_static(wasm)).await.unwrap());
    }
    // Leftovers: another engine's artifacts and an interrupted write.
    std::fs::create_dir_all(cache_dir.path().join("wasmer-0.0.0-old")).unwrap();
    std::fs::write(cache_dir.path().join("wasmer-0.0.0-old/x.art"), b"old").unwrap();

    // Measure what all five take, then give the tier half of it.
    let unbounded = ModuleCache::new(runtime(), objects.clone(), disk(cache_dir.path(), u64::MAX, "a"), 1 << 30);
    for sha in &shas {
        unbounded.get(sha).await.unwrap();
    }
    let all: u64 = artifacts(cache_dir.path()).iter().map(|(_, n)| n).sum();
    assert_eq!(unbounded.disk_bytes(), all);
    assert!(!cache_dir.path().join("wasmer-0.0.0-old").exists(), "another fingerprint's directory was removed");
    let fingerprint_dir = artifacts(cache_dir.path())[0].0.parent().unwrap().to_owned();
    std::fs::write(fingerprint_dir.join(format!("{}.tmp123", shas[0])), b"partial").unwrap();

    let budget = all / 2;
    let bounded = ModuleCache::new(runtime(), objects.clone(), disk(cache_dir.path(), budget, "a"), 1);
    let on_disk = || artifacts(cache_dir.path()).iter().map(|(_, n)| n).sum::<u64>();
    assert!(on_disk() <= budget, "evicted down to the budget at open: {} > {budget}", on_disk());
    assert!(artifacts(cache_dir.path()).iter().all(|(p, _)| p.extension().unwrap() == "art"), "no temporary files");
    // Twice the budget's worth of modules, twice over.
    for _ in 0..2 {
        for sha in &shas {
            bounded.get(sha).await.unwrap();
            assert!(on_disk() <= budget, "{} > {budget}", on_disk());
            assert_eq!(bounded.disk_bytes(), on_disk());
        }
    }
    assert!(bounded.counters().disk_evictions.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn modules_of_an_old_engine_generation_are_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let hello = put_module(objects.as_ref(), Bytes::from_static(HELLO)).await.unwrap();
    let echo = put_module(objects.as_ref(), Bytes::from_static(ECHO)).await.unwrap();
    // Generations of one byte: every load starts a new one.
    let rt = runtime().with_generation_bytes(1);
    let cache = ModuleCache::new(rt.clone(), objects, None, 1 << 30);
    let first = cache.get(&hello).await.unwrap();
    cache.get(&echo).await.unwrap();
    assert!(first.generation() < rt.generation());
    let again = cache.get(&hello).await.unwrap();
    assert_eq!(again.generation(), rt.generation(), "loaded into the current generation");
    let c = cache.counters();
    assert_eq!(c.compiles.load(Ordering::Relaxed), 3);
    assert_eq!(c.memory_hits.load(Ordering::Relaxed), 0, "a stale module is not a hit");
    let hit = cache.get(&hello).await.unwrap();
    assert_eq!(hit.generation(), again.generation());
    assert_eq!(c.memory_hits.load(Ordering::Relaxed), 1);
}

/// Waits until `cache` has shared `n` artifacts (they are written in the
/// background).
async fn shared_stores(cache: &ModuleCache, n: u64) {
    let started = std::time::Instant::now();
    while cache.counters().shared_stores.load(Ordering::Relaxed) < n {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the artifact was not shared");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_artifacts_are_shared_through_the_module_store_and_authenticated() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let objects = store(dir.path());
    let hello = put_module(objects.as_ref(), Bytes::from_static(HELLO)).await.unwrap();
    let shared = |k: &str, max_bytes: u64| SharedOptions { key: key(k), max_bytes };
    let open = |k: &str| ModuleCache::new(runtime(), objects.clone(), None, 1 << 30).with_shared(shared(k, 1 << 30));
    // (loaded from the store's artifact, rejected there, compiled, fetched)
    let counters = |c: &ModuleCache| {
        let c = c.counters();
        (
            c.shared_loads.load(Ordering::Relaxed),
            c.shared_rejected.load(Ordering::Relaxed),
            c.compiles.load(Ordering::Relaxed),
            c.fetches.load(Ordering::Relaxed),
        )
    };

    // The first worker compiles and shares.
    let first = open("a");
    first.get(&hello).await.unwrap();
    assert_eq!(counters(&first), (0, 0, 1, 1));
    shared_stores(&first, 1).await;
    let object = dir.path().join("artifacts").join(runtime().host_fingerprint()).join(format!("{hello}.art"));
    let good = std::fs::read(&object).unwrap();

    // A new worker with the fleet's key loads it: no fetch, no compile,
    // and it runs.
    let rt = runtime();
    let second = ModuleCache::new(rt.clone(), objects.clone(), None, 1 << 30).with_shared(shared("a", 1 << 30));
    let module = second.get(&hello).await.unwrap();
    assert_eq!(counters(&second), (1, 0, 0, 0));
    let request = olin_proto::v1::InvocationRequest { method: "GET".into(), ..Default::default() };
    let ctx = olin::RunContext { worker_id: "w", defaults: &Limits::DEFAULT, maxima: &Limits::MAXIMUM, egress: None };
    let response = rt.run(&module, &request, &ctx);
    assert_eq!(response.status, 200, "{response:?}");
    // It keeps it on disk, too: its next start needs not the store.
    let with_disk = ModuleCache::new(runtime(), objects.clone(), disk(cache_dir.path(), 1 << 30, "a"), 1 << 30)
        .with_shared(shared("a", 1 << 30));
    with_disk.get(&hello).await.unwrap();
    assert_eq!(counters(&with_disk), (1, 0, 0, 0));
    let restarted = ModuleCache::new(runtime(), objects.clone(), disk(cache_dir.path(), 1 << 30, "a"), 1 << 30);
    restarted.get(&hello).await.unwrap();
    assert_eq!(restarted.counters().disk_loads.load(Ordering::Relaxed), 1);

    // Another engine (no metering) has artifacts of its own.
    let unmetered =
        ModuleCache::new(Runtime::without_metering(Limits::MAXIMUM.memory_pages()), objects.clone(), None, 1 << 30)
            .with_shared(shared("a", 1 << 30));
    unmetered.get(&hello).await.unwrap();
    assert_eq!(counters(&unmetered), (0, 0, 1, 1), "a metered artifact is never run unmetered");

    // Larger than a worker takes: not read, compiled.
    let small = ModuleCache::new(runtime(), objects.clone(), None, 1 << 30).with_shared(shared("a", 1024));
    small.get(&hello).await.unwrap();
    assert_eq!(counters(&small), (0, 1, 1, 1));
    // It shares what it compiled, in the background: let that land before
    // the artifact is tampered with below, or it would overwrite the flip.
    shared_stores(&small, 1).await;

    // A flipped byte in the code: never run; compiled and shared again.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    std::fs::write(&object, &flipped).unwrap();
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1, 1));
    shared_stores(&c, 1).await;
    assert_ne!(std::fs::read(&object).unwrap(), flipped, "replaced by an authentic artifact");
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (1, 0, 0, 0));

    // Sealed under another key (a worker outside the fleet, or a writer of
    // the bucket without the key): never run.
    let other = open("b");
    other.get(&hello).await.unwrap();
    assert_eq!(counters(&other), (0, 1, 1, 1), "the MAC binds the key");
    shared_stores(&other, 1).await;
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1, 1));
    shared_stores(&c, 1).await;

    // Another module's authentic artifact under this module's name.
    let echo = put_module(objects.as_ref(), Bytes::from_static(ECHO)).await.unwrap();
    let c = open("a");
    c.get(&echo).await.unwrap();
    shared_stores(&c, 1).await;
    let echo_object = object.with_file_name(format!("{echo}.art"));
    std::fs::copy(&echo_object, &object).unwrap();
    let c = open("a");
    c.get(&hello).await.unwrap();
    assert_eq!(counters(&c), (0, 1, 1, 1), "the MAC binds the module digest");
}
