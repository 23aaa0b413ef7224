//! Every table's `updated_at` trigger, on Postgres and on SQLite: an update
//! moves `updated_at` forward and leaves `created_at` alone. Also: the
//! migrations apply, report their status, and roll back cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use olin_migrations::{Migrator, MigratorTrait, TABLES};
use olin_test_support::TestDb;
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

/// One row per table (parents first), valid SQL for both databases.
const ROWS: &[(&str, &str)] = &[
    ("users", "INSERT INTO users (id, username, password_hash, role) VALUES ('u1', 'ada', 'x', 'admin')"),
    ("api_tokens", "INSERT INTO api_tokens (id, user_id, expires_at) VALUES ('t1', 'u1', CURRENT_TIMESTAMP)"),
    ("functions", "INSERT INTO functions (id, owner_id, name) VALUES ('f1', 'u1', 'hello')"),
    (
        "versions",
        "INSERT INTO versions (id, function_id, number, sha256, size_bytes, abi, imports) \
         VALUES ('v1', 'f1', 1, 'ab', 10, 'wasi', '[]')",
    ),
    (
        "deployments",
        "INSERT INTO deployments (id, function_id, version_id, active, kind) VALUES ('d1', 'f1', 'v1', TRUE, 'deploy')",
    ),
    ("function_env", "INSERT INTO function_env (id, function_id, name, value) VALUES ('e1', 'f1', 'A', 'b')"),
    (
        "invoke_keys",
        "INSERT INTO invoke_keys (id, function_id, name, prefix, key_hash) VALUES ('k1', 'f1', 'ci', 'ok_ab', 'h')",
    ),
    (
        "executions",
        "INSERT INTO executions (invocation_id, owner_id, function_id, function_name, deployment_id, module_sha256, \
         outcome, status, exit_code, wall_us, fuel, peak_memory_bytes, bytes_in, bytes_out, stderr_tail, error, \
         worker_id, method, path, is_async, started_at, finished_at) VALUES ('i1', 'u1', 'f1', 'hello', 'd1', 'ab', \
         'OK', 200, 0, 1, 1, 1, 1, 1, '', '', 'w', 'GET', '/', FALSE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    ),
    ("audit_log", "INSERT INTO audit_log (id, user_id, action, target) VALUES ('a1', 'u1', 'login', 'ada')"),
    ("usage_monthly", "INSERT INTO usage_monthly (user_id, month, calls, fuel) VALUES ('u1', '2026-12', 1, 1)"),
    (
        "usage_minutes",
        "INSERT INTO usage_minutes (function_id, minute, outcome, wall_bucket, owner_id, calls) \
         VALUES ('f1', CURRENT_TIMESTAMP, 'OK', 3, 'u1', 1)",
    ),
    (
        "execution_attempts",
        "INSERT INTO execution_attempts (invocation_id, worker_id, started_at, finished_at, outcome, status, \
         wall_us, fuel, peak_memory_bytes, error) VALUES ('i1', 'w2', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'OK', 200, \
         1, 1, 1, '')",
    ),
];

fn key_column(table: &str) -> &'static str {
    match table {
        "executions" => "invocation_id",
        "usage_monthly" => "user_id",
        "usage_minutes" => "function_id",
        "execution_attempts" => "invocation_id",
        _ => "id",
    }
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from)).unwrap()
}

async fn check_triggers(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    let listed: Vec<&str> = ROWS.iter().map(|(t, _)| *t).collect();
    assert_eq!(listed, TABLES, "a row for every table");
    for (_, insert) in ROWS {
        db.execute_unprepared(insert).await.unwrap_or_else(|e| panic!("{insert}: {e}"));
    }
    // Both stamps are set on insert, equal.
    for table in TABLES {
        let same = scalar(db, &format!("SELECT COUNT(*) FROM {table} WHERE created_at = updated_at")).await;
        assert_eq!(same, 1, "{table}: created_at = updated_at on insert");
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    for table in TABLES {
        let key = key_column(table);
        // Touch the key column itself: valid for every table, changes nothing else.
        db.execute_unprepared(&format!("UPDATE {table} SET {key} = {key}")).await.unwrap();
        // One row per table: no WHERE needed.
        let moved =
            scalar(db, &format!("SELECT CASE WHEN updated_at > created_at THEN 1 ELSE 0 END FROM {table}")).await;
        assert_eq!(moved, 1, "{table}: the update moved updated_at past created_at");
    }
}

async fn check_down_and_up(db: &DatabaseConnection) {
    let status = Migrator::get_migration_with_status(db).await.unwrap();
    let all = Migrator::migrations().len();
    assert_eq!(status.len(), all);
    assert!(status.iter().all(|m| m.status().to_string() == "Applied"));
    Migrator::down(db, None).await.unwrap();
    assert_eq!(Migrator::get_pending_migrations(db).await.unwrap().len(), all);
    Migrator::up(db, None).await.unwrap();
    assert!(Migrator::get_pending_migrations(db).await.unwrap().is_empty());
}

#[tokio::test]
async fn updated_at_triggers_on_postgres() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    assert_eq!(db.get_database_backend(), DbBackend::Postgres);
    check_triggers(&db).await;
    check_down_and_up(&db).await;
}

#[tokio::test]
async fn updated_at_triggers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(format!("sqlite://{}?mode=rwc", dir.path().join("olin.db").display())).await.unwrap();
    assert_eq!(db.get_database_backend(), DbBackend::Sqlite);
    db.execute_unprepared("PRAGMA foreign_keys = ON").await.unwrap();
    check_triggers(&db).await;
    check_down_and_up(&db).await;
}
