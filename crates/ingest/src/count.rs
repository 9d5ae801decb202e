//! Counting an OTLP request's entries before decoding it: decoding into the generated types
//! costs up to a hundred times the body (an empty span is 2 bytes of protobuf and a few hundred
//! bytes decoded), so an oversized request is refused after a scan that allocates nothing.
//!
//! The scan may count more than the decoder would keep (a field repeated where the decoder
//! merges), never less. A body the scan cannot read is refused at once: the decoder would fail
//! on it too, but perhaps only at its last byte, after building everything before it.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{Format, IngestError, Signal};

/// How many entries a request holds: the events it would make, and the resource, scope and
/// metric entries around them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) events: usize,
    pub(crate) groups: usize,
}

/// The entries of `body` at each level of the signal's tree.
///
/// # Errors
/// [`IngestError::Invalid`] for a body that is not protobuf or JSON at all.
pub(crate) fn scan(signal: Signal, format: Format, body: &[u8]) -> Result<Counts, IngestError> {
    match format {
        Format::Protobuf => {
            // Field numbers, outermost first: request → resource → scope → (metric → data →)
            // span, record or point.
            let path: &[&[u64]] = match signal {
                Signal::Traces | Signal::Logs => &[&[1], &[2], &[2]],
                Signal::Metrics => &[&[1], &[2], &[2], &[5, 7, 9, 10, 11], &[1]],
            };
            let mut counts = [0usize; 5];
            protobuf(body, path, &mut counts, 0).map_err(|Unreadable| {
                IngestError::Invalid(
                    "body: not a valid OTLP protobuf message: malformed wire data".into(),
                )
            })?;
            Ok(counts_of(signal, &counts))
        }
        Format::Json => {
            let levels = match signal {
                Signal::Traces => TRACES,
                Signal::Logs => LOGS,
                Signal::Metrics => METRICS,
            };
            let mut counts = [0usize; 5];
            let mut de = serde_json::Deserializer::from_slice(body);
            Object {
                levels,
                counts: &mut counts,
            }
            .deserialize(&mut de)
            .map_err(|_| ())
            .or_else(|()| {
                // The same syntax check without counting, for the parser's own message (with
                // its path); should it pass, the decoder and the count after it decide.
                crate::json::parse::<IgnoredAny>(body).map(|_| ())
            })?;
            Ok(counts_of(signal, &counts))
        }
    }
}

fn counts_of(signal: Signal, counts: &[usize; 5]) -> Counts {
    match signal {
        Signal::Traces | Signal::Logs => Counts {
            events: counts[2],
            groups: counts[0].saturating_add(counts[1]),
        },
        Signal::Metrics => Counts {
            events: counts[4],
            groups: counts[0]
                .saturating_add(counts[1])
                .saturating_add(counts[2]),
        },
    }
}

const TRACES: &[Level] = &[
    Level::many(&["resourceSpans"]),
    Level::many(&["scopeSpans"]),
    Level::many(&["spans"]),
];
const LOGS: &[Level] = &[
    Level::many(&["resourceLogs"]),
    Level::many(&["scopeLogs"]),
    Level::many(&["logRecords"]),
];
const METRICS: &[Level] = &[
    Level::many(&["resourceMetrics"]),
    Level::many(&["scopeMetrics"]),
    Level::many(&["metrics"]),
    Level {
        keys: &[
            "gauge",
            "sum",
            "histogram",
            "exponentialHistogram",
            "summary",
        ],
        many: false,
    },
    Level::many(&["dataPoints"]),
];

/// Protobuf's nesting limit (prost's default recursion limit).
const MAX_DEPTH: usize = 100;

/// Not a readable protobuf message.
struct Unreadable;

fn varint(buf: &mut &[u8]) -> Result<u64, Unreadable> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(Unreadable)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Unreadable)
}

fn skip<'a>(buf: &mut &'a [u8], len: u64) -> Result<&'a [u8], Unreadable> {
    let len = usize::try_from(len).map_err(|_| Unreadable)?;
    if len > buf.len() {
        return Err(Unreadable);
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// Counts, in the message `buf`, the fields numbered `path[0]` (into `counts[0]`), and in each
/// of them those numbered `path[1]` (into `counts[1]`), and so on.
fn protobuf(
    mut buf: &[u8],
    path: &[&[u64]],
    counts: &mut [usize],
    depth: usize,
) -> Result<(), Unreadable> {
    let (Some((fields, rest)), Some((count, deeper))) =
        (path.split_first(), counts.split_first_mut())
    else {
        return Ok(());
    };
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let number = key >> 3;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => {
                skip(&mut buf, 8)?;
            }
            2 => {
                let len = varint(&mut buf)?;
                let payload = skip(&mut buf, len)?;
                if fields.contains(&number) {
                    *count = count.saturating_add(1);
                    protobuf(payload, rest, deeper, depth + 1)?;
                }
            }
            3 => skip_group(&mut buf, number, depth + 1)?,
            5 => {
                skip(&mut buf, 4)?;
            }
            _ => return Err(Unreadable),
        }
    }
    Ok(())
}

/// Skips a (deprecated, but still decodable) group up to its end tag.
fn skip_group(buf: &mut &[u8], number: u64, depth: usize) -> Result<(), Unreadable> {
    if depth > MAX_DEPTH {
        return Err(Unreadable);
    }
    loop {
        let key = varint(buf)?;
        match key & 7 {
            0 => {
                varint(buf)?;
            }
            1 => {
                skip(buf, 8)?;
            }
            2 => {
                let len = varint(buf)?;
                skip(buf, len)?;
            }
            3 => skip_group(buf, key >> 3, depth + 1)?,
            4 if key >> 3 == number => return Ok(()),
            5 => {
                skip(buf, 4)?;
            }
            _ => return Err(Unreadable),
        }
    }
}

