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
    /// body may hold several members (RFC 1952 §2.2), decoded one after the other as one
    /// stream; nothing may follow the last gzip member or the zlib stream.
    ///
    /// # Errors
    /// [`IngestError::TooLarge`] past the limit; [`IngestError::Invalid`] for corrupt data or
    /// bytes after the compressed data (`body: trailing bytes after the gzip data`).
    pub fn decode(self, body: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, IngestError> {
        if body.len() > limit {
            return Err(IngestError::TooLarge { limit });
        }
        match self {
            ContentEncoding::Identity => Ok(Cow::Borrowed(body)),
            ContentEncoding::Gzip => {
                let mut rest = body;
                let mut out = Vec::new();
                loop {
                    inflate(GzDecoder::new(&mut rest), &mut out, limit, "gzip")?;
                    match rest {
                        [] => break,
                        [0x1f, 0x8b, ..] => {}
                        _ => return Err(trailing("gzip")),
                    }
                }
                Ok(Cow::Owned(out))
            }
            ContentEncoding::Deflate => {
                let mut rest = body;
                let mut out = Vec::new();
                inflate(ZlibDecoder::new(&mut rest), &mut out, limit, "deflate")?;
                if !rest.is_empty() {
                    return Err(trailing("deflate"));
                }
                Ok(Cow::Owned(out))
            }
        }
    }
}

fn trailing(name: &str) -> IngestError {
    IngestError::Invalid(format!("body: trailing bytes after the {name} data"))
}

/// Appends what `decoder` yields to `out`, up to `limit` bytes in all. The decoder reads its
/// input through a `&mut &[u8]`, which is left just past the end of the compressed stream.
fn inflate(
    decoder: impl Read,
    out: &mut Vec<u8>,
    limit: usize,
    name: &str,
) -> Result<(), IngestError> {
    // One byte past the limit tells "exactly at the limit" from "over it" without ever
    // holding more than limit + 1 bytes; it also makes the decoder read on to its trailer.
    let room = limit.saturating_add(1).saturating_sub(out.len());
    let cap = u64::try_from(room).unwrap_or(u64::MAX);
    decoder
        .take(cap)
        .read_to_end(out)
        .map_err(|e| IngestError::Invalid(format!("body: invalid {name} data: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(())
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
