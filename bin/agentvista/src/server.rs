//! `agentvista serve`: bind, mount the API, run until SIGTERM or Ctrl-C.

use std::net::TcpListener;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use agentvista_http::{AppState, configure, request_log};
use agentvista_store::Store;

use crate::settings::Settings;

/// Seconds in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE_SECS: u64 = 10;

pub(crate) async fn serve(store: Store, settings: &Settings) -> Result<(), String> {
    let addr = settings.bind_addr().map_err(|e| e.to_string())?;
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
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    // Tests and scripts read this line to learn the port when binding to port 0.
    tracing::info!("listening on http://{bound}");
    server.await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}
