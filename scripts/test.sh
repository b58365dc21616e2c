#!/usr/bin/env bash
# Run every AEGIS test on a fresh machine: install (or reuse) the pinned tools, start the scanner
# harness (a local OCI registry with the test images), run the whole workspace's tests — unit,
# behaviour, real scanners, CLI, benchmark smoke runs — in the one dev profile, and stop the harness
# whatever happened.
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

t0=$(date +%s)
eval "$(bash scripts/tools.sh)"
t1=$(date +%s)

state=$(mktemp -d "${TMPDIR:-/tmp}/aegis-harness.XXXXXX")
trap 'bash scripts/harness/scanners.sh down "$state"; rm -rf "$state"' EXIT
eval "$(bash scripts/harness/scanners.sh up "$state")"
t2=$(date +%s)

echo "test.sh: cargo test (workspace, all targets)" >&2
cargo test --workspace --all-targets --locked "$@"
t3=$(date +%s)
echo "test.sh: all tests passed — tools $((t1 - t0))s, harness $((t2 - t1))s, build+tests $((t3 - t2))s" >&2
