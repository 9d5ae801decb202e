#![doc = include_str!("../README.md")]

pub mod auth;
mod body;
mod budget;
mod config;
mod dashboard;
mod error;
mod handlers;
mod log;
mod openapi;
mod operations;
mod proxies;
mod rate_limit;
mod routes;
mod schema;
mod span_fields;
mod state;
mod telemetry;
mod throttle;
mod trace_page;
mod usage;

pub use agentvista_ingest::Caps;
pub use auth::{Auth, KeyAuth, KeyLookup, Principal, SessionOnly};
pub use body::{Body, BodyLimits};
pub use budget::{BudgetLimits, Grant, MemoryBudget, Overloaded};
pub use config::HttpConfig;
pub use error::{ApiError, ErrorBody, ErrorCode, error_chain};
pub use handlers::keys::{CreatedKey, Creator, KeyObject};
pub use log::{REQUEST_ID_HEADER, RequestId, request_log};
pub use openapi::openapi;
pub use proxies::{BadProxy, TrustedProxies};
pub use routes::{DeclaredOperation, configure, declared_operations};
pub use span_fields::fill_span_fields;
pub use state::AppState;
pub use telemetry::describe_metrics;
pub use throttle::{Bucket, ThrottleConfig};
