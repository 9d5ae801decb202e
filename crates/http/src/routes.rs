//! The route table: [`crate::operations`] declares every operation of the JSON API once, by
//! its handler, whose `#[utoipa::path]` annotation holds the method, the path, the credentials it
//! takes and its answers. [`configure`] mounts the operations with the dashboard, in the
//! declared order, at the method and path the OpenAPI document ([`crate::openapi`], generated
//! from the same list) gives each; the tests below hold the two together.

use std::sync::LazyLock;

use actix_web::http::Method;
use actix_web::{Resource, Route, web};
use serde_json::Value;

use crate::auth::{Access, MountedAccess};
use crate::handlers::{
    account, audit, health, ingest, invitations, keys, leaks, members, meta, own_sessions,
    password, session, setup, traces, usage,
};
use crate::{AppState, dashboard, handlers};

/// The handlers of [`crate::operations`], by operation id, in order.
macro_rules! handler_table {
    ($($module:ident :: $handler:ident => $access:ident),* $(,)?) => {
        const HANDLERS: &[(&str, Access, fn(Route) -> Route)] = &[$((
            stringify!($handler),
            crate::operations::$access,
            |route| route.to($module::$handler),
        )),*];
    };
}
crate::operations::operations!(handler_table);

/// One operation of the JSON API: `method` on `path`, answered by the handler `to` attaches.
pub(crate) struct Operation {
    /// The path as the OpenAPI document writes it (`{name}` for a parameter); it is mounted
    /// with and without its trailing slash.
    pub(crate) path: String,
    pub(crate) method: Method,
    /// Who may call it.
    pub(crate) access: Access,
    /// The handler's name, its `operationId`.
    pub(crate) id: &'static str,
    /// Attaches the handler: `|route| route.to(handler)`.
    to: fn(Route) -> Route,
}

/// The operations in [`crate::operations`]' order, with the method and path the document gives each.
pub(crate) static API: LazyLock<Vec<Operation>> =
    LazyLock::new(|| match crate::openapi::VALUE.as_ref() {
        Ok(document) => route_table(document),
        Err(err) => {
            tracing::error!(error = %err, "the OpenAPI document could not be built: no API routes");
            Vec::new()
        }
    });

/// Matches each handler to its operation in `document` by `operationId`. A handler the
/// document lacks is left out (the tests below make sure there is none).
fn route_table(document: &Value) -> Vec<Operation> {
    let mut found: Vec<(&str, String, Method)> = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let (Some(id), Ok(method)) = (
                operation["operationId"].as_str(),
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()),
            ) else {
                continue;
            };
            found.push((id, path.clone(), method));
        }
    }
    HANDLERS
        .iter()
        .filter_map(|&(id, access, to)| {
            let (_, path, method) = found.iter().find(|(found, ..)| *found == id)?;
            Some(Operation {
                path: path.clone(),
                method: method.clone(),
                access,
                id,
                to,
            })
        })
        .collect()
}

/// One operation of the JSON API as declared: for tests and tools that walk the route table.
#[derive(Clone, Debug)]
pub struct DeclaredOperation {
    /// The HTTP method.
    pub method: Method,
    /// The path as the OpenAPI document writes it (`{name}` for a parameter).
    pub path: String,
    /// The handler's name, its `operationId`.
    pub operation_id: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Every operation [`configure`] mounts, in order, with who may call it.
#[must_use]
pub fn declared_operations() -> Vec<DeclaredOperation> {
    API.iter()
        .map(|op| DeclaredOperation {
            method: op.method.clone(),
            path: op.path.clone(),
            operation_id: op.id,
            access: op.access,
        })
        .collect()
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
    cfg.app_data(web::Data::new(meta::Document(&crate::openapi::DOCUMENT)));
    // One resource per path, in the table's order, with each of its methods.
    let mut mounted: Vec<&str> = Vec::new();
    for operation in API.iter() {
        if mounted.contains(&operation.path.as_str()) {
            continue;
        }
        mounted.push(&operation.path);
        mount(cfg, &operation.path, |resource| {
            let on_path = || API.iter().filter(|other| other.path == operation.path);
            // What the extractors enforce: each method's declared access.
            let access = MountedAccess(
                on_path()
                    .map(|other| (other.method.clone(), other.access))
                    .collect(),
            );
            on_path().fold(resource.app_data(access), |resource, other| {
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
            .map(|op| (op.path.clone(), op.method.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn every_declared_handler_is_mounted_at_its_documented_operation() {
        assert_eq!(
            API.len(),
            HANDLERS.len(),
            "a declared handler has no operation in the document"
        );
        // The table keeps the declaration's order: the batch endpoint before the trace ids.
        let position = |path: &str| {
            API.iter()
                .position(|op| op.path == path && op.method == Method::GET)
                .unwrap()
        };
        assert!(position("/api/v1/traces/batch/") < position("/api/v1/traces/{trace_id}/"));
    }

    #[test]
    fn a_handler_the_document_lacks_is_left_out() {
        let document =
            serde_json::json!({"paths": {"/healthz": {"get": {"operationId": "healthz"}}}});
        let table = route_table(&document);
        assert_eq!(table.len(), 1);
        assert_eq!(
            (table[0].path.as_str(), &table[0].method),
            ("/healthz", &Method::GET)
        );
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
