//! `agentvista serve`: bind, mount the API, run until SIGTERM or Ctrl-C.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use std::sync::Arc;

use agentvista_http::{AppState, configure, error_chain, request_log};
use agentvista_store::{Replica, ReplicaOptions, Store};

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

    tracing::info!(
        database = %crate::database::describe(&settings.database.url),
        "data lives here"
    );
    if let Some(warning) = settings.server.plain_http_warning() {
        tracing::warn!("{warning}");
    }
    if store.users().count().await.map_err(|e| e.to_string())? == 0 {
        // An unspecified address (0.0.0.0, [::]) is reached from this machine on loopback.
        let host = if bound.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        tracing::warn!(
            "no user exists yet: open http://{host}/setup to create the account and its first \
             user, or run agentvista users create --email you@example.com \
             (from a checkout: cargo run --release -- users create --email you@example.com)"
        );
    }
    let mut http_config = settings.http_config();
    // Port 0 asked for any port: links name the one the server got.
    http_config.public_url = settings.server.public_url_at(bound);
    let span_fields = (settings.retention.interval_secs > 0).then(|| {
        actix_web::rt::spawn(fill_span_fields(
            store.clone(),
            Duration::from_secs(settings.retention.interval_secs),
            settings.sweep(),
        ))
    });
    let retention = (settings.retention.interval_secs > 0).then(|| {
        actix_web::rt::spawn(sweep_retention(
            store.clone(),
            http_config.plans.clone(),
            Duration::from_secs(settings.retention.interval_secs),
            settings.sweep(),
        ))
    });
    let mut state = AppState::new(store.clone(), http_config).map_err(|e| e.to_string())?;
    // Keys verified from memory under a lease, unless the cache is off (then the replica does
    // not register, and every verification reads the database).
    let replica = if settings.auth.cache_capacity > 0 {
        let options = ReplicaOptions {
            capacity: settings.auth.cache_capacity,
            label: format!("{bound} (pid {})", std::process::id()),
        };
        let replica = Replica::start(store, options)
            .await
            .map_err(|e| format!("cannot register this replica: {}", error_chain(&e)))?;
        // Listen once the cache serves (a few milliseconds: two follower rounds), so that
        // the first requests are verified from memory; without the lease within a lease's
        // time, serve anyway — from the database.
        let _ =
            actix_web::rt::time::timeout(settings.store_options().lease, replica.until_serving())
                .await;
        state = state.with_key_lookup(Arc::new(replica.clone()));
        Some(replica)
    } else {
        None
    };
    let metrics = match settings.metrics.bind {
        Some(bind) => Some(crate::metrics::start(bind)?.1),
        None => None,
    };
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
    let served = server.await.map_err(|e| e.to_string());
    for task in [retention, span_fields].into_iter().flatten() {
        task.abort();
    }
    if let Some(metrics) = metrics {
        metrics.stop(true).await;
    }
    // Requests are over: stop serving from memory and leave the barrier's list.
    if let Some(replica) = replica {
        replica.shutdown().await;
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes what is past retention (events, unreferenced contexts, audit entries): at start,
/// then `every` after each sweep ends, on whichever replica holds the sweep's lease. A failed
/// sweep is logged and tried again next time; what it deleted stays deleted.
async fn sweep_retention(
    store: Store,
    plans: agentvista_quota::Plans,
    every: Duration,
    sweep: agentvista_store::Sweep,
) {
    loop {
        let now = chrono::Utc::now();
        if let Err(err) = store.sweep_retention(&plans, now, &sweep).await {
            tracing::warn!(error = %error_chain(&err), "retention sweep failed; retrying at the next interval");
        }
        actix_web::rt::time::sleep(every).await;
    }
}

/// Gives the OTLP spans stored before an upgrade their tree and outcome, beside the retention
/// sweep (a long fill must not hold retention back): from start-up until done, trying again
/// `every` while another replica holds the job or a batch fails.
async fn fill_span_fields(store: Store, every: Duration, sweep: agentvista_store::Sweep) {
    loop {
        match agentvista_http::fill_span_fields(&store, &sweep).await {
            Ok(filled) if filled.done => return,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "span fields: a batch failed; going on at the next interval");
            }
        }
        actix_web::rt::time::sleep(every).await;
    }
}
