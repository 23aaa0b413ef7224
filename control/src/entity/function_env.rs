//! Table `function_env`.

use sea_orm::entity::prelude::*;

#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "function_env")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub function_id: String,
    pub name: String,
    /// Plain text, or sealed under `key_id` (`olin_proto::sealed`).
    pub value: String,
    pub secret: bool,
    /// The key a secret value is sealed under; `None` for a plain value.
    pub key_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
