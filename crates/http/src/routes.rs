//! The route table: [`API`] lists every operation of the JSON API, [`configure`] mounts it and
//! the dashboard. The OpenAPI document ([`crate::openapi`]) is generated from the handlers'
//! annotations; the tests below hold the two to the same set of paths and methods.

use actix_web::http::Method;
use actix_web::{Resource, Route, web};

use crate::handlers::{
    audit, health, ingest, keys, leaks, password, session, setup, traces, usage,
};
use crate::openapi::openapi_json;
use crate::{AppState, dashboard, handlers};

/// One operation of the JSON API: `method` on `path`, answered by the handler `to` attaches.
pub(crate) struct Operation {
    /// The path as the OpenAPI document writes it (`{name}` for a parameter); it is mounted
    /// with and without its trailing slash.
    pub(crate) path: &'static str,
    pub(crate) method: Method,
    /// Attaches the handler: `|route| route.to(handler)`.
    to: fn(Route) -> Route,
}

/// Every operation of the JSON API, in the order actix matches them. Mounting an operation
/// anywhere but here would escape the test that holds this table and the OpenAPI document
/// together; the dashboard's HTML pages are the only routes outside it.
pub(crate) const API: &[Operation] = &[
    op("/healthz", Method::GET, |r| r.to(health::healthz)),
    op("/readyz", Method::GET, |r| r.to(health::readyz)),
    op("/api/v1/openapi.json", Method::GET, |r| r.to(openapi_json)),
    op("/api/v1/setup/", Method::POST, |r| r.to(setup::setup)),
    op("/api/v1/auth/login/", Method::POST, |r| {
        r.to(session::login)
    }),
    op("/api/v1/auth/logout/", Method::POST, |r| {
        r.to(session::logout)
    }),
    op("/api/v1/auth/session/", Method::GET, |r| {
        r.to(session::current)
    }),
    op("/api/v1/me/password/", Method::PUT, |r| {
        r.to(password::change_password)
    }),
    op("/api/v1/me/api-keys/ping/", Method::GET, |r| {
        r.to(keys::ping)
    }),
    op("/api/v1/me/api-keys/", Method::GET, |r| r.to(keys::list)),
    op("/api/v1/me/api-keys/", Method::POST, |r| r.to(keys::create)),
    op("/api/v1/me/api-keys/{key_id}/", Method::DELETE, |r| {
        r.to(keys::revoke)
    }),
    op("/api/v1/me/api-keys/{key_id}/roll/", Method::POST, |r| {
        r.to(keys::roll)
    }),
    op("/api/v1/keys/report-leak/", Method::POST, |r| {
        r.to(leaks::report_leak)
    }),
    op("/api/v1/me/audit-log/", Method::GET, |r| {
        r.to(audit::audit_log)
    }),
    // Before "/api/v1/traces/{trace_id}/", which would otherwise take "batch" for an id; a GET
    // there still reads the trace whose id is "batch".
    op("/api/v1/traces/batch/", Method::POST, |r| {
        r.to(ingest::batch)
    }),
    op("/api/v1/traces/batch/", Method::GET, |r| {
        r.to(traces::batch_trace)
    }),
    op("/otlp/v1/traces", Method::POST, |r| {
        r.to(ingest::otlp_traces)
    }),
    op("/otlp/v1/logs", Method::POST, |r| r.to(ingest::otlp_logs)),
    op("/otlp/v1/metrics", Method::POST, |r| {
        r.to(ingest::otlp_metrics)
    }),
    op("/api/v1/traces/", Method::GET, |r| r.to(traces::list)),
    op("/api/v1/traces/{trace_id}/", Method::GET, |r| {
        r.to(traces::events)
    }),
    op("/api/v1/me/usage/", Method::GET, |r| r.to(usage::usage)),
    op("/api/v1/me/usage/daily/", Method::GET, |r| {
        r.to(usage::daily)
    }),
    op("/api/v1/me/billing/spend-cap/", Method::PUT, |r| {
        r.to(usage::set_spend_cap)
    }),
    op("/api/v1/me/billing/plan/", Method::PUT, |r| {
        r.to(usage::set_plan)
    }),
];

/// An [`API`] entry.
const fn op(path: &'static str, method: Method, to: fn(Route) -> Route) -> Operation {
    Operation { path, method, to }
}

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
    cfg.app_data(state.keys.clone())
        .app_data(web::Data::new(state.config.body))
        .app_data(web::Data::new(state.store.clone()))
        .app_data(state);
    // The document is serialised here, when the app is set up, rather than by the first
    // request that asks for it.
    std::sync::LazyLock::force(&crate::openapi::DOCUMENT);
    // One resource per path, in the table's order, with each of its methods.
    let mut mounted: Vec<&str> = Vec::new();
    for operation in API {
        if mounted.contains(&operation.path) {
            continue;
        }
        mounted.push(operation.path);
        mount(cfg, operation.path, |resource| {
            API.iter()
                .filter(|other| other.path == operation.path)
                .fold(resource, |resource, other| {
                    resource.route((other.to)(web::method(other.method.clone())))
                })
        });
    }
    cfg.configure(dashboard::routes)
        .default_service(web::to(handlers::not_found));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The operations of the OpenAPI document as served, as (path, METHOD).
    fn documented() -> BTreeSet<(String, String)> {
        let document = crate::openapi().unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut operations = BTreeSet::new();
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                operations.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
        operations
    }

    /// The operations of the route table, which `configure` mounts, as (path, METHOD).
    fn mounted() -> BTreeSet<(String, String)> {
        API.iter()
            .map(|op| (op.path.to_owned(), op.method.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn every_mounted_operation_is_documented_and_every_documented_one_is_mounted() {
        let (documented, mounted) = (documented(), mounted());
        let undocumented: Vec<_> = mounted.difference(&documented).collect();
        let unmounted: Vec<_> = documented.difference(&mounted).collect();
        assert!(
            undocumented.is_empty() && unmounted.is_empty(),
            "mounted but not in the OpenAPI document: {undocumented:?}; \
             documented but not mounted: {unmounted:?}"
        );
        assert_eq!(mounted.len(), API.len(), "an operation is listed twice");
        // Not vacuous: both sides hold the API, not two empty sets.
        assert!(mounted.contains(&("/api/v1/me/api-keys/{key_id}/".into(), "DELETE".into())));
        assert!(mounted.contains(&("/otlp/v1/traces".into(), "POST".into())));
    }
}
