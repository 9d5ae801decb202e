//! The one declaration of the JSON API's operations, which both the route table
//! ([`crate::routes`]) and the OpenAPI document ([`crate::openapi`]) are made from. It names
//! handlers only by their paths in `crate::handlers`, so that it depends on no other module.

/// Every operation of the JSON API, in the order actix matches them, as `module::handler`
/// (the handler's name is its `operationId`); hands the list to `$then!`. Adding an endpoint
/// is a line here and its annotated handler: the route table and the OpenAPI document both
/// come from this list. Mounting a handler anywhere else would escape the document; the
/// dashboard's HTML pages are the only routes outside it.
macro_rules! operations {
    ($then:ident) => {
        $then! {
            health::healthz,
            health::readyz,
            meta::openapi,
            setup::setup,
            session::login,
            session::logout,
            session::current_session,
            password::change_password,
            keys::ping,
            keys::list_api_keys,
            keys::create_api_key,
            keys::revoke_api_key,
            keys::roll_api_key,
            leaks::report_leaked_keys,
            audit::audit_log,
            // Before "/api/v1/traces/{trace_id}/", which would otherwise take "batch" for an
            // id; a GET there still reads the trace whose id is "batch".
            ingest::ingest_batch,
            traces::get_trace_batch,
            ingest::otlp_traces,
            ingest::otlp_logs,
            ingest::otlp_metrics,
            traces::list_traces,
            traces::get_trace,
            usage::get_usage,
            usage::get_daily_usage,
            usage::set_spend_cap,
            usage::set_plan,
        }
    };
}
pub(crate) use operations;
