#!/usr/bin/env bash
# The operator end to end on a fresh machine: start the local control plane (building it the first
# time, ~7 min), install the Incident CRD, deploy a demo app, inject an incident (a rollout that drops
# an env var the app needs), run `aegis operator run`, and follow the incident from Detected to
# Resolved: analyzed, proven in a shadow, approved by policy, applied, monitored.
# Exits 0 when the incident is Resolved and production is healthy again. Stops everything at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q -p aegis-cli
aegis=target/debug/aegis
state=$(mktemp -d "${TMPDIR:-/tmp}/aegis-operator-demo.XXXXXX")
cleanup() {
  [ -n "${op:-}" ] && kill "$op" 2>/dev/null && wait "$op" 2>/dev/null || true
  bash scripts/harness/cluster.sh down "$state/cluster" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
say() { echo; echo "════ $* ════"; }

say "starting a local Kubernetes control plane"
eval "$(bash scripts/harness/cluster.sh up "$state/cluster")"
export KUBECONFIG="$AEGIS_KUBECONFIG"
kubectl="$AEGIS_KUBECTL"

say "installing the Incident CRD (aegis crd | kubectl apply)"
"$aegis" crd | "$kubectl" apply --server-side -f -
"$kubectl" create namespace shop
"$kubectl" create namespace aegis-system

say "deploying shop/checkout, healthy"
"$kubectl" apply -f examples/operator/demo-app.yaml
"$kubectl" -n shop rollout status deployment/checkout --timeout=120s

say "injecting an incident: a rollout that drops DATABASE_URL"
"$kubectl" -n shop patch deployment checkout --type=json \
  -p '[{"op": "remove", "path": "/spec/template/spec/containers/0/env"}]'

say "running the operator (fixes up to CRITICAL approved by policy; logs in $state/operator.log)"
"$aegis" operator run --watch-namespace shop --lease-namespace aegis-system --listen 127.0.0.1:0 \
  --auto-approve-max-severity critical --verify-policy examples/operator/policy.yaml \
  --window 5s --monitor-window 10s --log-level info 2>"$state/operator.log" &
op=$!

last=""
for _ in $(seq 1 180); do
  phase=$("$kubectl" -n shop get incidents -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  if [ -n "$phase" ] && [ "$phase" != "$last" ]; then
    "$aegis" incident list -n shop
    last=$phase
  fi
  case "$phase" in
    Resolved) break ;;
    RolledBack|Failed|Rejected|Expired|Superseded) break ;;
  esac
  sleep 1
done

name=$("$kubectl" -n shop get incidents -o jsonpath='{.items[0].metadata.name}')
say "aegis incident show $name -n shop"
"$aegis" incident show "$name" -n shop
if [ "$last" != "Resolved" ]; then
  echo "operator-demo: the incident ended $last, not Resolved; operator log:" >&2
  tail -50 "$state/operator.log" >&2
  exit 1
fi
"$kubectl" -n shop rollout status deployment/checkout --timeout=60s
say "production healed; the Kubernetes Events AEGIS published"
"$kubectl" -n shop get events --field-selector reason=Resolved -o custom-columns=OBJECT:.involvedObject.kind,NAME:.involvedObject.name,REASON:.reason,MESSAGE:.message
echo
echo "operator-demo: Detected → Resolved, proven in a shadow before production."
