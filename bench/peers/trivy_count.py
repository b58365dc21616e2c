#!/usr/bin/env python3
"""The predecessor's Trivy handling, as its analysis describes it (TrivyScanResult.from_trivy_json):
json.load, walk Results[].Vulnerabilities[] (and Misconfigurations[]), count by severity, and fail
when a count in `fail_on` is non-zero. A straightforward peer for bench/trivy-peers.sh."""
import json
import sys

FAIL_ON = {"CRITICAL", "HIGH"}


def main(path):
    with open(path, "rb") as f:
        doc = json.load(f)
    results = doc if isinstance(doc, list) else (doc.get("Results") or [])
    counts = {}
    for result in results:
        for key in ("Vulnerabilities", "Misconfigurations"):
            for item in result.get(key) or []:
                sev = str(item.get("Severity", "UNKNOWN")).upper()
                counts[sev] = counts.get(sev, 0) + 1
    blocked = any(counts.get(s, 0) > 0 for s in FAIL_ON)
    json.dump({"counts": counts, "verdict": "blocked" if blocked else "passed"}, sys.stdout)
    print()
    return 1 if blocked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
