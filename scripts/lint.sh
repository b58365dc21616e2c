#!/usr/bin/env bash
# The checks that keep the code clean, run before the tests (scripts/test.sh, hence CI):
#   rustfmt     the code is as rustfmt.toml formats it (workspace and fuzz/)
#   clippy      no warnings, every target (tests, benches, examples)
#   cargo-deny  licences (permissive only), banned sources and wildcards, duplicate versions (reported)
# cargo-deny comes from scripts/tools.sh ($AEGIS_CARGO_DENY). Advisories are not checked: the RustSec
# database is fetched from GitHub, which these machines cannot reach (deny.toml says so).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
echo "lint: cargo fmt --check" >&2
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
echo "lint: cargo clippy --workspace --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
echo "lint: cargo deny check licenses bans sources" >&2
"${AEGIS_CARGO_DENY:-cargo-deny}" --log-level error check licenses bans sources
echo "lint: clean in $(( $(date +%s) - t0 ))s" >&2
