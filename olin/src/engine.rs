//! The one long-lived Wasmer engine of a process, compilation with metering,
//! and serialized artifacts.
//!
//! Each compile gets a fresh cranelift config with its own `Metering`
//! middleware (one `Metering` instance serves one module). The compiled module
//! is serialized and loaded into the shared headless engine, so every module
//! runs from one engine whose [`LimitingTunables`] cap each instance's memory.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use olin_proto::v1::Abi;
use parking_lot::Mutex;
use thiserror::Error;
use wasmer::sys::vm::{VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition};
use wasmer::sys::{BaseTunables, CompilerConfig, Cranelift, EngineBuilder, NativeEngineExt, Tunables};
use wasmer::{Engine, ExternType, MemoryError, MemoryStyle, MemoryType, Pages, TableStyle, TableType};
use wasmer_middlewares::Metering;

use crate::interrupt::Interrupt;
use crate::pool::{MemoryPool, PoolConfig, PoolStats, PooledMemory};
use crate::validate::{self, MAX_TABLE_ELEMENTS, START_EXPORT};
use crate::{abi, features, start, wasi};

/// Fuel compiled into a module: none. Every call sets its own fuel before
/// any guest code runs (a start section is hoisted into an export, see
/// `start`), so code that ran before that would trap at once.
const INITIAL_FUEL: u64 = 0;

/// Changes whenever artifacts built by this crate stop being loadable by it
/// (metering cost function, tunables, import conventions, feature set).
const ARTIFACT_FORMAT: u32 = 3;

/// Why a module cannot be compiled or loaded.
#[derive(Debug, Clone, Error)]
pub enum CompileError {
    /// The bytes are not a valid WebAssembly module.
    #[error("invalid WebAssembly module: {0}")]
    Invalid(String),
    /// The module imports something neither ABI provides.
    #[error(
        "unsupported import {module}::{name}: modules may import only olin functions from `env`/`cwa` or WASI preview1 functions from `wasi_snapshot_preview1`"
    )]
    UnsupportedImport {
        /// Import namespace.
        module: String,
        /// Import name.
        name: String,
    },
    /// The module imports from both ABIs.
    #[error("the module imports both the olin ABI and WASI preview1; use one")]
    MixedAbi,
    /// No `_start` function of type `() -> ()` is exported.
    #[error("the module does not export a `_start` function of type () -> ()")]
    NoStart,
    /// An import has another type than the host function of that name.
    #[error("import {module}::{name} has type {found}, but the host function is {expected}")]
    ImportSignature {
        /// Import namespace.
        module: String,
        /// Import name.
        name: String,
        /// The host function's type.
        expected: String,
        /// The type the module declares.
        found: String,
    },
    /// More imports than a module may declare.
    #[error("the module declares {count} imports; at most {max} are allowed")]
    TooManyImports {
        /// Imports declared.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// An export under a name the runtime reserves for itself.
    #[error("the export name {name:?} is reserved by the runtime")]
    ReservedExport {
        /// The name.
        name: String,
    },
    /// Its declared memory is above the server maximum.
    #[error("the module declares {declared_pages} pages of memory, above the maximum of {max_pages}")]
    MemoryTooLarge {
        /// Pages declared as the memory's minimum.
        declared_pages: u32,
        /// The server maximum.
        max_pages: u32,
    },
    /// More tables than a module may declare.
    #[error("the module declares {count} tables; at most {max} are allowed")]
    TooManyTables {
        /// Tables declared.
        count: u32,
        /// The maximum.
        max: u32,
    },
    /// A table larger than allowed.
    #[error("the module declares a table of {declared} entries; at most {max} are allowed")]
    TableTooLarge {
        /// Entries declared as the table's minimum.
        declared: u64,
        /// The maximum.
        max: u64,
    },
    /// Serializing or deserializing the compiled artifact failed.
    #[error("compiled artifact unusable: {0}")]
    Artifact(String),
}

