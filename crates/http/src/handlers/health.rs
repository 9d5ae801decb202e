//! `/healthz` (the process answers) and `/readyz` (the database answers, and takes writes).

use std::time::Instant;

use crate::handlers::{OK, StatusOk};
use crate::{ApiError, AppState};
use actix_web::{HttpResponse, web};

/// The process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Always, while the process runs.", body = StatusOk)),
)]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(OK)
}

/// The store was not ready at the check this answer shares.
#[derive(Debug, thiserror::Error)]
#[error("the store was not ready at a check that ran after this probe arrived")]
struct NotReady;

/// The database answers and takes writes.
///
/// On SQLite a write lock through the group-commit writer; on PostgreSQL a primary that is not
/// read-only. One check runs at a time; probes that arrive meanwhile share the next one.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers and takes writes.", body = StatusOk),
        crate::schema::DatabaseErrors,
    ),
)]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The check goes through the single SQLite writer, which every tenant's ingestion shares,
    // so a flood of anonymous probes must not queue there: one check at a time (the lock), and
    // a probe that waited reuses the answer of a check that started after it arrived — fresh
    // for it, and never more than one probe in the writer's queue.
    let arrived = Instant::now();
    let mut last = state.readiness.lock().await;
    let ready = match *last {
        Some((started, ready)) if started >= arrived => ready,
        _ => {
            let started = Instant::now();
            let result = state.store.ready().await;
            *last = Some((started, result.is_ok()));
            result?;
            true
        }
    };
    drop(last);
    if ready {
        Ok(HttpResponse::Ok().json(OK))
    } else {
        Err(ApiError::Unavailable(Box::new(NotReady)))
    }
}
