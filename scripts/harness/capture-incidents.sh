#!/usr/bin/env bash
# Produce AEGIS's incident scenarios on the local control plane (cluster.sh, fault Stages) and capture
# each namespace as `kubectl get nodes,pods,deployments,replicasets,services,endpoints,events -o yaml` — the
# kubectl List a user would capture — into examples/incidents/<scenario>.yaml.
# Scenarios that come from a bad rollout are created healthy first (revision 1), then broken
# (revision 2), so the captured ReplicaSet history shows what changed.
#   capture-incidents.sh     (needs AEGIS_KUBECONFIG and AEGIS_KUBECTL from cluster.sh up)
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${AEGIS_KUBECONFIG:?run scripts/harness/cluster.sh up first}" "${AEGIS_KUBECTL:?}"
k() { "$AEGIS_KUBECTL" --kubeconfig "$AEGIS_KUBECONFIG" "$@"; }
out=examples/incidents

deploy() { # ns name annotations-json container-json [replicas]
  cat <<YAML | k -n "$1" apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: $2, labels: {app: $2}}
spec:
  replicas: ${5:-3}
  selector: {matchLabels: {app: $2}}
  template:
    metadata: {labels: {app: $2}, annotations: $3}
    spec: {containers: [$4]}
YAML
}
service() { # ns name selector-app
  cat <<YAML | k -n "$1" apply -f - >/dev/null
apiVersion: v1
kind: Service
metadata: {name: $2}
spec: {selector: {app: $3}, ports: [{name: http, port: 80, targetPort: 8080}]}
YAML
}
fresh() { k delete namespace "$1" --ignore-not-found --wait=true >/dev/null; k create namespace "$1" >/dev/null; for _ in $(seq 60); do k -n "$1" get sa default >/dev/null 2>&1 && break; sleep 0.5; done; }
capture() { # ns file
  sleep "${3:-6}"
  # (kubectl warns that v1 Endpoints is deprecated; the List still carries them, as users capture it.)
  k -n "$1" get nodes,pods,deployments,replicasets,services,endpoints,events -o yaml > "$out/$2.yaml" 2>/dev/null
  echo "captured $out/$2.yaml" >&2
}

APP='{"name": "api", "image": "127.0.0.1:5000/demo-api:v2", "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}, "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}, "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}'
NEEDS='{"aegis.io/requires-env": "DATABASE_URL", "aegis.io/serves-paths": "/healthz,/ready", "aegis.io/memory-need-mib": "200"}'
ENV=', "env": [{"name": "DATABASE_URL", "value": "postgres://db.shop:5432/shop"}, {"name": "LOG_LEVEL", "value": "info"}]'
ENV_WITHOUT_DB=', "env": [{"name": "LOG_LEVEL", "value": "info"}]'

# 1. A rollout removes a required env var: crashloop.
ns=shop-crashloop; fresh $ns
deploy $ns api "$NEEDS" "$APP$ENV}"; service $ns api api; k -n $ns rollout status deploy/api --timeout=60s >/dev/null
deploy $ns api "$NEEDS" "$APP$ENV_WITHOUT_DB}"; capture $ns crashloop-missing-env 8

# 2. A rollout to a tag that does not exist.
ns=shop-imagepull; fresh $ns
deploy $ns api "$NEEDS" "$APP$ENV}"; service $ns api api; k -n $ns rollout status deploy/api --timeout=60s >/dev/null
deploy $ns api "$NEEDS" "${APP/demo-api:v2/demo-api:v2.1-does-not-exist}$ENV}"; capture $ns image-pull-missing-tag 8

# 3. A memory limit too small for the app from the start.
ns=shop-oom; fresh $ns
deploy $ns api "$NEEDS" "${APP/\"memory\": \"256Mi\"/\"memory\": \"128Mi\"}$ENV}"; capture $ns oom-small-limit 8

# 4. Requests larger than every node.
ns=shop-pending; fresh $ns
BIG=${APP/\"cpu\": \"100m\", \"memory\": \"128Mi\"/\"cpu\": \"100m\", \"memory\": \"64Gi\"}
deploy $ns api "$NEEDS" "${BIG/\"memory\": \"256Mi\"/\"memory\": \"64Gi\"}$ENV}"; capture $ns pending-requests-too-large 5

# 5. A rollout moves the liveness probe to a path the app does not serve.
ns=shop-liveness; fresh $ns
deploy $ns api "$NEEDS" "$APP$ENV}"; service $ns api api; k -n $ns rollout status deploy/api --timeout=60s >/dev/null
deploy $ns api "$NEEDS" "${APP/\/healthz/\/health}$ENV}"; capture $ns liveness-wrong-path 8

# 6. A rollout moves the readiness probe to a path the app does not serve: never ready.
ns=shop-readiness; fresh $ns
deploy $ns api "$NEEDS" "$APP$ENV}"; service $ns api api; k -n $ns rollout status deploy/api --timeout=60s >/dev/null
deploy $ns api "$NEEDS" "${APP/\/ready\"/\/readyz\"}$ENV}"; capture $ns readiness-never-ready 8

# 7. A Service whose selector has a typo: it selects nothing.
ns=shop-selector; fresh $ns
deploy $ns web "$NEEDS" "${APP/\"api\"/\"web\"}$ENV}"; service $ns web wbe; k -n $ns rollout status deploy/web --timeout=60s >/dev/null
capture $ns service-selector-typo 3

# 8. A healthy namespace: two workloads, Services that select them. No incident.
ns=shop-healthy; fresh $ns
deploy $ns api "$NEEDS" "$APP$ENV}"; service $ns api api
deploy $ns web "$NEEDS" "${APP/\"api\"/\"web\"}$ENV}" 2; service $ns web web
k -n $ns rollout status deploy/api --timeout=60s >/dev/null; k -n $ns rollout status deploy/web --timeout=60s >/dev/null
capture $ns healthy 3
