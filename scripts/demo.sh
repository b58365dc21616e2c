#!/usr/bin/env bash
# AEGIS's main job, end to end:
#   the gate, on the evidence shipped in examples/gate — two candidate fixes of the demo workload
#   against its production baseline:
#     1. candidate-fixed:     the image upgrade resolves the HIGH openssl CVE  -> PASSED  (exit 0)
#     2. candidate-regressed: a new CRITICAL CVE, a privileged container, a literal DB password and a
#                             shell in the shadow                               -> BLOCKED (exit 1)
#   then the operator (scripts/operator-demo.sh): a local control plane, a demo app, an injected
#   incident, and `aegis operator run` taking it from Detected to Resolved.
# The script exits 0 when every verdict and the incident's end are what they must be.
# AEGIS_DEMO_GATE_ONLY=1 skips the operator part (which builds Kubernetes the first time, ~7 min).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q -p aegis-cli
aegis=target/debug/aegis
ex=examples/gate

run() {
  local name=$1 want=$2
  echo
  echo "════ aegis gate: $name (expect exit $want) ════"
  set +e
  "$aegis" gate --policy "$ex/policy.yaml" --baseline "$ex"/baseline/* --candidate "$ex/$name"/* -n aegis-shadow-demo
  local got=$?
  set -e
  if [ "$got" != "$want" ]; then
    echo "demo: $name exited $got, expected $want" >&2
    exit 1
  fi
}

run candidate-fixed 0
run candidate-regressed 1
echo
echo "demo: both verdicts as expected. Try -o json, -o sarif or -o junit on the same command."
if [ "${AEGIS_DEMO_GATE_ONLY:-}" != 1 ]; then
  bash scripts/operator-demo.sh
fi
