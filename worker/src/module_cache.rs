//! Compiled modules by sha256, in three tiers:
//!
//! 1. memory: an LRU of compiled modules within a byte budget;
//! 2. disk: serialized artifacts under `<dir>/<engine fingerprint>/<sha256>.art`
//!    within a byte budget (least recently used evicted), so a restarted
//!    worker loads instead of compiling;
//! 3. shared artifacts in the module store, written by whichever worker of
//!    the fleet compiled the module first, under
//!    `artifacts/<engine fingerprint + CPU features>/<sha256>.art`, so a new
//!    worker serves a known module without compiling it (only with a
//!    configured key, the same on every worker: see below);
//! 4. the module itself in the module store (S3/B2 or a directory),
//!    verified against its sha256 before compiling.
//!
//! Concurrent misses for one module fetch and compile it once. A module that
//! does not compile is remembered for [`FAILURE_WINDOW`]: calls in that time
//! are answered at once, without fetching or compiling again.
//!
//! An artifact is native code the worker will run, so the disk tier trusts
//! nothing on disk: each file carries an HMAC-SHA256, under a key from the
//! worker's configuration, over the engine fingerprint, the module digest
//! and the payload. A file whose MAC does not verify (tampered, written
//! under another key, another module's artifact renamed, the old unkeyed
//! format) is deleted and rebuilt. At start, directories of other engine
//! fingerprints and temporary files of interrupted writes are removed.
//! Shared artifacts are sealed the same way; one that does not verify is
//! never run, the module is compiled and its artifact written over it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use object_store::ObjectStore;
use olin::{CompileError, Module, Runtime};
use parking_lot::Mutex;
use sha2::Sha256;
use thiserror::Error;
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use olin_module_store::{self as module_store, StoreError};

/// First bytes of an artifact file: format tag, then the payload's MAC.
const MAGIC: &[u8; 8] = b"OLINART2";

/// Bytes of the MAC after the magic.
const MAC_LEN: usize = 32;

/// Fetch attempts for a module the store says is missing (stores can lag
/// behind a deploy) before the call is answered `MODULE_UNAVAILABLE`.
const NOT_FOUND_ATTEMPTS: u32 = 3;

/// How long a module that failed to compile is answered from memory.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Most compile failures remembered at once (the oldest is forgotten first).
const MAX_FAILURES: usize = 4096;

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
    /// Fetched from the module store.
    pub fetches: AtomicU64,
    /// Compiled from the module store's bytes.
    pub compiles: AtomicU64,
    /// Calls answered from a remembered compile failure.
    pub failures_remembered: AtomicU64,
    /// Disk artifacts found corrupt, unauthenticated or stale and deleted.
    pub disk_rejected: AtomicU64,
    /// Modules evicted from memory.
    pub evictions: AtomicU64,
    /// Artifacts evicted from disk.
    pub disk_evictions: AtomicU64,
    /// Loaded from an artifact shared through the module store.
    pub shared_loads: AtomicU64,
    /// Shared artifacts that were too large, did not verify or did not
    /// deserialize (never run).
    pub shared_rejected: AtomicU64,
    /// Artifacts written to the module store for the fleet.
    pub shared_stores: AtomicU64,
}

/// An artifact cache key too short to authenticate anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the artifact cache key must be at least {} bytes, not {len}", ArtifactKey::MIN_LEN)]
pub struct ShortKey {
    /// The key's length.
    pub len: usize,
}

/// The key that authenticates disk artifacts (an HMAC-SHA256 keyed with it).
#[derive(Clone)]
pub struct ArtifactKey(Hmac<Sha256>);

impl ArtifactKey {
    /// Shortest accepted key.
    pub const MIN_LEN: usize = 32;

    /// A key from configuration.
    ///
    /// # Errors
    /// [`ShortKey`] if the key is shorter than [`ArtifactKey::MIN_LEN`] bytes.
    pub fn new(key: &[u8]) -> Result<Self, ShortKey> {
        if key.len() < Self::MIN_LEN {
            return Err(ShortKey { len: key.len() });
        }
        // HMAC takes a key of any length; the check above is ours.
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).map(ArtifactKey).map_err(|_| ShortKey { len: key.len() })
    }

    /// A random key, for a worker configured without one: its artifacts are
    /// not reused after a restart.
    ///
    /// # Errors
    /// As [`ArtifactKey::new`] (never, for 32 random bytes).
    pub fn random() -> Result<Self, ShortKey> {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Self::new(&key)
    }

    /// The MAC of one artifact: bound to the engine fingerprint (which names
    /// the metering mode) and the module's digest, then the payload.
    fn mac(&self, fingerprint: &str, sha256: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        for part in [fingerprint.as_bytes(), sha256.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.update(payload);
        mac
    }
}

