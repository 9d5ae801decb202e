use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) plan: String,
    pub(crate) spend_cap_cents: Option<i64>,
    pub(crate) created_at: DateTimeUtc,
    pub(crate) deleted_at: Option<DateTimeUtc>,
    pub(crate) deleted_by: Option<String>,
    pub(crate) purged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
