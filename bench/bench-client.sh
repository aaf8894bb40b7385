#!/usr/bin/env bash
# make bench-client (issue 20): the Rust client's in-process numbers/s
# against a local PEZ (the release build on a fresh embedded store), beside
# a bare AtomicI64 counter measured in the same run. Prints figures; the
# last line is `client: N numbers/s on 1 thread, M numbers/s on T threads`.
# Usage: bench/bench-client.sh [SECONDS per run]   (default 3)
set -euo pipefail
seconds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
pez=$root/target/release/pez
probe=$root/target/release/examples/throughput
for binary in "$pez" "$probe"; do
    [ -x "$binary" ] || { echo "bench-client: $binary is missing (make bench-client builds it)" >&2; exit 1; }
done
dir=$(mktemp -d)
log=$dir/pez.log
cd "$dir"
env -u PEZ_DATABASE_URL -u PEZ_DB_HOST PEZ_ENV_FILE= PEZ_DATA_DIR="$dir/data" \
    PEZ_LISTEN=127.0.0.1:0 PEZ_LOG=info "$pez" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
addr=
for _ in $(seq 100); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|.*http://||') && [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "bench-client: pez did not start: $(tail -1 "$log")" >&2; exit 1; }
echo "$("$pez" --version | head -1) at $addr; $(nproc) cores; ${seconds} s per run"
"$probe" "http://$addr" forward "$seconds"
