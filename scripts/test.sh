#!/usr/bin/env bash
# Run every AEGIS test on a fresh machine: install (or reuse) the pinned tools, start the harnesses —
# a local Kubernetes control plane (kwok) with a real node, a local OCI registry with the test images and a
# PostgreSQL for the Falco store's HA backend — run the whole
# workspace's tests (unit, behaviour, cluster, real scanners, CLI, benchmark smoke runs) in the one dev
# profile, and stop the harnesses whatever happened.
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
# Format, lints and dependency checks first: fast, and a red one needs no cluster to be seen.
bash scripts/lint.sh
t1=$(date +%s)

# Build every test before any harness starts: the build is what fills the disk, and the real node's
# kubelet must see the free space the tests will have, not the space before the build.
echo "test.sh: cargo test --no-run (workspace, all targets)" >&2
cargo test --workspace --all-targets --locked --no-run "$@"
t1b=$(date +%s)

state=$(mktemp -d "${TMPDIR:-/tmp}/aegis-harness.XXXXXX")
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -f "$state/cluster/kubeconfig" ]; then
    echo "test.sh: failed (exit $rc); the real node as it was:" >&2
    bash scripts/harness/cluster.sh diagnose "$state/cluster" || true
  fi
  bash scripts/harness/postgres.sh down "$state/postgres" || true
  bash scripts/harness/scanners.sh down "$state/scanners" || true
  bash scripts/harness/cluster.sh down "$state/cluster" || true
  rm -rf "$state"
}
trap cleanup EXIT
eval "$(bash scripts/harness/cluster.sh up "$state/cluster")"
eval "$(bash scripts/harness/scanners.sh up "$state/scanners")"
eval "$(bash scripts/harness/postgres.sh up "$state/postgres")"
t2=$(date +%s)

# Cluster and scanner tests mostly wait on I/O: run more of them at once than there are cores.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-6}"

echo "test.sh: cargo test (workspace, all targets)" >&2
cargo test --workspace --all-targets --locked "$@"
t3=$(date +%s)
echo "test.sh: all tests passed — tools and lint $((t1 - t0))s, build $((t1b - t1))s, harnesses up $((t2 - t1b))s, tests $((t3 - t2))s" >&2
