//! The whole platform for one test: a Postgres database, a `nats-server`,
//! the in-process S3 server, and control, one worker and the gateway in
//! process. Control reports function URLs on this gateway.

use serde_json::{Value, json};

use crate::{
    ADMIN_PASSWORD, ControlHandle, GatewayBuilder, GatewayHandle, NatsServer, S3Server, TestDb, WorkerBuilder,
    WorkerHandle, spawn_control,
};

/// Every service of Olincloud, started for one test and stopped on drop.
pub struct Stack {
    /// The control plane (`admin` / [`ADMIN_PASSWORD`]).
    pub control: ControlHandle,
    /// The gateway.
    pub gateway: GatewayHandle,
    /// The worker.
    pub worker: WorkerHandle,
    /// The S3 server the module store uses.
    pub s3: S3Server,
    /// NATS.
    pub nats: NatsServer,
    /// The database.
    pub db: TestDb,
    /// A plain HTTP client.
    pub http: reqwest::Client,
}

impl Stack {
    /// Starts everything; the worker runs `worker_slots` guests at once.
    pub async fn start(worker_slots: usize) -> Stack {
        Stack::start_with(worker_slots, |_| {}).await
    }

    /// As [`Stack::start`], with control's settings adjusted by `edit`.
    pub async fn start_with(worker_slots: usize, edit: impl FnOnce(&mut olin_control::Config)) -> Stack {
        let db = TestDb::new().await;
        let nats = NatsServer::start();
        let s3 = S3Server::start().await;
        let gateway = GatewayBuilder::new(&nats.url()).start().await;
        let gateway_url = gateway.url();
        let control = spawn_control(db.url(), &nats.url(), s3.store_args(), |c| {
            c.gateway_url = gateway_url;
            edit(c);
        })
        .await;
        let worker = WorkerBuilder::new(&nats.url(), s3.store_args()).slots(worker_slots).start().await;
        Stack { control, gateway, worker, s3, nats, db, http: reqwest::Client::new() }
    }

    /// A token of `user`.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let body = json!({"username": user, "password": password});
        let r = self.http.post(self.control.v1("/tokens")).json(&body).send().await.expect("login request");
        let v: Value = r.json().await.expect("login answer");
        v["token"].as_str().unwrap_or_else(|| panic!("login of {user} failed: {v}")).to_owned()
    }

    /// A token of the bootstrap admin.
    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }
}
