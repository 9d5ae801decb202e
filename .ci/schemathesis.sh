#!/usr/bin/env bash
# Schemathesis against the real server: the OpenAPI document the server serves
# (/api/v1/openapi.json) drives generated requests, and every answer must be no 5xx and
# conform to the document (status code, content type, headers, body schema).
#
# Runs the binary $AGENTVISTA_BIN (default $CARGO_TARGET_DIR/debug/agentvista) on a free port
# with its own SQLite database and configuration in a temporary directory, creates a user and
# a key with every scope through the CLI, logs in with curl, then runs Schemathesis with the
# key as `Authorization: Bearer`, and with the session cookie and its X-CSRF-Token (revoking a
# key and logging out run on their own, after the rest, since they end the credentials).
# Exits non-zero on any failure, or if the server logged a failed request (a 5xx); the server
# is stopped on exit, whatever happens.
#
# Run from anywhere: bash .ci/schemathesis.sh
# Settings: AGENTVISTA_BIN, AGENTVISTA_SCHEMATHESIS_VENV (default
# /var/tmp/agentvista-schemathesis-venv), PYTHON (default python3),
# AGENTVISTA_SCHEMATHESIS_EXAMPLES (test cases per operation and phase, default 100: about 40 s
# in all on a debug build),
# AGENTVISTA_SCHEMATHESIS_SEED (default 20261128), AGENTVISTA_SCHEMATHESIS_CHECKS (Schemathesis's
# --checks; e.g. "all" to explore beyond the conformance checks CI holds the server to),
# AGENTVISTA_SCHEMATHESIS_KEEP_LOG (a file to copy the server's log to, request lines included).
set -euo pipefail

# Pinned: a new Schemathesis release may add checks or change their defaults; upgrade on
# purpose, not by surprise.
SCHEMATHESIS_VERSION=4.32.5

target="${CARGO_TARGET_DIR:-/var/tmp/agentvista-target}"
bin="${AGENTVISTA_BIN:-$target/debug/agentvista}"
venv="${AGENTVISTA_SCHEMATHESIS_VENV:-/var/tmp/agentvista-schemathesis-venv}"
python="${PYTHON:-python3}"
examples="${AGENTVISTA_SCHEMATHESIS_EXAMPLES:-100}"
seed="${AGENTVISTA_SCHEMATHESIS_SEED:-20261128}"
# No 5xx, and every answer as the document says: status, content type, headers, body.
checks="${AGENTVISTA_SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"

say() { echo "schemathesis.sh: $*"; }

if [ ! -x "$bin" ]; then
    say "no server binary at $bin (cargo build -p agentvista, or set AGENTVISTA_BIN)" >&2
    exit 1
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtual environment $venv"
    "$python" -m venv "$venv"
fi
if [ "$("$venv/bin/python" -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p')" \
    != "$SCHEMATHESIS_VERSION" ]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
fi
st="$venv/bin/schemathesis"

work="$(mktemp -d)"
server=""
stop() {
    if [ -n "${AGENTVISTA_SCHEMATHESIS_KEEP_LOG:-}" ] && [ -f "$work/server.log" ]; then
        cp "$work/server.log" "$AGENTVISTA_SCHEMATHESIS_KEEP_LOG"
    fi
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Only the file below configures the server and the CLI: no stray AGENTVISTA__ variables.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^AGENTVISTA__' || true)
cat >"$work/agentvista.toml" <<EOF
[server]
bind = "127.0.0.1:0"
# Plain HTTP on the loopback: the session cookie must not be Secure for curl to hand it on.
insecure_cookies = true

[database]
url = "sqlite://$work/agentvista.db?mode=rwc"
# Nothing here must survive a power cut; fsyncs would only slow the run down.
sqlite_synchronous = "normal"
EOF
av() { (cd "$work" && "$bin" --config "$work/agentvista.toml" "$@"); }

email=schemathesis@example.com
password="$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
av migrate >/dev/null
AGENTVISTA_PASSWORD="$password" av users create --email "$email" >/dev/null
key="$(av keys create --email "$email" --name schemathesis --scopes read,write,admin)"

say "starting $bin"
: >"$work/server.log"
(cd "$work" && RUST_LOG=info exec "$bin" --config "$work/agentvista.toml" serve) \
    >"$work/server.log" 2>&1 &
server=$!
base=""
for _ in $(seq 600); do
    base="$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/server.log" | head -n1)"
    [ -n "$base" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        say "the server exited before listening:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$base" ]; then
    say "the server did not listen within 60 s:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
