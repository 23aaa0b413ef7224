//! Table `functions`.

use sea_orm::entity::prelude::*;

#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "functions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: String,
    #[sea_orm(unique)]
    pub name: String,
    pub visibility: String,
    pub fuel: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub wall_ms: Option<i64>,
    pub max_output_bytes: Option<i64>,
    pub host_budget_bytes: Option<i64>,
    pub async_max_attempts: Option<i32>,
    pub egress_allow: String,
    pub rate_per_second: Option<i32>,
    pub rate_burst: Option<i32>,
    pub max_concurrency: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
