//! `metrics.bind`: the Prometheus scrape endpoint, on a listener of its own (so that it can
//! stay on a private address while the API faces the world), serving `GET /metrics`.
//!
//! The crates record through the `metrics` facade; nothing is recorded until [`start`]
//! installs the Prometheus recorder, so with `metrics.bind` empty a metric costs nothing but
//! an atomic load.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of every `*_seconds` histogram: 100 µs to 10 s.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Bucket bounds of the group commit's requests per transaction (at most 64).
const GROUP: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
/// How often histograms drop their expired samples.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the recorder, describes the metrics, and serves them at `bind`. Returns the
/// address bound and a handle to stop the listener.
pub(crate) fn start(bind: SocketAddr) -> Result<(SocketAddr, ServerHandle), String> {
    let listener = TcpListener::bind(bind)
        .map_err(|e| format!("metrics.bind: cannot listen on {bind}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("agentvista_group_commit_requests".into()),
                GROUP,
            )
        })
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    agentvista_store::describe_metrics();
    agentvista_http::describe_metrics();

    let upkeep = handle.clone();
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(handle.clone()))
            .route("/metrics", web::get().to(render))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|e| format!("metrics.bind: {e}"))?
    .run();
    let stop = server.handle();
    actix_web::rt::spawn(server);
    tracing::info!("metrics on http://{bound}/metrics");
    Ok((bound, stop))
}

async fn render(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
