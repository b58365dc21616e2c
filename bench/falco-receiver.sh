#!/usr/bin/env bash
# Falco receiver throughput on loopback: `aegis falco serve` (release build) under the falco_load
# generator — one real alert per POST, keep-alive, N concurrent senders — then a count of what was
# stored (nothing may be lost) and the receiver's peak RSS (VmHWM).
#   bench/falco-receiver.sh [TOTAL]        (default 20000 alerts per run)
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${1:-20000}
ALERTS="${AEGIS_TESTDATA:-../shared/testdata}/falco/josevnz-falco_json_lines.only-json.jsonl"
cargo build --release --locked -q -p aegis-cli -p aegis-scanners --example falco_load
aegis=target/release/aegis
load=target/release/examples/falco_load
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

for mode in fsync no-fsync; do
  for c in 1 16 64; do
    store=$(mktemp -d)
    flags=(); [ "$mode" = no-fsync ] && flags=(--no-fsync)
    "$aegis" falco serve --listen "127.0.0.1:$port" --store "$store" "${flags[@]}" 2>/dev/null &
    pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
    result=$("$load" --url "http://127.0.0.1:$port/" --alerts "$ALERTS" --total "$TOTAL" --concurrency "$c")
    cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -TERM $pid; wait $pid || true
    stored=$("$aegis" falco query --store "$store" --since 100000d --count)
    echo "{\"mode\":\"$mode\",\"result\":$result,\"stored\":$stored,\"lost\":$((TOTAL - stored)),\"receiver_cpu_s\":$(echo "scale=2; ($cpu1-$cpu0)/$(getconf CLK_TCK)" | bc),\"receiver_peak_rss_kb\":$hwm}"
    rm -rf "$store"
  done
done
