//! One integration-test binary for the crate (wasmtime's `tests/all`
//! shape): each file below was its own binary, and each linked Wasmer,
//! Cranelift and the rest again.

mod hostile;
mod module_cache;
mod nats_restart;
mod process_faults;
mod scaling;
mod soak;
