//! Content encodings and content types: what each endpoint takes, and the answers for the rest.

use super::*;

pub(super) fn encodings(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    // Encodings no JSON endpoint takes: 415, whatever the body.
    for (label, method, path, key, body) in json_endpoints(ctx) {
        for encoding in ["br", "zstd", "x-unknown"] {
            cases.push(
                endpoint_case(
                    format!("{label}: Content-Encoding {encoding}"),
                    &method,
                    path,
                    key.as_ref(),
                )
                .header("content-encoding", encoding)
                .json(body.clone())
                .err(415, "unsupported_media_type"),
            );
        }
    }
    let batch = valid_batch();
    let half = batch.len() / 2;
    let mut multi = wire::gzip(&batch[..half]);
    multi.extend_from_slice(&wire::gzip(&batch[half..]));
    let mut trailing = wire::gzip(&batch);
    trailing.extend_from_slice(b"garbage after the gzip member");
    let mut corrupt = wire::gzip(&batch);
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    // 6.2 MiB of zeros from about 40 KiB.
    let bomb = wire::gzip_bomb(MAX_BODY / 258 + 4096);
    let gz = |name: &str, encoding: &str, body: Vec<u8>| {
        Case::post(format!("batch: {name}"), BATCH)
            .key(&ctx.write)
            .header("content-encoding", encoding)
            .json(body)
    };
    cases.extend([
        gz("gzip", "gzip", wire::gzip(&batch)).ok(200),
        gz("x-gzip", "x-gzip", wire::gzip(&batch)).ok(200),
        gz("deflate", "deflate", wire::zlib(&batch)).ok(200),
        gz("identity", "identity", batch.clone()).ok(200),
        gz("multi-member gzip", "gzip", multi).ok(200),
        gz("gzip with trailing garbage", "gzip", trailing.clone()).err(400, "bad_request"),
        gz("corrupt gzip", "gzip", corrupt).err(400, "bad_request"),
        gz("plain JSON labelled gzip", "gzip", batch.clone()).err(400, "bad_request"),
        gz("gzip labelled deflate", "deflate", wire::gzip(&batch)).err(400, "bad_request"),
        gz("truncated gzip", "gzip", wire::gzip(&batch)[..20].to_vec()).err(400, "bad_request"),
        gz("gzip of non-JSON", "gzip", wire::gzip(b"\x00\x01binary")).err(400, "bad_request"),
        gz("gzip bomb", "gzip", bomb.clone()).err(413, "payload_too_large"),
        gz(
            "deflate bomb",
            "deflate",
            wire::zlib_bomb(MAX_BODY / 258 + 4096),
        )
        .err(413, "payload_too_large"),
    ]);
    cases.push(
        Case::post("OTLP: gzip bomb", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .header("content-encoding", "gzip")
            .raw(bomb)
            .otlp_err(413, 3),
    );
    let mut otlp_trailing = wire::gzip(&otlp_logs_json(1, "trailing"));
    otlp_trailing.extend_from_slice(b"garbage after the gzip member");
    cases.push(
        Case::post("OTLP: gzip with trailing garbage", OTLP_LOGS)
            .key(&ctx.write)
            .header("content-type", JSON)
            .header("content-encoding", "gzip")
            .raw(otlp_trailing)
            .carries(1)
            .otlp_err(400, 3),
    );
    for encoding in ["br", "zstd", "compress"] {
        cases.push(
            Case::post(format!("OTLP: Content-Encoding {encoding}"), OTLP_LOGS)
                .key(&ctx.write)
                .header("content-type", JSON)
                .header("content-encoding", encoding)
                .raw(otlp_logs_json(1, "x"))
                .carries(1)
                .otlp_err(415, 3),
        );
    }
    // Declared bodies over the limit: refused from the headers (413), before any byte.
    for (path, key, content_type) in [
        (BATCH, Some(&ctx.write), JSON),
        (KEYS, Some(&ctx.admin), JSON),
        (OTLP_TRACES, Some(&ctx.write), PROTOBUF),
    ] {
        let case = endpoint_case(
            format!("{path}: 5 MiB + 1 declared"),
            &Method::POST,
            path,
            key,
        )
        .header("content-type", content_type)
        .headers_only(MAX_BODY + 1);
        cases.push(if path == OTLP_TRACES {
            case.otlp_err(413, 3)
        } else {
            case.err(413, "payload_too_large")
        });
    }
    cases
}

pub(super) fn content_types(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    for (label, method, path, key, body) in json_endpoints(ctx) {
        cases.push(
            endpoint_case(
                format!("{label}: no Content-Type"),
                &method,
                path,
                key.as_ref(),
            )
            .raw(body.clone())
            .err(415, "unsupported_media_type"),
        );
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            if path == LOGIN && content_type != "text/plain" {
                continue;
            }
            cases.push(
                endpoint_case(
                    format!("{label}: Content-Type {content_type}"),
                    &method,
                    path,
                    key.as_ref(),
                )
                .header("content-type", content_type)
                .raw(body.clone())
                .err(415, "unsupported_media_type"),
            );
        }
    }
    for content_type in ["application/json; charset=utf-8", "APPLICATION/JSON"] {
        cases.push(
            Case::post(format!("batch: Content-Type {content_type}"), BATCH)
                .key(&ctx.write)
                .header("content-type", content_type)
                .raw(valid_batch())
                .ok(200),
        );
    }
    for (what, content_type) in [
        ("no Content-Type", None),
        ("text/plain", Some("text/plain")),
        ("application/grpc", Some("application/grpc")),
    ] {
        let mut case = Case::post(format!("OTLP: {what}"), OTLP_TRACES).key(&ctx.write);
        if let Some(content_type) = content_type {
            case = case.header("content-type", content_type);
        }
        cases.push(
            case.raw(otlp_spans_json(&[span_ids(901)], &json!([])))
                .carries(1)
                .otlp_err(415, 3),
        );
    }
    cases
}
