//! Sessions and CSRF: cookies, tokens, logout, login and setup.

use super::*;

pub(super) fn sessions_and_csrf(ctx: &Ctx) -> Vec<Case> {
    let s = &ctx.session;
    let mut cases = vec![
        Case::post("login: valid", LOGIN)
            .json(login_body())
            .ok(200)
            .no_store(),
        Case::get("session: valid", SESSION)
            .cookie(s)
            .ok(200)
            .no_store(),
        Case::post("key create with the session", KEYS)
            .cookie(s)
            .csrf(s)
            .json(key_body())
            .ok(201)
            .no_store(),
        Case::post("key create with an admin key", KEYS)
            .key(&ctx.admin)
            .json(key_body())
            .ok(201)
            .no_store(),
        Case::post("batch with the session and its token", BATCH)
            .cookie(s)
            .csrf(s)
            .json(valid_batch())
            .ok(200),
        Case::get("usage with the session, no token needed to read", USAGE)
            .cookie(s)
            .ok(200),
    ];
    for (what, cookie) in [
        ("garbage", "av_session=garbage".to_owned()),
        ("empty", "av_session=".to_owned()),
        (
            "64 hex never issued",
            format!("av_session={}", "ab".repeat(32)),
        ),
        ("4 KiB", format!("av_session={}", "z".repeat(4096))),
        ("logged out", ctx.stale_cookie.clone()),
    ] {
        for (method, path) in [
            (Method::GET, USAGE),
            (Method::GET, SESSION),
            (Method::POST, BATCH),
        ] {
            let mut case = Case::new(
                format!("{what} cookie: {method} {path}"),
                method.clone(),
                path,
            )
            .header("cookie", &cookie)
            .header("x-csrf-token", &ctx.session.csrf);
            if method == Method::POST {
                case = case.json(valid_batch());
            }
            cases.push(case.err(401, "invalid_session"));
        }
    }
    let unsafe_requests: Vec<(Method, String, Option<Vec<u8>>)> = vec![
        (Method::POST, KEYS.into(), Some(key_body())),
        (Method::PUT, CAP.into(), Some(cap_body())),
        (Method::POST, BATCH.into(), Some(valid_batch())),
        (Method::DELETE, format!("{KEYS}{}/", ctx.revoked_id), None),
        (Method::POST, LOGOUT.into(), None),
    ];
    for (method, path, body) in &unsafe_requests {
        for (what, token) in [
            ("no", None),
            ("wrong", Some("not-the-token".to_owned())),
            ("another session's", Some(ctx.bob_session.csrf.clone())),
            ("empty", Some(String::new())),
        ] {
            let mut case = Case::new(
                format!("{what} CSRF token: {method} {path}"),
                method.clone(),
                path.clone(),
            )
            .cookie(s);
            if let Some(token) = token {
                case = case.header("x-csrf-token", token);
            }
            if let Some(body) = body {
                case = case.json(body.clone());
            }
            cases.push(case.err(403, "csrf_failed"));
        }
    }
    cases.push(
        Case::post("OTLP with the session, no token", OTLP_TRACES)
            .cookie(s)
            .header("content-type", JSON)
            .raw(otlp_spans_json(&[span_ids(902)], &json!([])))
            .carries(1)
            .otlp_err(403, 7),
    );
    for (method, path) in [(Method::GET, SESSION), (Method::POST, LOGOUT)] {
        cases.push(
            Case::new(format!("API key on session-only {path}"), method, path)
                .key(&ctx.all)
                .err(403, "session_required"),
        );
    }
    cases.push(Case::get("session without credentials", SESSION).err(401, "missing_api_key"));
    cases
}
