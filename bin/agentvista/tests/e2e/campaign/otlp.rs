//! OTLP: protobuf and JSON bodies, their caps and their answers.

use super::*;

pub(super) fn otlp(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    let json_case = |name: String, path: &str, body: Vec<u8>| {
        Case::post(name, path)
            .key(&ctx.write)
            .header("content-type", JSON)
            .raw(body)
    };
    let spans = |from: u64, n: u64| (from..from + n).map(span_ids).collect::<Vec<_>>();
    let proto_span = |n: u64| {
        let trace: [u8; 16] = (0xcb00_0000_u128 + u128::from(n)).to_be_bytes();
        let span: [u8; 8] = (n + 1).to_be_bytes();
        (trace, span)
    };
    cases.extend([
        json_case(
            "OTLP traces: one span".into(),
            OTLP_TRACES,
            otlp_spans_json(&spans(1, 1), &json!([])),
        )
        .otlp_ok(1),
        json_case(
            "OTLP traces: trailing slash".into(),
            "/otlp/v1/traces/",
            otlp_spans_json(&spans(2, 3), &json!([])),
        )
        .otlp_ok(3),
        json_case(
            "OTLP traces: the same span again is a duplicate".into(),
            OTLP_TRACES,
            otlp_spans_json(&spans(1, 1), &json!([])),
        )
        .otlp_ok(0),
        json_case(
            "OTLP traces: empty request".into(),
            OTLP_TRACES,
            b"{}".to_vec(),
        )
        .otlp_ok(0),
        json_case(
            "OTLP logs: two records".into(),
            OTLP_LOGS,
            otlp_logs_json(2, "hello"),
        )
        .otlp_ok(2),
        json_case(
            "OTLP metrics: one point".into(),
            OTLP_METRICS,
            otlp_metrics_json(1, "tokens"),
        )
        .otlp_ok(1),
        Case::post("OTLP traces: protobuf", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .raw(wire::otlp_spans_proto(
                &[proto_span(1), proto_span(2)],
                "proto",
            ))
            .otlp_ok(2),
        Case::post("OTLP traces: gzipped protobuf", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .header("content-encoding", "gzip")
            .raw(wire::gzip(&wire::otlp_spans_proto(&[proto_span(3)], "gz")))
            .otlp_ok(1),
        json_case("OTLP logs: multi-member gzip".into(), OTLP_LOGS, {
            let body = otlp_logs_json(1, "multi");
            let mut multi = wire::gzip(&body[..10]);
            multi.extend(wire::gzip(&body[10..]));
            multi
        })
        .header("content-encoding", "gzip")
        .otlp_ok(1),
    ]);
    for path in [OTLP_TRACES, OTLP_LOGS, OTLP_METRICS] {
        let body = otlp_logs_json(1, "x");
        cases.push(
            Case::post(format!("OTLP {path}: no credentials"), path)
                .header("content-type", JSON)
                .raw(body.clone())
                .otlp_err(401, 16),
        );
        cases.push(
            Case::post(format!("OTLP {path}: unknown key"), path)
                .key(&ctx.unknown)
                .header("content-type", PROTOBUF)
                .raw(Vec::new())
                .otlp_err(401, 16),
        );
        cases.push(
            Case::post(format!("OTLP {path}: read key"), path)
                .key(&ctx.read)
                .header("content-type", JSON)
                .raw(body)
                .otlp_err(403, 7),
        );
        cases.push(
            json_case(
                format!("OTLP {path}: not JSON"),
                path,
                b"{not json".to_vec(),
            )
            .otlp_err(400, 3),
        );
        cases.push(
            Case::post(format!("OTLP {path}: not protobuf"), path)
                .key(&ctx.write)
                .header("content-type", PROTOBUF)
                .raw(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec())
                .otlp_err(400, 3),
        );
    }
    let too_many = u64::try_from(MAX_OTLP_EVENTS).unwrap() + 1;
    let no_attributes = json!([]);
    let attribute = |key: &str, value: &str| json!([{"key": key, "value": {"stringValue": value}}]);
    let one_id = format!("{:016x}", 1);
    let resource_nul = json!({"resourceSpans": [{
        "resource": {"attributes": attribute("service.name", "\u{0}")},
        "scopeSpans": [{"spans": [{"traceId": span_ids(52).0, "spanId": span_ids(52).1, "name": "s"}]}],
    }]});
    // (what, endpoint, JSON body, events it carries): each a 400 with code 3, nothing counted.
    let invalid: [(&str, &str, Vec<u8>, u64); 9] = [
        (
            "10,001 spans",
            OTLP_TRACES,
            otlp_spans_json(&spans(10_000, too_many), &no_attributes),
            too_many,
        ),
        (
            "10,001 log records",
            OTLP_LOGS,
            otlp_logs_json(MAX_OTLP_EVENTS + 1, "x"),
            too_many,
        ),
        (
            "10,001 data points",
            OTLP_METRICS,
            otlp_metrics_json(MAX_OTLP_EVENTS + 1, "tokens"),
            too_many,
        ),
        (
            "a 15-byte trace id",
            OTLP_TRACES,
            otlp_spans_json(&[(format!("{:030x}", 1), one_id.clone())], &no_attributes),
            0,
        ),
        (
            "a trace id not hex",
            OTLP_TRACES,
            otlp_spans_json(&[("zz".repeat(16), one_id)], &no_attributes),
            0,
        ),
        (
            "NUL in an attribute value",
            OTLP_TRACES,
            otlp_spans_json(&spans(50, 1), &attribute("k", "a\u{0}b")),
            1,
        ),
        (
            "NUL in an attribute key",
            OTLP_TRACES,
            otlp_spans_json(&spans(51, 1), &attribute("k\u{0}", "v")),
            1,
        ),
        (
            "NUL in a log body",
            OTLP_LOGS,
            otlp_logs_json(1, "log\u{0}line"),
            1,
        ),
        (
            "NUL in a resource attribute",
            OTLP_TRACES,
            resource_nul.to_string().into_bytes(),
            1,
        ),
    ];
    for (what, path, body, events) in invalid {
        cases.push(
            json_case(format!("OTLP {path}: {what}"), path, body)
                .carries(events)
                .otlp_err(400, 3),
        );
    }
    let proto_spans: Vec<_> = (100..100 + too_many).map(proto_span).collect();
    cases.push(
        Case::post("OTLP traces: 10,001 spans in protobuf", OTLP_TRACES)
            .key(&ctx.write)
            .header("content-type", PROTOBUF)
            .raw(wire::otlp_spans_proto(&proto_spans, "p"))
            .carries(too_many)
            .otlp_err(400, 3),
    );
    cases
}