/// Where and how the disk tier keeps artifacts.
#[derive(Clone)]
pub struct DiskOptions {
    /// The cache directory (artifacts go under a subdirectory per engine fingerprint).
    pub dir: PathBuf,
    /// Most bytes of artifacts kept.
    pub budget: u64,
    /// Authenticates artifacts.
    pub key: ArtifactKey,
}

/// How artifacts are shared with the fleet through the module store.
#[derive(Clone)]
pub struct SharedOptions {
    /// Authenticates shared artifacts: the same key on every worker.
    pub key: ArtifactKey,
    /// The largest shared artifact fetched, in bytes.
    pub max_bytes: u64,
}

/// The shared tier: its options and the fingerprint its objects are under.
struct Shared {
    key: ArtifactKey,
    max_bytes: u64,
    fingerprint: String,
}

/// An artifact as stored: [`MAGIC`], its MAC under `key` (over the engine
/// fingerprint, the module digest and the payload), the payload.
fn seal(key: &ArtifactKey, fingerprint: &str, sha256: &str, artifact: &[u8]) -> Vec<u8> {
    let tag = key.mac(fingerprint, sha256, artifact).finalize().into_bytes();
    let mut data = Vec::with_capacity(MAGIC.len() + MAC_LEN + artifact.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&tag);
    data.extend_from_slice(artifact);
    data
}

/// The payload of a sealed artifact, if it authenticates; else why not.
fn unseal<'a>(key: &ArtifactKey, fingerprint: &str, sha256: &str, data: &'a [u8]) -> Result<&'a [u8], &'static str> {
    let (head, payload) = data.split_at_checked(MAGIC.len() + MAC_LEN).ok_or("truncated")?;
    let (magic, tag) = head.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err("unknown format");
    }
    if key.mac(fingerprint, sha256, payload).verify_slice(tag).is_err() {
        return Err("its MAC does not verify");
    }
    Ok(payload)
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

/// The artifacts on disk: size and last use of each, and their total.
struct Disk {
    dir: PathBuf,
    budget: u64,
    key: ArtifactKey,
    fingerprint: String,
    files: Mutex<DiskIndex>,
}

#[derive(Default)]
struct DiskIndex {
    files: HashMap<String, (u64, SystemTime)>,
    bytes: u64,
}

/// The module cache of one worker.
pub struct ModuleCache {
    runtime: Runtime,
    store: Arc<dyn ObjectStore>,
    disk: Option<Arc<Disk>>,
    shared: Option<Arc<Shared>>,
    budget: u64,
    lru: Mutex<Lru>,
    /// Modules that failed to compile, with when, within [`FAILURE_WINDOW`].
    failures: Mutex<HashMap<String, (Instant, CompileError)>>,
    counters: Arc<CacheCounters>,
}

impl ModuleCache {
    /// A cache over `store`, keeping at most `memory_budget` bytes of
    /// compiled code in memory and, with `disk`, artifacts there. Opening
    /// the disk tier cleans it (stale fingerprints, temporary files) and
    /// reads what it holds, so call this from a blocking context or at start.
    pub fn new(runtime: Runtime, store: Arc<dyn ObjectStore>, disk: Option<DiskOptions>, memory_budget: u64) -> Self {
        let disk = disk.and_then(|d| Disk::open(d, runtime.fingerprint()).map(Arc::new));
        ModuleCache {
            runtime,
            store,
            disk,
            shared: None,
            budget: memory_budget,
            lru: Mutex::default(),
            failures: Mutex::default(),
            counters: Arc::default(),
        }
    }

