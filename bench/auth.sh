#!/usr/bin/env bash
# Load benchmark of key verification and of the revocation barrier, on the release binary:
#
#   1. authenticated ping against /healthz of the same process (wrk -t1 -c32), alternating
#      runs, with the verified-key cache on (the default) and off (auth.cache_capacity = 0:
#      every request reads the key's row — the behaviour before the cache);
#   2. revocation latency with two replicas up (DELETE answered once both dropped the key),
#      per path that ends a key (bench/revocations.py), and with one of them frozen by
#      SIGSTOP (bounded by auth.lease_ms);
#   3. ingestion at batch 10 (bench/loadgen.rs, 8 clients) with the cache on and off.
#
#   bench/auth.sh [SECONDS]                       (default 5 s per wrk run)
#   AUTH_PARTS=revocations bench/auth.sh          (part 2 only)
#
# PostgreSQL runs when AGENTVISTA_TEST_POSTGRES_URL is set. Needs wrk (apt-get install wrk).
# Everything talks to 127.0.0.1 only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${ROUNDS:-3}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "bench/auth.sh needs wrk (apt-get install wrk)" >&2; exit 1; }

cargo build --release -q -p agentvista --bin agentvista --example loadgen
bin="$CARGO_TARGET_DIR/release/agentvista"
loadgen="$CARGO_TARGET_DIR/release/examples/loadgen"
work=$(mktemp -d)
cleanup() {
    for file in "$work"/*.pid; do
        [ -e "$file" ] || continue
        kill -CONT "$(cat "$file")" 2>/dev/null || true
        kill "$(cat "$file")" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

start_server() { # name → prints base URL; extra env from the caller
    local name=$1
    # Its output to files: an inherited stdout would hold the caller's $(...) open.
    (cd "$work" && exec "$bin" serve) >"$work/$name.out" 2>"$work/$name.log" &
    echo $! >"$work/$name.pid"
    local base=""
    for _ in $(seq 1 200); do
        base=$(grep -o 'listening on http://[0-9.:]*' "$work/$name.log" | head -1 | sed 's/listening on //') && [ -n "$base" ] && break
        sleep 0.05
    done
    [ -n "$base" ] || { cat "$work/$name.log" >&2; exit 1; }
    echo "$base"
}

stop_server() { # name
    local pid
    pid=$(cat "$work/$1.pid")
    kill -TERM "$pid" 2>/dev/null || true
    # Not our child when started inside $(...): wait for it to go.
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$work/$1.pid"
}

rps() { # url [header] → requests per second from wrk
    local url=$1 header=${2:-}
    if [ -n "$header" ]; then
        wrk -t1 -c32 -d"${seconds}s" -H "$header" "$url"
    else
        wrk -t1 -c32 -d"${seconds}s" "$url"
    fi | awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "errors " $0 > "/dev/stderr"}'
}

run_against() { # label database-url
    local label=$1 url=$2
    export AGENTVISTA__DATABASE__URL=$url AGENTVISTA__DEFAULT_PLAN=pro
    export AGENTVISTA__SERVER__BIND=127.0.0.1:0 RUST_LOG=warn,agentvista=info
    local email="bench-$label@example.com"
    (cd "$work" && "$bin" migrate >/dev/null)
    (cd "$work" && AGENTVISTA_PASSWORD=benchmark-password "$bin" users create --email "$email" >/dev/null)
    local read admin write
    read=$(cd "$work" && "$bin" keys create --email "$email" --name ping --scopes read)
    admin=$(cd "$work" && "$bin" keys create --email "$email" --name admin --scopes admin)
    write=$(cd "$work" && "$bin" keys create --email "$email" --name load --scopes write)

    # 1 and 3: cache on, then off; each alternates /healthz and ping.
    for cache in on off; do
        [ "${AUTH_PARTS:-all}" = revocations ] && break
        local capacity=100000
        [ "$cache" = off ] && capacity=0
        local base
        base=$(AGENTVISTA__AUTH__CACHE_CAPACITY=$capacity start_server "$label-$cache")
        for round in $(seq 1 "$rounds"); do
            local h p
            h=$(rps "$base/healthz")
            p=$(rps "$base/api/v1/me/api-keys/ping/" "Authorization: Bearer $read")
            echo "ping $label $cache $round $h $p"
        done
        local result
        result=$(AV_KEY=$write "$loadgen" --url "$base" --batch 10 --concurrency 8 --seconds "$seconds")
        echo "ingest $label $cache $result"
        stop_server "$label-$cache"
    done

    # 2: two replicas; revocations through A, each key held in memory by both first.
    local a b
    # Leak reports come "from" addresses of their own (X-Forwarded-For), so that their
    # per-address throttle is not what is timed.
    a=$(AGENTVISTA__SERVER__TRUSTED_PROXIES=127.0.0.1 start_server "$label-a")
    b=$(AGENTVISTA__SERVER__TRUSTED_PROXIES=127.0.0.1 start_server "$label-b")
    python3 bench/revocations.py "$a" "$b" "$admin" "$work/$label-b.pid" "$label"
    stop_server "$label-a"
    stop_server "$label-b"
    unset AGENTVISTA__DATABASE__URL
}

run_against sqlite "sqlite://$work/bench.db?mode=rwc"
if [ -n "${AGENTVISTA_TEST_POSTGRES_URL:-}" ]; then
    name="agentvista_auth_$$"
    psql "$AGENTVISTA_TEST_POSTGRES_URL" -qc "CREATE DATABASE $name"
    run_against postgres "${AGENTVISTA_TEST_POSTGRES_URL%/*}/$name"
    psql "$AGENTVISTA_TEST_POSTGRES_URL" -qc "DROP DATABASE $name WITH (FORCE)"
fi