thread_local! {
    /// The memory cap of the instance being created on this thread, in pages.
    static MEMORY_CAP: Cell<u32> = const { Cell::new(65_536) };
    /// Set when a memory was refused for asking more than the cap.
    static MEMORY_REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Sets the memory cap for instances created on this thread until the guard drops.
pub(crate) struct MemoryCapGuard(u32);

impl MemoryCapGuard {
    pub(crate) fn set(pages: u32) -> Self {
        MEMORY_REFUSED.with(|r| r.set(false));
        MemoryCapGuard(MEMORY_CAP.with(|c| c.replace(pages)))
    }

    /// Whether a memory was refused since [`MemoryCapGuard::set`].
    pub(crate) fn refused(&self) -> bool {
        MEMORY_REFUSED.with(Cell::get)
    }
}

impl Drop for MemoryCapGuard {
    fn drop(&mut self) {
        MEMORY_CAP.with(|c| c.set(self.0));
    }
}

/// Tunables that clamp each memory's maximum to the current call's cap, so a
/// `memory.grow` past it fails (returns -1) instead of taking the worker's RAM,
/// and each table's to [`MAX_TABLE_ELEMENTS`], so a `table.grow` by 2^31
/// entries fails the same way.
pub struct LimitingTunables {
    base: BaseTunables,
    /// Where instances' memories come from; `None` maps each afresh.
    pool: Option<Arc<MemoryPool>>,
}

/// `ty` with its maximum clamped to [`MAX_TABLE_ELEMENTS`]; a larger minimum
/// is refused (upload validation refuses it first).
fn clamp_table(ty: &TableType) -> Result<TableType, String> {
    let cap = u32::try_from(MAX_TABLE_ELEMENTS).unwrap_or(u32::MAX);
    if ty.minimum > cap {
        return Err(format!("a table of {} entries is above the maximum of {cap}", ty.minimum));
    }
    Ok(TableType { maximum: Some(ty.maximum.map_or(cap, |m| m.min(cap))), ..*ty })
}

impl LimitingTunables {
    fn clamp(&self, ty: &MemoryType) -> Result<MemoryType, MemoryError> {
        let cap = MEMORY_CAP.with(Cell::get);
        if ty.minimum.0 > cap {
            MEMORY_REFUSED.with(|r| r.set(true));
            return Err(MemoryError::MinimumMemoryTooLarge { min_requested: ty.minimum, max_allowed: Pages(cap) });
        }
        let max = ty.maximum.map_or(cap, |m| m.0.min(cap));
        Ok(MemoryType { minimum: ty.minimum, maximum: Some(Pages(max)), shared: ty.shared })
    }
}

impl Tunables for LimitingTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(memory)
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(&self, ty: &MemoryType, style: &MemoryStyle) -> Result<VMMemory, MemoryError> {
        self.base.create_host_memory(&self.clamp(ty)?, style)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        let ty = self.clamp(ty)?;
        match &self.pool {
            // Compiled code assumes the static style's reservation, which a
            // pooled region has; anything else is mapped as Wasmer does.
            Some(pool) if !ty.shared && *style == MemoryStyle::Static => {
                // SAFETY: the caller guarantees the location is valid for
                // the memory's life.
                let memory = unsafe { PooledMemory::new(pool, &ty, vm_definition_location) }?;
                Ok(VMMemory(Box::new(memory)))
            }
            // SAFETY: forwarded unchanged from the caller, who upholds the contract.
            _ => unsafe { self.base.create_vm_memory(&ty, style, vm_definition_location) },
        }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(&clamp_table(ty)?, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        let ty = clamp_table(ty)?;
        // SAFETY: forwarded from the caller, who upholds the contract; only
        // the maximum changed, which the table's definition does not hold.
        unsafe { self.base.create_vm_table(&ty, style, vm_definition_location) }
    }
}

/// How one import is satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// An olin host function (the name, linked under the import's namespace).
    Olin,
    /// A WASI preview1 function (or an ENOSYS stub).
    Wasi,
}

/// One import of a module and how it is linked.
#[derive(Debug, Clone)]
pub(crate) struct Import {
    pub(crate) module: String,
    pub(crate) name: String,
    pub(crate) link: Link,
}

/// A compiled, validated module ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    // Declared before `engine`, so dropped before it: the artifact
    // deregisters its trap metadata before its code memory can go.
    pub(crate) inner: wasmer::Module,
    /// The engine generation holding the module's code (a Wasmer module
    /// does not keep its engine alive, and the engine owns the code).
    pub(crate) engine: Engine,
    /// Which generation that is.
    generation: u64,
    pub(crate) abi: Abi,
    pub(crate) imports: Arc<[Import]>,
    /// Whether the code counts fuel (only benchmarks turn this off).
    pub(crate) metered: bool,
    /// Whether the module had a start section, now exported as [`START_EXPORT`].
    pub(crate) start: bool,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("abi", &self.abi).field("imports", &self.imports.len()).finish()
    }
}

impl Module {
    /// The ABI the module was built against, from its imports.
    pub fn abi(&self) -> Abi {
        self.abi
    }