    /// Shares compiled artifacts with the fleet through the module store:
    /// loads what another worker compiled, and writes what this one
    /// compiles (in the background, best effort).
    #[must_use]
    pub fn with_shared(mut self, options: SharedOptions) -> Self {
        let fingerprint = self.runtime.host_fingerprint();
        self.shared = Some(Arc::new(Shared { key: options.key, max_bytes: options.max_bytes, fingerprint }));
        self
    }

    /// Bytes of artifacts on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.index().bytes)
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
        let mut cell = self.cell(sha256);
        // A module of an older engine generation is loaded again into the
        // current one, so the old generation's code can be freed.
        if cell.get().is_some_and(|m| m.module.generation() != self.runtime.generation()) {
            self.forget(sha256, &cell);
            cell = self.cell(sha256);
        }
        if let Some(m) = cell.get() {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(m.module.clone());
        }
        if let Some(source) = self.remembered_failure(sha256) {
            self.counters.failures_remembered.fetch_add(1, Ordering::Relaxed);
            return Err(CacheError::Compile { sha256: sha256.to_owned(), source });
        }
        let result = cell.get_or_try_init(|| self.load(sha256)).await.cloned();
        let mut lru = self.lru.lock();
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
            Err(err) => {
                if lru.entries.get(sha256).is_some_and(|e| Arc::ptr_eq(&e.cell, &cell) && !cell.initialized()) {
                    lru.entries.remove(sha256);
                }
                if let CacheError::Compile { source, .. } = err {
                    self.remember_failure(sha256, source.clone());
                }
            }
        }
        result.map(|l| l.module)
    }

    /// Drops the memory entry of `sha256` if it is still `cell`.
    fn forget(&self, sha256: &str, cell: &Arc<OnceCell<Loaded>>) {
        let mut lru = self.lru.lock();
        if lru.entries.get(sha256).is_some_and(|e| Arc::ptr_eq(&e.cell, cell))
            && let Some(e) = lru.entries.remove(sha256)
        {
            lru.bytes = lru.bytes.saturating_sub(e.size);
        }
    }

    fn remembered_failure(&self, sha256: &str) -> Option<CompileError> {
        let mut failures = self.failures.lock();
        match failures.get(sha256) {
            Some((at, err)) if at.elapsed() < FAILURE_WINDOW => Some(err.clone()),
            Some(_) => {
                failures.remove(sha256);
                None
            }
            None => None,
        }
    }

    fn remember_failure(&self, sha256: &str, err: CompileError) {
        let mut failures = self.failures.lock();
        failures.retain(|_, (at, _)| at.elapsed() < FAILURE_WINDOW);
        if failures.len() >= MAX_FAILURES
            && let Some(oldest) = failures.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone())
        {
            failures.remove(&oldest);
        }
        failures.insert(sha256.to_owned(), (Instant::now(), err));
    }

    /// Loads a module into memory ahead of its first call (deploy prewarm).
    ///
    /// # Errors
    /// As [`ModuleCache::get`].
    pub async fn prewarm(&self, sha256: &str) -> Result<(), CacheError> {
        self.get(sha256).await.map(|_| ())
    }

    fn cell(&self, sha256: &str) -> Arc<OnceCell<Loaded>> {
        let mut lru = self.lru.lock();
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

    async fn load(&self, sha256: &str) -> Result<Loaded, CacheError> {
        if !module_store::is_sha256_hex(sha256) {
            return Err(StoreError::BadHash { sha256: sha256.to_owned() }.into());
        }
        if let Some(disk) = self.disk.clone() {
            let (runtime, owned) = (self.runtime.clone(), sha256.to_owned());
            let loaded = tokio::task::spawn_blocking(move || disk.load(&runtime, &owned)).await;
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
        if let Some(shared) = self.shared.clone()
            && let Some(loaded) = self.load_shared(&shared, sha256).await
        {
            return Ok(loaded);
        }
        let wasm = self.fetch(sha256).await?;
        let runtime = self.runtime.clone();
        let (disk, counters) = (self.disk.clone(), self.counters.clone());
        let owned = sha256.to_owned();
        let (compiled, artifact) = tokio::task::spawn_blocking(move || {
            let (module, artifact) = runtime.compile(&wasm)?;
            if let Some(disk) = disk {
                store_on_disk(&disk, &counters, &owned, &artifact);
            }
            Ok::<_, CompileError>((Loaded { module, size: artifact.len() as u64 }, artifact))
        })
        .await
        .map_err(|_| CacheError::Aborted { sha256: sha256.to_owned() })?
        .map_err(|source| CacheError::Compile { sha256: sha256.to_owned(), source })?;
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
        info!(module = sha256, "compiled");
        if let Some(shared) = self.shared.clone() {
            let (store, counters, owned) = (self.store.clone(), self.counters.clone(), sha256.to_owned());
            // Detached: the call does not wait for the upload, and a worker
            // stopping meanwhile only leaves the next one to compile.
            tokio::spawn(async move {
                let sealed = seal(&shared.key, &shared.fingerprint, &owned, &artifact);
                let put = module_store::put_artifact(store.as_ref(), &shared.fingerprint, &owned, sealed.into());
                match put.await {
                    Ok(()) => {
                        counters.shared_stores.fetch_add(1, Ordering::Relaxed);
                        debug!(module = %owned, "artifact shared with the fleet");
                    }
                    Err(err) => warn!(%err, module = %owned, "could not share the compiled artifact"),
                }
            });
        }
        Ok(compiled)
    }

    /// The module from the artifact another worker shared, if there is one
    /// that authenticates and deserializes (then kept on disk too).
    async fn load_shared(&self, shared: &Arc<Shared>, sha256: &str) -> Option<Loaded> {
        let data = match module_store::get_artifact(self.store.as_ref(), &shared.fingerprint, sha256, shared.max_bytes)
            .await
        {
            Ok(Some(data)) => data,
            Ok(None) => return None,
            Err(err @ StoreError::TooLarge { .. }) => {
                self.counters.shared_rejected.fetch_add(1, Ordering::Relaxed);
                warn!(%err, module = sha256, "shared artifact rejected; compiling");
                return None;
            }
            Err(err) => {
                warn!(%err, module = sha256, "shared artifact unavailable; compiling");
                return None;
            }
        };
        let (runtime, disk, counters) = (self.runtime.clone(), self.disk.clone(), self.counters.clone());
        let (shared, owned) = (shared.clone(), sha256.to_owned());
        let loaded = tokio::task::spawn_blocking(move || {
            let payload = unseal(&shared.key, &shared.fingerprint, &owned, &data)?;
            // SAFETY: the payload is byte-for-byte what `Runtime::compile`
            // serialized for this module under this engine fingerprint and
            // these CPU features: its MAC, under the fleet's key, covers all.
            let module = unsafe { runtime.load(payload) }.map_err(|_| "it does not deserialize")?;
            if let Some(disk) = disk {
                store_on_disk(&disk, &counters, &owned, payload);
            }
            Ok::<_, &'static str>(Loaded { module, size: payload.len() as u64 })
        })
        .await;
        match loaded {
            Ok(Ok(loaded)) => {
                self.counters.shared_loads.fetch_add(1, Ordering::Relaxed);
                Some(loaded)
            }
            Ok(Err(why)) => {
                self.counters.shared_rejected.fetch_add(1, Ordering::Relaxed);
                warn!(module = sha256, why, "shared artifact rejected; compiling and sharing a new one");
                None
            }
            Err(_) => None,
        }
    }

    async fn fetch(&self, sha256: &str) -> Result<Bytes, StoreError> {
        let mut attempt = 1;
        loop {
            self.counters.fetches.fetch_add(1, Ordering::Relaxed);
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

/// Writes an artifact to the disk tier, counting what that evicted.
fn store_on_disk(disk: &Disk, counters: &CacheCounters, sha256: &str, artifact: &[u8]) {
    match disk.store(sha256, artifact) {
        Ok(evicted) => {
            counters.disk_evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        Err(err) => warn!(%err, module = %sha256, "could not write the disk artifact"),
    }
}

enum ArtifactLoad {
    Loaded(Loaded),
    Missing,
    Rejected(&'static str),
}

impl Disk {
    /// Opens the tier: creates `<dir>/<fingerprint>`, removes other
    /// fingerprints' directories and leftover temporary files, and indexes
    /// the artifacts there (evicting down to the budget). `None` if the
    /// directory is unusable: the worker then compiles on every start.
    fn open(options: DiskOptions, fingerprint: String) -> Option<Disk> {
        let dir = options.dir.join(&fingerprint);
        if let Err(err) = std::fs::create_dir_all(&dir) {
            warn!(%err, dir = %dir.display(), "artifact cache directory unusable; compiling on every start");
            return None;
        }
        if let Ok(entries) = std::fs::read_dir(&options.dir) {
            for stale in entries.flatten().filter(|e| e.file_name().to_str() != Some(fingerprint.as_str())) {
                let path = stale.path();
                let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                match removed {
                    Ok(()) => info!(path = %path.display(), "removed a stale artifact cache entry"),
                    Err(err) => warn!(%err, path = %path.display(), "cannot remove a stale artifact cache entry"),
                }
            }
        }
        let mut index = DiskIndex::default();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let sha = name.to_str().and_then(|n| n.strip_suffix(".art")).filter(|s| module_store::is_sha256_hex(s));
            let meta = entry.metadata().ok().filter(std::fs::Metadata::is_file);
            match (sha, meta) {
                (Some(sha), Some(meta)) => {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    index.bytes += meta.len();
                    index.files.insert(sha.to_owned(), (meta.len(), used));
                }
                // Temporary files of interrupted writes, and anything else.
                _ => {
                    let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                }
            }
        }
        let disk = Disk { dir, budget: options.budget, key: options.key, fingerprint, files: Mutex::new(index) };
        disk.evict(None);
        Some(disk)
    }

    fn index(&self) -> parking_lot::MutexGuard<'_, DiskIndex> {
        self.files.lock()
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.art"))
    }

    /// Loads the artifact of `sha256`, if there is one that authenticates.
    fn load(&self, runtime: &Runtime, sha256: &str) -> ArtifactLoad {
        let path = self.path(sha256);
        let Ok(file) = std::fs::read(&path) else { return ArtifactLoad::Missing };
        let reject = |why| {
            let _ = std::fs::remove_file(&path);
            self.forget(sha256);
            ArtifactLoad::Rejected(why)
        };
        let payload = match unseal(&self.key, &self.fingerprint, sha256, &file) {
            Ok(payload) => payload,
            Err(why) => return reject(why),
        };
        // SAFETY: the payload is byte-for-byte what `Runtime::compile`
        // serialized for this module under this engine fingerprint: its MAC,
        // under the worker's own key, covers all three.
        match unsafe { runtime.load(payload) } {
            Ok(module) => {
                let now = SystemTime::now();
                if let Some(entry) = self.index().files.get_mut(sha256) {
                    entry.1 = now;
                }
                // Last use survives a restart as the file's mtime.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(now);
                }
                ArtifactLoad::Loaded(Loaded { module, size: payload.len() as u64 })
            }
            Err(_) => reject("does not deserialize"),
        }
    }

    /// Writes the artifact of `sha256` (atomically), then evicts the least
    /// recently used others down to the budget; returns how many it evicted.
    fn store(&self, sha256: &str, artifact: &[u8]) -> std::io::Result<u64> {
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
        let data = seal(&self.key, &self.fingerprint, sha256, artifact);
        std::fs::write(&tmp, &data)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        let size = data.len() as u64;
        {
            let mut index = self.index();
            if let Some((old, _)) = index.files.insert(sha256.to_owned(), (size, SystemTime::now())) {
                index.bytes = index.bytes.saturating_sub(old);
            }
            index.bytes += size;
        }
        Ok(self.evict(Some(sha256)))
    }

    fn forget(&self, sha256: &str) {
        let mut index = self.index();
        if let Some((size, _)) = index.files.remove(sha256) {
            index.bytes = index.bytes.saturating_sub(size);
        }
    }

    /// Deletes the least recently used artifacts (never `keep`) until the
    /// total is within the budget; returns how many.
    fn evict(&self, keep: Option<&str>) -> u64 {
        let mut evicted = 0;
        loop {
            let victim = {
                let index = self.index();
                if index.bytes <= self.budget {
                    return evicted;
                }
                index
                    .files
                    .iter()
                    .filter(|(k, _)| Some(k.as_str()) != keep)
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
            };
            let Some(victim) = victim else { return evicted };
            let _ = std::fs::remove_file(self.path(&victim));
            self.forget(&victim);
            evicted += 1;
            debug!(module = %victim, "artifact evicted from disk");
        }
    }
}
