//! Table `executions`.

use sea_orm::entity::prelude::*;

#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub invocation_id: String,
    pub owner_id: Option<String>,
    pub function_id: Option<String>,
    pub function_name: String,
    pub deployment_id: String,
    pub module_sha256: String,
    pub outcome: String,
    pub status: i32,
    pub exit_code: i32,
    pub wall_us: i64,
    pub fuel: i64,
    pub peak_memory_bytes: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub stderr_tail: Vec<u8>,
    pub error: String,
    pub worker_id: String,
    pub method: String,
    pub path: String,
    pub is_async: bool,
    /// JSON array of `{"name", "value"}`: the response headers, in order.
    pub response_headers: String,
    pub started_at: DateTimeUtc,
    pub finished_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
