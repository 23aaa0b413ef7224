//! Compiled modules by sha256: an in-memory map in front of the module store.
//! Concurrent misses for one module fetch and compile it once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use olin::{CompileError, Module, Runtime};
use thiserror::Error;
use tokio::sync::OnceCell;

use crate::module_store::{self, StoreError};

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
        matches!(
            self,
            CacheError::Store(StoreError::Backend { .. }) | CacheError::Aborted { .. }
        )
    }
}

/// The module cache of one worker.
pub struct ModuleCache {
    runtime: Runtime,
    store: Arc<dyn ObjectStore>,
    entries: Mutex<HashMap<String, Arc<OnceCell<Module>>>>,
    compiles: AtomicU64,
}

impl ModuleCache {
    /// An empty cache over `store`.
    pub fn new(runtime: Runtime, store: Arc<dyn ObjectStore>) -> Self {
        ModuleCache {
            runtime,
            store,
            entries: Mutex::default(),
            compiles: AtomicU64::new(0),
        }
    }

    /// How many modules this cache has compiled.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// The compiled module `sha256`, fetched and compiled on first use.
    ///
    /// # Errors
    /// [`CacheError`]; a failure is not cached, so the next call retries.
    pub async fn get(&self, sha256: &str) -> Result<Module, CacheError> {
        let cell = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.entry(sha256.to_owned()).or_default().clone()
        };
        let result = cell
            .get_or_try_init(|| async {
                let wasm = module_store::get_module(self.store.as_ref(), sha256).await?;
                let runtime = self.runtime.clone();
                let compiled = tokio::task::spawn_blocking(move || runtime.compile(&wasm))
                    .await
                    .map_err(|_| CacheError::Aborted {
                        sha256: sha256.to_owned(),
                    })?
                    .map_err(|source| CacheError::Compile {
                        sha256: sha256.to_owned(),
                        source,
                    })?;
                self.compiles.fetch_add(1, Ordering::Relaxed);
                Ok::<_, CacheError>(compiled.0)
            })
            .await
            .cloned();
        if result.is_err() {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries
                .get(sha256)
                .is_some_and(|c| Arc::ptr_eq(c, &cell) && !c.initialized())
            {
                entries.remove(sha256);
            }
        }
        result
    }
}
