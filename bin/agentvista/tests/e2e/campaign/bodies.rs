//! Bodies and JSON: malformed, oversized, nested, odd values, on every JSON endpoint.

use super::*;

pub(super) fn bodies_and_json(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    let malformed: [(&str, &[u8]); 9] = [
        ("empty body", b""),
        ("not JSON", b"not json"),
        ("truncated", b"{\"a\": "),
        ("array", b"[]"),
        ("null", b"null"),
        ("string", b"\"text\""),
        ("trailing garbage", b"{} x"),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}"),
        ("lone surrogate", b"{\"name\": \"\\ud800\"}"),
    ];
    for (label, method, path, key, _) in json_endpoints(ctx) {
        for (what, body) in malformed {
            // Every login attempt spends the client address's throttle, which the whole
            // campaign shares: a few cases make the point there (the body reader is shared).
            if path == LOGIN && !matches!(what, "empty body" | "not JSON" | "trailing garbage") {
                continue;
            }
            cases.push(
                endpoint_case(format!("{label}: {what}"), &method, path, key.as_ref())
                    .json(body)
                    .err(400, "bad_request"),
            );
        }
        cases.push(
            endpoint_case(
                format!("{label}: unknown field"),
                &method,
                path,
                key.as_ref(),
            )
            .json(br#"{"surprise": 1}"#.to_vec())
            .err(400, "bad_request"),
        );
    }

    // Login and setup.
    for (what, body) in [
        ("email a number", json!({"email": 5, "password": PASSWORD})),
        ("password null", json!({"email": EMAIL, "password": null})),
        ("no password", json!({"email": EMAIL})),
        (
            "unknown field",
            json!({"email": EMAIL, "password": PASSWORD, "remember": true}),
        ),
        (
            "NUL in email",
            json!({"email": "ada\u{0}@example.com", "password": PASSWORD}),
        ),
        (
            "NUL in password",
            json!({"email": EMAIL, "password": "correct\u{0}horse"}),
        ),
    ] {
        cases.push(
            Case::post(format!("login: {what}"), LOGIN)
                .json(body.to_string())
                .err(400, "bad_request"),
        );
    }
    for (what, email, password) in [
        ("wrong password", EMAIL, "not the password at all"),
        ("unknown e-mail", "nobody@example.com", PASSWORD),
    ] {
        cases.push(
            Case::post(format!("login: {what}"), LOGIN)
                .json(json!({"email": email, "password": password}).to_string())
                .err(401, "invalid_credentials"),
        );
    }
    // Once a user exists, setup is gone whatever is sent (see `first_run_setup_takes_only_json`
    // for the endpoint while it exists).
    for (what, content_type, encoding) in [
        ("valid body", Some(JSON), None),
        ("no Content-Type", None, None),
        ("Content-Encoding br", Some(JSON), Some("br")),
    ] {
        let mut case = Case::post(format!("setup after the first user: {what}"), SETUP);
        if let Some(content_type) = content_type {
            case = case.header("content-type", content_type);
        }
        if let Some(encoding) = encoding {
            case = case.header("content-encoding", encoding);
        }
        cases.push(case.raw(setup_body()).err(404, "not_found"));
    }

    // Key creation.
    for (what, body) in [
        ("empty name", json!({"name": "", "scopes": ["read"]})),
        ("blank name", json!({"name": "   ", "scopes": ["read"]})),
        (
            "101-character name",
            json!({"name": "n".repeat(101), "scopes": ["read"]}),
        ),
        ("name a number", json!({"name": 5, "scopes": ["read"]})),
        ("no name", json!({"scopes": ["read"]})),
        ("no scopes", json!({"name": "x"})),
        ("empty scopes", json!({"name": "x", "scopes": []})),
        ("unknown scope", json!({"name": "x", "scopes": ["owner"]})),
        ("scopes a string", json!({"name": "x", "scopes": "read"})),
        ("scope a number", json!({"name": "x", "scopes": [1]})),
        (
            "expiry in the past",
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
        ),
        (
            "expiry not a time",
            json!({"name": "x", "scopes": ["read"], "expires_at": "tomorrow"}),
        ),
        (
            "expiry a number",
            json!({"name": "x", "scopes": ["read"], "expires_at": 5}),
        ),
        (
            "NUL in name",
            json!({"name": "a\u{0}b", "scopes": ["read"]}),
        ),
    ] {
        cases.push(
            Case::post(format!("key create: {what}"), KEYS)
                .key(&ctx.admin)
                .json(body.to_string())
                .err(400, "bad_request"),
        );
    }

    // Spend cap.
    for (what, body) in [
        ("negative", r#"{"spend_cap_cents": -1}"#),
        ("fraction", r#"{"spend_cap_cents": 2.5}"#),
        ("string", r#"{"spend_cap_cents": "10"}"#),
        ("boolean", r#"{"spend_cap_cents": true}"#),
        ("1e30", r#"{"spend_cap_cents": 1e30}"#),
        (
            "null and an unknown field",
            r#"{"spend_cap_cents": null, "x": 1}"#,
        ),
    ] {
        cases.push(
            Case::new(format!("spend cap: {what}"), Method::PUT, CAP)
                .key(&ctx.admin)
                .json(body)
                .err(400, "bad_request"),
        );
    }
    cases.push(
        Case::new("spend cap: 100 sets a cap", Method::PUT, CAP)
            .key(&ctx.admin)
            .json(r#"{"spend_cap_cents": 100}"#)
            .ok(200)
            .with_field("spend_cap_cents", json!(100)),
    );
    cases.push(
        Case::new("spend cap: empty object", Method::PUT, CAP)
            .key(&ctx.admin)
            .json("{}")
            .err(400, "bad_request"),
    );
    cases.push(
        Case::get("spend cap: kept after the refused empty object", USAGE)
            .key(&ctx.read)
            .ok(200)
            .with_field("spend_cap_cents", json!(100)),
    );
    cases.push(
        Case::new("spend cap: null removes the cap", Method::PUT, CAP)
            .key(&ctx.admin)
            .json(cap_body())
            .ok(200)
            .with_field("spend_cap_cents", Value::Null),
    );

    // Batches.
    // 300 nested arrays inside an event's body: past any sane recursion limit.
    let nested = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let deep = String::from_utf8(batch_of(&json!({"body": {"a": "DEEP"}})))
        .unwrap()
        .replace("\"DEEP\"", &nested)
        .into_bytes();
    let long = "x".repeat(257);
    let mut batches: Vec<(&str, Vec<u8>)> = vec![
        ("empty batch", br#"{"batch": []}"#.to_vec()),
        (
            "1001 events",
            json!({"batch": vec![event(&json!({})); 1001]})
                .to_string()
                .into(),
        ),
        ("batch an object", br#"{"batch": {}}"#.to_vec()),
        ("batch a string", br#"{"batch": "x"}"#.to_vec()),
        ("no batch", br#"{"events": []}"#.to_vec()),
        (
            "unknown top-level field",
            json!({"batch": [event(&json!({}))], "x": 1})
                .to_string()
                .into(),
        ),
        ("item an array", br#"{"batch": [[]]}"#.to_vec()),
        ("deeply nested body", deep),
    ];
    for (what, extra) in [
        ("unknown type", json!({"type": "spam"})),
        ("type a number", json!({"type": 5})),
        ("no type", json!({"type": null})),
        ("trace_id a number", json!({"trace_id": 5})),
        ("empty trace_id", json!({"trace_id": ""})),
        ("blank trace_id", json!({"trace_id": "   "})),
        ("257-character trace_id", json!({"trace_id": long})),
        ("257-character id", json!({"id": long})),
        ("id a number", json!({"id": 7})),
        ("empty name", json!({"name": ""})),
        ("timestamp not a time", json!({"timestamp": "yesterday"})),
        ("timestamp a number", json!({"timestamp": 1_764_244_800})),
        ("body a string", json!({"body": "text"})),
        ("body an array", json!({"body": [1]})),
        ("NUL in id", json!({"id": "\u{0}"})),
        ("NUL in trace_id", json!({"trace_id": "a\u{0}b"})),
        ("NUL in name", json!({"name": "x\u{0}"})),
        ("NUL in a body key", json!({"body": {"k\u{0}": 1}})),
        ("NUL in a body value", json!({"body": {"k": "v\u{0}"}})),
        (
            "NUL deep in the body",
            json!({"body": {"a": {"b": ["ok", "\u{0}"]}}}),
        ),
    ] {
        batches.push((what, batch_of(&extra)));
    }
    let nth_bad =
        json!({"batch": [event(&json!({})), event(&json!({})), event(&json!({"type": "spam"}))]});
    batches.push(("third event invalid", nth_bad.to_string().into_bytes()));
    for (what, body) in batches {
        cases.push(
            Case::post(format!("batch: {what}"), BATCH)
                .key(&ctx.write)
                .json(body)
                .err(400, "bad_request"),
        );
    }
    cases.push(
        Case::post("batch: an unknown item field is refused", BATCH)
            .key(&ctx.write)
            .json(batch_of(&json!({"future_field": {"x": 1}})))
            .err(400, "bad_request"),
    );
    cases
}
