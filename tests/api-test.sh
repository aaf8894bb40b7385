#!/usr/bin/env bash
# The API document against the live server: /openapi.json must be a valid
# OpenAPI 3.1 document (openapi-spec-validator), and schemathesis, from
# PyPI, sends generated requests to every operation it describes: no
# response may be a 5xx, and every status code, content type and body must
# match the document. Bounded: a fixed number of examples per operation.
#
#   tests/api-test.sh [PEZ_BINARY]     (default: target/debug/pez, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

pez=${1:-target/debug/pez}
[ -x "$pez" ] || cargo build --bin pez
venv=target/api-test-venv
if [ ! -x "$venv/bin/st" ]; then
    echo "# installing schemathesis and openapi-spec-validator from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5' 'openapi-spec-validator>=0.7'
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pez-api-test-XXXXXX")
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=api-test-admin
# What is tested here is the API document, not outages (tests/api/
# store_failure.rs and the fault suite are): a store call gets seconds
# rather than PEZ's default half second, since in CI a debootstrap runs
# beside this and an fsync can stall that long; a 503 would fail the run.
env -u PEZ_DATABASE_URL -u PEZ_DB_HOST PEZ_LISTEN="127.0.0.1:$port" PEZ_DATA_DIR="$work/data" \
    PEZ_STORE_TIMEOUT_MS=3000 PEZ_LEASE_WAIT_MS=8000 \
    PEZ_ADMIN_TOKEN="$token" PEZ_LOG=warn "$pez" >"$work/pez.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/openapi.json" -o "$work/openapi.json"

passed=0 failed=0
check() {
    local name=$1; shift
    if "$@"; then
        echo "ok - $name"; passed=$((passed + 1))
    else
        echo "not ok - $name"; failed=$((failed + 1))
    fi
}

check "openapi.json is a valid OpenAPI 3.1 document" \
    "$venv/bin/python" -c 'import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
spec = json.load(open(sys.argv[1]))
assert spec["openapi"].startswith("3.1"), spec["openapi"]
validate(spec, cls=OpenAPIV31SpecValidator)' "$work/openapi.json"

check "schemathesis: no 5xx, every response as documented" \
    "$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --header "Authorization: Bearer $token" \
        --max-examples 40 --seed 71 --request-timeout 10 --workers 2 --no-color

if ! kill -0 "$pid" 2>/dev/null; then
    echo "not ok - pez kept running"; failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ]; then
    echo "# pez's warnings and errors:"
    sed 's/^/#   /' "$work/pez.log" | tail -n 40
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
