//! `cargo bench -p agentvista-keys`: the verify path (parse, hash) and generation, beside a
//! baseline of bare SHA-256 over the same 50 bytes measured in the same run.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use agentvista_keys::ApiKey;
use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

fn keys(c: &mut Criterion) {
    let key = ApiKey::generate().unwrap();
    let text = key.expose_secret().to_owned();

    c.bench_function("baseline/sha256_50_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(text.as_bytes())))
    });
    c.bench_function("generate", |b| b.iter(|| ApiKey::generate().unwrap()));
    c.bench_function("parse", |b| {
        b.iter(|| ApiKey::parse(black_box(&text)).unwrap())
    });
    c.bench_function("hash", |b| b.iter(|| black_box(&key).hash()));
    c.bench_function("parse_and_hash", |b| {
        b.iter(|| ApiKey::parse(black_box(&text)).unwrap().hash())
    });
    let mut wrong = text.clone();
    wrong.replace_range(20..21, if &text[20..21] == "A" { "B" } else { "A" });
    c.bench_function("parse_rejects_bad_checksum", |b| {
        b.iter(|| ApiKey::parse(black_box(&wrong)).unwrap_err())
    });
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared; medians are stable well within these windows.
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = keys
}
criterion_main!(benches);
