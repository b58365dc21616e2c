#!/usr/bin/env bash
# Build the test applications under tests/apps (demo-api, pause) as static Linux binaries, cached by the
# hash of their sources and the Go version, so a second run costs nothing.
#   build-apps.sh TOOLS_DIR    -> prints the directory holding demo-api and pause
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS_DIR=$1
key=$( { go env GOVERSION; find tests/apps -type f -name '*.go' -o -type f -name go.mod | sort | xargs sha256sum; } | sha256sum | cut -c1-16)
out="$TOOLS_DIR/apps-$key"
if [ ! -x "$out/demo-api" ] || [ ! -x "$out/pause" ]; then
  mkdir -p "$out"
  (cd tests/apps && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/" ./demo-api ./pause)
  echo "build-apps: demo-api and pause built into $out" >&2
fi
echo "$out"
