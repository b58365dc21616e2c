#!/usr/bin/env bash
# AEGIS's main job, end to end on the evidence shipped in examples/gate: build the binary, then gate
# two candidate fixes of the demo workload against its production baseline.
#   1. candidate-fixed:     the image upgrade resolves the HIGH openssl CVE  -> PASSED  (exit 0)
#   2. candidate-regressed: a new CRITICAL CVE, a privileged container, a literal DB password and a
#                           shell in the shadow                               -> BLOCKED (exit 1)
# The script exits 0 when both verdicts are what they must be.
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
