#!/usr/bin/env bash
# Paired A/B of ingestion over HTTP: the release binary of a commit REV (built in a worktree of
# its own) and that of this checkout take turns, each on a fresh database, under the same load
# (`bench/loadgen.rs`: batches of 10 and 100 events, 8 clients, SECONDS each). ROUNDS pairs per
# database and batch, the order alternating within the pair; prints the median and quartiles of
# the pairs' ratios (events/s of this checkout over REV's), so that what slows the shared
# machine slows both sides of a pair.
#
#   bench/ab.sh REV [ROUNDS] [SECONDS]      (defaults: 6 rounds, 5 s)
#   AB_ENGINES="sqlite" AB_BATCHES="10" bench/ab.sh REV 16     (one case, more pairs)
#
# PostgreSQL runs too when AGENTVISTA_TEST_POSTGRES_URL is set. Everything talks to 127.0.0.1
# only, and every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$1
rounds=${2:-6}
seconds=${3:-5}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
before_dir=${AB_BEFORE_DIR:-/var/tmp/agentvista-ab-before}
before_target=${AB_BEFORE_TARGET:-/var/tmp/agentvista-ab-before-target}

cargo build --release -q -p agentvista --bin agentvista --example loadgen
after="$CARGO_TARGET_DIR/release/agentvista"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"
if [ ! -d "$before_dir" ]; then
    git worktree add -f "$before_dir" "$rev" >&2
fi
git -C "$before_dir" checkout -q --detach "$rev"
(cd "$before_dir" && CARGO_TARGET_DIR="$before_target" cargo build --release -q -p agentvista --bin agentvista)
before="$before_target/release/agentvista"

work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# One load run of `binary` on a fresh database (`sqlite` or `postgres`): events per second.
run_once() { # binary engine batch
    local binary=$1 engine=$2 batch=$3 dir url
    dir=$(mktemp -d -p "$work")
    if [ "$engine" = postgres ]; then
        local name="agentvista_ab_$RANDOM$RANDOM"
        psql "$AGENTVISTA_TEST_POSTGRES_URL" -qc "CREATE DATABASE $name" >/dev/null
        url="${AGENTVISTA_TEST_POSTGRES_URL%/*}/$name"
    else
        url="sqlite://$dir/agentvista.db?mode=rwc"
    fi
    export AGENTVISTA__DATABASE__URL=$url AGENTVISTA__DEFAULT_PLAN=pro
    export AGENTVISTA__SERVER__BIND=127.0.0.1:0 RUST_LOG=warn,agentvista=info
    (cd "$dir" && "$binary" migrate >/dev/null)
    (cd "$dir" && AGENTVISTA_PASSWORD=benchmark-password "$binary" users create --email ab@example.com >/dev/null)
    local key base=""
    key=$(cd "$dir" && "$binary" keys create --email ab@example.com --name load --scopes write 2>/dev/null)
    (cd "$dir" && exec "$binary" serve) 2>"$dir/server.log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        base=$(grep -o 'listening on http://[0-9.:]*' "$dir/server.log" | head -1 | sed 's/listening on //') && [ -n "$base" ] && break
        sleep 0.1
    done
    [ -n "$base" ] || { cat "$dir/server.log" >&2; exit 1; }
    AV_KEY=$key "$loadgen" --url "$base" --batch "$batch" --concurrency 8 --seconds "$seconds" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['events_per_sec'])"
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=""
    if [ "$engine" = postgres ]; then
        psql "$AGENTVISTA_TEST_POSTGRES_URL" -qc "DROP DATABASE $name WITH (FORCE)" >/dev/null
    fi
}

engines=(sqlite)
[ -n "${AGENTVISTA_TEST_POSTGRES_URL:-}" ] && engines+=(postgres)
read -r -a engines <<<"${AB_ENGINES:-${engines[*]}}"
read -r -a batches <<<"${AB_BATCHES:-10 100}"
for engine in "${engines[@]}"; do
    for batch in "${batches[@]}"; do
        ratios=()
        for round in $(seq 1 "$rounds"); do
            if [ $((round % 2)) -eq 1 ]; then
                b=$(run_once "$before" "$engine" "$batch")
                a=$(run_once "$after" "$engine" "$batch")
            else
                a=$(run_once "$after" "$engine" "$batch")
                b=$(run_once "$before" "$engine" "$batch")
            fi
            ratios+=("$(python3 -c "print($a / $b)")")
            echo "$engine batch $batch round $round: $rev $b/s, this checkout $a/s" >&2
        done
        python3 - "$engine" "$batch" "${ratios[@]}" <<'EOF'
import statistics, sys
engine, batch, *ratios = sys.argv[1:]
r = sorted(float(x) for x in ratios)
q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
print(f"{engine} batch {batch}: this checkout / before = {statistics.median(r):.3f} "
      f"(median of {len(r)} pairs; quartiles {q[0]:.2f}-{q[2]:.2f})")
EOF
    done
done