/// One level of the JSON tree: the keys that lead to it, and whether they hold an array of
/// entries or one object.
struct Level {
    keys: &'static [&'static str],
    many: bool,
}

impl Level {
    const fn many(keys: &'static [&'static str]) -> Self {
        Level { keys, many: true }
    }
}

/// Counts, in a JSON object, the entries under `levels[0]`'s keys (into `counts[0]`), in each
/// of them those under `levels[1]`'s keys, and so on; anything else is skipped unread.
struct Object<'a> {
    levels: &'a [Level],
    counts: &'a mut [usize],
}

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (Some((level, deeper)), Some((count, counts))) =
            (self.levels.split_first(), self.counts.split_first_mut())
        else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        while let Some(known) = map.next_key_seed(Key(level.keys))? {
            if !known {
                map.next_value::<IgnoredAny>()?;
            } else if level.many {
                map.next_value_seed(Entries {
                    levels: deeper,
                    count: &mut *count,
                    counts: &mut *counts,
                })?;
            } else {
                *count = count.saturating_add(1);
                map.next_value_seed(Object {
                    levels: deeper,
                    counts: &mut *counts,
                })?;
            }
        }
        Ok(())
    }

    // Any other value: the decoder says what is wrong with it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An array of entries, each an object read at the next level.
struct Entries<'a> {
    levels: &'a [Level],
    count: &'a mut usize,
    counts: &'a mut [usize],
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Object {
                levels: self.levels,
                counts: &mut *self.counts,
            })?
            .is_some()
        {
            *self.count = self.count.saturating_add(1);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Whether a key is one of the level's, read without allocating.
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(self.0.contains(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    const TRACE: &[u8] = include_bytes!("../tests/fixtures/trace.json");
    const LOGS: &[u8] = include_bytes!("../tests/fixtures/logs.json");
    const METRICS: &[u8] = include_bytes!("../tests/fixtures/metrics.json");

    /// The fixtures, each twice over (so every level holds more than one entry), in both formats.
    fn bodies() -> Vec<(Signal, Format, Vec<u8>, Counts)> {
        let mut out = Vec::new();
        let mut traces: ExportTraceServiceRequest = serde_json::from_slice(TRACE).unwrap();
        traces.resource_spans.push(traces.resource_spans[0].clone());
        let scope = traces.resource_spans[1].scope_spans[0].clone();
        traces.resource_spans[1].scope_spans.push(scope);
        let mut logs: ExportLogsServiceRequest = serde_json::from_slice(LOGS).unwrap();
        logs.resource_logs.push(logs.resource_logs[0].clone());
        let mut metrics: ExportMetricsServiceRequest = serde_json::from_slice(METRICS).unwrap();
        metrics
            .resource_metrics
            .push(metrics.resource_metrics[0].clone());
        let expected = |spans, groups| Counts {
            events: spans,
            groups,
        };
        out.push((
            Signal::Traces,
            traces.encode_to_vec(),
            serde_json::to_vec(&traces).unwrap(),
            expected(3, 5),
        ));
        out.push((
            Signal::Logs,
            logs.encode_to_vec(),
            serde_json::to_vec(&logs).unwrap(),
            expected(2, 4),
        ));
        out.push((
            Signal::Metrics,
            metrics.encode_to_vec(),
            serde_json::to_vec(&metrics).unwrap(),
            expected(6, 10),
        ));
        out.into_iter()
            .flat_map(|(signal, protobuf, json, counts)| {
                [
                    (signal, Format::Protobuf, protobuf, counts),
                    (signal, Format::Json, json, counts),
                ]
            })
            .collect()
    }

    #[test]
    fn the_scan_counts_what_the_decoder_finds() {
        for (signal, format, body, expected) in bodies() {
            assert_eq!(
                scan(signal, format, &body),
                Ok(expected),
                "{signal:?} {format:?}"
            );
            let decoded =
                crate::decode_otlp(signal, format, &body, chrono::DateTime::UNIX_EPOCH).unwrap();
            assert_eq!(
                decoded.events.len(),
                expected.events,
                "{signal:?} {format:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_groups_are_skipped_and_bad_wire_data_refused() {
        // Field 15 as a varint, a fixed64, a fixed32 and a group (start 15, a varint, end 15)
        // around one empty resource.
        let body = [
            0x78, 0x01, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0, 0, 0, 0, 0x7b, 0x08, 0x01, 0x7c,
            0x0a, 0x00,
        ];
        assert_eq!(
            scan(Signal::Traces, Format::Protobuf, &body),
            Ok(Counts {
                events: 0,
                groups: 1
            })
        );
        for bad in [&[0x0a, 0x05, 0x00][..], &[0x0e], &[0xff], &[0x7b, 0x08]] {
            assert!(
                scan(Signal::Traces, Format::Protobuf, bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(scan(Signal::Logs, Format::Json, b"{\"resourceLogs\":[").is_err());
        // Values of the wrong type are left to the decoder, which names them.
        assert_eq!(
            scan(
                Signal::Logs,
                Format::Json,
                br#"{"resourceLogs":5,"x":[null]}"#
            ),
            Ok(Counts::default())
        );
    }
}
