#!/usr/bin/env bash
# Build a real Trivy vulnerability DB from tests/fixtures/trivy-db with trivy-db's own `build` command,
# into a Trivy cache dir layout (<cache>/db/trivy.db + metadata.json). Cached by the fixtures' hash.
#   trivy-db.sh TOOLS_DIR   -> prints the cache dir on stdout
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS_DIR=$1
TRIVY_DB_VERSION="v0.0.0-20260813095258-0e0340a01b57"   # the trivy-db that trivy v0.74.0 pins (go.mod)
bin_dir="$TOOLS_DIR/trivy-db-$TRIVY_DB_VERSION/bin"
if [ ! -x "$bin_dir/trivy-db" ]; then
  echo "trivy-db.sh: building trivy-db $TRIVY_DB_VERSION" >&2
  start=$(date +%s)
  GOEXPERIMENT=jsonv2 CGO_ENABLED=0 GOBIN="$bin_dir" GOFLAGS=-mod=mod \
    go install "github.com/aquasecurity/trivy-db/cmd/trivy-db@$TRIVY_DB_VERSION" >&2
  echo "trivy-db.sh: trivy-db built in $(( $(date +%s) - start ))s" >&2
fi
fixtures=tests/fixtures/trivy-db
hash=$(cd "$fixtures" && find . -type f -name '*.json' | sort | xargs sha256sum | sha256sum | cut -c1-16)
cache="$TOOLS_DIR/trivy-cache-$hash"
if [ ! -f "$cache/db/trivy.db" ] || [ ! -f "$cache/db/metadata.json" ]; then
  echo "trivy-db.sh: building trivy.db from $fixtures" >&2
  work=$(mktemp -d)
  cp -r "$fixtures/vuln-list" "$fixtures/vuln-list-nvd" "$work/"
  mkdir -p "$cache/db"
  # A long update interval: the DB is ours and complete; Trivy must never think it stale.
  "$bin_dir/trivy-db" build --cache-dir "$work" --output-dir "$cache/db" --update-interval 87600h \
    --only-update alpine --only-update nvd >&2
  rm -rf "$work"
fi
echo "$cache"
