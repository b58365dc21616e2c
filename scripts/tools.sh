#!/usr/bin/env bash
# Install the tools AEGIS's tests need, pinned, into a cache that later runs reuse:
#   $AEGIS_TOOLS_DIR (default ~/.cache/aegis-tools)/npm  - SARIF 2.1.0 schema + ajv (SARIF validation)
# Prints `export` lines for the environment the tests read; `eval "$(scripts/tools.sh)"`.
set -euo pipefail
TOOLS_DIR="${AEGIS_TOOLS_DIR:-$HOME/.cache/aegis-tools}"
JEST_SARIF_VERSION="1.0.0-beta.0"   # ships lib/schemas/sarif-2.1.0-rtm.5.json
AJV_VERSION="6.12.6"

log() { echo "tools: $*" >&2; }

npm_dir="$TOOLS_DIR/npm/jest-sarif-$JEST_SARIF_VERSION-ajv-$AJV_VERSION"
if [ ! -f "$npm_dir/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json" ] || [ ! -d "$npm_dir/node_modules/ajv" ]; then
  command -v npm >/dev/null || { log "npm is required (Node.js 20)"; exit 1; }
  log "installing SARIF schema and ajv into $npm_dir"
  mkdir -p "$npm_dir"
  start=$(date +%s)
  (cd "$npm_dir" && npm install --no-audit --no-fund --silent --prefix . \
      "@microsoft/jest-sarif@$JEST_SARIF_VERSION" "ajv@$AJV_VERSION" >&2)
  log "npm packages installed in $(( $(date +%s) - start ))s"
else
  log "SARIF schema and ajv cached in $npm_dir"
fi
echo "export AEGIS_NODE_MODULES='$npm_dir/node_modules'"
