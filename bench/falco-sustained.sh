#!/usr/bin/env bash
# The Falco receiver under sustained load with a restart in the middle: `aegis falco serve` (release,
# fsync per commit) takes real alerts from 16 keep-alive senders for about a minute; halfway through
# it is stopped (SIGTERM) and started again on the same store. Then: what the senders had
# acknowledged (200) must all be stored — an acknowledged alert is never lost — and the store holds
# no duplicate. Prints one JSON line.
#   bench/falco-sustained.sh [TOTAL=840000] [CONCURRENCY=16]
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${1:-840000}; C=${2:-16}
ALERTS="${AEGIS_TESTDATA:-../shared/testdata}/falco/josevnz-falco_json_lines.only-json.jsonl"
cargo build --release --locked -q -p aegis-cli -p aegis-scanners --example falco_load
aegis=target/release/aegis
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
store=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$store"' EXIT
serve() {
  "$aegis" falco serve --listen "127.0.0.1:$port" --store "$store" 2>>"$store.log" &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.05; done
}
serve
target/release/examples/falco_load --url "http://127.0.0.1:$port/" --alerts "$ALERTS" --total "$TOTAL" --concurrency "$C" > "$store.load" &
load=$!
sleep 30
t0=$(date +%s%N)
kill -TERM $pid; wait $pid || true
serve
down_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $load
result=$(cat "$store.load")
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
kill -TERM $pid; wait $pid || true
stored=$("$aegis" falco query --store "$store" --since 100000d --count)
errors=$(echo "$result" | jq .errors)
acked=$(( TOTAL - errors ))
echo "{\"load\":$result,\"restart_down_ms\":$down_ms,\"acknowledged\":$acked,\"stored\":$stored,\"acknowledged_but_lost\":$(( acked > stored ? acked - stored : 0 )),\"stored_not_acknowledged\":$(( stored > acked ? stored - acked : 0 )),\"receiver_peak_rss_kb_after_restart\":$hwm}"
rm -f "$store.log" "$store.load"
