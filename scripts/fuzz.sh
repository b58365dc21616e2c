#!/usr/bin/env bash
# Fuzz every parser that takes outside input, each for a fixed budget (cargo fuzz, libFuzzer, nightly).
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]
# Seeds: the small committed corpora (fuzz/corpus/<target>), the project's own fixtures and, read in
# place, the shared real reports ($AEGIS_TESTDATA, default ../shared/testdata). New inputs go to a
# scratch corpus, never into the repository. A crash leaves its input in fuzz/artifacts/<target>/ and
# makes the script exit 1. Prints one JSON line per target: executions, rate, corpus size, crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}; shift || true
CARGO_FUZZ_VERSION=0.13.2
data="${AEGIS_TESTDATA:-$(cd .. && pwd)/shared/testdata}"
[ -d "$data" ] || echo "fuzz: shared test data not found at $data: seeding from the project's own files only" >&2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(trivy_report zap_report zap_api falco_body falco_stream ignore_and_rules policy snapshot_analysis evidence_gate)

# seeds TARGET: the read-only seed directories of a target.
seeds() {
  case "$1" in
    trivy_report) echo "$data/trivy examples/gate/baseline examples/gate/candidate-fixed" ;;
    zap_report|zap_api) echo "$data/zap" ;;
    falco_body|falco_stream) echo "$data/falco examples/gate/candidate-regressed" ;;
    ignore_and_rules) echo "$data/zap" ;;
    policy) echo "examples/gate examples/operator" ;;
    snapshot_analysis) echo "examples/incidents" ;;
    evidence_gate) echo "$data/trivy $data/zap $data/falco examples/gate/candidate-regressed tests/fixtures/manifests/insecure" ;;
  esac
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/aegis-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  work="$scratch/$t"; mkdir -p "$work" "fuzz/artifacts/$t"
  cp -r "fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  dirs=()
  for d in $(seeds "$t"); do [ -d "$d" ] && dirs+=("$d"); done
  log="$scratch/$t.log"
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$work" "${dirs[@]}" -- \
    -max_total_time="$budget" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  # crash-, timeout- and oom- inputs are findings; slow-unit- files only report an input over -report_slow_units.
  crashes=$(find "fuzz/artifacts/$t" -type f \( -name "crash-*" -o -name "timeout-*" -o -name "oom-*" -o -name "leak-*" \) | wc -l)
  corpus=$(find "$work" -type f | wc -l)
  echo "{\"target\":\"$t\",\"seconds\":$budget,\"executions\":${execs:-0},\"per_second\":$(( ${execs:-0} / budget )),\"corpus\":$corpus,\"crashes\":$crashes,\"exit\":$rc}"
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    status=1
    tail -30 "$log" >&2
  fi
done
exit $status
