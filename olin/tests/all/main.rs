//! One integration-test binary for the crate (wasmtime's `tests/all`
//! shape): each file below was its own binary, and each linked Wasmer,
//! Cranelift and the rest again.

mod abi;
mod hostile;
mod pool;
mod run;
