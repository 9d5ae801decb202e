//! `POST /api/v1/keys/report-leak/`: whoever finds keys where they should not be — a secret
//! scanner, a stranger — reports them without credentials, and every key among them is
//! revoked at once, as GitHub revokes the tokens its scanning partners report.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::handlers::audit;
use crate::{ApiError, AppState, Body};

/// The most strings one report may hold.
pub(crate) const MAX_REPORTED_KEYS: usize = 100;

/// The longest `source` kept, in characters.
pub(crate) const MAX_SOURCE_CHARS: usize = 2048;

/// The largest report body: 100 keys of 50 characters and a source, with room for JSON's
/// quoting and spaces. Read before anything else, and without credentials, so kept small.
const MAX_REPORT_BYTES: usize = 32 * 1024;

/// The body of `POST /api/v1/keys/report-leak/`.
// No `Debug`: the strings may be live keys.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keys": ["av_0123abcd_NotARealKeyJustTheShapeOfOne0000000000"], "source": "https://github.com/acme/app/blob/3f2a1c/config.py#L7"}))]
pub(crate) struct LeakReport {
    /// Strings found where they should not be: at most 100. Anything may be sent; only the
    /// ones that are keys do anything.
    #[schema(max_items = 100)]
    keys: Vec<String>,
    /// Where they were found, e.g. the URL of a public commit; at most 2048 characters. It is
    /// written to each revoked key's audit log.
    #[serde(default)]
    #[schema(max_length = 2048)]
    source: Option<String>,
}

/// The answer to every report: the same whatever the strings were.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReportReceived {
    /// Always `received`.
    #[schema(value_type = String, pattern = "^received$")]
    status: &'static str,
}

/// Reports leaked keys. No credentials: a key found in public is reported by whoever found it.
///
/// Every string that is a key is revoked at once — all of them in one transaction, behind one
/// revocation barrier (the 202 comes once no replica accepts any of them; a key revoked before
/// the report is waited for too) — and its account's audit log gets a `key.reported_leaked`
/// entry with the `source` and `already_revoked`. The answer is the same 202 whatever the
/// strings were — malformed, unknown, revoked, or live until now — so the endpoint tells no
/// one whether a string was a key; a key it confirms is dead by then. Throttled per client
/// address (429 `too_many_attempts`).
#[utoipa::path(
    post,
    path = "/api/v1/keys/report-leak/",
    tag = "keys",
    request_body(content = LeakReport, content_type = "application/json"),
    responses(
        (status = 202, description = "Received; every key among the strings is revoked on every replica.", body = ReportReceived),
        crate::schema::ThrottledErrors,
    ),
)]
pub(crate) async fn report_leaked_keys(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // Before the body is read: a flood of reports costs its sender, not the key storage.
    state
        .throttles
        .leak_report(state.config.trusted_proxies.client_of(&req))?;
    // serde's messages quote the values they refuse, which may be keys: one message for all.
    let report: LeakReport =
        body.at_most(MAX_REPORT_BYTES)
            .json()
            .await
            .map_err(|err| match err {
                ApiError::BadRequest(_) => ApiError::BadRequest(
                    "body: expected {\"keys\": [at most 100 strings], \"source\"?: string}".into(),
                ),
                other => other,
            })?;
    if report.keys.len() > MAX_REPORTED_KEYS {
        return Err(ApiError::BadRequest(format!(
            "keys: at most {MAX_REPORTED_KEYS} strings a report"
        )));
    }
    if report
        .source
        .as_ref()
        .is_some_and(|source| source.chars().count() > MAX_SOURCE_CHARS)
    {
        return Err(ApiError::BadRequest(format!(
            "source: at most {MAX_SOURCE_CHARS} characters"
        )));
    }
    // A scanner may paste the matched line as the source: keys in it are cut to their prefix.
    let source = report
        .source
        .as_deref()
        .map(|s| agentvista_keys::redact_keys(s).into_owned());
    let candidates: Vec<&str> = report.keys.iter().map(String::as_str).collect();
    let origin = audit::origin(&state, &req);
    let reported = state
        .keys
        .revoke_reported(&candidates, source.as_deref(), &origin)
        .await?;
    for key in reported.iter().filter(|key| !key.already_revoked) {
        tracing::warn!(
            prefix = %key.record.prefix,
            source = ?source,
            "API key revoked: reported as leaked"
        );
    }
    Ok(HttpResponse::Accepted().json(ReportReceived { status: "received" }))
}

#[cfg(test)]
mod tests {
    use agentvista_keys::ApiKey;

    #[test]
    fn keys_in_a_source_are_cut_to_their_prefix_and_the_rest_kept() {
        let key = ApiKey::generate().unwrap();
        let secret = key.expose_secret();
        let text = format!("https://x.test/a.py#L3 KEY={secret}; av_nothing é {secret}");
        let redacted = agentvista_keys::redact_keys(&text);
        assert!(!redacted.contains(&secret[12..]), "{redacted}");
        let prefix = &secret[..11];
        assert_eq!(
            redacted,
            format!(
                "https://x.test/a.py#L3 KEY={prefix}_[REDACTED]; av_nothing é {prefix}_[REDACTED]"
            )
        );
        assert_eq!(agentvista_keys::redact_keys("no key here"), "no key here");
    }
}
