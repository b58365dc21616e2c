#!/usr/bin/env bash
# A real, disposable Kubernetes control plane on 127.0.0.1 for AEGIS's tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler (built by build-k8s.sh) and kwok, started by kwokctl's binary
# runtime with the local binaries, three fake nodes, kwok's default Stages plus AEGIS's fault Stages
# (tests/fixtures/kwok/fault-stages.yaml), the Gateway API's CRDs (scripts/harness/gateway-api.sh), and one
# real node (scripts/harness/node.sh: containerd, runc, kubelet, kube-proxy) for the workloads that
# tolerate aegis.io/real-node.
#   cluster.sh up STATE_DIR     start (idempotent); prints `export AEGIS_KUBECONFIG=… AEGIS_KUBECTL=… AEGIS_GATEWAY_API_CRDS=…`
#   cluster.sh down STATE_DIR   stop and delete everything
#   cluster.sh diagnose STATE_DIR   print the real node's state and last errors (test.sh does, when a test fails)
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:?up|down}; state=${2:?state dir}
TOOLS_DIR="${AEGIS_TOOLS_DIR:-$HOME/.cache/aegis-tools}"
KWOK_VERSION=v0.8.0
NAME=aegis
API_PORT=16443   # like a real cluster's 6443: outside the NodePort range
export KWOK_WORKDIR="$state/kwok"
log() { echo "cluster: $*" >&2; }

bin=$(bash scripts/harness/build-k8s.sh "$TOOLS_DIR")
kubectl="$bin/kubectl"
kubeconfig="$state/kubeconfig"

case "$cmd" in
up)
  mkdir -p "$state"
  if [ -f "$kubeconfig" ] && "$kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    log "already running"
  else
    start=$(date +%s)
    # kwok's own default Stages (node initialise + heartbeat with lease, pod ready/complete/delete), read from
    # its module in the Go module cache — the bytes kwokctl embeds — followed by AEGIS's fault Stages.
    kwok_src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION"
    [ -d "$kwok_src" ] || (cd "$state" && GOFLAGS=-mod=mod go mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
    config="$state/kwok.yaml"
    # Every component listens on loopback only (kwokctl's default is 0.0.0.0).
    # kwok manages the fake nodes only (kwokctl's default, --manage-all-nodes, would take over the real one);
    # the API server reaches the real node's kubelet (logs, exec) by its InternalIP with a client certificate.
    pki="$KWOK_WORKDIR/clusters/$NAME/pki"
    cat > "$config" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
  # Outside the NodePort range (30000-32767), where kwokctl would pick one: kube-router lets pods reach
  # local node ports, and the isolation tests must see the NetworkPolicy, not that, stop a shadow pod.
  kubeApiserverPort: $API_PORT
componentsPatches:
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false", override: true}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
# One controller manager and one scheduler: leader election only gives them a way to exit, which they
# do when a busy API server (10,000 pods being deleted, a build beside it) lets their lease lapse.
- name: kube-controller-manager
  extraArgs:
  - {key: leader-elect, value: "false"}
- name: kube-scheduler
  extraArgs:
  - {key: leader-elect, value: "false"}
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-client-certificate, value: $pki/admin.crt}
  - {key: kubelet-client-key, value: $pki/admin.key}
  - {key: kubelet-preferred-address-types, value: InternalIP}
---
YAML
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      cat "$kwok_src/kustomize/stage/$f" >> "$config"
      printf '\n---\n' >> "$config"
    done
    cat tests/fixtures/kwok/fault-stages.yaml >> "$config"
    "$bin/kwokctl" create cluster --name "$NAME" --runtime binary --config "$config" --kubeconfig "$kubeconfig" \
      --kube-apiserver-binary "$bin/kube-apiserver" --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" --etcd-binary "$bin/etcd" --kwok-controller-binary "$bin/kwok" \
      --wait 120s >&2
    for i in 1 2 3; do
      cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "8", memory: 16Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "8", memory: 16Gi, pods: "110", ephemeral-storage: 100Gi}
---
NODE
    done | "$kubectl" --kubeconfig "$kubeconfig" apply -f - >&2
    "$kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=120s >&2
    # Pods can only be created once the default ServiceAccount exists.
    for _ in $(seq 120); do "$kubectl" --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1 && break; sleep 0.5; done
    # The Gateway API's CRDs, as many clusters have them (no Gateway controller runs here: routes get
    # no status from one).
    crds=$(bash scripts/harness/gateway-api.sh)
    for kind in gatewayclasses gateways listenersets httproutes grpcroutes tlsroutes tcproutes udproutes referencegrants; do
      "$kubectl" --kubeconfig "$kubeconfig" apply --server-side -f "$crds/gateway.networking.k8s.io_$kind.yaml" >&2
    done
    "$kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Established --timeout=60s \
      crd/httproutes.gateway.networking.k8s.io crd/grpcroutes.gateway.networking.k8s.io \
      crd/tlsroutes.gateway.networking.k8s.io crd/tcproutes.gateway.networking.k8s.io crd/udproutes.gateway.networking.k8s.io \
      crd/gateways.gateway.networking.k8s.io crd/listenersets.gateway.networking.k8s.io >&2
    log "control plane and 3 kwok nodes ready in $(( $(date +%s) - start ))s"
  fi
  bash scripts/harness/node.sh up "$state" "$kubeconfig" "$KWOK_WORKDIR/clusters/$NAME/pki/ca.crt"
  echo "export AEGIS_KUBECONFIG='$kubeconfig'"
  # Where the Gateway API's CRDs are: a test removes one and installs it again under a running operator.
  echo "export AEGIS_GATEWAY_API_CRDS='$(bash scripts/harness/gateway-api.sh)'"
  echo "export AEGIS_KUBECTL='$kubectl'"
  ;;
diagnose)
  bash scripts/harness/node.sh diagnose "$state" "$kubeconfig" || true
  ;;
down)
  bash scripts/harness/node.sh down "$state" "$kubeconfig" || true
  "$bin/kwokctl" delete cluster --name "$NAME" >&2 2>&1 || true
  ;;
*) echo "usage: cluster.sh up|down|diagnose STATE_DIR" >&2; exit 64 ;;
esac
