#!/usr/bin/env bash
# Run every AEGIS test on a fresh machine: installs (or reuses) the pinned test tools, then runs the
# whole workspace's tests — unit, behaviour, CLI and benchmark smoke runs — in the one dev profile.
#
#   AEGIS_TESTDATA   shared sample reports (default: ../shared/testdata beside the repository)
#   AEGIS_TOOLS_DIR  tool cache (default: ~/.cache/aegis-tools)
set -euo pipefail
cd "$(dirname "$0")/.."

export AEGIS_TESTDATA="${AEGIS_TESTDATA:-$(cd .. && pwd)/shared/testdata}"
if [ ! -f "$AEGIS_TESTDATA/SOURCES.md" ]; then
  echo "test.sh: shared test data not found at $AEGIS_TESTDATA (set AEGIS_TESTDATA)" >&2
  exit 1
fi

eval "$(bash scripts/tools.sh)"

echo "test.sh: cargo test (workspace, all targets)" >&2
start=$(date +%s)
cargo test --workspace --all-targets --locked "$@"
echo "test.sh: all tests passed in $(( $(date +%s) - start ))s" >&2