say "server at $base"

# The session: the cookie from Set-Cookie, the CSRF token from the body.
login_body="$(EMAIL="$email" PASSWORD="$password" "$venv/bin/python" -c \
    'import json, os; print(json.dumps({"email": os.environ["EMAIL"], "password": os.environ["PASSWORD"]}))')"
curl -sS --fail -D "$work/login.headers" -o "$work/login.json" \
    -H 'Content-Type: application/json' --data "$login_body" "$base/api/v1/auth/login/"
cookie="$(sed -n 's/^[Ss]et-[Cc]ookie: \(av_session=[^;]*\).*/\1/p' "$work/login.headers" | tr -d '\r')"
csrf="$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["csrf_token"])' \
    "$work/login.json")"
if [ -z "$cookie" ] || [ -z "$csrf" ]; then
    say "the login gave no session" >&2
    exit 1
fi

# The statuses the server answered since line $1 of its log, as "count status" lines.
statuses() {
    tail -n "+$(($1 + 1))" "$work/server.log" | sed -n 's/.* status=\([0-9]*\).*/\1/p' \
        | sort | uniq -c | awk '{printf "%s %s, ", $2, $1} END {print ""}'
}

run() {
    local name="$1"
    shift
    say "run: $name"
    local from
    from="$(wc -l <"$work/server.log")"
    # --output-sanitize (the default) keeps the key, cookie and token out of the output. The
    # credentials are the ones given here: Schemathesis does not make up its own
    # (--generation-with-security-parameters false), which would override them.
    local result=0
    # From the temporary directory, so that nothing Schemathesis writes lands in the clone; no
    # example database, so that a run depends on the seed alone.
    # Each run is bounded twice: by the number of examples, and by a deadline in case a request
    # or Schemathesis itself hangs.
    (cd "$work" && timeout 300 "$st" run "$base/api/v1/openapi.json" \
        --checks "$checks" \
        --max-examples "$examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 10 \
        --generation-with-security-parameters false \
        --generation-database none \
        --no-color \
        "$@") || result=$?
    say "statuses answered ($name): $(statuses "$from")"
    return "$result"
}

bearer=(--header "Authorization: Bearer $key")
session=(--header "Cookie: $cookie" --header "X-CSRF-Token: $csrf")
status=0
# Revoking a key, rolling it without grace, and logging out would end the credentials the
# rest of a run uses: those operations run alone, after the others.
run "API key (Authorization: Bearer, every scope)" "${bearer[@]}" \
    --exclude-operation-id revoke_api_key --exclude-operation-id roll_api_key || status=1
run "API key: roll and revoke" "${bearer[@]}" \
    --include-operation-id roll_api_key --include-operation-id revoke_api_key || status=1
run "session cookie and X-CSRF-Token" "${session[@]}" \
    --exclude-operation-id logout || status=1
run "session: log out" "${session[@]}" --include-operation-id logout || status=1

# A 5xx is also a line in the server's log: show them, whatever Schemathesis said.
if grep -q 'request failed' "$work/server.log"; then
    say "the server logged failed requests:" >&2
    grep 'request failed' "$work/server.log" | head -n 20 >&2
    status=1
fi
if [ "$status" != 0 ]; then
    say "FAILED (server log: last lines below)" >&2
    tail -n 20 "$work/server.log" >&2
fi
exit "$status"
