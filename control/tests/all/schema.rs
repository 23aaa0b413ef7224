//! Control serves only against the schema it was built for: started
//! before its migrations (`CONTROL_MIGRATE=false`), it stays unready,
//! serves no API and writes nothing; once the migrations are applied it
//! becomes ready without a restart. A schema newer than the build (an
//! older control during an upgrade) is served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use olin_migrations::{Migrator, MigratorTrait as _};
use olin_test_support::{ADMIN_PASSWORD, NatsServer, S3Server, TestDb, start_control, test_topology, wait};
use sea_orm::{ConnectionTrait as _, Statement};

use crate::client::Api;

async fn readyz(control: &olin_test_support::ControlHandle) -> (u16, String) {
    let r = reqwest::get(control.admin_url("/readyz")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_waits_unready_for_its_migrations_and_serves_a_newer_schema() {
    let test_db = TestDb::new().await;
    let nats = NatsServer::start();
    let s3 = S3Server::start().await;
    let db = test_db.connect().await;
    // An older release's schema: the first two migrations only.
    Migrator::up(&db, Some(2)).await.unwrap();
    let mut control =
        start_control(test_db.url(), &nats.url(), s3.store_args(), test_topology(), |c| c.migrate = false).await;

    let pending = format!("{} migration(s) pending", Migrator::migrations().len() - 2);
    let (status, why) = wait::until("/readyz names the pending migrations", Duration::from_secs(5), || async {
        reqwest::get(control.admin_url("/readyz")).await.ok()?;
        Some(readyz(&control).await).filter(|(_, why)| why.contains(&pending))
    })
    .await;
    assert_eq!(status, 503, "{why}");
    // Health is not readiness: the process is up.
    assert_eq!(reqwest::get(control.admin_url("/healthz")).await.unwrap().status(), 200);
    // No API: a request is not answered while the schema is old...
    let http = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    let early = http.get(control.v1("/openapi.json")).send().await;
    assert!(early.is_err(), "the API answered against an old schema: {early:?}");
    // ...and nothing was written: not even the bootstrap admin.
    let users = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'users' AND table_schema = current_schema()"))
        .await
        .unwrap()
        .unwrap();
    let tables: i64 = users.try_get("", "n").unwrap();
    if tables > 0 {
        let admins = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT count(*) AS n FROM users"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(admins.try_get::<i64>("", "n").unwrap(), 0, "the bootstrap admin was created before the schema");
    }
    assert_eq!(readyz(&control).await.0, 503, "still unready");

    // The migrations Job runs: control becomes ready, without a restart,
    // and its bootstrap admin signs in.
    Migrator::up(&db, None).await.unwrap();
    control.wait_ready().await;
    Api::login(&reqwest::Client::new(), &control, "admin", ADMIN_PASSWORD).await;
    control.stop().await;

    // A later release migrated further: this build serves it.
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)",
    ))
    .await
    .unwrap();
    let mut older =
        start_control(test_db.url(), &nats.url(), s3.store_args(), test_topology(), |c| c.migrate = false).await;
    older.wait_ready().await;
    older.stop().await;
}
