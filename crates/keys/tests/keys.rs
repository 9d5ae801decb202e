//! Black-box tests of `agentvista-keys`: known answers, properties, and the statistics of
//! generation. One integration binary for the crate.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;

use agentvista_keys::format::{BASE62_ALPHABET, KEY_LEN};
use agentvista_keys::{ApiKey, KeyHash, ParseError};
use proptest::prelude::*;

/// Known answers computed outside this crate (Python's `zlib.crc32` and `hashlib.sha256`).
const VECTORS: [(&str, &str, &str, &str); 3] = [
    (
        "av_a1b2c3d4_6fX0Lq9ZkP3mT7vR2wYc8NbH5sJdE1gU48t1jl",
        "av_a1b2c3d4",
        "48t1jl",
        "f05deb6c855a1e157096e796f01f0bf08c4b84206d4ed3fa2e0842bebba43ef9",
    ),
    (
        "av_00000000_000000000000000000000000000000002aoZJd",
        "av_00000000",
        "2aoZJd",
        "2fc3dc534c832d76983e4d5895377b6a42b4e35a9e376ef895b1c7f8d219098e",
    ),
    (
        "av_ffffffff_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz20GAR4",
        "av_ffffffff",
        "20GAR4",
        "d71563087dd5649d694a12727822ca52a87f090e2061459372225a42f44ba115",
    ),
];

#[test]
fn known_keys_give_their_known_prefix_checksum_and_hash() {
    for (text, prefix, checksum, sha256) in VECTORS {
        let key = ApiKey::parse(text).unwrap();
        assert_eq!(key.prefix().as_str(), prefix);
        assert_eq!(key.checksum(), checksum);
        assert_eq!(key.hash().to_hex(), sha256);
        assert_eq!(key.hash(), KeyHash::from_hex(sha256).unwrap());
        assert_eq!(key.expose_secret(), text);
    }
}

#[test]
fn each_format_rule_is_reported_as_itself() {
    let valid = VECTORS[0].0;
    let with = |at: usize, c: char| {
        let mut s = valid.to_owned();
        s.replace_range(at..=at, &c.to_string());
        s
    };
    let cases = [
        (valid[..49].to_owned(), ParseError::Length { found: 49 }),
        (format!("{valid}x"), ParseError::Length { found: 51 }),
        (with(0, 'b'), ParseError::Marker),
        (with(2, '-'), ParseError::Marker),
        (with(5, 'B'), ParseError::Prefix { position: 5 }),
        (with(10, 'g'), ParseError::Prefix { position: 10 }),
        (with(11, '-'), ParseError::Separator),
        (with(20, '-'), ParseError::Alphabet { position: 20 }),
        (with(49, '_'), ParseError::Alphabet { position: 49 }),
        (with(30, 'Q'), ParseError::Checksum),
        (with(47, '0'), ParseError::Checksum),
    ];
    for (input, expected) in cases {
        assert_eq!(ApiKey::parse(&input).err(), Some(expected), "{input}");
    }
    // A multi-byte character keeps the character count but not the byte count.
    assert_eq!(
        ApiKey::parse(&with(20, 'é')).err(),
        Some(ParseError::Length { found: 51 })
    );
}

#[test]
fn debug_display_and_errors_never_show_the_secret() {
    let key = ApiKey::generate().unwrap();
    let secret = &key.expose_secret()[12..];
    let shown = format!("{key:?} {key} {:?} {}", key.prefix(), key.prefix());
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains(key.prefix().as_str()));

    let mut broken = key.expose_secret().to_owned();
    broken.replace_range(49.., "!");
    let error = ApiKey::parse(&broken).unwrap_err();
    assert!(!format!("{error} {error:?}").contains(&secret[..8]));
}

#[test]
fn a_hundred_thousand_generated_keys_are_distinct_and_valid() {
    let mut seen = HashSet::with_capacity(100_000);
    let mut prefixes = HashSet::with_capacity(100_000);
    for _ in 0..100_000 {
        let key = ApiKey::generate().unwrap();
        assert!(ApiKey::parse(key.expose_secret()).is_ok());
        prefixes.insert(key.prefix());
        assert!(seen.insert(key.expose_secret().to_owned()), "duplicate key");
    }
    // 32 random bits: ~1.2 expected prefix collisions among 10⁵ keys (why the store retries).
    assert!(
        prefixes.len() > 99_990,
        "{} distinct prefixes",
        prefixes.len()
    );
}

/// Upper-tail quantile of the chi-square distribution with `df` degrees of freedom at
/// `z` standard deviations (Wilson–Hilferty; accurate to <1% for df > 30).
fn chi_square_bound(df: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Pearson's statistic for `counts` against a uniform distribution.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum()
}

/// z for a one-sided p of 10⁻⁶: the test fails by chance once in a million runs.
const Z_ONE_IN_A_MILLION: f64 = 4.753_424;

fn index_in(alphabet: &[u8], c: u8) -> usize {
    alphabet.iter().position(|&a| a == c).unwrap()
}

#[test]
fn secret_characters_are_uniform_by_chi_square() {
    let mut secret_counts = [0u64; 62];
    let mut prefix_counts = [0u64; 16];
    for _ in 0..100_000 {
        let key = ApiKey::generate().unwrap();
        let bytes = key.expose_secret().as_bytes();
        for &c in &bytes[12..44] {
            secret_counts[index_in(BASE62_ALPHABET, c)] += 1;
        }
        for &c in &bytes[3..11] {
            prefix_counts[index_in(b"0123456789abcdef", c)] += 1;
        }
    }
    let bound = chi_square_bound(61.0, Z_ONE_IN_A_MILLION);
    let statistic = chi_square(&secret_counts);
    assert!(
        statistic < bound,
        "secret: χ² = {statistic:.1} ≥ {bound:.1}"
    );
    let bound = chi_square_bound(15.0, Z_ONE_IN_A_MILLION);
    let statistic = chi_square(&prefix_counts);
    assert!(
        statistic < bound,
        "prefix: χ² = {statistic:.1} ≥ {bound:.1}"
    );
}

