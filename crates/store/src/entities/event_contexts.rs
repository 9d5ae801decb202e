use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_contexts")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i64,
    pub(crate) account_id: i64,
    pub(crate) parent_id: Option<i64>,
    pub(crate) hash: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub(crate) body: Json,
    /// When the retention sweep found the context unreferenced (milliseconds since the epoch
    /// on the database's clock); cleared when an ingestion reuses it.
    pub(crate) orphaned_at: Option<i64>,
    /// The latest day (UTC) an event referring to the context was received, or later.
    pub(crate) last_seen: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
