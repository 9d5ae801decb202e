//! `agentvista serve`: bind, mount the API, run until SIGTERM or Ctrl-C.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use agentvista_http::{AppState, configure, request_log};
use agentvista_store::Store;

use crate::settings::Settings;

/// Seconds in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE_SECS: u64 = 10;
/// How long a client may take to send the head of a connection's first request (actix-web's
/// slow-request timeout; its default, stated so that it is not lost). The body has its own
/// deadline, `limits.body_timeout_secs`.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn serve(store: Store, settings: &Settings) -> Result<(), String> {
    let addr = settings.server.bind;
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("server.bind: cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;

    if store.users().count().await.map_err(|e| e.to_string())? == 0 {
        tracing::warn!(
            "no user exists yet; create the first one with: \
             agentvista users create --email you@example.com \
             (from a checkout: cargo run --release -- users create --email you@example.com)"
        );
    }
    let state = AppState::new(store, settings.http_config()).map_err(|e| e.to_string())?;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new()
            .wrap(from_fn(request_log))
            .configure(move |cfg| configure(cfg, state))
    })
    .shutdown_timeout(SHUTDOWN_GRACE_SECS)
    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    // Tests and scripts read this line to learn the port when binding to port 0.
    tracing::info!("listening on http://{bound}");
    server.await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}
