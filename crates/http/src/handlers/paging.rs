//! The paging every list endpoint shares: `?cursor` and `?limit`, and nothing else.

use actix_web::{HttpRequest, web};
use serde::Deserialize;

use crate::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<u64>,
}

/// A page request's `?cursor` (decoded by `decode`) and `?limit` (1 to `max`, `default` when
/// absent); anything else in the query is a 400.
pub(crate) fn page_query<C, E>(
    req: &HttpRequest,
    default: u64,
    max: u64,
    decode: fn(&str) -> Result<C, E>,
) -> Result<(Option<C>, u64), ApiError> {
    let query = web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("query: {e}")))?
        .into_inner();
    let limit = query.limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit: must be 1 to {max}")));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(decode)
        .transpose()
        .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))?;
    Ok((cursor, limit))
}
