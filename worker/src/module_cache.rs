//! Compiled modules by sha256, in three tiers:
//!
//! 1. memory: an LRU of compiled modules within a byte budget;
//! 2. disk: serialized artifacts under `<dir>/<engine fingerprint>/<sha256>.art`,
//!    each with a checksum, so a restarted worker loads instead of compiling;
//! 3. the module store (S3/B2 or a directory), verified against its sha256
//!    before compiling.
//!
//! Concurrent misses for one module fetch and compile it once. A corrupt or
//! stale artifact is detected by its checksum, deleted and rebuilt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::ObjectStore;
use olin::{CompileError, Module, Runtime};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use crate::module_store::{self, StoreError};

/// First bytes of an artifact file: format tag, then the payload's sha256.
const MAGIC: &[u8; 8] = b"OLINART1";

/// Fetch attempts for a module the store says is missing (stores can lag
/// behind a deploy) before the call is answered `MODULE_UNAVAILABLE`.
const NOT_FOUND_ATTEMPTS: u32 = 3;

/// A module could not be had.
#[derive(Debug, Error)]
pub enum CacheError {
    /// Fetching failed (missing, corrupt, or the store is down).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The module does not compile or breaks the ABI rules.
    #[error("module {sha256} does not compile: {source}")]
    Compile {
        /// The module.
        sha256: String,
        /// Why.
        #[source]
        source: CompileError,
    },
    /// The compile thread died.
    #[error("compiling module {sha256} was aborted")]
    Aborted {
        /// The module.
        sha256: String,
    },
}

impl CacheError {
    /// Whether retrying later (on this or another worker) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, CacheError::Store(StoreError::Backend { .. }) | CacheError::Aborted { .. })
    }
}

/// Where a module came from, counted for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Served from memory.
    pub memory_hits: AtomicU64,
    /// Loaded from a disk artifact.
    pub disk_loads: AtomicU64,
    /// Compiled from the module store's bytes.
    pub compiles: AtomicU64,
    /// Disk artifacts found corrupt or stale and deleted.
    pub disk_rejected: AtomicU64,
    /// Modules evicted from memory.
    pub evictions: AtomicU64,
}

/// A module in memory and what it costs there (its artifact's size).
#[derive(Clone)]
struct Loaded {
    module: Module,
    size: u64,
}

struct Entry {
    cell: Arc<OnceCell<Loaded>>,
    size: u64,
    last_used: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    tick: u64,
    bytes: u64,
}

/// The module cache of one worker.
pub struct ModuleCache {
    runtime: Runtime,
    store: Arc<dyn ObjectStore>,
    disk: Option<PathBuf>,
    budget: u64,
    lru: Mutex<Lru>,
    counters: Arc<CacheCounters>,
}

impl ModuleCache {
    /// A cache over `store`, keeping at most `memory_budget` bytes of
    /// compiled code in memory and, if `disk_dir` is set, artifacts there.
    pub fn new(runtime: Runtime, store: Arc<dyn ObjectStore>, disk_dir: Option<&Path>, memory_budget: u64) -> Self {
        let disk = disk_dir.map(|d| d.join(runtime.fingerprint()));
        if let Some(dir) = &disk
            && let Err(err) = std::fs::create_dir_all(dir)
        {
            warn!(%err, dir = %dir.display(), "artifact cache directory unusable; compiling on every start");
        }
        ModuleCache { runtime, store, disk, budget: memory_budget, lru: Mutex::default(), counters: Arc::default() }
    }

    /// Where modules came from so far.
    pub fn counters(&self) -> Arc<CacheCounters> {
        self.counters.clone()
    }

