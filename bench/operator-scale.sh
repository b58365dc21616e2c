#!/usr/bin/env bash
# The operator at scale, on the local control plane (release builds):
#   1. detection latency with 1,000 pods watched: a fault visible in the API -> its Incident exists
#      (crates/aegis-operator/examples/detection_latency.rs, five victims, median and max);
#   2. the operator's memory with 5,000 pods watched (all namespaces), after two full resyncs.
# Needs the cluster harness:  eval "$(scripts/harness/cluster.sh up /tmp/c)"; bench/operator-scale.sh
# Adds fake nodes (kwok) with room for the pods, and deletes everything it made at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AEGIS_KUBECONFIG:?start the cluster harness first (scripts/harness/cluster.sh up DIR)}"
export KUBECONFIG="$AEGIS_KUBECONFIG"
kubectl="${AEGIS_KUBECTL:-kubectl}"
cargo build --release --locked -q -p aegis-cli -p aegis-operator --example detection_latency
aegis=target/release/aegis
log() { echo "operator-scale: $*" >&2; }

cleanup() {
  [ -n "${op:-}" ] && kill "$op" 2>/dev/null || true
  "$kubectl" delete namespace aegis-bench-1k aegis-bench-5k --wait=false >/dev/null 2>&1 || true
  "$kubectl" delete node -l aegis.io/bench=true --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

for i in 0 1 2 3 4 5; do
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

# deployments NS COUNT REPLICAS PREFIX: healthy deployments of the demo app (a fake image: kwok runs nothing).
deployments() {
  local ns=$1 count=$2 replicas=$3 prefix=$4
  for i in $(seq 1 "$count"); do
    cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $prefix-$i, namespace: $ns}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: $prefix-$i}}
  template:
    metadata:
      labels: {app: $prefix-$i}
      annotations: {aegis.io/requires-env: DATABASE_URL}
    spec:
      containers:
      - name: api
        image: registry.invalid/demo-api:v2
        env: [{name: DATABASE_URL, value: "postgres://db"}]
---
YAML
  done | "$kubectl" apply -f - >/dev/null
}

running() { "$kubectl" get pods -n "$1" --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l; }
wait_running() {
  local ns=$1 want=$2 start; start=$(date +%s)
  until [ "$(running "$ns")" -ge "$want" ]; do
    [ $(( $(date +%s) - start )) -lt 600 ] || { log "only $(running "$ns")/$want pods running in $ns"; exit 1; }
    sleep 3
  done
  log "$want pods running in $ns after $(( $(date +%s) - start ))s"
}

"$kubectl" create namespace aegis-bench-1k >/dev/null
deployments aegis-bench-1k 10 99 load
deployments aegis-bench-1k 5 2 victim
wait_running aegis-bench-1k 1000

"$aegis" crd | "$kubectl" apply --server-side -f - >/dev/null
policy=$(mktemp); printf 'zap: {mode: off}\nfalco: {mode: off}\n' > "$policy"
RUST_LOG=warn "$aegis" operator run --watch-namespace aegis-bench-1k --lease-namespace aegis-bench-1k --listen 127.0.0.1:0 \
  --verify-policy "$policy" --window 2s --resync 30s 2>/tmp/aegis-operator-scale.log &
op=$!
sleep 5
target/release/examples/detection_latency aegis-bench-1k victim-1 victim-2 victim-3 victim-4 victim-5
kill "$op"; wait "$op" 2>/dev/null || true; op=

"$kubectl" delete namespace aegis-bench-1k --wait=true --timeout=300s >/dev/null
"$kubectl" create namespace aegis-bench-5k >/dev/null
deployments aegis-bench-5k 50 100 load
wait_running aegis-bench-5k 5000
total=$("$kubectl" get pods -A --no-headers | wc -l)
"$aegis" operator run --lease-namespace aegis-bench-5k --listen 127.0.0.1:0 --verify-policy "$policy" --resync 10s \
  2>>/tmp/aegis-operator-scale.log &
op=$!
sleep 25   # two full resyncs of every namespace
read -r rss hwm < <(awk '/VmRSS/{r=$2} /VmHWM/{h=$2} END{print r, h}' "/proc/$op/status")
echo "{\"pods_in_cluster\":$total,\"operator_rss_kb\":$rss,\"operator_peak_rss_kb\":$hwm}"
rm -f "$policy"
