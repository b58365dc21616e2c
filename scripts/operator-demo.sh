#!/usr/bin/env bash
# The operator end to end on a fresh machine, on real containers: build the tools (Trivy and its DB,
# Kubernetes; the first time only, ~25 min), start the local cluster with its real node (containerd,
# runc, kubelet) and the local registry with the test app's images, install the Incident CRD, deploy
# shop/checkout (tests/apps/demo-api:v2 behind a Service), inject an incident — an "upgrade" to v3
# that also drops DATABASE_URL, so the real process exits and crash-loops — run `aegis operator run`,
# and follow the incident from Detected to Resolved: analyzed, proven in a shadow (the kubelet's own
# health verdicts, Trivy on the baseline and candidate images with the project's DB, the manifest
# checks, smoke checks through the shadow's Service), approved by policy, applied, monitored.
# The shadow's isolation is shown by a probe pod inside it (kube-router enforces NetworkPolicy on the
# real node); the probe image is the test app, which speaks `aegis probe connect` (AEGIS's own image
# cannot be built here). ZAP and Falco cannot run here; the report lists them as skipped by the policy.
# Exits 0 when the incident is Resolved and production serves again. Stops everything at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q -p aegis-cli
aegis=target/debug/aegis
state=$(mktemp -d "${TMPDIR:-/tmp}/aegis-operator-demo.XXXXXX")
cleanup() {
  [ -n "${op:-}" ] && kill "$op" 2>/dev/null && wait "$op" 2>/dev/null || true
  bash scripts/harness/scanners.sh down "$state/scanners" >/dev/null 2>&1 || true
  bash scripts/harness/cluster.sh down "$state/cluster" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
say() { echo; echo "════ $* ════"; }

say "building the tools (cached after the first run)"
eval "$(bash scripts/tools.sh)"
say "starting a local Kubernetes cluster: control plane, a real node, kwok nodes"
eval "$(bash scripts/harness/cluster.sh up "$state/cluster")"
say "starting the local registry with the test app's images"
eval "$(bash scripts/harness/scanners.sh up "$state/scanners")"
export KUBECONFIG="$AEGIS_KUBECONFIG"
kubectl="$AEGIS_KUBECTL"
"$kubectl" get nodes -o wide

say "installing the Incident CRD (aegis crd | kubectl apply)"
"$aegis" crd | "$kubectl" apply --server-side -f -
"$kubectl" create namespace shop
"$kubectl" create namespace aegis-system

say "deploying shop/checkout ($AEGIS_REGISTRY/demo-api:v2), healthy"
sed "s|REGISTRY/|$AEGIS_REGISTRY/|" examples/operator/demo-app.yaml | "$kubectl" apply -f -
"$kubectl" -n shop rollout status deployment/checkout --timeout=120s
"$kubectl" -n shop get pods -o wide
ip=$("$kubectl" -n shop get service checkout -o jsonpath='{.spec.clusterIP}')
# Through the Service's ClusterIP (kube-proxy's rules), once its endpoints are programmed.
get() { local body; for _ in $(seq 1 20); do body=$(curl -s -m 2 "http://$ip/") && [ -n "$body" ] && break; sleep 0.5; done; echo "GET http://$ip/ -> ${body:-no answer}"; }
get

say "injecting an incident: an upgrade to demo-api:v3 that also drops DATABASE_URL"
"$kubectl" -n shop patch deployment checkout --type=json -p "[
  {\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"$AEGIS_REGISTRY/demo-api:v3\"},
  {\"op\": \"remove\", \"path\": \"/spec/template/spec/containers/0/env\"}]"
for _ in $(seq 1 60); do
  crashed=$("$kubectl" -n shop get pods -l app=checkout -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{"\n"}{end}' | awk '$1 > 0' | head -n1)
  [ -n "$crashed" ] && break
  sleep 1
done
"$kubectl" -n shop get pods
pod=$("$kubectl" -n shop get pods -l app=checkout --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.name}')
echo "kubectl logs $pod: $("$kubectl" -n shop logs "$pod" 2>/dev/null | tail -n1 || "$kubectl" -n shop logs --previous "$pod" 2>&1 | tail -n1)"

say "running the operator (fixes up to CRITICAL approved by policy; logs in $state/operator.log)"
"$aegis" operator run --watch-namespace shop --lease-namespace aegis-system --listen 127.0.0.1:0 \
  --auto-approve-max-severity critical --verify-policy examples/operator/policy.yaml \
  --skip-db-update --image-src remote --scan-cache-dir "$state/scan-cache" \
  --isolation-probe-image "$AEGIS_REGISTRY/demo-api:v2" \
  --window 5s --monitor-window 15s --log-level info 2>"$state/operator.log" &
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
"$kubectl" -n shop get pods -o wide
get
say "production healed; the Kubernetes Events AEGIS published"
"$kubectl" -n shop get events --field-selector reason=Resolved -o custom-columns=OBJECT:.involvedObject.kind,NAME:.involvedObject.name,REASON:.reason,MESSAGE:.message
echo
echo "operator-demo: Detected → Resolved on real containers, proven in a shadow (health, Trivy, manifest checks, smoke checks, isolation) before production."
