//! One integration-test binary for the crate (wasmtime's `tests/all`
//! shape): each file below was its own binary, and each linked Wasmer,
//! Cranelift and the rest again.

mod docs;
mod e2e_async;
mod e2e_cluster;
mod e2e_direct;
mod e2e_examples;
mod e2e_gateway;
mod e2e_gateway_worker;
mod e2e_nats_access;
mod e2e_panel;
mod e2e_queue;
mod e2e_sandbox;
mod e2e_secrets;
mod harness;
mod k8s_env;
mod monitoring;
mod postgres_tls;
