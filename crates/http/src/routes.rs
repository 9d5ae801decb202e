//! The route table: [`configure`] mounts every endpoint and the dashboard.

use actix_web::{Resource, web};

use crate::{AppState, dashboard, handlers};

/// Mounts `build(resource)` at `path` without and with a trailing slash, each with the JSON 404
/// for methods it does not serve. Two resources of one pattern each, not one resource of two:
/// actix matches a single static pattern by comparing strings, but a resource of several
/// patterns by a regular-expression set — paid, in registration order, by every request that
/// reaches the routes after it (it was a fifth of the authenticated ping's CPU time).
fn mount(cfg: &mut web::ServiceConfig, path: &str, build: impl Fn(Resource) -> Resource) {
    let path = path.trim_end_matches('/');
    for path in [path.to_owned(), format!("{path}/")] {
        cfg.service(build(
            web::resource(path).default_service(web::to(handlers::not_found)),
        ));
    }
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
        .app_data(state);
    mount(cfg, "/healthz", |r| r.route(web::get().to(health::healthz)));
    mount(cfg, "/readyz", |r| r.route(web::get().to(health::readyz)));
    mount(cfg, "/api/v1/setup", |r| {
        r.route(web::post().to(setup::setup))
    });
    mount(cfg, "/api/v1/auth/login", |r| {
        r.route(web::post().to(session::login))
    });
    mount(cfg, "/api/v1/auth/logout", |r| {
        r.route(web::post().to(session::logout))
    });
    mount(cfg, "/api/v1/auth/session", |r| {
        r.route(web::get().to(session::current))
    });
    mount(cfg, "/api/v1/me/api-keys/ping", |r| {
        r.route(web::get().to(keys::ping))
    });
    mount(cfg, "/api/v1/me/api-keys", |r| {
        r.route(web::get().to(keys::list))
            .route(web::post().to(keys::create))
    });
    mount(cfg, "/api/v1/me/api-keys/{key_id}", |r| {
        r.route(web::delete().to(keys::revoke))
    });
    // Before "/api/v1/traces/{trace_id}", which would otherwise take "batch" for an id; a GET
    // there still reads the trace whose id is "batch".
    mount(cfg, "/api/v1/traces/batch", |r| {
        r.route(web::post().to(ingest::batch))
            .route(web::get().to(traces::batch_trace))
    });
    mount(cfg, "/otlp/v1/traces", |r| r.route(otlp(Signal::Traces)));
    mount(cfg, "/otlp/v1/logs", |r| r.route(otlp(Signal::Logs)));
    mount(cfg, "/otlp/v1/metrics", |r| r.route(otlp(Signal::Metrics)));
    mount(cfg, "/api/v1/traces", |r| {
        r.route(web::get().to(traces::list))
    });
    mount(cfg, "/api/v1/traces/{trace_id}", |r| {
        r.route(web::get().to(traces::events))
    });
    mount(cfg, "/api/v1/me/usage", |r| {
        r.route(web::get().to(usage::usage))
    });
    mount(cfg, "/api/v1/me/billing/spend-cap", |r| {
        r.route(web::put().to(usage::set_spend_cap))
    });
    cfg.configure(dashboard::routes)
        .default_service(web::to(handlers::not_found));
}
