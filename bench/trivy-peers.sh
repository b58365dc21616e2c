#!/usr/bin/env bash
# Trivy report handling, AEGIS beside the tools a user would otherwise reach for, on the largest real
# reports ($AEGIS_TESTDATA, read in place), each a whole process as a user runs it:
#   aegis   `aegis gate --candidate REPORT -o json` (release): detect, parse, normalise, fingerprint, gate
#   python  bench/peers/trivy_count.py: json.load + a loop counting severities (the predecessor's way)
#   jq      one jq program counting severities
# Prints one JSON line per report: each tool's median wall time over RUNS (default 7) runs and its peak
# RSS; then (stderr) the counts by severity each tool found.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${AEGIS_TESTDATA:-../shared/testdata}/trivy"
RUNS=${RUNS:-7}
[ -d "$DATA" ] || { echo "trivy-peers: shared test data not found at $DATA" >&2; exit 1; }
cargo build --release --locked -q -p aegis-cli
policy=$(mktemp); printf 'zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n' > "$policy"
trap 'rm -f "$policy"' EXIT
JQ='(if type == "array" then . else (.Results // []) end) | [.[] | ((.Vulnerabilities // []) + (.Misconfigurations // []))[] | .Severity] | group_by(.) | map({(.[0]): length}) | add'

# measure NAME CMD...: median wall seconds and the peak RSS (KB) over RUNS runs.
measure() {
  local name=$1; shift
  local walls=() rss=0
  for _ in $(seq "$RUNS"); do
    local out t0 t1
    t0=$(date +%s%N)
    out=$( { /usr/bin/time -f '%M' "$@" > /dev/null; } 2>&1 | tail -1 ) || true
    t1=$(date +%s%N)
    walls+=("$(( (t1 - t0) / 1000000 ))")
    [ "$out" -gt "$rss" ] && rss=$out
  done
  local median
  median=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  echo "\"$name\":{\"wall_ms\":$median,\"peak_rss_kb\":$rss}"
}

for f in securecodebox-mediawiki-1.27.3.legacy.json securecodebox-local-k8s-scan-result.json backline-juice-shop-repo-trivy-0.69.3.json; do
  size=$(stat -c %s "$DATA/$f")
  a=$(measure aegis target/release/aegis gate --policy "$policy" --candidate "$DATA/$f" -o json)
  p=$(measure python python3 bench/peers/trivy_count.py "$DATA/$f")
  j=$(measure jq jq -c "$JQ" "$DATA/$f")
  echo "{\"report\":\"$f\",\"bytes\":$size,$a,$p,$j}"
  # The same counts from all three (AEGIS: its summary's candidate totals by severity).
  echo "  aegis:  $(target/release/aegis gate --policy "$policy" --candidate "$DATA/$f" -o json | jq -c '.summary.by_severity | with_entries(select(.value.total > 0) | .value = .value.total)')" >&2
  echo "  python: $(python3 bench/peers/trivy_count.py "$DATA/$f" | jq -c .counts)" >&2
  echo "  jq:     $(jq -c "$JQ" "$DATA/$f")" >&2
done
