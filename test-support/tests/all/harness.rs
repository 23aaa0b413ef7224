//! The harness itself works against the real services.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use olin_test_support::{NatsServer, S3Server, TestDb};
use sea_orm::{ConnectionTrait, Database, Statement};

#[tokio::test]
async fn test_db_is_fresh_and_dropped() {
    let db = TestDb::new().await;
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    let conn = db.connect().await;
    conn.execute_unprepared("CREATE TABLE t (x int); INSERT INTO t VALUES (1)").await.unwrap();
    drop(conn);
    let admin_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = Database::connect(&admin_url).await.unwrap();
    let exists = |admin: sea_orm::DatabaseConnection, name: String| async move {
        let stmt = Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        );
        admin.query_one_raw(stmt).await.unwrap().is_some()
    };
    assert!(exists(admin.clone(), name.clone()).await);
    drop(db);
    assert!(!exists(admin, name).await, "dropped with the TestDb");
}

#[tokio::test]
async fn nats_servers_are_separate_and_restartable() {
    let mut a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port());
    let client = a.client().await;
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "T".into(),
        subjects: vec!["t.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("t.x", "kept".into()).await.unwrap().await.unwrap();
    a.restart();
    let client = a.client().await;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("T").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1, "the JetStream store survives a restart");
    assert!(b.client().await.server_info().jetstream);
}

#[tokio::test]
async fn s3_server_serves_the_module_store() {
    let s3 = S3Server::start().await;
    let store = s3.store_args().open().unwrap();
    let sha = olin_module_store::put_module(store.as_ref(), Bytes::from_static(b"\0asm\x01\0\0\0")).await.unwrap();
    let back = olin_module_store::get_module(store.as_ref(), &sha).await.unwrap();
    assert_eq!(&back[..], b"\0asm\x01\0\0\0");
    let missing = olin_module_store::sha256_hex(b"other");
    let err = olin_module_store::get_module(store.as_ref(), &missing).await.unwrap_err();
    assert!(matches!(err, olin_module_store::StoreError::NotFound { .. }), "{err}");
}