    /// The engine generation the module was loaded into (see [`Runtime`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Bytes counted per loaded module besides its artifact: page rounding of
/// its code and data, trampolines and registry entries.
const LOAD_OVERHEAD: u64 = 16 << 10;

/// Artifact bytes an engine generation takes by default before the next
/// module goes into a new one.
pub const DEFAULT_GENERATION_BYTES: u64 = 256 << 20;

/// The engine modules are loaded into now, and how much it holds.
struct Generation {
    engine: Engine,
    id: u64,
    loaded: u64,
}

/// The process's engine for running modules, in generations.
///
/// A Wasmer engine keeps the code of every module ever loaded into it until
/// the engine itself is dropped: evicting a module from a cache frees
/// nothing, so a worker that loads ever new modules (a tenant uploading
/// them, or cache churn) would grow without end. So modules are loaded into
/// the current generation until it has taken `generation_bytes` of
/// artifacts; then a fresh engine starts the next generation. Each
/// [`Module`] keeps its generation's engine alive, so an old generation's
/// code is freed once its last module (in a cache or a running call) is
/// dropped; caches reload modules of an old generation into the current one
/// ([`Runtime::generation`]).
#[derive(Clone)]
pub struct Runtime {
    current: Arc<Mutex<Generation>>,
    /// Linear memories reused between calls, shared by every generation.
    pool: Option<Arc<MemoryPool>>,
    generation: Arc<AtomicU64>,
    generation_bytes: u64,
    max_memory_pages: u32,
    metering: bool,
}

fn fresh_engine(pool: Option<Arc<MemoryPool>>) -> Engine {
    let mut engine = Engine::headless();
    engine.set_tunables(LimitingTunables { base: BaseTunables::new(), pool });
    engine
}

impl Runtime {
    /// Creates the engine. `max_memory_pages` is the server maximum, used to
    /// reject modules that declare more.
    pub fn new(max_memory_pages: u32) -> Self {
        Runtime::with_pool(max_memory_pages, Some(PoolConfig::default()))
    }

    /// Creates the engine with linear memories pooled as `pool` says, or
    /// mapped afresh for every call with `None`.
    pub fn with_pool(max_memory_pages: u32, pool: Option<PoolConfig>) -> Self {
        let pool = pool.map(MemoryPool::new);
        Runtime {
            current: Arc::new(Mutex::new(Generation { engine: fresh_engine(pool.clone()), id: 0, loaded: 0 })),
            pool,
            generation: Arc::default(),
            generation_bytes: DEFAULT_GENERATION_BYTES,
            max_memory_pages,
            metering: true,
        }
    }

    /// The same, with engine generations of `bytes` of artifacts (a worker
    /// uses its module cache's memory budget).
    pub fn with_generation_bytes(self, bytes: u64) -> Self {
        Runtime { generation_bytes: bytes.max(1), ..self }
    }

    /// The memory pool's counters (`None` without a pool).
    pub fn pool_stats(&self) -> Option<&PoolStats> {
        self.pool.as_deref().map(MemoryPool::stats)
    }

    /// The current engine generation: a module of an older one should be
    /// reloaded, so that the old generation's code can be freed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A runtime whose modules count no fuel: for measuring what metering
    /// costs. Production never runs guests without fuel.
    pub fn without_metering(max_memory_pages: u32) -> Self {
        Runtime { metering: false, ..Runtime::new(max_memory_pages) }
    }

    /// Identifies the artifact format: artifacts from another fingerprint
    /// must not be loaded.
    pub fn fingerprint(&self) -> String {
        let meter = if self.metering { "metered" } else { "unmetered" };
        format!("wasmer-{}-{}-olin{ARTIFACT_FORMAT}-{meter}", wasmer_version(), std::env::consts::ARCH)
    }

    /// [`Runtime::fingerprint`] plus the host's CPU features, which the
    /// compiler uses: artifacts shared between hosts are keyed by this, so
    /// hosts of different CPU generations each keep their own (Wasmer
    /// refuses an artifact that needs a feature the host lacks).
    pub fn host_fingerprint(&self) -> String {
        format!("{}-cpu{:x}", self.fingerprint(), wasmer::sys::CpuFeature::for_host().as_u64())
    }

