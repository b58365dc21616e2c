#!/usr/bin/env bash
# The scanner harness: a local OCI registry (Debian's docker-registry) on 127.0.0.1 holding AEGIS's
# test images (scripts/harness/build-images.py), pushed with skopeo. Trivy scans 127.0.0.1:PORT/demo-api:v1 and
# the harness's real node pulls and runs it, exactly as from a real registry.
#   scanners.sh up STATE_DIR    start (idempotent) and print `export AEGIS_REGISTRY=127.0.0.1:PORT`
#   scanners.sh down STATE_DIR  stop
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:?up|down}; state=${2:?state dir}
mkdir -p "$state"
pidfile="$state/registry.pid"

case "$cmd" in
up)
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "export AEGIS_REGISTRY=$(cat "$state/registry.addr")"
    exit 0
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  addr="127.0.0.1:$port"
  cat > "$state/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $state/registry-data}
  delete: {enabled: true}
http:
  addr: $addr
YAML
  docker-registry serve "$state/registry.yml" > "$state/registry.log" 2>&1 &
  echo $! > "$pidfile"
  echo "$addr" > "$state/registry.addr"
  for _ in $(seq 100); do curl -sf "http://$addr/v2/" >/dev/null && break; sleep 0.1; done
  curl -sf "http://$addr/v2/" >/dev/null || { echo "scanners.sh: registry did not start" >&2; cat "$state/registry.log" >&2; exit 1; }
  apps=$(bash scripts/harness/build-apps.sh "${AEGIS_TOOLS_DIR:-$HOME/.cache/aegis-tools}")
  python3 scripts/harness/build-images.py "$state/images" "$apps" >&2
  for tag in v1 v2 v3; do
    skopeo copy --quiet --dest-tls-verify=false --insecure-policy \
      "oci:$state/images/demo-api-$tag:$tag" "docker://$addr/demo-api:$tag" >&2
  done
  echo "scanners.sh: registry on $addr with demo-api:v1 v2 v3" >&2
  echo "export AEGIS_REGISTRY=$addr"
  ;;
down)
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  ;;
*) echo "usage: scanners.sh up|down STATE_DIR" >&2; exit 64 ;;
esac
