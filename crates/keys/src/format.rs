//! The frozen wire format of an AgentVista key: `av_<prefix>_<secret><checksum>`.
//!
//! **Every constant here is part of every key ever issued.** Changing one makes every existing
//! key fail to parse (and so revokes it), and breaks the secret scanners that look for
//! `av_[0-9a-f]{8}_[0-9A-Za-z]{38}`. They are written down once, here, and never change.

/// The product marker every key starts with.
pub const MARKER: &str = "av_";

/// Number of lowercase hex characters in the public prefix after [`MARKER`].
pub const PREFIX_HEX_LEN: usize = 8;

/// The byte between the public prefix and the secret.
pub const SEPARATOR: u8 = b'_';

/// Number of base62 characters in the secret: 32 × log2(62) ≈ 190 bits of entropy.
pub const SECRET_LEN: usize = 32;

/// Number of base62 digits of the CRC-32 checksum (62⁶ > 2³², so six always suffice).
pub const CHECKSUM_LEN: usize = 6;

/// Length of the displayed prefix, `av_` + 8 hex characters (what users and the API see).
pub const DISPLAY_PREFIX_LEN: usize = MARKER.len() + PREFIX_HEX_LEN;

/// Length of the part of the key that the checksum covers: everything before it.
pub const CHECKED_LEN: usize = DISPLAY_PREFIX_LEN + 1 + SECRET_LEN;

/// Total length of a key in bytes (all of them ASCII).
pub const KEY_LEN: usize = CHECKED_LEN + CHECKSUM_LEN;

/// Base62 digits in value order (0–61): digits, then upper case, then lower case.
pub const BASE62_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Lowercase hex digits in value order, the alphabet of the public prefix.
pub(crate) const HEX_ALPHABET: &[u8; 16] = b"0123456789abcdef";

/// CRC-32 (IEEE) of `checked`, as [`CHECKSUM_LEN`] base62 digits, most significant first.
///
/// Comparing these digits with a key's last six characters is the same as comparing the
/// numbers, because the encoding of a number below 62⁶ is unique.
pub(crate) fn checksum(checked: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(checked);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62_ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits
}

/// Views bytes that this crate has checked to be ASCII as a `&str`.
pub(crate) fn ascii_str(bytes: &[u8]) -> &str {
    // Every constructor of the types that call this checks or writes ASCII only, so a failure
    // here is a bug in this crate, not bad input.
    std::str::from_utf8(bytes).expect("key bytes are ASCII by construction")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_add_up_to_the_contract() {
        assert_eq!(DISPLAY_PREFIX_LEN, 11);
        assert_eq!(CHECKED_LEN, 44);
        assert_eq!(KEY_LEN, 50);
    }

    #[test]
    fn six_base62_digits_hold_every_crc32() {
        assert!(62u64.pow(CHECKSUM_LEN as u32) > u64::from(u32::MAX));
    }

    #[test]
    fn checksum_of_empty_input_is_zero() {
        assert_eq!(&checksum(b""), b"000000");
    }

    #[test]
    fn checksum_of_check_string_matches_the_crc32_check_value() {
        // CRC-32/ISO-HDLC's published check value for "123456789" is 0xCBF43926 = 3421780262,
        // which is 3·62⁵ + 45·62⁴ + 35·62³ + 27·62² + 22·62 + 14 → "3jZRME".
        assert_eq!(&checksum(b"123456789"), b"3jZRME");
    }
}
