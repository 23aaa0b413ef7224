//! The module cache against a real (local-directory) module store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use olin::{Limits, Runtime};
use olin_worker::ModuleStoreArgs;
use olin_worker::module_cache::{CacheError, ModuleCache};
use olin_worker::module_store::{StoreError, put_module, sha256_hex};

const HELLO: &[u8] = include_bytes!("../../examples/hello/hello.wasm");
const ECHO: &[u8] = include_bytes!("../../examples/echo/echo.wasm");

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
