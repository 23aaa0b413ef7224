//! Table `usage_minutes`: the runs of a function in one minute (UTC), by
//! outcome and wall-time bucket, counted at ingestion and kept longer than
//! execution records.

use sea_orm::entity::prelude::*;

#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_minutes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub function_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub minute: DateTimeUtc,
    #[sea_orm(primary_key, auto_increment = false)]
    pub outcome: String,
    /// `floor(4 * log2(wall_us + 1))`: see `crate::rollup`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub wall_bucket: i32,
    pub owner_id: Option<String>,
    /// First runs: the calls themselves.
    pub calls: i64,
    /// Runs after a call's first (at-least-once delivery).
    pub reruns: i64,
    pub wall_us: i64,
    pub fuel: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
