use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i64,
    pub(crate) account_id: i64,
    pub(crate) api_key_id: Option<i64>,
    pub(crate) client_event_id: Option<String>,
    pub(crate) event_type: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) timestamp: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub(crate) body: Option<Json>,
    pub(crate) received_at: DateTimeUtc,
    pub(crate) context_id: Option<i64>,
    pub(crate) parent_id: Option<String>,
    pub(crate) end_time: Option<DateTimeUtc>,
    pub(crate) status: Option<String>,
    pub(crate) status_message: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) input_tokens: Option<i64>,
    pub(crate) output_tokens: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
