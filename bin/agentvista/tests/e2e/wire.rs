//! Bytes on the wire, built by hand so that the tests can send what no well-behaved library
//! would: gzip and zlib bodies (stored blocks, multi-member, with trailing garbage, bombs),
//! minimal OTLP protobuf, and raw HTTP/1.1 requests whose declared length is never sent.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::REQUEST_TIMEOUT;

fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (n, entry) in table.iter_mut().enumerate() {
        let mut c = u32::try_from(n).unwrap();
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
        *entry = c;
    }
    table
}

/// CRC-32 (IEEE) of `len` bytes produced by `byte(i)`.
fn crc32_of(len: usize, byte: impl Fn(usize) -> u8) -> u32 {
    let table = crc32_table();
    let mut crc = !0u32;
    for i in 0..len {
        crc = table[usize::from((crc as u8) ^ byte(i))] ^ (crc >> 8);
    }
    !crc
}

fn len32(len: usize) -> [u8; 4] {
    u32::try_from(len % (1 << 32)).unwrap().to_le_bytes()
}

/// DEFLATE with stored (uncompressed) blocks: valid, simple, no compression needed.
fn stored_deflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65535 * 5 + 5);
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65535).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.push(u8::from(i == last));
        let len = u16::try_from(chunk.len()).unwrap();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// One gzip member holding `data`.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = GZIP_HEADER.to_vec();
    out.extend_from_slice(&stored_deflate(data));
    out.extend_from_slice(&crc32_of(data.len(), |i| data[i]).to_le_bytes());
    out.extend_from_slice(&len32(data.len()));
    out
}

/// `data` as HTTP's `deflate`: zlib-wrapped.
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&stored_deflate(data));
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A gzip member that inflates to `1 + 258 × repeats` zero bytes.
pub(crate) fn gzip_bomb(repeats: usize) -> Vec<u8> {
    let mut out = GZIP_HEADER.to_vec();
    out.extend_from_slice(&deflate_bomb(repeats));
    let len = 1 + 258 * repeats;
    out.extend_from_slice(&crc32_of(len, |_| 0).to_le_bytes());
    out.extend_from_slice(&len32(len));
    out
}

/// HTTP `deflate` (zlib) that inflates to `1 + 258 × repeats` zero bytes.
pub(crate) fn zlib_bomb(repeats: usize) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&deflate_bomb(repeats));
    // Adler-32 of n zeros: a stays 1, b adds it n times.
    let b = u32::try_from((1 + 258 * repeats) % 65521).unwrap();
    out.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    out
}

/// Raw DEFLATE of `1 + 258 × repeats` zero bytes in 13 bits per 258 bytes: fixed Huffman, one
/// literal 0, then back-references of length 258 at distance 1.
fn deflate_bomb(repeats: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }
    impl Bits {
        /// `n` bits of `value`, least significant first (header fields).
        fn put(&mut self, value: u32, n: u32) {
            for i in 0..n {
                self.acc |= ((value >> i) & 1) << self.n;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(u8::try_from(self.acc).unwrap());
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }
        /// A Huffman code: most significant bit first.
        fn code(&mut self, code: u32, n: u32) {
            for i in (0..n).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
    }
    let mut bits = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman
    bits.code(0x30, 8); // literal 0
    for _ in 0..repeats {
        bits.code(0xC5, 8); // length symbol 285: 258
        bits.code(0, 5); // distance code 0: 1
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    bits.out
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = u8::try_from(value & 0x7f).unwrap();
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn field(number: u64, data: &[u8], out: &mut Vec<u8>) {
    varint((number << 3) | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// An OTLP `ExportTraceServiceRequest` (protobuf) with one span per `(trace id, span id)`.
pub(crate) fn otlp_spans_proto(spans: &[([u8; 16], [u8; 8])], name: &str) -> Vec<u8> {
    let mut scope_spans = Vec::new();
    for (trace_id, span_id) in spans {
        let mut span = Vec::new();
        field(1, trace_id, &mut span);
        field(2, span_id, &mut span);
        field(5, name.as_bytes(), &mut span);
        field(2, &span, &mut scope_spans);
    }
    let mut resource_spans = Vec::new();
    field(2, &scope_spans, &mut resource_spans);
    let mut request = Vec::new();
    field(1, &resource_spans, &mut request);
    request
}

/// The `code` of a protobuf `google.rpc.Status` (0 when absent, as proto3 omits it).
pub(crate) fn rpc_status_code(body: &[u8]) -> Option<i64> {
    let mut code = 0;
    let mut at = 0;
    let read_varint = |at: &mut usize| -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *body.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    };
    while at < body.len() {
        let tag = read_varint(&mut at)?;
        match tag & 7 {
            0 => {
                let value = read_varint(&mut at)?;
                if tag >> 3 == 1 {
                    code = i64::try_from(value).ok()?;
                }
            }
            2 => {
                let len = usize::try_from(read_varint(&mut at)?).ok()?;
                at = at.checked_add(len)?;
            }
            _ => return None,
        }
    }
    (at == body.len()).then_some(code)
}

/// A raw HTTP/1.1 exchange: what came back, or why nothing did.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Sends `head` (request line and headers, without the blank line) with `Content-Length:
/// declared`, then `body` (which may be shorter than declared: the rest is never sent), and
/// reads the answer. Fails after [`REQUEST_TIMEOUT`] without a complete answer.
pub(crate) fn raw_exchange(
    addr: &str,
    head: &str,
    declared: usize,
    body: &[u8],
) -> Result<RawResponse, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    let head = format!("{head}\r\nHost: {addr}\r\nContent-Length: {declared}\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    // The server may answer and close before taking the body: that is allowed.
    let _ = stream.write_all(body);
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if started.elapsed() > REQUEST_TIMEOUT {
            return Err("no answer in time".into());
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(format!(
                    "closed without an answer after {} bytes",
                    buf.len()
                ));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    };
    let head_text = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a status line: {head_text}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read body: {e}")),
        }
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        let data = b"123456789";
        assert_eq!(crc32_of(data.len(), |i| data[i]), 0xCBF4_3926);
    }

    #[test]
    fn rpc_status_codes_decode() {
        assert_eq!(rpc_status_code(&[0x08, 0x03, 0x12, 0x01, b'x']), Some(3));
        assert_eq!(rpc_status_code(&[0x08]), None);
    }
}
