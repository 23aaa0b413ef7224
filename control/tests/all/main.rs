//! One integration-test binary for the crate (wasmtime's `tests/all`
//! shape): each file below was its own binary, and each linked Wasmer,
//! Cranelift and the rest again.

mod api;
mod backup;
mod client;
mod deploy;
mod ingest;
mod retention;
mod schema;
mod sso;
