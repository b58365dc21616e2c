#!/usr/bin/env bash
# Wall time and peak RSS of `aegis gate` (release build) on the largest real Trivy reports,
# as a user runs it: read, detect, parse, normalise, gate, render JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${AEGIS_TESTDATA:-../shared/testdata}/trivy"
cargo build --release --locked -q -p aegis-cli
policy=$(mktemp); printf 'zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n' > "$policy"
for f in securecodebox-mediawiki-1.27.3.legacy.json securecodebox-local-k8s-scan-result.json backline-juice-shop-repo-trivy-0.69.3.json; do
  size=$(stat -c %s "$DATA/$f")
  out=$( { /usr/bin/time -f '%e %M' target/release/aegis gate --policy "$policy" --baseline "$DATA/$f" --candidate "$DATA/$f" -o json > /dev/null; } 2>&1 | tail -1 ) || true
  echo "{\"report\":\"$f\",\"bytes\":$size,\"wall_s\":${out% *},\"peak_rss_kb\":${out#* }}"
done
rm -f "$policy"
