#!/usr/bin/env bash
# The operator at scale, on the local control plane (kwok nodes: the pods are simulated, the API
# server, etcd and watches are real), for one or two operator binaries on the same pods:
#   - detection latency: a fault visible in the API -> its Incident exists, for VICTIMS victims per
#     binary (crates/aegis-operator/examples/detection_latency.rs; p50, p99, max);
#   - the operator's RSS and peak RSS after its first full pass;
#   - API requests per minute at rest (the operator's own aegis_kubernetes_request_duration_seconds
#     counts, by verb, over 60 s with nothing changing).
# at 1,000, 5,000 and 10,000 pods (spread over 10 namespaces of 100-pod Deployments), cluster-wide.
#
#   bench/operator-scale.sh LABEL=BINARY [LABEL=BINARY]     e.g. before=/tmp/before/aegis after=target/release/aegis
#   SIZES="1000 5000 10000" VICTIMS=10
# Needs the cluster harness:  eval "$(scripts/harness/cluster.sh up /tmp/c)"
# Deletes everything it made at the end. Prints one JSON line per (binary, size).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AEGIS_KUBECONFIG:?start the cluster harness first (scripts/harness/cluster.sh up DIR)}"
export KUBECONFIG="$AEGIS_KUBECONFIG"
kubectl="${AEGIS_KUBECTL:-kubectl}"
SIZES=${SIZES:-1000 5000 10000}
VICTIMS=${VICTIMS:-10}
[ $# -ge 1 ] || { echo "usage: bench/operator-scale.sh LABEL=BINARY [LABEL=BINARY]" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
# LATENCY_BIN: a detection_latency built before (the measurer need not be rebuilt with every change).
latency=${LATENCY_BIN:-$target/release/examples/detection_latency}
[ -n "${LATENCY_BIN:-}" ] || cargo build --release --locked -q -p aegis-operator --example detection_latency
log() { echo "operator-scale: $*" >&2; }
namespaces=$(seq -f 'aegis-scale-%g' 0 9)
# The operator's own namespace (its Lease): never watched, so not one of the measured ones.
home=aegis-scale-system

cleanup() {
  [ -n "${op:-}" ] && kill "$op" 2>/dev/null || true
  # The namespaces first, and gone, then the fake nodes: pods left on a node that no longer exists
  # keep their namespace Terminating.
  for ns in $namespaces $home; do "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
  for ns in $namespaces $home; do "$kubectl" wait --for=delete "namespace/$ns" --timeout=300s >/dev/null 2>&1 || true; done
  "$kubectl" delete node -l aegis.io/bench=true --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Room for 12,000 pods on fake nodes.
for i in $(seq 0 11); do
  cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: bench-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: bench-node-$i, type: kwok, aegis.io/bench: "true"}
spec: {}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
---
YAML
done | "$kubectl" apply -f - >/dev/null

# deployment NS NAME REPLICAS: a healthy Deployment of a fake image (kwok runs nothing); without
# DATABASE_URL the harness' fault Stage makes its pods crash-loop.
deployment() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $2, namespace: $1}
spec:
  replicas: $3
  selector: {matchLabels: {app: $2}}
  template:
    metadata:
      labels: {app: $2}
      annotations: {aegis.io/requires-env: DATABASE_URL}
    spec:
      nodeSelector: {aegis.io/bench: "true"}
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers:
      - name: api
        image: registry.invalid/demo-api:v2
        env: [{name: DATABASE_URL, value: "postgres://db"}]
---
YAML
}

running() { "$kubectl" get pods -A -l 'app' --field-selector=status.phase=Running --no-headers 2>/dev/null | grep -c aegis-scale || true; }
wait_running() {
  local want=$1 start; start=$(date +%s)
  until [ "$(running)" -ge "$want" ]; do
    [ $(( $(date +%s) - start )) -lt 1200 ] || { log "only $(running)/$want pods running"; exit 1; }
    sleep 5
  done
  log "$want pods running after $(( $(date +%s) - start ))s"
}

# Idempotent: a run may start on the pods an earlier one (or a setup of its own) left.
for ns in $namespaces $home; do "$kubectl" create namespace "$ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null; done
"$(echo "$1" | cut -d= -f2)" crd | "$kubectl" apply --server-side --force-conflicts -f - >/dev/null
policy=$(mktemp); printf 'zap: {mode: off}\nfalco: {mode: off}\ntrivy: {mode: off}\n' > "$policy"
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# requests SINCE_FILE: the operator's API calls by verb now, minus those in SINCE_FILE.
scrape() { curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk '/^aegis_kubernetes_request_duration_seconds_count/ {
  match($0, /verb="[A-Z]+"/); v=substr($0, RSTART+6, RLENGTH-7); n[v]+=$NF } END { for (v in n) print v, n[v] }' | sort; }

victims_made=0
for size in $SIZES; do
  # Scale to `size` pods: 10 namespaces x size/1000 Deployments of 100 pods.
  per_ns=$(( size / 1000 ))
  for ns in $namespaces; do
    for d in $(seq 1 "$per_ns"); do deployment "$ns" "load-$d" 100; done
  done | "$kubectl" apply -f - >/dev/null
  wait_running "$size"
  for spec in "$@"; do
    label=${spec%%=*}; binary=${spec#*=}
    # Fresh victims for this run (2 pods each, in the first namespace).
    first=$victims_made
    for v in $(seq $(( first + 1 )) $(( first + VICTIMS ))); do deployment aegis-scale-0 "victim-$v" 2; done | "$kubectl" apply -f - >/dev/null
    victims_made=$(( first + VICTIMS ))
    wait_running $(( size + 2 * VICTIMS ))
    "$kubectl" delete incidents.aegis.io --all -A --wait=false >/dev/null 2>&1 || true
    "$binary" operator run --lease-namespace "$home" --listen "127.0.0.1:$metrics_port" \
      --verify-policy "$policy" --window 2s --resync 30s --exclude-namespace aegis-system --log-level warn 2>>/tmp/aegis-operator-scale.log &
    op=$!
    # Its first full pass (the cache filling, or the first resync's lists).
    for _ in $(seq 120); do curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null && break; sleep 0.5; done
    sleep 20
    names=$(seq -f 'victim-%g' $(( first + 1 )) $(( first + VICTIMS )))
    # shellcheck disable=SC2086
    result=$("$latency" aegis-scale-0 $names | tail -1) || result='{"error":"a victim was not detected within 120 s"}' 
    sleep 10
    before=$(scrape); sleep 60; after=$(scrape)
    at_rest=$(join -a1 -e0 -o 0,1.2,2.2 <(echo "$after") <(echo "$before") | awk '{printf "%s\"%s\":%d", (NR>1?",":""), $1, $2-$3}')
    read -r rss hwm < <(awk '/VmRSS/{r=$2} /VmHWM/{h=$2} END{print r, h}' "/proc/$op/status")
    kill "$op"; wait "$op" 2>/dev/null || true; op=
    echo "{\"binary\":\"$label\",\"pods\":$size,\"latency\":$result,\"requests_per_minute_at_rest\":{$at_rest},\"rss_kb\":$rss,\"peak_rss_kb\":$hwm}"
  done
done
rm -f "$policy"
