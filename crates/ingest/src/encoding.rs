//! Request body decompression (`Content-Encoding: gzip | deflate`), bounded so that a small
//! compressed body cannot inflate past the size limit (a gzip bomb is a 413, not an OOM).

use std::borrow::Cow;
use std::io::Read;

use flate2::bufread::{GzDecoder, ZlibDecoder};

use crate::IngestError;

/// A `Content-Encoding` this service decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No encoding (header absent or `identity`).
    Identity,
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib-wrapped DEFLATE (RFC 1950), as HTTP defines it.
    Deflate,
}

impl ContentEncoding {
    /// Reads the header value.
    ///
    /// # Errors
    /// [`IngestError::UnsupportedMediaType`] for any other encoding (e.g. `br`, `zstd`).
    pub fn parse(header: Option<&str>) -> Result<Self, IngestError> {
        match header.map(|h| h.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Ok(ContentEncoding::Identity),
            Some("gzip" | "x-gzip") => Ok(ContentEncoding::Gzip),
            Some("deflate") => Ok(ContentEncoding::Deflate),
            Some(other) => Err(IngestError::UnsupportedMediaType(format!(
                "Content-Encoding {other:?} is not supported; use gzip, deflate or none"
            ))),
        }
    }

    /// Decodes `body`, refusing anything that would exceed `limit` bytes once decoded. A gzip
    /// body may hold several members (RFC 1952, section 2.2), decoded one after the other as one
    /// stream; nothing may follow the last gzip member or the zlib stream.
    ///
    /// # Errors
    /// [`IngestError::TooLarge`] past the limit; [`IngestError::Invalid`] for corrupt data or
    /// bytes after the compressed data (`body: trailing bytes after the gzip data`).
    pub fn decode(self, body: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, IngestError> {
        if body.len() > limit {
            return Err(IngestError::TooLarge { limit });
        }
        let Some(mut inflate) = Inflate::new(self, body, limit) else {
            return Ok(Cow::Borrowed(body));
        };
        // Steps that double what is decoded, as a growing vector would, without reserving the
        // whole limit for a small body.
        while !inflate.step(inflate.len().max(64 * 1024))? {}
        Ok(Cow::Owned(inflate.into_inner()))
    }
}

/// A compressed body inflated a step at a time, so that a caller can pay for memory before
/// each step (the decoded size of a compressed body is known only once it is decoded). The
/// output buffer never holds more than what the steps asked for: it is sized per step, not
/// doubled as it grows.
///
/// ```
/// use agentvista_ingest::{ContentEncoding, Inflate};
/// # use std::io::Write;
/// # let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
/// # gz.write_all(&[7u8; 10_000]).unwrap();
/// # let body = gz.finish().unwrap();
/// let mut inflate = Inflate::new(ContentEncoding::Gzip, &body, 5 * 1024 * 1024).expect("gzip");
/// while !inflate.step(4096)? {
///     assert!(inflate.len() % 4096 == 0); // pay for the next 4 KiB here
/// }
/// assert_eq!(inflate.into_inner(), vec![7u8; 10_000]);
/// # Ok::<(), agentvista_ingest::IngestError>(())
/// ```
pub struct Inflate<'a> {
    state: State<'a>,
    out: Vec<u8>,
    limit: usize,
}

