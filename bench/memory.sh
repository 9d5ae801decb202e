#!/usr/bin/env bash
# Peak memory of the release binary at the default settings (5 MiB bodies, a 256 MiB budget,
# a quarter per account, 8 MiB pages) under the end-to-end memory test's attacks: trace bombs
# with 1 MiB and 4 MiB resource attributes read through the API and the dashboard, and floods
# of 64 concurrent compressed requests from one account and from ten, while an eleventh
# works. Prints each phase's peak RSS against the formula (RSS at rest + budget + 64 MiB).
#
#   bench/memory.sh        (SQLite; PostgreSQL too when AGENTVISTA_TEST_POSTGRES_URL is set)
#
# Everything talks to 127.0.0.1 only; every request loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p agentvista --bin agentvista
AGENTVISTA_E2E_BIN="$CARGO_TARGET_DIR/release/agentvista" AGENTVISTA_MEMORY_AT_DEFAULTS=1 \
    cargo test -q -p agentvista --test e2e memory_stays_within -- --nocapture --test-threads 1
