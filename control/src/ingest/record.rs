//! The row of one execution event, and whose it is: the owner and the
//! function of the event's deployment, looked up once per deployment.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use olin_proto::v1::{ExecutionEvent, Header, Outcome};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use crate::entity::{deployments, executions, functions};

/// Who owns the function of a deployment, cached: deployments never move.
#[derive(Default)]
pub(super) struct Owners {
    by_deployment: HashMap<String, (Option<String>, Option<String>)>,
}

impl Owners {
    pub(super) async fn of(
        &mut self,
        db: &DatabaseConnection,
        deployment_id: &str,
    ) -> Result<(Option<String>, Option<String>), DbErr> {
        if let Some(hit) = self.by_deployment.get(deployment_id) {
            return Ok(hit.clone());
        }
        let found = match deployments::Entity::find_by_id(deployment_id.to_owned()).one(db).await? {
            Some(d) => {
                let owner = functions::Entity::find()
                    .filter(functions::Column::Id.eq(&d.function_id))
                    .one(db)
                    .await?
                    .map(|f| f.owner_id);
                (owner, Some(d.function_id))
            }
            None => (None, None),
        };
        // Unknown deployments (routes published by hand) are not cached: the row may come.
        if found.1.is_some() {
            self.by_deployment.insert(deployment_id.to_owned(), found.clone());
        }
        Ok(found)
    }
}

fn time(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The row of one event, with the owner and function it belongs to
/// (`created_at`/`updated_at` are left to the database).
pub fn row(e: ExecutionEvent, owner: Option<String>, function_id: Option<String>) -> executions::Model {
    let usage = e.usage.clone().unwrap_or_default();
    let outcome = Outcome::try_from(e.outcome).unwrap_or(Outcome::Unspecified).header_value().to_owned();
    let now = Utc::now();
    executions::Model {
        invocation_id: e.invocation_id,
        owner_id: owner,
        function_id,
        function_name: e.function,
        deployment_id: e.deployment_id,
        module_sha256: e.module_sha256,
        outcome,
        status: i32::try_from(e.status).unwrap_or(0),
        exit_code: e.exit_code,
        wall_us: i64_of(usage.wall_us),
        fuel: i64_of(usage.fuel_used),
        peak_memory_bytes: i64_of(usage.peak_memory_bytes),
        bytes_in: i64_of(usage.bytes_in),
        bytes_out: i64_of(usage.bytes_out),
        stderr_tail: e.stderr_tail.to_vec(),
        error: e.error,
        worker_id: e.worker_id,
        method: e.method,
        path: e.path,
        is_async: e.r#async,
        response_headers: headers_json(&e.headers),
        started_at: time(e.started_unix_ms),
        finished_at: time(e.finished_unix_ms),
        created_at: now,
        updated_at: now,
    }
}

/// `headers` as stored: the JSON array the API shows.
fn headers_json(headers: &[Header]) -> String {
    let list: Vec<olin_api::Header> = headers.iter().map(|h| olin_api::Header::new(&h.name, &h.value)).collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned())
}
