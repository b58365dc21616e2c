#!/usr/bin/env bash
# Build the local control plane's binaries from the Go module proxy, pinned, into TOOLS_DIR:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl   (k8s.io/kubernetes v1.35.4)
#   kubelet, kube-proxy                                                (the harness's real node, same module)
#   etcd                                                               (go.etcd.io/etcd/server/v3)
#   kwok, kwokctl                                                      (sigs.k8s.io/kwok)
#   kube-router (its NetworkPolicy firewall only, on the real node)    (github.com/cloudnativelabs/kube-router/v2)
# `go install k8s.io/kubernetes/...` fails on the module's replace directives (its staging modules point
# at ./staging); a small wrapper module requires k8s.io/kubernetes and replaces every staging module with
# its published v0.35.4 release, the list read from kubernetes' own go.mod. Each piece is skipped when built.
#   build-k8s.sh TOOLS_DIR     -> prints the bin dir on stdout
set -euo pipefail
TOOLS_DIR=$1
K8S_VERSION=v1.35.4
STAGING_VERSION=v0.35.4
ETCD_VERSION=v3.6.13
KWOK_VERSION=v0.8.0
# The only version the Go module proxy serves here, and security flaws are reported against it: the
# harness runs only its NetworkPolicy firewall, as a test fixture of a loopback-bound cluster; nothing
# AEGIS ships depends on it.
KUBE_ROUTER_VERSION=v2.1.0
bin="$TOOLS_DIR/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "build-k8s: $*" >&2; }

k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
k8s_missing=()
for c in "${k8s_cmds[@]}"; do [ -x "$bin/$c" ] || k8s_missing+=("k8s.io/kubernetes/cmd/$c"); done
if [ ${#k8s_missing[@]} -gt 0 ]; then
  src="$TOOLS_DIR/src/k8s-$K8S_VERSION"
  mkdir -p "$src"
  (cd "$src" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null)
  kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  {
    echo "module aegis.local/k8s-build"
    echo
    grep -E '^go [0-9]' "$kmod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    grep -E '=> \./staging/src/' "$kmod" | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$src/go.mod"
  log "wrapper module with $(grep -c ' => ' "$src/go.mod") staging replacements; building ${k8s_missing[*]##*/}"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=35 -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
  start=$(date +%s)
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$bin/" "${k8s_missing[@]}" >&2)
  log "kubernetes binaries built in $(( $(date +%s) - start ))s"
fi

if [ ! -x "$bin/etcd" ]; then
  src="$TOOLS_DIR/src/etcd-$ETCD_VERSION"
  mkdir -p "$src"
  cat > "$src/go.mod" <<MOD
module aegis.local/etcd-build

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$src/main.go" <<'GO'
// The etcd server, built from its published module: etcd's own main only calls etcdmain.Main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  start=$(date +%s)
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" . >&2)
  log "etcd built in $(( $(date +%s) - start ))s"
fi

if [ ! -x "$bin/kwok" ] || [ ! -x "$bin/kwokctl" ]; then
  start=$(date +%s)
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" >&2
  log "kwok and kwokctl built in $(( $(date +%s) - start ))s"
fi
if [ ! -x "$bin/kube-router" ]; then
  start=$(date +%s)
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" >&2
  log "kube-router built in $(( $(date +%s) - start ))s"
fi
echo "$bin"