    /// Validates and compiles `wasm`, returning the module and its serialized
    /// artifact (for the disk cache).
    ///
    /// # Errors
    /// [`CompileError`] naming what is wrong with the module.
    /// Every module passes [`validate::validate`] first: the rules of upload
    /// are the rules of compiling.
    pub fn compile(&self, wasm: &[u8]) -> Result<(Module, Bytes), CompileError> {
        let info = validate::validate(wasm, self.max_memory_pages)?;
        let hoisted;
        let wasm = match info.start_function {
            Some(function) => {
                hoisted = start::hoist(wasm, function)?;
                &hoisted[..]
            }
            None => wasm,
        };
        let mut config = Cranelift::default();
        if self.metering {
            config.push_middleware(Arc::new(Metering::new(INITIAL_FUEL, |_| 1)));
        }
        // After metering, so its checks are not metered as operators.
        config.push_middleware(Arc::new(Interrupt::default()));
        let mut compile_engine = Engine::from(EngineBuilder::new(config).set_features(Some(features::engine())));
        compile_engine.set_tunables(LimitingTunables { base: BaseTunables::new(), pool: None });
        let compiled = wasmer::Module::new(&compile_engine, wasm).map_err(|e| CompileError::Invalid(e.to_string()))?;
        let artifact = compiled.serialize().map_err(|e| CompileError::Artifact(e.to_string()))?;
        // SAFETY: the artifact was serialized by this function a moment ago.
        let module = unsafe { self.load(&artifact) }?;
        Ok((module, artifact))
    }

    /// Loads an artifact produced by [`Runtime::compile`] with the same
    /// [`Runtime::fingerprint`].
    ///
    /// # Safety
    /// The bytes must be an artifact this crate serialized, unmodified: the
    /// archive is validated, but its machine code cannot be. Callers verify a
    /// checksum first.
    ///
    /// # Errors
    /// [`CompileError::Artifact`] if the archive does not validate.
    pub unsafe fn load(&self, artifact: &[u8]) -> Result<Module, CompileError> {
        // SAFETY: the caller guarantees the bytes came from `compile`.
        let (engine, generation) = self.engine_for(artifact.len() as u64 + LOAD_OVERHEAD);
        let inner = unsafe { wasmer::Module::deserialize(&engine, artifact) }
            .map_err(|e| CompileError::Artifact(e.to_string()))?;
        let imports = link_plan(&inner)?;
        let start = inner.exports().any(|e| e.name() == START_EXPORT);
        Ok(Module { abi: abi_of(&imports), inner, engine, generation, imports, metered: self.metering, start })
    }

    /// The engine to load `bytes` more into: the current generation's, or a
    /// fresh one's if the current one is full.
    fn engine_for(&self, bytes: u64) -> (Engine, u64) {
        let mut current = self.current.lock();
        if current.loaded > 0 && current.loaded.saturating_add(bytes) > self.generation_bytes {
            let id = current.id + 1;
            *current = Generation { engine: fresh_engine(self.pool.clone()), id, loaded: 0 };
            self.generation.store(id, Ordering::Release);
            tracing::debug!(generation = id, "a new engine generation");
        }
        current.loaded = current.loaded.saturating_add(bytes);
        (current.engine.clone(), current.id)
    }
}

/// How each import of a compiled module is linked. The module passed
/// [`validate::validate`] when it was compiled; this checks the types once
/// more against the host's tables, so an artifact can never link a host
/// function under the wrong type.
fn link_plan(module: &wasmer::Module) -> Result<Arc<[Import]>, CompileError> {
    module
        .imports()
        .map(|import| {
            let (module, name) = (import.module(), import.name());
            let unsupported = || CompileError::UnsupportedImport { module: module.to_owned(), name: name.to_owned() };
            let (link, sig) = if abi::NAMESPACES.contains(&module) {
                (Link::Olin, abi::signature(name))
            } else if module == wasi::NAMESPACE {
                (Link::Wasi, wasi::signature(name))
            } else {
                return Err(unsupported());
            };
            let sig = sig.ok_or_else(unsupported)?;
            match import.ty() {
                ExternType::Function(ty) if *ty == sig.wasmer() => {}
                ExternType::Function(ty) => {
                    return Err(CompileError::ImportSignature {
                        module: module.to_owned(),
                        name: name.to_owned(),
                        expected: sig.to_string(),
                        found: format!("{ty}"),
                    });
                }
                _ => return Err(unsupported()),
            }
            Ok(Import { module: module.to_owned(), name: name.to_owned(), link })
        })
        .collect()
}

fn abi_of(imports: &[Import]) -> Abi {
    if imports.iter().any(|i| i.link == Link::Wasi) { Abi::WasiP1 } else { Abi::Olin }
}

fn wasmer_version() -> &'static str {
    // Pinned in the workspace; artifacts are only valid for this exact wasmer.
    "7.4.2"
}
