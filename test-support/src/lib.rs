//! Shared test harness (a dev-dependency only). Everything here talks to
//! real components: a `nats-server` process per test, a fresh Postgres
//! database per test, an S3 server in-process (`s3s-fs`), and the gateway
//! and workers running in-process on `127.0.0.1:0`.
//!
//! # Layout
//! - `nats`, `cluster`, `db`, `s3`, `tls`: the real components, one per
//!   test (`cluster`: three `nats-server` nodes).
//! - `worker`, `gateway`, `control`: each service in process (a builder
//!   and a handle), and a worker as an OS process.
//! - `fleet`: [`Fleet`], the data plane from a builder; `stack`: [`Stack`],
//!   the data plane with control and Postgres.
//! - `deploy`: a module stored and its route published, without control.
//! - [`oidc`]: a real OpenID provider (Node.js) and a [`Browser`] that
//!   signs in through its pages.
//! - [`wait`]: waiting for an event instead of sleeping.
//! - [`stream`]: what a JetStream stream holds (calls, execution events).
//! - [`slow_client`]: clients that hold connections open; [`SlowLink`]: a
//!   connection whose server answers late.
//!
//! A missing service is a loud failure naming what to install, never a skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cluster;
mod control;
mod db;
mod deploy;
mod fleet;
mod gateway;
mod nats;
pub mod oidc;
mod s3;
pub mod slow_client;
mod slow_link;
mod stack;
pub mod stream;
mod tls;
pub mod wait;
mod worker;

pub use cluster::NatsCluster;
pub use control::{
    ADMIN_PASSWORD, ControlHandle, JWT_SECRET, SECRETS_KEYS, spawn_control, spawn_control_on, start_control,
};
pub use db::TestDb;
pub use deploy::{deploy, deploy_route};
pub use fleet::{Fleet, FleetBuilder};
pub use gateway::{GatewayBuilder, GatewayHandle};
pub use nats::test_topology;
pub use nats::{NatsServer, args_for, connect_as};
pub use oidc::{Browser, OidcProvider};
pub use olin_gateway::SyncPath;
pub use s3::S3Server;
pub use slow_link::SlowLink;
pub use stack::Stack;
pub use tls::TlsServer;
pub use worker::{WorkerBuilder, WorkerHandle, WorkerProcess};

/// The committed example modules and test fixtures.
pub mod fixtures {
    /// `examples/hello`: a C WASI CGI program.
    pub const HELLO_WASM: &[u8] = include_bytes!("../../examples/hello/hello.wasm");
    /// `examples/echo`: an olin ABI guest, as compiled WebAssembly.
    pub const ECHO_WASM: &[u8] = include_bytes!("../../examples/echo/echo.wasm");
    /// `examples/form`: a C WASI CGI program handling an HTML form.
    pub const FORM_WASM: &[u8] = include_bytes!("../../examples/form/form.wasm");
    /// `examples/greet`: a Rust olin ABI guest (guest library `guest/rust/olin-guest`).
    pub const GREET_WASM: &[u8] = include_bytes!("../../examples/greet/greet.wasm");
    /// `examples/fetch`: a Rust olin ABI guest calling out over `https`.
    pub const FETCH_WASM: &[u8] = include_bytes!("../../examples/fetch/fetch.wasm");

    /// Compiles a `.wat` fixture from `test-support/fixtures/`.
    pub fn wat(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
        wat::parse_file(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
    }
}

/// Installs a test log subscriber once (`RUST_LOG` to choose levels).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}
