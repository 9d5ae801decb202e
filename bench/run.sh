#!/usr/bin/env bash
# Load benchmark of ingestion: the release binary on SQLite and on PostgreSQL, batches of 10 and
# 100 events from 8 concurrent clients, beside the store's plain-insert baseline measured in the
# same run (criterion, `cargo bench -p agentvista-store -- plain_insert`).
#
#   bench/run.sh [SECONDS]        (default 10 s per load run)
#
# PostgreSQL runs when AGENTVISTA_TEST_POSTGRES_URL is set (a server where a database may be
# created); everything talks to 127.0.0.1 only, and every loop is bounded in time and count.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo build --release -q -p agentvista --bin agentvista --example loadgen
bin="$CARGO_TARGET_DIR/release/agentvista"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Baseline first, on an idle machine: plain inserts and insert-and-count through the store.
echo "== baseline: cargo bench -p agentvista-store" >&2
cargo bench -q -p agentvista-store --bench accounting -- --noplot >&2
baseline() { # database batch → events/s of plain inserts (criterion median)
    python3 -c "import json,sys; e=json.load(open(sys.argv[1])); print(round($2/(e['median']['point_estimate']/1e9)))" \
        "$CARGO_TARGET_DIR/criterion/record_$1/plain_insert/$2/new/estimates.json"
}

run_against() { # label database-url
    local label=$1 url=$2
    export AGENTVISTA__DATABASE__URL=$url
    # Unlimited plan: the benchmark measures ingestion, not refusals.
    export AGENTVISTA__DEFAULT_PLAN=pro AGENTVISTA__SERVER__BIND=127.0.0.1:0 RUST_LOG=warn,agentvista=info
    (cd "$work" && "$bin" migrate >/dev/null)
    (cd "$work" && AGENTVISTA_PASSWORD=benchmark-password "$bin" users create --email "bench-$label@example.com" >/dev/null)
    local key
    key=$(cd "$work" && "$bin" keys create --email "bench-$label@example.com" --name load --scopes write 2>/dev/null)
    (cd "$work" && exec "$bin" serve) 2>"$work/$label.log" &
    server_pid=$!
    local base=""
    for _ in $(seq 1 100); do
        base=$(grep -o 'listening on http://[0-9.:]*' "$work/$label.log" | head -1 | sed 's/listening on //') && [ -n "$base" ] && break
        sleep 0.1
    done
    [ -n "$base" ] || { cat "$work/$label.log" >&2; exit 1; }
    for batch in 10 100; do
        local result
        result=$(AV_KEY=$key "$loadgen" --url "$base" --batch "$batch" --concurrency 8 --seconds "$seconds")
        local db=${label}
        echo "$label $batch $(baseline "$db" "$batch") $result"
    done
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    unset AGENTVISTA__DATABASE__URL
}

results=()
while read -r line; do results+=("$line"); done < <(run_against sqlite "sqlite://$work/bench.db?mode=rwc")
if [ -n "${AGENTVISTA_TEST_POSTGRES_URL:-}" ]; then
    name="agentvista_load_$$"
    psql "$AGENTVISTA_TEST_POSTGRES_URL" -qc "CREATE DATABASE $name"
    while read -r line; do results+=("$line"); done < <(run_against postgres "${AGENTVISTA_TEST_POSTGRES_URL%/*}/$name")
    psql "$AGENTVISTA_TEST_POSTGRES_URL" -qc "DROP DATABASE $name WITH (FORCE)"
fi

echo
echo "| database | batch | plain insert baseline (events/s) | HTTP ingestion (events/s) | ratio | p50 | p99 | requests | errors |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for line in "${results[@]}"; do
    read -r label batch base json <<<"$line"
    python3 - "$label" "$batch" "$base" "$json" <<'PY'
import json, sys
label, batch, base, result = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
eps = result["events_per_sec"]
print(f"| {label} | {batch} | {base:,.0f} | {eps:,.0f} | {eps/base:.2f} | {result['p50_ms']} ms | {result['p99_ms']} ms | {result['requests']} | {result['errors']} |")
PY
done
