//! `ApiKey::parse` must never panic, and must accept only what it can give back unchanged.
#![no_main]

use agentvista_keys::{ApiKey, KeyPrefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = ApiKey::parse(&text) {
        assert_eq!(key.expose_secret(), &*text);
        assert_eq!(ApiKey::parse(key.expose_secret()).map(|k| k.hash()).ok(), Some(key.hash()));
    }
    let _ = KeyPrefix::parse(&text);
    let _ = text.parse::<agentvista_keys::Scopes>();
});
