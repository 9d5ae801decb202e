# The recipes CI runs too (.ci/run). `cargo install just` to use them; the README's two
# commands never need just.
set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Run the server (release build).
run:
    cargo run --release

# Run every test (what the README says).
test:
    cargo test --workspace

# Everything CI checks: fmt, clippy, docs, tests (PostgreSQL suites switched on).
ci:
    bash .ci/run

# Criterion benchmarks; figures go to docs/performance.md.
bench:
    cargo bench -p agentvista-keys
    AGENTVISTA_TEST_POSTGRES_URL=${AGENTVISTA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres} cargo bench -p agentvista-store

# Fuzz ApiKey::parse with libFuzzer for SECONDS (needs `cargo install cargo-fuzz`).
fuzz SECONDS="60":
    cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_total_time={{SECONDS}}

# Fuzz the ingestion decoders (batch, OTLP protobuf and JSON, gzip) for SECONDS each.
fuzz-ingest SECONDS="150":
    cd fuzz && for t in batch otlp_protobuf otlp_json gzip; do mkdir -p corpus/$t && RUSTC_BOOTSTRAP=1 cargo fuzz run $t corpus/$t seeds/$t -- -max_total_time={{SECONDS}} || exit 1; done

# The end-to-end suite alone: the real binary over HTTP, the docs examples, the browser test.
e2e:
    cargo test -p agentvista --test e2e

# HTTP ingestion under load against the release binary (SQLite, and PostgreSQL when configured).
load SECONDS="10":
    bench/run.sh {{SECONDS}}
