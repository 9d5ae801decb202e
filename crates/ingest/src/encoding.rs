//! Request body decompression (`Content-Encoding: gzip | deflate`), bounded so that a small
//! compressed body cannot inflate past the size limit (a gzip bomb is a 413, not an OOM).

use std::borrow::Cow;
use std::io::Read;

use flate2::read::{GzDecoder, ZlibDecoder};

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

    /// Decodes `body`, refusing anything that would exceed `limit` bytes once decoded.
    ///
    /// # Errors
    /// [`IngestError::TooLarge`] past the limit; [`IngestError::Invalid`] for corrupt data.
    pub fn decode(self, body: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, IngestError> {
        if body.len() > limit {
            return Err(IngestError::TooLarge { limit });
        }
        match self {
            ContentEncoding::Identity => Ok(Cow::Borrowed(body)),
            ContentEncoding::Gzip => inflate(GzDecoder::new(body), limit, "gzip"),
            ContentEncoding::Deflate => inflate(ZlibDecoder::new(body), limit, "deflate"),
        }
    }
}

fn inflate(
    decoder: impl Read,
    limit: usize,
    name: &str,
) -> Result<Cow<'static, [u8]>, IngestError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it" without ever
    // holding more than limit + 1 bytes.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::Invalid(format!("body: invalid {name} data: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
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
