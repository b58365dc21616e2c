#!/usr/bin/env bash
# Wall time and peak RSS of `aegis analyze --snapshot` (release build) on large snapshots: the crashloop
# scenario captured on the real node (examples/incidents/crashloop-missing-env.yaml: 3 pods, their
# Deployment, ReplicaSets, Service, Endpoints, Events) copied into as many namespaces as the size needs,
# as one JSON List (what `kubectl get -A -o json` gives), or with FORMAT=yaml as one YAML List (`-o yaml`).
# One JSON line per size.
# At about 12 KB of JSON per pod (the real node's pods), 40,000 pods are near the 512 MiB a snapshot
# file may have (`aegis analyze` refuses more, with a message); 50,000 would be over it.
#   bench/analysis-memory.sh [PODS...]        (default: 5000 20000 40000; AEGIS_BIN=path to measure a given build;
#                                             FORMAT=yaml for YAML Lists)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-5000 20000 40000}")
# shellcheck disable=SC2206
sizes=(${sizes[*]})
# AEGIS_BIN: a binary built before (to compare two builds on the same Lists); else this tree, in release.
if [ -z "${AEGIS_BIN:-}" ]; then cargo build --release --locked -q -p aegis-cli; fi
aegis=${AEGIS_BIN:-${CARGO_TARGET_DIR:-target}/release/aegis}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for pods in "${sizes[@]}"; do
  format=${FORMAT:-json}
  list="$dir/snapshot-$pods.$format"
  python3 - "$pods" "$list" "$format" <<'PY'
import json, sys, yaml
pods, out, fmt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
base = yaml.safe_load(open("examples/incidents/crashloop-missing-env.yaml"))["items"]
per = sum(1 for i in base if i["kind"] == "Pod")
items = []
for n in range(-(-pods // per)):
    for item in base:
        if item["kind"] == "Node" and n > 0:
            continue
        i = json.loads(json.dumps(item))
        if "namespace" in i.get("metadata", {}):
            i["metadata"]["namespace"] = f"shop-{n}"
        if "namespace" in i.get("involvedObject", {}):
            i["involvedObject"]["namespace"] = f"shop-{n}"
        items.append(i)
doc = {"apiVersion": "v1", "kind": "List", "items": items}
if fmt == "yaml":
    yaml.dump(doc, open(out, "w"), Dumper=yaml.CSafeDumper, default_flow_style=False, sort_keys=False)
else:
    json.dump(doc, open(out, "w"))
PY
  bytes=$(stat -c %s "$list")
  /usr/bin/time -f '%e %M' -o "$dir/time" "$aegis" analyze --snapshot "$list" -o json > "$dir/out.json" || true
  read -r wall rss_kb < "$dir/time"
  incidents=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["incidents"]) if isinstance(d, dict) and "incidents" in d else len(d))' "$dir/out.json")
  echo "{\"format\":\"$format\",\"pods\":$pods,\"snapshot_bytes\":$bytes,\"incidents\":$incidents,\"wall_s\":$wall,\"peak_rss_kb\":$rss_kb}"
done
