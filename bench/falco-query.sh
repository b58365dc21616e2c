#!/usr/bin/env bash
# Falco store query latency with N stored alerts (default 1,000,000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p aegis-scanners --example falco_query -- --alerts "${1:-1000000}"
