//! Table `execution_attempts`: the runs of a call after its first, one row
//! per (invocation, worker, start).

use sea_orm::entity::prelude::*;

#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub invocation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub worker_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub started_at: DateTimeUtc,
    pub finished_at: DateTimeUtc,
    pub outcome: String,
    pub status: i32,
    pub wall_us: i64,
    pub fuel: i64,
    pub peak_memory_bytes: i64,
    pub error: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
