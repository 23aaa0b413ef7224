//! The data plane for one test, from a builder (after spin's
//! `TestEnvironment`): a `nats-server`, the in-process S3 server, workers and
//! a gateway, with functions deployed before the first call.
//!
//! ```no_run
//! # async fn f() {
//! use olin_test_support::{Fleet, fixtures};
//! let fleet = Fleet::builder().workers(2).slots(4).function("hello", fixtures::HELLO_WASM).start().await;
//! let r = fleet.http.get(fleet.gateway().function_url("hello", "/")).send().await.unwrap();
//! # }
//! ```

use olin_nats::topology::TopologyConfig;
use olin_proto::v1::RouteRecord;

use crate::{
    GatewayBuilder, GatewayHandle, NatsServer, S3Server, WorkerBuilder, WorkerHandle, WorkerProcess, test_topology,
};

/// Workers edit their configuration with this, each the same way.
type WorkerEdit = Box<dyn Fn(&mut olin_worker::Config)>;

/// The gateway edits its configuration with this.
type GatewayEdit = Box<dyn FnOnce(&mut olin_gateway::Config)>;

/// What a [`Fleet`] starts with: one worker of 2 slots, one gateway,
/// [`test_topology`], no functions.
pub struct FleetBuilder {
    workers: usize,
    slots: usize,
    topology: TopologyConfig,
    worker_edit: Option<WorkerEdit>,
    gateway: Option<GatewayEdit>,
    functions: Vec<(String, Vec<u8>)>,
}

impl FleetBuilder {
    /// Starts `n` workers (0: none; a test may start its own with
    /// [`Fleet::worker`]).
    pub fn workers(mut self, n: usize) -> FleetBuilder {
        self.workers = n;
        self
    }

    /// Each worker runs `n` guests at once.
    pub fn slots(mut self, n: usize) -> FleetBuilder {
        self.slots = n;
        self
    }

    /// JetStream settings of every service of the fleet.
    pub fn topology(mut self, topology: TopologyConfig) -> FleetBuilder {
        self.topology = topology;
        self
    }

    /// Adjusts every worker's configuration.
    pub fn worker_config(mut self, edit: impl Fn(&mut olin_worker::Config) + 'static) -> FleetBuilder {
        self.worker_edit = Some(Box::new(edit));
        self
    }

    /// Adjusts the gateway's configuration.
    pub fn gateway_config(mut self, edit: impl FnOnce(&mut olin_gateway::Config) + 'static) -> FleetBuilder {
        self.gateway = Some(Box::new(edit));
        self
    }

    /// Starts no gateway.
    pub fn no_gateway(mut self) -> FleetBuilder {
        self.gateway = None;
        self
    }

    /// Deploys `wasm` as `name` (module stored, route published) before
    /// the services start; the gateway knows its route when
    /// [`FleetBuilder::start`] returns.
    pub fn function(mut self, name: &str, wasm: &[u8]) -> FleetBuilder {
        self.functions.push((name.to_owned(), wasm.to_vec()));
        self
    }

    /// Starts everything.
    pub async fn start(self) -> Fleet {
        let nats = NatsServer::start();
        let s3 = S3Server::start().await;
        let client = nats.client().await;
        let mut fleet = Fleet {
            http: reqwest::Client::new(),
            js: async_nats::jetstream::new(client.clone()),
            client,
            workers: Vec::new(),
            gateway: None,
            topology: self.topology,
            slots: self.slots,
            worker_edit: self.worker_edit,
            s3,
            nats,
        };
        for (name, wasm) in &self.functions {
            fleet.deploy(name, wasm).await;
        }
        for _ in 0..self.workers {
            let worker = fleet.worker().start().await;
            fleet.workers.push(worker);
        }
        if let Some(edit) = self.gateway {
            let gateway = GatewayBuilder::new(&fleet.nats.url()).topology(fleet.topology.clone()).config(edit);
            let gateway = gateway.start().await;
            for (name, _) in &self.functions {
                gateway.wait_for_route(&fleet.http, name).await;
            }
            fleet.gateway = Some(gateway);
        }
        fleet
    }
}

/// A running data plane; everything stops on drop.
pub struct Fleet {
    /// The workers started with it.
    pub workers: Vec<WorkerHandle>,
    /// The gateway, unless built with [`FleetBuilder::no_gateway`].
    pub gateway: Option<GatewayHandle>,
    /// The operator's NATS connection.
    pub client: async_nats::Client,
    /// JetStream over [`Fleet::client`].
    pub js: async_nats::jetstream::Context,
    /// A plain HTTP client.
    pub http: reqwest::Client,
    /// JetStream settings of its services.
    pub topology: TopologyConfig,
    slots: usize,
    worker_edit: Option<WorkerEdit>,
    /// The S3 server of the module store.
    pub s3: S3Server,
    /// NATS (dropped last: the services above stop first).
    pub nats: NatsServer,
}

impl Fleet {
    /// A builder with the defaults of [`FleetBuilder`].
    pub fn builder() -> FleetBuilder {
        FleetBuilder {
            workers: 1,
            slots: 2,
            topology: test_topology(),
            worker_edit: None,
            gateway: Some(Box::new(|_| {})),
            functions: Vec::new(),
        }
    }

    /// The gateway.
    ///
    /// # Panics
    /// If the fleet was built without one.
    pub fn gateway(&self) -> &GatewayHandle {
        self.gateway.as_ref().expect("this fleet has no gateway")
    }

    /// The first worker.
    ///
    /// # Panics
    /// If the fleet was built without workers.
    pub fn worker0(&self) -> &WorkerHandle {
        self.workers.first().expect("this fleet has no worker")
    }

    /// A worker like the fleet's own (its slots, topology and settings),
    /// to adjust further and start.
    pub fn worker(&self) -> WorkerBuilder {
        let builder = WorkerBuilder::new(&self.nats.url(), self.s3.store_args())
            .slots(self.slots)
            .topology(self.topology.clone());
        match &self.worker_edit {
            Some(edit) => builder.config(|c| edit(c)),
            None => builder,
        }
    }

    /// A worker as an OS process of its own (`binary`: pass
    /// `env!("CARGO_BIN_EXE_olin-worker")`) with extra environment `env`,
    /// for tests that kill or stop one.
    pub async fn worker_process(&self, binary: &str, env: &[(&str, &str)]) -> WorkerProcess {
        WorkerProcess::spawn(binary, &self.nats.url(), &self.s3.store_args(), env).await
    }

    /// Deploys `wasm` as `function`; returns the module's sha256.
    pub async fn deploy(&self, function: &str, wasm: &[u8]) -> String {
        crate::deploy(&self.client, &self.s3.store_args(), function, wasm).await
    }

    /// As [`Fleet::deploy`], with the route record adjusted by `edit`.
    pub async fn deploy_route(&self, function: &str, wasm: &[u8], edit: impl FnOnce(&mut RouteRecord)) -> String {
        crate::deploy_route(&self.client, &self.s3.store_args(), function, wasm, edit).await
    }
}
