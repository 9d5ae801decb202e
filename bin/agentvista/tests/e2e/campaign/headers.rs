//! Headers and credentials: every way a request can present, or fail to present, a key or a session.

use super::*;

pub(super) fn headers_and_auth(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    // Every authenticated endpoint, without credentials and with each flavour of bad key.
    // Bodies that would be accepted: only the credentials are at fault.
    let endpoints: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::GET, PING.into(), None),
        (Method::GET, KEYS.into(), None),
        (Method::POST, KEYS.into(), Some(key_body())),
        (Method::DELETE, format!("{KEYS}{}/", ctx.revoked_id), None),
        (Method::GET, USAGE.into(), None),
        (Method::PUT, CAP.into(), Some(cap_body())),
        (Method::GET, TRACES.into(), None),
        (Method::GET, format!("{TRACES}campaign/"), None),
        (Method::POST, BATCH.into(), Some(valid_batch())),
    ];
    let request = |name: String, (method, path, body): &(Method, String, Option<Vec<u8>>)| {
        let case = Case::new(name, method.clone(), path);
        match body {
            Some(body) => case.json(body.clone()),
            None => case,
        }
    };
    for endpoint in &endpoints {
        cases.push(
            request(
                format!("no credentials: {} {}", endpoint.0, endpoint.1),
                endpoint,
            )
            .err(401, "missing_api_key")
            .with_header("www-authenticate", WWW_MISSING),
        );
    }
    let bad_keys: Vec<(&str, Vec<u8>)> = vec![
        ("other scheme", format!("Basic {}", ctx.read).into_bytes()),
        ("empty token", b"Bearer".to_vec()),
        ("blank token", b"Bearer    ".to_vec()),
        ("malformed", b"Bearer av_123".to_vec()),
        (
            "bad checksum",
            format!("Bearer {}", ctx.bad_checksum).into_bytes(),
        ),
        ("unknown", format!("Bearer {}", ctx.unknown).into_bytes()),
        ("revoked", format!("Bearer {}", ctx.revoked).into_bytes()),
        ("expired", format!("Bearer {}", ctx.expired).into_bytes()),
        (
            "trailing byte",
            format!("Bearer {}x", ctx.read).into_bytes(),
        ),
        (
            "upper-cased",
            format!("Bearer {}", ctx.read.to_uppercase()).into_bytes(),
        ),
        ("non-UTF-8", b"Bearer av_\xff\xfe\x80".to_vec()),
        (
            "4 KiB token",
            format!("Bearer av_{}", "a".repeat(4096)).into_bytes(),
        ),
        ("key in the scheme", ctx.read.clone().into_bytes()),
    ];
    for (i, (what, value)) in bad_keys.iter().enumerate() {
        // Each flavour on ping, and on one more endpoint in turn.
        let other = &endpoints[1 + i % (endpoints.len() - 1)];
        for endpoint in [&endpoints[0], other] {
            cases.push(
                request(
                    format!("{what} key: {} {}", endpoint.0, endpoint.1),
                    endpoint,
                )
                .header("authorization", value)
                .err(401, "invalid_api_key")
                .with_header("www-authenticate", WWW_INVALID),
            );
        }
    }
    // A bad key beside a good cookie: the cookie is ignored.
    cases.push(
        Case::get("bad key with a valid session cookie", USAGE)
            .key(&ctx.unknown)
            .cookie(&ctx.session)
            .err(401, "invalid_api_key"),
    );
    // Two Authorization headers: malformed, whatever they hold (the contract says so).
    type Twice<'a> = (&'a str, Method, &'a str, &'a str, &'a str, Option<Vec<u8>>);
    let twice: Vec<Twice> = vec![
        (
            "same key twice",
            Method::GET,
            PING,
            &ctx.read,
            &ctx.read,
            None,
        ),
        (
            "good then bad",
            Method::GET,
            PING,
            &ctx.read,
            &ctx.unknown,
            None,
        ),
        (
            "bad then good",
            Method::GET,
            PING,
            &ctx.unknown,
            &ctx.read,
            None,
        ),
        (
            "read then write",
            Method::GET,
            USAGE,
            &ctx.read,
            &ctx.write,
            None,
        ),
        (
            "two write keys on batch",
            Method::POST,
            BATCH,
            &ctx.write,
            &ctx.write,
            Some(valid_batch()),
        ),
        (
            "two admin keys on key create",
            Method::POST,
            KEYS,
            &ctx.admin,
            &ctx.admin,
            Some(key_body()),
        ),
    ];
    for (what, method, path, first, second, body) in twice {
        let mut case = Case::new(format!("two Authorization headers: {what}"), method, path)
            .key(first)
            .key(second);
        if let Some(body) = body {
            case = case.json(body);
        }
        cases.push(case.err(400, "bad_request"));
    }
    cases.push(
        Case::post("two Authorization headers on OTLP", OTLP_TRACES)
            .key(&ctx.write)
            .key(&ctx.write)
            .header("content-type", JSON)
            .raw(otlp_spans_json(&[span_ids(900)], &json!([])))
            .carries(1)
            .otlp_err(400, 3),
    );
    // Wrong scope: 403 with the scope named.
    for (key, method, path, scope, body) in [
        (&ctx.write, Method::GET, PING, "read", None),
        (&ctx.write, Method::GET, USAGE, "read", None),
        (&ctx.admin, Method::GET, TRACES, "read", None),
        (&ctx.read, Method::GET, KEYS, "admin", None),
        (&ctx.read, Method::POST, KEYS, "admin", Some(key_body())),
        (&ctx.read, Method::PUT, CAP, "admin", Some(cap_body())),
        (&ctx.read, Method::POST, BATCH, "write", Some(valid_batch())),
        (
            &ctx.admin,
            Method::POST,
            BATCH,
            "write",
            Some(valid_batch()),
        ),
    ] {
        let mut case = Case::new(
            format!("scope {scope} missing: {method} {path}"),
            method,
            path,
        )
        .key(key);
        if let Some(body) = body {
            case = case.json(body);
        }
        cases.push(
            case.err(403, "insufficient_scope")
                .with_header("www-authenticate", format!(r#"scope="{scope}""#)),
        );
    }
    // A well-formed random key with a 5 MiB body: refused from the headers, before any byte.
    for (path, content_type) in [
        (BATCH, JSON),
        (KEYS, JSON),
        (CAP, JSON),
        (OTLP_TRACES, PROTOBUF),
    ] {
        let method = if path == CAP {
            Method::PUT
        } else {
            Method::POST
        };
        let case = Case::new(
            format!("random key, 5 MiB declared, body never sent: {path}"),
            method,
            path,
        )
        .key(&ctx.unknown)
        .header("content-type", content_type)
        .headers_only(MAX_BODY);
        cases.push(if path == OTLP_TRACES {
            case.otlp_err(401, 16)
        } else {
            case.err(401, "invalid_api_key")
        });
    }
    cases
}
