//! The Olincloud sandbox: runs one WebAssembly module for one HTTP request,
//! CGI-style, under hard limits, and reports what it used. No NATS and no
//! network of its own: the worker and the benchmarks drive it.
//!
//! # Layout
//! - [`engine`]: the process-wide Wasmer engine, compilation with metering,
//!   artifacts, memory-capping tunables.
//! - `run`: [`Runtime::run`], one call from `InvocationRequest` to `InvocationResponse`.
//! - `abi`: the olin ABI host (`env`/`cwa`), one module per namespace.
//! - `wasi`: a lean WASI preview1 host for CGI programs.
//! - [`cgi`]: RFC 3875 environment and output parsing, pure.
//! - [`limits`]: per-call limits, defaults and maxima.
//! - [`validate`]: the one gate of every module (upload and compile), with
//!   `wasmparser` alone; `features` (the allowed proposals), `signature`
//!   (every host function's type) and `start` (start sections run under
//!   the call's limits) serve it; `interrupt` is how the wall clock
//!   reaches running guest code.
//! - [`pool`]: linear memories reused between calls, zeroed in between.
//! - `process`, `fd`, `memory`, `errno`, `watchdog`: per-call state, its fd
//!   table, bounds-checked guest memory, result codes, wall-clock deadlines.
#![warn(missing_docs)]

mod abi;
pub mod cgi;
pub mod egress;
pub mod engine;
mod errno;
mod fd;
mod features;
mod interrupt;
pub mod limits;
mod memory;
pub mod pool;
mod process;
mod run;
mod signature;
mod start;
pub mod validate;
mod wasi;
mod watchdog;

pub use egress::{Egress, EgressError, EgressRequest, EgressResponse};
pub use engine::{CompileError, Module, Runtime};
pub use limits::Limits;
pub use olin_proto::v1::Abi;
pub use pool::{PoolConfig, PoolStats};
pub use run::RunContext;
