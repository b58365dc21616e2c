#!/usr/bin/env bash
# The real node's figures (docs/benchmarks.md):
#   1. cluster up: control plane + kwok nodes + the real node Ready, twice (the second is the warm case;
#      "cold" — building the binaries — is in docs/testing.md's budget table);
#   2. per classic scenario on the real node: the time from the fault (the rollout or the create that
#      breaks the workload) until a live analysis reports it, and the passing verification's breakdown
#      (shadow created, fix applied, health window, baseline ∥ candidate Trivy scans), from the live
#      verification tests run one at a time (crates/aegis-verify/tests/live_verify.rs prints them).
# Needs the tools (eval "$(scripts/tools.sh)"); starts and stops its own harnesses. Prints JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(mktemp -d "${TMPDIR:-/tmp}/aegis-bench-real-node.XXXXXX")
cleanup() {
  bash scripts/harness/scanners.sh down "$state/scanners" >/dev/null 2>&1 || true
  bash scripts/harness/cluster.sh down "$state/cluster" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

for run in 1 2; do
  start=$(date +%s%N)
  bash scripts/harness/cluster.sh up "$state/cluster" >/dev/null 2>&1
  echo "{\"cluster_up_run\":$run,\"seconds\":$(( ($(date +%s%N) - start) / 1000000 ))e-3}"
  [ "$run" = 2 ] || bash scripts/harness/cluster.sh down "$state/cluster" >/dev/null 2>&1
done
eval "$(bash scripts/harness/cluster.sh up "$state/cluster" 2>/dev/null)"
eval "$(bash scripts/harness/scanners.sh up "$state/scanners" 2>/dev/null)"
export AEGIS_KUBECONFIG AEGIS_KUBECTL AEGIS_REGISTRY

cargo test --locked -q -p aegis-verify --test live_verify -- --test-threads 1 --nocapture 2>&1 \
  | awk '
    # With --nocapture a test'"'"'s first line follows libtest'"'"'s "test name ... " on the same line.
    /bench-real-node / {
      sub(/.*bench-real-node /, "")
      if ($1 == "detected") detect[$2] = $3
      if ($1 == "verified") verified[$2] = $3
    }
    END {
      for (c in verified) {
        d = (c in detect) ? detect[c] : "null"
        printf "{\"scenario\":\"%s\",\"fault_to_incident_ms\":%s,\"verification_ms\":%s}\n", c, d, verified[c]
      }
    }'
