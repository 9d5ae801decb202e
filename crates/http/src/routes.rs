//! The route table: [`configure`] mounts every endpoint and the dashboard.

use actix_web::{Resource, web};

use crate::{AppState, dashboard, handlers};

/// A resource answering at `path` with and without a trailing slash, and with the JSON 404
/// for methods it does not serve.
fn resource(path: &str) -> Resource {
    let path = path.trim_end_matches('/');
    web::resource([path.to_owned(), format!("{path}/")])
        .default_service(web::to(handlers::not_found))
}

/// Mounts the whole API on an actix-web app or scope:
///
/// ```no_run
/// # async fn run(store: agentvista_store::Store) -> std::io::Result<()> {
/// use actix_web::{App, HttpServer, middleware::from_fn, web};
/// use agentvista_http::{AppState, HttpConfig, configure, request_log};
///
/// let state = web::Data::new(AppState::new(store, HttpConfig::default()).expect("state"));
/// HttpServer::new(move || {
///     App::new()
///         .wrap(from_fn(request_log))
///         .configure(|cfg| configure(cfg, state.clone()))
/// })
/// .bind(("127.0.0.1", 8080))?
/// .run()
/// .await
/// # }
/// ```
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    use agentvista_ingest::Signal;
    use handlers::{health, ingest, keys, session, setup, traces, usage};
    let otlp = |signal: Signal| {
        web::post().to(move |state, req, body| ingest::otlp(state, req, body, signal))
    };
    cfg.app_data(state.keys.clone())
        .app_data(web::Data::new(state.config.body))
        .app_data(web::Data::new(state.store.clone()))
        .app_data(state)
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(resource("/api/v1/setup").route(web::post().to(setup::setup)))
        .service(resource("/api/v1/auth/login").route(web::post().to(session::login)))
        .service(resource("/api/v1/auth/logout").route(web::post().to(session::logout)))
        .service(resource("/api/v1/auth/session").route(web::get().to(session::current)))
        .service(resource("/api/v1/me/api-keys/ping").route(web::get().to(keys::ping)))
        .service(
            resource("/api/v1/me/api-keys")
                .route(web::get().to(keys::list))
                .route(web::post().to(keys::create)),
        )
        .service(resource("/api/v1/me/api-keys/{key_id}").route(web::delete().to(keys::revoke)))
        // Before "/api/v1/traces/{trace_id}", which would otherwise take "batch" for an id; a
        // GET there still reads the trace whose id is "batch".
        .service(
            resource("/api/v1/traces/batch")
                .route(web::post().to(ingest::batch))
                .route(web::get().to(traces::batch_trace)),
        )
        .service(resource("/otlp/v1/traces").route(otlp(Signal::Traces)))
        .service(resource("/otlp/v1/logs").route(otlp(Signal::Logs)))
        .service(resource("/otlp/v1/metrics").route(otlp(Signal::Metrics)))
        .service(resource("/api/v1/traces").route(web::get().to(traces::list)))
        .service(resource("/api/v1/traces/{trace_id}").route(web::get().to(traces::events)))
        .service(resource("/api/v1/me/usage").route(web::get().to(usage::usage)))
        .service(
            resource("/api/v1/me/billing/spend-cap").route(web::put().to(usage::set_spend_cap)),
        )
        .configure(dashboard::routes)
        .default_service(web::to(handlers::not_found));
}
