use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "traces")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) account_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) trace_id: String,
    pub(crate) name: Option<String>,
    pub(crate) name_at: Option<DateTimeUtc>,
    pub(crate) started_at: DateTimeUtc,
    pub(crate) last_at: DateTimeUtc,
    pub(crate) event_count: i64,
    pub(crate) ended_at: Option<DateTimeUtc>,
    pub(crate) error_count: i64,
    pub(crate) status_count: i64,
    pub(crate) usage_count: i64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
