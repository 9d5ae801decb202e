//! Ids and paths: odd trace ids, key ids and paths, trailing slashes.

use super::*;

pub(super) fn ids_and_paths(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    let long = "t".repeat(4096);
    for (what, id) in [
        ("unknown trace", "no-such-trace".to_owned()),
        ("another account's trace", ctx.bob_trace.clone()),
        ("traversal-ish", "..%2F..%2Fetc%2Fpasswd".to_owned()),
        ("encoded slash", "campaign%2F..".to_owned()),
        ("4096-character id", long),
        ("quote and angle brackets", "%22%3Cscript%3E".to_owned()),
        ("SQL-ish", "x'%20OR%20'1'%3D'1".to_owned()),
    ] {
        cases.push(
            Case::get(format!("trace: {what}"), format!("{TRACES}{id}/"))
                .key(&ctx.read)
                .err(404, "not_found"),
        );
    }
    for (what, id) in [("NUL", "%00"), ("invalid UTF-8", "%FF%FE")] {
        cases.push(
            Case::get(format!("trace: {what} in the id"), format!("{TRACES}{id}/"))
                .key(&ctx.read)
                .err_either((404, "not_found"), (400, "bad_request")),
        );
    }
    for (what, query) in [
        ("limit 0", "limit=0"),
        ("limit 101", "limit=101"),
        ("limit -1", "limit=-1"),
        ("limit not a number", "limit=ten"),
        ("garbage cursor", "cursor=garbage"),
        ("NUL cursor", "cursor=%00"),
        ("unknown parameter", "order=asc"),
        ("invalid UTF-8 in the query", "cursor=%FF"),
    ] {
        cases.push(
            Case::get(format!("trace list: {what}"), format!("{TRACES}?{query}"))
                .key(&ctx.read)
                .err(400, "bad_request"),
        );
    }
    cases.push(
        Case::get(
            "trace events: garbage cursor",
            format!("{TRACES}campaign/?cursor=garbage"),
        )
        .key(&ctx.read)
        .err(400, "bad_request"),
    );
    cases.push(
        Case::get(
            "trace events: limit 0",
            format!("{TRACES}campaign/?limit=0"),
        )
        .key(&ctx.read)
        .err(400, "bad_request"),
    );
    for (what, id) in [
        ("another account's key", ctx.bob_key_id.clone()),
        ("not a number", "abc".to_owned()),
        ("negative", "-1".to_owned()),
        ("zero", "0".to_owned()),
        ("past i64", "99999999999999999999999".to_owned()),
        ("exponent", "1e3".to_owned()),
        ("NUL", "%00".to_owned()),
    ] {
        cases.push(
            Case::new(
                format!("key delete: {what}"),
                Method::DELETE,
                format!("{KEYS}{id}/"),
            )
            .key(&ctx.admin)
            .err(404, "not_found"),
        );
    }
    cases.push(
        Case::new(
            "key delete: our key id with another account's admin key",
            Method::DELETE,
            format!("{KEYS}{}/", ctx.revoked_id),
        )
        .key(&ctx.bob_admin)
        .err(404, "not_found"),
    );
    for (what, method, path) in [
        (
            "unknown route",
            Method::GET,
            "/api/v1/nothing-here/".to_owned(),
        ),
        ("unknown version", Method::GET, "/api/v2/traces/".to_owned()),
        ("wrong method on usage", Method::DELETE, USAGE.to_owned()),
        ("wrong method on keys", Method::PATCH, KEYS.to_owned()),
        ("wrong method on ping", Method::POST, PING.to_owned()),
        ("GET on OTLP", Method::GET, OTLP_TRACES.to_owned()),
        ("double slash", Method::GET, "/api/v1//traces/".to_owned()),
    ] {
        cases.push(
            Case::new(format!("path: {what}"), method, path)
                .key(&ctx.all)
                .err(404, "not_found"),
        );
    }
    cases.push(
        Case::get(
            "trace events of another account, by Bob",
            format!("{TRACES}campaign/"),
        )
        .key(&ctx.bob_read)
        .err(404, "not_found"),
    );
    cases
}
