use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub(crate) id: i64,
    pub(crate) account_id: i64,
    pub(crate) created_by: Option<i64>,
    pub(crate) name: String,
    #[sea_orm(unique)]
    pub(crate) prefix: String,
    #[sea_orm(unique)]
    pub(crate) key_hash: String,
    pub(crate) scopes: String,
    pub(crate) created_at: DateTimeUtc,
    pub(crate) expires_at: Option<DateTimeUtc>,
    pub(crate) last_used_at: Option<DateTimeUtc>,
    pub(crate) revoked_at: Option<DateTimeUtc>,
    /// With `rate_limit_burst`: both set or both null.
    pub(crate) rate_limit_per_second: Option<i32>,
    pub(crate) rate_limit_burst: Option<i32>,
    /// The key a roll made from this one: a key rolls once.
    pub(crate) successor_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