#[test]
fn the_chi_square_test_catches_modulo_bias() {
    // The same sample size drawn the naive way (`byte % 62`) must fail the same bound,
    // or the uniformity test above proves nothing.
    let mut counts = [0u64; 62];
    let mut buf = [0u8; 3_200];
    for _ in 0..1_000 {
        getrandom::fill(&mut buf).unwrap();
        for &b in &buf {
            counts[usize::from(b) % 62] += 1;
        }
    }
    let statistic = chi_square(&counts);
    assert!(
        statistic > chi_square_bound(61.0, Z_ONE_IN_A_MILLION),
        "{statistic}"
    );
}

#[test]
fn chi_square_bound_matches_published_quantiles() {
    // Tables: χ²(0.999, 60) = 99.607; χ²(0.99, 15) = 30.578.
    assert!((chi_square_bound(60.0, 3.090_232) - 99.607).abs() < 0.5);
    assert!((chi_square_bound(15.0, 2.326_348) - 30.578).abs() < 0.3);
}

/// A key made from a deterministic byte stream, so proptest can shrink failures.
fn key_from_stream(stream: &[u8]) -> ApiKey {
    let mut at = 0;
    ApiKey::generate_with(|buf: &mut [u8]| {
        for b in buf.iter_mut() {
            *b = stream[at % stream.len()];
            at += 1;
        }
        Ok::<(), ()>(())
    })
    .unwrap()
}

/// Some bytes below 248 guarantee the sampler's progress over a cycled stream.
fn byte_stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 64..160).prop_filter("needs usable bytes", |v| {
        v.iter().filter(|&&b| b < 248).count() >= 8
    })
}

/// Every character a key holds, and some it never does.
const REPLACEMENTS: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-+/=. é";

proptest! {
    #[test]
    fn every_generated_key_parses_back_to_itself(stream in byte_stream()) {
        let key = key_from_stream(&stream);
        let parsed = ApiKey::parse(key.expose_secret()).unwrap();
        prop_assert_eq!(parsed.expose_secret(), key.expose_secret());
        prop_assert_eq!(parsed.hash(), key.hash());
    }

    #[test]
    fn every_single_character_change_is_rejected(stream in byte_stream()) {
        let key = key_from_stream(&stream);
        let original = key.expose_secret();
        for (at, old) in original.char_indices() {
            for new in REPLACEMENTS.chars().filter(|&c| c != old) {
                let mut changed = original.to_owned();
                changed.replace_range(at..=at, new.encode_utf8(&mut [0; 4]));
                prop_assert!(ApiKey::parse(&changed).is_err(), "{} accepted", changed);
            }
        }
    }

    #[test]
    fn every_adjacent_swap_is_rejected(stream in byte_stream()) {
        let key = key_from_stream(&stream);
        let original = key.expose_secret().as_bytes();
        for at in 0..KEY_LEN - 1 {
            if original[at] == original[at + 1] {
                continue; // swapping equal characters changes nothing
            }
            let mut swapped = original.to_vec();
            swapped.swap(at, at + 1);
            let swapped = String::from_utf8(swapped).unwrap();
            prop_assert!(ApiKey::parse(&swapped).is_err(), "swap at {} accepted", at);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(key) = ApiKey::parse(&text) {
            prop_assert_eq!(key.expose_secret(), &*text);
        }
    }

    #[test]
    fn well_shaped_strings_fail_only_on_the_checksum(text in "av_[0-9a-f]{8}_[0-9A-Za-z]{38}") {
        match ApiKey::parse(&text) {
            Ok(key) => prop_assert_eq!(key.expose_secret(), &*text),
            Err(error) => prop_assert_eq!(error, ParseError::Checksum),
        }
    }

    #[test]
    fn near_keys_never_panic(text in "[a-v_]{0,4}[0-9a-fA-F_]{0,10}[0-9A-Za-z_é]{30,42}") {
        let _ = ApiKey::parse(&text);
    }
}

proptest! {
    /// What is kept (and stored) parses back to itself: a stored name or address is never one
    /// its own rule refuses, and normalising twice changes nothing.
    #[test]
    fn names_and_emails_parse_back_to_themselves(text in "\\PC{0,120}") {
        use agentvista_keys::{AccountName, Email, KeyName};
        if let Ok(name) = KeyName::parse(&text) {
            prop_assert_eq!(KeyName::parse(name.as_str()).unwrap(), name);
        }
        if let Ok(name) = AccountName::parse(&text) {
            prop_assert_eq!(AccountName::parse(name.as_str()).unwrap(), name);
        }
        if let Ok(email) = Email::parse(&text) {
            prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email);
        }
    }

    #[test]
    fn well_shaped_addresses_are_kept_lower_cased(
        local in "[A-Za-z0-9._%+-]{1,40}",
        domain in "[A-Za-z0-9-]{1,40}\\.[A-Za-z]{2,10}",
    ) {
        let email = agentvista_keys::Email::parse(&format!(" {local}@{domain} ")).unwrap();
        prop_assert_eq!(email.as_str(), format!("{local}@{domain}").to_lowercase());
    }
}
