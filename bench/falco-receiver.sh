#!/usr/bin/env bash
# Falco receiver throughput on loopback: `aegis falco serve` (release build) under the falco_load
# generator — one real alert per POST, keep-alive, N concurrent senders — then a count of what was
# stored (nothing may be lost) and the receiver's peak RSS (VmHWM). Both store backends: the embedded
# SQLite store (with and without fsync per commit) and PostgreSQL (a throwaway server from
# scripts/harness/postgres.sh, a fresh database per run; its server process's CPU is not counted in
# the receiver's).
#   bench/falco-receiver.sh [TOTAL] [BACKENDS]   (default 20000 alerts per run; "fsync no-fsync postgres")
# With wrk on the PATH (Debian: `apt-get install wrk`), each SQLite mode is also loaded by wrk for 10 s
# at 16 keep-alive connections (2 threads): the issue's own measure, and a lighter client than falco_load.
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${1:-20000}
BACKENDS=${2:-fsync no-fsync postgres}
ALERTS="${AEGIS_TESTDATA:-../shared/testdata}/falco/josevnz-falco_json_lines.only-json.jsonl"
cargo build --release --locked -q -p aegis-cli
cargo build --release --locked -q -p aegis-scanners --example falco_load
target=${CARGO_TARGET_DIR:-target}
aegis=$target/release/aegis
load=$target/release/examples/falco_load
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pg_state=$(mktemp -d)
trap 'bash scripts/harness/postgres.sh down "$pg_state"; rm -rf "$pg_state"' EXIT
if [[ " $BACKENDS " == *" postgres "* ]]; then
  eval "$(bash scripts/harness/postgres.sh up "$pg_state")"
fi

for mode in $BACKENDS; do
  for c in 1 16 64; do
    dir=$(mktemp -d)
    flags=()
    case $mode in
      no-fsync) store=$dir; flags=(--no-fsync) ;;
      fsync) store=$dir ;;
      postgres)
        db="bench_${c}_$RANDOM"
        psql -q "$AEGIS_POSTGRES_DSN" -c "CREATE DATABASE $db" >/dev/null
        store="${AEGIS_POSTGRES_DSN%/*}/$db" ;;
    esac
    AEGIS_FALCO_STORE=$store "$aegis" falco serve --listen "127.0.0.1:$port" "${flags[@]}" 2>/dev/null &
    pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
    result=$("$load" --url "http://127.0.0.1:$port/" --alerts "$ALERTS" --total "$TOTAL" --concurrency "$c")
    cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -TERM $pid; wait $pid || true
    stored=$(AEGIS_FALCO_STORE=$store "$aegis" falco query --since 100000d --count)
    echo "{\"mode\":\"$mode\",\"result\":$result,\"stored\":$stored,\"lost\":$((TOTAL - stored)),\"receiver_cpu_s\":$(echo "scale=2; ($cpu1-$cpu0)/$(getconf CLK_TCK)" | bc),\"receiver_peak_rss_kb\":$hwm}"
    rm -rf "$dir"
  done
done

command -v wrk >/dev/null || { echo "wrk not found: the wrk runs are skipped" >&2; exit 0; }
lua=$(mktemp --suffix=.lua)
python3 - "$ALERTS" "$lua" <<'PY'
import json, sys
line = next(l for l in open(sys.argv[1]) if '"rule"' in l)
alert = json.loads(line)
alert["time"] = "@@TIME@@"
template = json.dumps(alert).replace("%", "%%").replace('"@@TIME@@"', '"2026-11-26T00:00:00.%09dZ"')
open(sys.argv[2], "w").write("""-- One real Falco alert per POST, made distinct by its time (thread and sequence).
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local counter = 0
local template = [==[%s]==]
function request()
  counter = counter + 1
  return wrk.format("POST", "/", {["Content-Type"] = "application/json"}, string.format(template, tid * 100000000 + counter))
end
""" % template)
PY
for mode in fsync no-fsync; do
  [[ " $BACKENDS " == *" $mode "* ]] || continue
  dir=$(mktemp -d); flags=(); [ "$mode" = no-fsync ] && flags=(--no-fsync)
  AEGIS_FALCO_STORE=$dir "$aegis" falco serve --listen "127.0.0.1:$port" "${flags[@]}" 2>/dev/null &
  pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  cpu0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$(wrk -t2 -c16 -d10s --latency -s "$lua" "http://127.0.0.1:$port/")
  cpu1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid || true
  sent=$(awk '/requests in/ {print $1}' <<<"$out")
  stored=$(AEGIS_FALCO_STORE=$dir "$aegis" falco query --since 100000d --count)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "{\"mode\":\"wrk-$mode\",\"alerts_per_sec\":$rps,\"p50\":\"$p50\",\"p99\":\"$p99\",\"answered\":$sent,\"stored\":$stored,\"non_2xx\":${non2xx:-0},\"receiver_cpu_s\":$(echo "scale=2; ($cpu1-$cpu0)/$(getconf CLK_TCK)" | bc)}"
  rm -rf "$dir"
done
rm -f "$lua"
