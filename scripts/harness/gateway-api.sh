#!/usr/bin/env bash
# The Gateway API's standard CRDs, from the sigs.k8s.io/gateway-api Go module (the Go module proxy
# serves it, and the module ships config/crd/standard), kept in the Go module cache: a second run
# downloads nothing. Prints the directory that holds them.
#   gateway-api.sh
set -euo pipefail
VERSION=v1.6.3
dir=$(cd "${TMPDIR:-/tmp}" && go mod download -json "sigs.k8s.io/gateway-api@$VERSION" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
[ -f "$dir/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" ] || { echo "gateway-api: no CRDs under $dir" >&2; exit 1; }
echo "$dir/config/crd/standard"
