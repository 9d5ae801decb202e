//! `/healthz` (the process answers) and `/readyz` (the database answers, and takes writes).

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{ApiError, AppState};

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// How long one readiness answer is reused. The check goes through the single SQLite writer,
/// which every tenant's ingestion shares: a flood of anonymous probes must not queue there.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// The last readiness check: when it ran and whether the store was ready.
pub(crate) type Readiness = tokio::sync::Mutex<Option<(Instant, bool)>>;

/// The store was not ready at the last check, which this answer reuses.
#[derive(Debug, thiserror::Error)]
#[error("the store was not ready at a check less than a second ago")]
struct NotReady;

pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // One check at a time (the lock), and none again within the TTL: concurrent probes wait
    // for the check in flight and share its answer.
    let mut last = state.readiness.lock().await;
    let ready = match *last {
        Some((at, ready)) if at.elapsed() < READINESS_TTL => ready,
        _ => {
            let result = state.store.ready().await;
            *last = Some((Instant::now(), result.is_ok()));
            result?;
            true
        }
    };
    drop(last);
    if ready {
        Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
    } else {
        Err(ApiError::Unavailable(Box::new(NotReady)))
    }
}