enum State<'a> {
    Gzip(GzDecoder<&'a [u8]>),
    Deflate(ZlibDecoder<&'a [u8]>),
    Done,
}

impl<'a> Inflate<'a> {
    /// Starts inflating `body`; `None` for [`ContentEncoding::Identity`], which has nothing to
    /// inflate.
    #[must_use]
    pub fn new(encoding: ContentEncoding, body: &'a [u8], limit: usize) -> Option<Self> {
        let state = match encoding {
            ContentEncoding::Identity => return None,
            ContentEncoding::Gzip => State::Gzip(GzDecoder::new(body)),
            ContentEncoding::Deflate => State::Deflate(ZlibDecoder::new(body)),
        };
        Some(Inflate {
            state,
            out: Vec::new(),
            limit,
        })
    }

    /// Bytes decoded so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing has been decoded yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Decodes up to `max` more bytes; `true` once the whole body is decoded.
    ///
    /// # Errors
    /// As [`ContentEncoding::decode`].
    pub fn step(&mut self, max: usize) -> Result<bool, IngestError> {
        // One byte past the limit tells "exactly at the limit" from "over it".
        let room = self.limit.saturating_add(1).saturating_sub(self.out.len());
        let want = max.min(room);
        if want == 0 {
            return Ok(false);
        }
        let (filled, name) = match &mut self.state {
            State::Done => return Ok(true),
            State::Gzip(decoder) => (fill(decoder, &mut self.out, want, "gzip")?, "gzip"),
            State::Deflate(decoder) => (fill(decoder, &mut self.out, want, "deflate")?, "deflate"),
        };
        if self.out.len() > self.limit {
            return Err(IngestError::TooLarge { limit: self.limit });
        }
        if filled == want {
            return Ok(false);
        }
        // The stream (or gzip member) ended: what follows it decides what comes next.
        let rest = match std::mem::replace(&mut self.state, State::Done) {
            State::Gzip(decoder) => decoder.into_inner(),
            State::Deflate(decoder) => decoder.into_inner(),
            State::Done => &[],
        };
        match (name, rest) {
            (_, []) => Ok(true),
            ("gzip", [0x1f, 0x8b, ..]) => {
                self.state = State::Gzip(GzDecoder::new(rest));
                Ok(false)
            }
            _ => Err(trailing(name)),
        }
    }

    /// The decoded bytes.
    #[must_use]
    pub fn into_inner(self) -> Vec<u8> {
        self.out
    }
}

fn trailing(name: &str) -> IngestError {
    IngestError::Invalid(format!("body: trailing bytes after the {name} data"))
}

/// Reads up to `want` bytes from `decoder` onto the end of `out`, growing it by exactly that
/// much; returns how many came (fewer at the end of the stream).
fn fill(
    decoder: &mut impl Read,
    out: &mut Vec<u8>,
    want: usize,
    name: &str,
) -> Result<usize, IngestError> {
    let start = out.len();
    out.reserve_exact(want);
    out.resize(start + want, 0);
    let mut filled = 0;
    while filled < want {
        match decoder.read(&mut out[start + filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.truncate(start);
                return Err(IngestError::Invalid(format!(
                    "body: invalid {name} data: {e}"
                )));
            }
        }
    }
    out.truncate(start + filled);
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        let data = b"{\"batch\": []}".repeat(10);
        assert_eq!(
            ContentEncoding::Gzip.decode(&gzip(&data), 1000).unwrap(),
            &data[..]
        );
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&data).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(
            ContentEncoding::Deflate.decode(&zlib, 1000).unwrap(),
            &data[..]
        );
    }

    #[test]
    fn a_gzip_bomb_is_too_large_not_out_of_memory() {
        // 100 MiB of zeros compress to about 100 KiB.
        let bomb = gzip(&vec![0u8; 100 * 1024 * 1024]);
        assert!(bomb.len() < 200 * 1024);
        assert_eq!(
            ContentEncoding::Gzip.decode(&bomb, 5 * 1024 * 1024),
            Err(IngestError::TooLarge {
                limit: 5 * 1024 * 1024
            })
        );
    }

    #[test]
    fn exactly_the_limit_inflates_and_one_more_byte_does_not() {
        let data = vec![7u8; 4096];
        assert!(ContentEncoding::Gzip.decode(&gzip(&data), 4096).is_ok());
        assert!(matches!(
            ContentEncoding::Gzip.decode(&gzip(&data), 4095),
            Err(IngestError::TooLarge { .. })
        ));
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_gzip_member_is_decoded() {
        let (first, second) = (vec![b'a'; 1000], vec![b'b'; 1000]);
        let mut body = gzip(&first);
        body.extend(gzip(b""));
        body.extend(gzip(&second));
        let whole = [first, second].concat();
        assert_eq!(ContentEncoding::Gzip.decode(&body, 2000).unwrap(), whole);
        // The limit holds over all members together.
        assert_eq!(
            ContentEncoding::Gzip.decode(&body, 1999),
            Err(IngestError::TooLarge { limit: 1999 })
        );
    }

    #[test]
    fn bytes_after_the_compressed_data_are_refused() {
        let trailing = |name: &str| {
            Err(IngestError::Invalid(format!(
                "body: trailing bytes after the {name} data"
            )))
        };
        for garbage in [&b"x"[..], b"\0", b"\0\0\0\0\0\0\0\0", b"\x1f"] {
            let mut body = gzip(b"data");
            body.extend_from_slice(garbage);
            assert_eq!(ContentEncoding::Gzip.decode(&body, 100), trailing("gzip"));
            let mut body = zlib(b"data");
            body.extend_from_slice(garbage);
            assert_eq!(
                ContentEncoding::Deflate.decode(&body, 100),
                trailing("deflate")
            );
        }
        // A second member that is cut short is corrupt data, not trailing bytes.
        let mut body = gzip(b"data");
        body.extend_from_slice(&gzip(b"more")[..12]);
        assert!(matches!(
            ContentEncoding::Gzip.decode(&body, 100),
            Err(IngestError::Invalid(message)) if message.starts_with("body: invalid gzip data")
        ));
        assert_eq!(
            ContentEncoding::Deflate
                .decode(&zlib(b"data"), 100)
                .unwrap(),
            &b"data"[..]
        );
    }

    #[test]
    fn corrupt_data_and_unknown_encodings_are_refused() {
        assert!(matches!(
            ContentEncoding::Gzip.decode(b"not gzip", 100),
            Err(IngestError::Invalid(_))
        ));
        assert!(matches!(
            ContentEncoding::parse(Some("br")),
            Err(IngestError::UnsupportedMediaType(_))
        ));
        assert_eq!(
            ContentEncoding::parse(Some(" GZIP ")),
            Ok(ContentEncoding::Gzip)
        );
        assert_eq!(ContentEncoding::parse(None), Ok(ContentEncoding::Identity));
    }
}