    /// The compiled module `sha256`: from memory, disk, or the store.
    ///
    /// # Errors
    /// [`CacheError`]; a failure is not cached, so the next call retries.
    pub async fn get(&self, sha256: &str) -> Result<Module, CacheError> {
        let cell = self.cell(sha256);
        if let Some(m) = cell.get() {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(m.module.clone());
        }
        let result = cell.get_or_try_init(|| self.load(sha256)).await.cloned();
        let mut lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(loaded) => {
                if let Some(e) = lru.entries.get_mut(sha256)
                    && Arc::ptr_eq(&e.cell, &cell)
                    && e.size == 0
                {
                    e.size = loaded.size.max(1);
                    lru.bytes += e.size;
                }
                self.evict(&mut lru, sha256);
            }
            Err(_) => {
                if lru.entries.get(sha256).is_some_and(|e| Arc::ptr_eq(&e.cell, &cell) && !cell.initialized()) {
                    lru.entries.remove(sha256);
                }
            }
        }
        result.map(|l| l.module)
    }

    /// Loads a module into memory ahead of its first call (deploy prewarm).
    ///
    /// # Errors
    /// As [`ModuleCache::get`].
    pub async fn prewarm(&self, sha256: &str) -> Result<(), CacheError> {
        self.get(sha256).await.map(|_| ())
    }

    fn cell(&self, sha256: &str) -> Arc<OnceCell<Loaded>> {
        let mut lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        lru.tick += 1;
        let tick = lru.tick;
        let entry = lru.entries.entry(sha256.to_owned()).or_insert_with(|| Entry {
            cell: Arc::default(),
            size: 0,
            last_used: tick,
        });
        entry.last_used = tick;
        entry.cell.clone()
    }

    fn evict(&self, lru: &mut Lru, keep: &str) {
        while lru.bytes > self.budget {
            let victim = lru
                .entries
                .iter()
                .filter(|(k, e)| k.as_str() != keep && e.cell.initialized())
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(e) = lru.entries.remove(&victim) {
                lru.bytes = lru.bytes.saturating_sub(e.size);
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                debug!(module = %victim, "evicted from memory");
            }
        }
    }

    fn artifact_path(&self, sha256: &str) -> Option<PathBuf> {
        self.disk.as_ref().map(|d| d.join(format!("{sha256}.art")))
    }

    async fn load(&self, sha256: &str) -> Result<Loaded, CacheError> {
        if !module_store::is_sha256_hex(sha256) {
            return Err(StoreError::BadHash { sha256: sha256.to_owned() }.into());
        }
        if let Some(path) = self.artifact_path(sha256) {
            let runtime = self.runtime.clone();
            let loaded = tokio::task::spawn_blocking(move || load_artifact(&runtime, &path)).await;
            match loaded {
                Ok(ArtifactLoad::Loaded(loaded)) => {
                    self.counters.disk_loads.fetch_add(1, Ordering::Relaxed);
                    return Ok(loaded);
                }
                Ok(ArtifactLoad::Rejected(why)) => {
                    self.counters.disk_rejected.fetch_add(1, Ordering::Relaxed);
                    warn!(module = sha256, why, "disk artifact rejected and deleted; recompiling");
                }
                Ok(ArtifactLoad::Missing) | Err(_) => {}
            }
        }
        let wasm = self.fetch(sha256).await?;
        let runtime = self.runtime.clone();
        let path = self.artifact_path(sha256);
        let owned = sha256.to_owned();
        let compiled = tokio::task::spawn_blocking(move || {
            let (module, artifact) = runtime.compile(&wasm)?;
            if let Some(path) = path
                && let Err(err) = store_artifact(&path, &artifact)
            {
                warn!(%err, module = %owned, "could not write the disk artifact");
            }
            Ok::<_, CompileError>(Loaded { module, size: artifact.len() as u64 })
        })
        .await
        .map_err(|_| CacheError::Aborted { sha256: sha256.to_owned() })?
        .map_err(|source| CacheError::Compile { sha256: sha256.to_owned(), source })?;
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
        info!(module = sha256, "compiled");
        Ok(compiled)
    }

    async fn fetch(&self, sha256: &str) -> Result<Bytes, StoreError> {
        let mut attempt = 1;
        loop {
            match module_store::get_module(self.store.as_ref(), sha256).await {
                Err(StoreError::NotFound { .. }) if attempt < NOT_FOUND_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

enum ArtifactLoad {
    Loaded(Loaded),
    Missing,
    Rejected(&'static str),
}

fn load_artifact(runtime: &Runtime, path: &Path) -> ArtifactLoad {
    let Ok(file) = std::fs::read(path) else { return ArtifactLoad::Missing };
    let reject = |why| {
        let _ = std::fs::remove_file(path);
        ArtifactLoad::Rejected(why)
    };
    let Some((head, payload)) = file.split_at_checked(MAGIC.len() + 32) else { return reject("truncated") };
    let (magic, sum) = head.split_at(MAGIC.len());
    if magic != MAGIC {
        return reject("unknown format");
    }
    if Sha256::digest(payload).as_slice() != sum {
        return reject("checksum mismatch");
    }
    // SAFETY: the payload is byte-for-byte what `Runtime::compile` serialized
    // under this engine fingerprint: its checksum matches and its directory
    // is keyed by the fingerprint.
    match unsafe { runtime.load(payload) } {
        Ok(module) => ArtifactLoad::Loaded(Loaded { module, size: payload.len() as u64 }),
        Err(_) => reject("does not deserialize"),
    }
}

fn store_artifact(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
    let mut data = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&Sha256::digest(artifact));
    data.extend_from_slice(artifact);
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
