#!/usr/bin/env bash
# Install the tools AEGIS's tests need, pinned, into a cache that later runs reuse
# ($AEGIS_TOOLS_DIR, default ~/.cache/aegis-tools):
#   trivy v0.74.0            built from the Go module proxy (GOEXPERIMENT=jsonv2, as Trivy's own build)
#   trivy-db + a trivy.db     built from tests/fixtures/trivy-db by trivy-db's own build command
#   docker-registry, skopeo   Debian packages: the local OCI registry and the tool that pushes to it
#   containerd, runc, conntrack, ipset, containernetworking-plugins
#                             Debian packages: the container runtime, CNI plugins and NetworkPolicy sets of the
#                             harness's real node
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy v1.35.4, etcd v3.6.13, kwok v0.8.0
#                             built from the Go module proxy by scripts/harness/build-k8s.sh
#   helm v3.22.0             built from the Go module proxy: renders and lints the operator's chart
#   @microsoft/jest-sarif, ajv  npm: the official SARIF 2.1.0 schema and a validator
#   cargo-deny 0.20.2        crates.io: the dependency checks of scripts/lint.sh
# Prints `export` lines for the tests' environment: eval "$(scripts/tools.sh)". Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${AEGIS_TOOLS_DIR:-$HOME/.cache/aegis-tools}"
TRIVY_VERSION="v0.74.0"
HELM_VERSION="v3.22.0"   # its go.mod pins k8s.io/client-go v0.37.0
CARGO_DENY_VERSION="0.20.2"
JEST_SARIF_VERSION="1.0.0-beta.0"   # ships lib/schemas/sarif-2.1.0-rtm.5.json
AJV_VERSION="6.12.6"
mkdir -p "$TOOLS_DIR"

log() { echo "tools: $*" >&2; }
timed() { local what=$1; shift; local s; s=$(date +%s); "$@"; log "$what took $(( $(date +%s) - s ))s"; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v ipset >/dev/null || missing+=(ipset)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# The Falco store's HA backend is tested against a real PostgreSQL (scripts/harness/postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  timed "apt-get install ${missing[*]}" sh -c "apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends ${missing[*]} >/dev/null"
fi

# --- Trivy -------------------------------------------------------------------------------------
trivy_bin="$TOOLS_DIR/trivy-$TRIVY_VERSION/bin/trivy"
if [ ! -x "$trivy_bin" ]; then
  command -v go >/dev/null || { log "go is required to build trivy"; exit 1; }
  log "building trivy $TRIVY_VERSION from the Go module proxy (several minutes, once)"
  timed "trivy build" env GOEXPERIMENT=jsonv2 CGO_ENABLED=0 GOBIN="$(dirname "$trivy_bin")" GOFLAGS=-mod=mod \
    go install -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" \
    "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION" >&2
else
  log "trivy $TRIVY_VERSION cached"
fi
trivy_cache=$(bash scripts/harness/trivy-db.sh "$TOOLS_DIR")

# --- Helm ----------------------------------------------------------------------------------------
helm_bin="$TOOLS_DIR/helm-$HELM_VERSION/bin/helm"
if [ ! -x "$helm_bin" ]; then
  command -v go >/dev/null || { log "go is required to build helm"; exit 1; }
  log "building helm $HELM_VERSION from the Go module proxy (a few minutes, once)"
  # The ldflags of helm's own Makefile: its version, and the Kubernetes version `helm template` and
  # `helm lint` assume (from the client-go it is built with: v0.37 -> 1.37).
  pkg=helm.sh/helm/v3
  timed "helm build" env CGO_ENABLED=0 GOBIN="$(dirname "$helm_bin")" GOFLAGS=-mod=mod \
    go install -ldflags "-s -w -X $pkg/internal/version.version=$HELM_VERSION \
      -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=37 \
      -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=37" "$pkg/cmd/helm@$HELM_VERSION" >&2
else
  log "helm $HELM_VERSION cached"
fi

# --- The local control plane's binaries ---------------------------------------------------------
k8s_bin=$(bash scripts/harness/build-k8s.sh "$TOOLS_DIR")

# --- npm: SARIF schema + validator -------------------------------------------------------------
npm_dir="$TOOLS_DIR/npm/jest-sarif-$JEST_SARIF_VERSION-ajv-$AJV_VERSION"
if [ ! -f "$npm_dir/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json" ] || [ ! -d "$npm_dir/node_modules/ajv" ]; then
  command -v npm >/dev/null || { log "npm is required (Node.js 20)"; exit 1; }
  mkdir -p "$npm_dir"
  timed "npm install (SARIF schema, ajv)" sh -c "cd '$npm_dir' && npm install --no-audit --no-fund --silent --prefix . '@microsoft/jest-sarif@$JEST_SARIF_VERSION' 'ajv@$AJV_VERSION' >&2"
else
  log "SARIF schema and ajv cached"
fi

# --- cargo-deny ---------------------------------------------------------------------------------
deny_bin="$TOOLS_DIR/cargo-deny-$CARGO_DENY_VERSION/bin/cargo-deny"
if [ ! -x "$deny_bin" ]; then
  log "building cargo-deny $CARGO_DENY_VERSION from crates.io (a few minutes, once)"
  timed "cargo-deny build" cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION" --root "$TOOLS_DIR/cargo-deny-$CARGO_DENY_VERSION" >&2
else
  log "cargo-deny $CARGO_DENY_VERSION cached"
fi

echo "export AEGIS_TRIVY_BIN='$trivy_bin'"
echo "export AEGIS_TRIVY_CACHE_DIR='$trivy_cache'"
echo "export AEGIS_NODE_MODULES='$npm_dir/node_modules'"
echo "export AEGIS_K8S_BIN='$k8s_bin'"
echo "export AEGIS_HELM_BIN='$helm_bin'"
echo "export AEGIS_CARGO_DENY='$deny_bin'"
