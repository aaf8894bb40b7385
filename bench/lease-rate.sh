#!/usr/bin/env bash
# How often one PEZ instance leases at full speed (issue 18): starts the
# release build on a fresh embedded store, warms it up, drives one URL with
# wrk and counts the leases it made meanwhile (pez_lease_duration_seconds_count
# of /metrics, summed over sequences and kinds).
# Usage: bench/lease-rate.sh [URL_PATH] [SECONDS]   (default /v2/forward?count=100, 20)
set -euo pipefail
path=${1:-/v2/forward?count=100}
seconds=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
pez=$root/target/release/pez
[ -x "$pez" ] || { echo "build it first: cargo build --release --bin pez" >&2; exit 1; }
dir=$(mktemp -d)
log=$dir/pez.log
cd "$dir"
PEZ_LISTEN=127.0.0.1:0 PEZ_LOG=info "$pez" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|.*http://||') && [ -n "$addr" ] && break
  sleep 0.1
done
leases() {
  curl -s "http://$addr/metrics" |
    awk '/^pez_lease_duration_seconds_count/ { total += $NF } END { printf "%d\n", total }'
}
wrk -t2 -c64 -d5s "http://$addr$path" >/dev/null   # warm-up: blocks grow to PEZ_BLOCK_MAX
before=$(leases)
wrk -t2 -c64 -d"${seconds}s" "http://$addr$path" | tee "$dir/wrk.txt" | grep -E 'Requests/sec|Non-2xx'
after=$(leases)
requests=$(awk '/Requests\/sec/ { print $2 }' "$dir/wrk.txt")
echo "leases during ${seconds} s: $((after - before)) = $(awk -v n=$((after - before)) -v s="$seconds" 'BEGIN { printf "%.1f", n / s }') per second ($path, $requests requests/s)"
