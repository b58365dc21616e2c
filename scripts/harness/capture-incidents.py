#!/usr/bin/env python3
"""Produce AEGIS's incident scenarios on the harness's real node and capture each namespace with
`aegis snapshot -n NS` (a kubectl List; with `--include-secrets` for the scenarios that judge Secrets,
their names and keys only) into examples/incidents/<scenario>.yaml.

Every pod runs on the real node (containerd + runc): a crash loop is the demo app exiting 1 because
DATABASE_URL is missing, an OOM is the kernel's memory cgroup killing it (ALLOCATE_MIB over its
limit), a pull failure is the local registry's 404. Scenarios that come from a bad rollout are
created healthy first (revision 1) and broken afterwards (revision 2), so the captured history shows
what changed. What a senior SRE expects of each scenario is written, by hand, in
examples/incidents/expected.yaml; crates/aegis-analysis/tests/corpus_score.rs scores the analysis
against it.

    capture-incidents.py [SCENARIO ...]   (needs AEGIS_KUBECONFIG, AEGIS_KUBECTL and AEGIS_REGISTRY
                                           from cluster.sh up and scanners.sh up; AEGIS_BIN, default
                                           target/debug/aegis)
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "examples", "incidents")
KUBECONFIG = os.environ["AEGIS_KUBECONFIG"]
KUBECTL = os.environ["AEGIS_KUBECTL"]
REGISTRY = os.environ["AEGIS_REGISTRY"]
AEGIS = os.environ.get("AEGIS_BIN", os.path.join(ROOT, "target", "debug", "aegis"))
IMAGE = f"{REGISTRY}/demo-api:v2"
DB = {"name": "DATABASE_URL", "value": "postgres://db.shop:5432/shop"}
LOG = {"name": "LOG_LEVEL", "value": "info"}
REAL_NODE = {
    "nodeSelector": {"aegis.io/node": "real"},
    "tolerations": [{"key": "aegis.io/real-node", "operator": "Exists", "effect": "NoSchedule"}],
}


def k(*args, stdin=None, check=True):
    return subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=stdin, text=True, capture_output=True, check=check)


def apply(ns, *objs):
    k("-n", ns, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def app(name="api", env=(DB, LOG), image=IMAGE, port=8080, limit="256Mi", probes=True, **extra):
    """The demo app as a container, probed on the paths it serves."""
    c = {"name": name, "image": image, "ports": [{"containerPort": port}], "env": [*env]}
    if port != 8080:
        c["env"].append({"name": "PORT", "value": str(port)})
    if limit:
        c["resources"] = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": limit}}
    if probes:
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 2}
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 2, "failureThreshold": 2}
    c.update(extra)
    return c


def pod_spec(*containers, **extra):
    return {**REAL_NODE, "terminationGracePeriodSeconds": 1, "containers": list(containers), **extra}


def deployment(name, spec, replicas=2, labels=None):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": spec}},
    }


def stateful_set(name, spec, replicas=2):
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas, "serviceName": name, "podManagementPolicy": "OrderedReady",
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": [name]}, {"key": "tier", "operator": "Exists"}]},
            "template": {"metadata": {"labels": {"app": name, "tier": "data"}}, "spec": spec},
        },
    }


def daemon_set(name, spec):
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }


def job(name, spec, backoff=6, **meta):
    spec = {**spec, "restartPolicy": "Never"}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, **meta},
        "spec": {"backoffLimit": backoff, "template": {"spec": spec}},
    }


def service(name, selector, type_="ClusterIP", headless=False):
    spec = {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], "type": type_}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def rolled_out(ns, kind, name, timeout=90):
    k("-n", ns, "rollout", "status", f"{kind}/{name}", f"--timeout={timeout}s")


def job_done(ns, name, timeout=90):
    k("-n", ns, "wait", f"job/{name}", "--for=condition=Complete", f"--timeout={timeout}s")


def deleted_after(*objects):
    """A scenario's cleanup for the cluster-scoped (kind, name) objects it made: deleted once the
    namespace is captured, whatever happens."""
    return lambda: [k("delete", kind, name, "--ignore-not-found", check=False) for kind, name in objects]


# Each scenario: (description, setup(ns), seconds to let the fault show before the capture).
# setup builds revision 1, waits for it where the scenario is a bad rollout, then breaks it; it may
# return a cleanup for what it made outside the namespace, called after the capture.
def crash_after_rollout(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}))
    rolled_out(ns, "deployment", "api")
    apply(ns, deployment("api", pod_spec(app(env=(LOG,)))))


def rollout(ns, good, bad, extra=(), kind="deployment", name="api"):
    apply(ns, good, *extra)
    rolled_out(ns, kind, name)
    apply(ns, bad)


# A container that runs to completion: the app's `probe connect` with nothing to reach exits 0.
SEED = {"name": "seed", "image": IMAGE, "args": ["probe", "connect"]}


def sidecar():
    return app("proxy", port=9090, limit="64Mi")


SCENARIOS = {}
# Scenarios that change the real node itself (a taint): captured one at a time, after the others, so
# no other scenario's pods meet the change.
EXCLUSIVE = set()


# Scenarios captured with `aegis snapshot --include-secrets` (names and keys, never values): those
# whose judgement needs the namespace's Secrets.
WITH_SECRETS = set()


def scenario(name, description, wait=20, exclusive=False, secrets=False):
    def register(setup):
        SCENARIOS[name] = (description, setup, wait)
        if exclusive:
            EXCLUSIVE.add(name)
        if secrets:
            WITH_SECRETS.add(name)
        return setup

    return register


@scenario("crashloop-missing-env", "A rollout removes DATABASE_URL, which the app requires: it exits 1, CrashLoopBackOff.")
def _(ns):
    crash_after_rollout(ns)


@scenario("image-pull-missing-tag", "A rollout to a tag the registry does not have: ErrImagePull, then ImagePullBackOff.")
def _(ns):
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(app(image=IMAGE + ".1-does-not-exist"))), [service("api", {"app": "api"})])


@scenario("oom-small-limit", "The app holds 200 MiB under a 128Mi limit from its first revision: the kernel kills it.")
def _(ns):
    apply(ns, deployment("api", pod_spec(app(limit="128Mi", env=(DB, {"name": "ALLOCATE_MIB", "value": "200"})))))


@scenario("pending-requests-too-large", "Memory requests larger than any node can hold: the pods stay Pending.", wait=8)
def _(ns):
    c = app()
    c["resources"] = {"requests": {"cpu": "20m", "memory": "64Gi"}, "limits": {"memory": "64Gi"}}
    apply(ns, deployment("api", pod_spec(c)))


@scenario("liveness-wrong-path", "A rollout moves the liveness probe to /health, which the app does not serve: killed and restarted.", wait=25)
def _(ns):
    bad = app()
    bad["livenessProbe"]["httpGet"]["path"] = "/health"
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(bad)), [service("api", {"app": "api"})])


@scenario("readiness-never-ready", "A rollout moves the readiness probe to /readiness, which the app does not serve: never ready.")
def _(ns):
    bad = app()
    bad["readinessProbe"]["httpGet"]["path"] = "/readiness"
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(bad)), [service("api", {"app": "api"})])


@scenario("service-selector-typo", "A Service whose selector has a typo (app: wbe): it selects no pod.", wait=5)
def _(ns):
    apply(ns, deployment("web", pod_spec(app("web"))), service("web", {"app": "wbe"}))
    rolled_out(ns, "deployment", "web")


@scenario("healthy", "Two healthy workloads and the Services that select them: nothing to report.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), deployment("web", pod_spec(app("web")), 1), service("web", {"app": "web"}))
    rolled_out(ns, "deployment", "api")
    rolled_out(ns, "deployment", "web")


@scenario("sidecar-crashloop", "A rollout removes DATABASE_URL from the app behind a healthy proxy sidecar: the second container crash-loops.")
def _(ns):
    rollout(ns, deployment("api", pod_spec(sidecar(), app())), deployment("api", pod_spec(sidecar(), app(env=(LOG,)))))


@scenario("sidecar-oom", "The app (second container, beside a proxy sidecar) holds 200 MiB under a 128Mi limit: OOM-killed.")
def _(ns):
    apply(ns, deployment("api", pod_spec(sidecar(), app(limit="128Mi", env=(DB, {"name": "ALLOCATE_MIB", "value": "200"})))))


@scenario("init-container-crashloop", "A rollout adds an init container (migrate) that exits 1 without DATABASE_URL: Init:CrashLoopBackOff.")
def _(ns):
    migrate = {"name": "migrate", "image": IMAGE, "env": [LOG]}
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(app(), initContainers=[migrate])))


@scenario("crashloop-from-the-first-revision", "A new Deployment without DATABASE_URL: it never ran, so there is nothing to roll back to.")
def _(ns):
    apply(ns, deployment("api", pod_spec(app(env=(LOG,)))))


@scenario("statefulset-crashloop", "A StatefulSet (matchExpressions selector, OrderedReady) rolls out without DATABASE_URL: its last ordinal crash-loops.")
def _(ns):
    rollout(
        ns,
        stateful_set("db", pod_spec(app("db"))),
        stateful_set("db", pod_spec(app("db", env=(LOG,)))),
        [service("db", {"app": "db"}, headless=True)],
        kind="statefulset",
        name="db",
    )


@scenario("statefulset-oom", "A StatefulSet whose app holds 200 MiB under a 128Mi limit: OOM-killed.")
def _(ns):
    apply(ns, stateful_set("db", pod_spec(app("db", limit="128Mi", env=(DB, {"name": "ALLOCATE_MIB", "value": "200"})))), service("db", {"app": "db"}, headless=True))


@scenario("statefulset-image-pull", "A StatefulSet rolls out to a tag the registry does not have.")
def _(ns):
    rollout(
        ns,
        stateful_set("db", pod_spec(app("db"))),
        stateful_set("db", pod_spec(app("db", image=IMAGE + ".9-missing"))),
        [service("db", {"app": "db"}, headless=True)],
        kind="statefulset",
        name="db",
    )


@scenario("daemonset-crashloop", "A DaemonSet rolls out without DATABASE_URL: its pod on the node crash-loops.")
def _(ns):
    rollout(ns, daemon_set("agent", pod_spec(app("agent"))), daemon_set("agent", pod_spec(app("agent", env=(LOG,)))), kind="daemonset", name="agent")


@scenario("daemonset-unschedulable", "A DaemonSet whose memory requests (64Gi) no node can hold: its pod for the node stays Pending, never scheduled.", wait=8)
def _(ns):
    c = app("agent")
    c["resources"] = {"requests": {"cpu": "20m", "memory": "64Gi"}, "limits": {"memory": "64Gi"}}
    apply(ns, daemon_set("agent", pod_spec(c)))


@scenario("daemonset-schedules-nowhere", "A DaemonSet whose nodeSelector (disktype=ssd) no node carries: its controller places it nowhere, which may be meant. Hygiene (`aegis analyze --lint`), never an incident.", wait=5)
def _(ns):
    apply(ns, daemon_set("agent", pod_spec(app("agent"), nodeSelector={"disktype": "ssd"})))


@scenario("daemonset-image-pull", "A DaemonSet rolls out to a tag the registry does not have.")
def _(ns):
    rollout(ns, daemon_set("agent", pod_spec(app("agent"))), daemon_set("agent", pod_spec(app("agent", image=IMAGE + ".9-missing"))), kind="daemonset", name="agent")


@scenario("job-retrying", "A Job whose pods exit 1 (no DATABASE_URL), with retries left: backing off.", wait=15)
def _(ns):
    apply(ns, job("migrate", pod_spec(app("migrate", env=(LOG,), probes=False)), backoff=6))


@scenario("job-backoff-limit-exceeded", "A Job whose pods exit 1 until its backoffLimit of 1: Failed, BackoffLimitExceeded.", wait=30)
def _(ns):
    apply(ns, job("migrate", pod_spec(app("migrate", env=(LOG,), probes=False)), backoff=1))


@scenario("cronjob-run-failing", "A run of a CronJob (created from it as `kubectl create job --from`) whose pods exit 1.", wait=15)
def _(ns):
    spec = {**pod_spec(app("report", env=(LOG,), probes=False)), "restartPolicy": "Never"}
    cron = {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"backoffLimit": 4, "template": {"spec": spec}}}},
    }
    apply(ns, cron)
    k("-n", ns, "create", "job", "report-manual", "--from=cronjob/report")


@scenario("healthy-named-serviceaccount", "A healthy Deployment running as its own ServiceAccount: nothing to report.", wait=5)
def _(ns):
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api"}}
    apply(ns, sa, deployment("api", pod_spec(app(), serviceAccountName="api")), service("api", {"app": "api"}))
    rolled_out(ns, "deployment", "api")


@scenario("healthy-nodeport-and-loadbalancer", "Healthy workloads behind a NodePort and a LoadBalancer Service (no load balancer here: EXTERNAL-IP pending).", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}, "NodePort"), deployment("web", pod_spec(app("web")), 1), service("web", {"app": "web"}, "LoadBalancer"))
    rolled_out(ns, "deployment", "api")
    rolled_out(ns, "deployment", "web")


@scenario("healthy-without-limits", "A healthy Deployment with no requests and no limits at all: nothing to report.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app(limit=None))))
    rolled_out(ns, "deployment", "api")


@scenario(
    "breaks-after-rollout",
    "Revision 2 (a latent fault: it refuses to start after FAIL_AFTER) rolls out healthy; its pods are replaced later and crash-loop.",
)
def _(ns):
    deadline = time.time() + 30
    latent = {"name": "FAIL_AFTER", "value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))}
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(app(env=(DB, LOG, latent)))))
    rolled_out(ns, "deployment", "api")
    time.sleep(max(0, deadline - time.time()) + 1)
    k("-n", ns, "delete", "pods", "-l", "app=api", "--wait=false")


@scenario("several-incidents", "One namespace, three faults: api crash-loops after a rollout, web's Service selects nothing, worker is OOM-killed.", wait=25)
def _(ns):
    apply(
        ns,
        deployment("web", pod_spec(app("web")), 1),
        service("web", {"app": "wbe"}),
        deployment("worker", pod_spec(app("worker", limit="128Mi", env=(DB, {"name": "ALLOCATE_MIB", "value": "200"}))), 1),
    )
    crash_after_rollout(ns)


@scenario("healthy-busy-namespace", "A busy healthy namespace: Deployments, a StatefulSet, a DaemonSet, a completed Job, a CronJob, Services of each type.", wait=5)
def _(ns):
    cron_spec = {**pod_spec(app("report", probes=False)), "restartPolicy": "Never"}
    apply(
        ns,
        *[deployment(n, pod_spec(app(n)), 1) for n in ("api", "web", "cart", "search")],
        *[service(n, {"app": n}) for n in ("api", "web", "cart")],
        service("search", {"app": "search"}, "NodePort"),
        stateful_set("db", pod_spec(app("db")), 1),
        service("db", {"app": "db"}, headless=True),
        daemon_set("agent", pod_spec(app("agent", port=9191))),
        job("seed", pod_spec(SEED), backoff=0),
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": cron_spec}}}}},
    )
    for kind, name in (("deployment", "api"), ("deployment", "web"), ("deployment", "cart"), ("deployment", "search"), ("statefulset", "db"), ("daemonset", "agent")):
        rolled_out(ns, kind, name)


@scenario("liveness-wrong-port", "A rollout moves the liveness probe to port 9999, where nothing listens: killed and restarted.", wait=25)
def _(ns):
    bad = app()
    bad["livenessProbe"]["httpGet"]["port"] = 9999
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(bad)))


@scenario("readiness-wrong-port", "A rollout moves the readiness probe to port 9999, where nothing listens: never ready.")
def _(ns):
    bad = app()
    bad["readinessProbe"]["httpGet"]["port"] = 9999
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(bad)), [service("api", {"app": "api"})])


@scenario("image-pull-wrong-repository", "A rollout to an image repository that does not exist (demo-apii).")
def _(ns):
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(app(image=IMAGE.replace("demo-api", "demo-apii")))))


@scenario("rollout-missing-configmap", "A rollout reads its settings from a ConfigMap (envFrom) that does not exist: CreateContainerConfigError.")
def _(ns):
    bad = app(envFrom=[{"configMapRef": {"name": "api-settings"}}])
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(bad)))


@scenario("missing-secret-from-the-start", "A new Deployment takes DATABASE_URL from a Secret that does not exist: CreateContainerConfigError.")
def _(ns):
    env = ({"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "url"}}},)
    apply(ns, deployment("api", pod_spec(app(env=env))))


@scenario("scheduling-gated", "Pods held by a scheduling gate nobody removes, past the five minutes AEGIS allows a controller to lift it.", wait=310)
def _(ns):
    apply(ns, deployment("api", pod_spec(app(), schedulingGates=[{"name": "example.com/quota-check"}])))


@scenario("node-selector-matches-no-node", "A rollout adds a nodeSelector (disktype: ssd) that no node carries: the new pods stay Pending.", wait=8)
def _(ns):
    bad = pod_spec(app())
    bad["nodeSelector"] = {**bad["nodeSelector"], "disktype": "ssd"}
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", bad))


@scenario("cpu-requests-too-large", "CPU requests (64 cores) larger than any node can hold: the pods stay Pending.", wait=8)
def _(ns):
    c = app()
    c["resources"]["requests"]["cpu"] = "64"
    apply(ns, deployment("api", pod_spec(c)))


@scenario("rollout-missing-configmap-volume", "A rollout mounts a ConfigMap that does not exist: the pods stay ContainerCreating, FailedMount.", wait=15)
def _(ns):
    bad = pod_spec(app(volumeMounts=[{"name": "settings", "mountPath": "/etc/api"}]), volumes=[{"name": "settings", "configMap": {"name": "api-settings"}}])
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", bad))


@scenario("oom-after-rollout", "A rollout makes the app hold 200 MiB (ALLOCATE_MIB) under its 128Mi limit: OOM-killed since the change.", wait=25)
def _(ns):
    good = app(limit="128Mi")
    bad = app(limit="128Mi", env=(DB, LOG, {"name": "ALLOCATE_MIB", "value": "200"}))
    rollout(ns, deployment("api", pod_spec(good)), deployment("api", pod_spec(bad)))


@scenario("liveness-wrong-path-from-the-start", "A new Deployment whose liveness probe asks for /health, which the app does not serve (404): killed and restarted.", wait=25)
def _(ns):
    bad = app()
    bad["livenessProbe"]["httpGet"]["path"] = "/health"
    apply(ns, deployment("api", pod_spec(bad)))


@scenario("readiness-wrong-path-from-the-start", "A new Deployment whose readiness probe asks for /readiness, which the app does not serve (404): never ready.")
def _(ns):
    bad = app()
    bad["readinessProbe"]["httpGet"]["path"] = "/readiness"
    apply(ns, deployment("api", pod_spec(bad)), service("api", {"app": "api"}))


@scenario("healthy-scaled-to-zero", "A Deployment scaled to zero and a headless StatefulSet that is healthy: nothing to report.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app()), 0), stateful_set("db", pod_spec(app("db")), 1), service("db", {"app": "db"}, headless=True))
    rolled_out(ns, "statefulset", "db")


@scenario("healthy-job-completed", "A Job that ran to completion and a Service without a selector (endpoints managed by hand): nothing to report.", wait=3)
def _(ns):
    external = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "billing"}, "spec": {"ports": [{"port": 443}]}}
    apply(ns, job("seed", pod_spec(SEED), backoff=0), external)
    job_done(ns, "seed")


@scenario("selector-typo-on-nodeport", "A NodePort Service whose selector names another app (app: api-v2): it selects nothing.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api-v2"}, "NodePort"))
    rolled_out(ns, "deployment", "api")


def quota(name, **hard):
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard}}


@scenario("cronjob-job-refused", "A CronJob due every minute in a namespace whose quota allows no Job: each run's Job is refused (FailedCreate on the CronJob).", wait=75)
def _(ns):
    spec = {**pod_spec(app("report", probes=False)), "restartPolicy": "Never"}
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    apply(ns, quota("jobs", **{"count/jobs.batch": "0"}), cron)


@scenario("failed-create-quota", "A rollout raises memory requests past the namespace's ResourceQuota: the new ReplicaSet cannot create pods.", wait=10)
def _(ns):
    apply(ns, quota("compute", **{"requests.memory": "200Mi"}))
    big = app()
    big["resources"]["requests"]["memory"] = "160Mi"
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(big)))


@scenario("failed-create-quota-from-the-start", "A new Deployment asks for more pods than the namespace's ResourceQuota allows: one is created, the rest are refused.", wait=10)
def _(ns):
    apply(ns, quota("pods", pods="1"), deployment("api", pod_spec(app()), 3))


@scenario("failed-create-missing-serviceaccount", "A rollout runs the pods as a ServiceAccount that does not exist: the ReplicaSet cannot create them.", wait=10)
def _(ns):
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(app(), serviceAccountName="api-runner")))


@scenario("failed-create-webhook-down", "A validating webhook (failurePolicy Fail) whose Service has no endpoints: every pod creation in the namespace fails.", wait=10)
def _(ns):
    k("label", "namespace", ns, "aegis.io/corpus-webhook=on")
    apply(ns, service("policy-webhook", {"app": "policy-webhook"}))
    webhook = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": f"{ns}-policy"},
               "webhooks": [{"name": "pods.policy.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
                             "timeoutSeconds": 2,
                             "clientConfig": {"service": {"namespace": ns, "name": "policy-webhook", "path": "/validate", "port": 80}},
                             "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                             "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}]}
    k("apply", "-f", "-", stdin=json.dumps(webhook))
    apply(ns, deployment("api", pod_spec(app())))
    # Cluster-wide: deleted once the namespace is captured, whatever happens.
    return lambda: k("delete", "validatingwebhookconfiguration", f"{ns}-policy", "--ignore-not-found", check=False)


@scenario("failed-create-pod-security", "A rollout adds the NET_ADMIN capability in a namespace that enforces Pod Security baseline: the API server refuses the new ReplicaSet's pods.", wait=10)
def _(ns):
    k("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline")
    privileged = app(securityContext={"capabilities": {"add": ["NET_ADMIN"]}})
    rollout(ns, deployment("api", pod_spec(app())), deployment("api", pod_spec(privileged)))


@scenario("failed-create-admission-policy", "A new Deployment adds NET_ADMIN in a namespace a ValidatingAdmissionPolicy binds to by a label (no-net-admin): the API server refuses its pods.", wait=10)
def _(ns):
    name = f"{ns}-no-net-admin"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
              "spec": {"failurePolicy": "Fail",
                       "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]},
                       "validations": [{"message": "containers may not add NET_ADMIN", "expression":
                           "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.capabilities) || "
                           "!has(c.securityContext.capabilities.add) || !('NET_ADMIN' in c.securityContext.capabilities.add))"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
               "spec": {"policyName": name, "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {"aegis.io/corpus-policy": ns}}}}}
    k("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]}))
    k("label", "namespace", ns, f"aegis.io/corpus-policy={ns}")
    time.sleep(3)  # the API server enforces a new policy once it has read it
    apply(ns, deployment("api", pod_spec(app(securityContext={"capabilities": {"add": ["NET_ADMIN"]}}))))
    return deleted_after(("validatingadmissionpolicybinding", name), ("validatingadmissionpolicy", name))


@scenario("job-deadline-exceeded", "A Job whose activeDeadlineSeconds (10 s) passes while its pod still runs: the Job controller stops it and fails the Job (DeadlineExceeded).", wait=25)
def _(ns):
    migrate = job("migrate", pod_spec(app("migrate", probes=False)), backoff=2)
    migrate["spec"]["activeDeadlineSeconds"] = 10
    apply(ns, migrate)


@scenario("hygiene-only", "A healthy Deployment beside a NetworkPolicy whose selector matches no pod (app: web-v2), a suspended CronJob and a ConfigMap nothing uses: hygiene findings, no incident.", wait=5)
def _(ns):
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-ingress"},
              "spec": {"podSelector": {"matchLabels": {"app": "web-v2"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"ports": [{"port": 8080}]}]}}
    spec = {**pod_spec(app("report", probes=False)), "restartPolicy": "Never"}
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
            "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    stale = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-settings-old"}, "data": {"LOG_LEVEL": "debug"}}
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), policy, cron, stale)
    rolled_out(ns, "deployment", "api")


def webhook_configuration(ns, name, policy, port, selector):
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": f"{ns}-{name}"},
            "webhooks": [{"name": f"{name}.policy.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": policy,
                          "timeoutSeconds": 2,
                          "clientConfig": {"service": {"namespace": ns, "name": "policy-webhook", "path": "/validate", "port": port}},
                          "namespaceSelector": {"matchLabels": selector},
                          "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]}]}


@scenario("webhook-ignore-no-endpoints", "A validating webhook with failurePolicy Ignore whose backend Deployment is scaled to zero: requests pass unchecked, silently.", wait=5)
def _(ns):
    # It selects no namespace: the API server never calls it, yet its configuration is as broken as one that does.
    apply(ns, deployment("policy-webhook", pod_spec(app()), 0), service("policy-webhook", {"app": "policy-webhook"}))
    k("apply", "-f", "-", stdin=json.dumps(webhook_configuration(ns, "policy", "Ignore", 80, {"aegis.io/corpus-never": "true"})))
    return lambda: k("delete", "validatingwebhookconfiguration", f"{ns}-policy", "--ignore-not-found", check=False)


@scenario("healthy-webhook", "A validating webhook whose backend Service has a ready endpoint on the port it calls: nothing to report.", wait=5)
def _(ns):
    apply(ns, deployment("policy-webhook", pod_spec(app()), 1), service("policy-webhook", {"app": "policy-webhook"}))
    k("apply", "-f", "-", stdin=json.dumps(webhook_configuration(ns, "policy", "Fail", 80, {"aegis.io/corpus-never": "true"})))
    rolled_out(ns, "deployment", "policy-webhook")
    return lambda: k("delete", "validatingwebhookconfiguration", f"{ns}-policy", "--ignore-not-found", check=False)


@scenario("healthy-within-quota", "Healthy pods well within the namespace's ResourceQuota: nothing to report.", wait=5)
def _(ns):
    apply(ns, quota("compute", **{"requests.memory": "1Gi", "pods": "10"}), deployment("api", pod_spec(app())))
    rolled_out(ns, "deployment", "api")


@scenario("volume-claim-unknown-class", "A Deployment mounts a PersistentVolumeClaim whose StorageClass (fast-ssd) does not exist: the claim stays Pending, so do the pods.", wait=10)
def _(ns):
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd", "resources": {"requests": {"storage": "1Gi"}}}}
    spec = pod_spec(app(volumeMounts=[{"name": "data", "mountPath": "/data"}]), volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    apply(ns, pvc, deployment("api", spec, 1))


@scenario("volume-claim-no-storage-class", "A Deployment mounts a PersistentVolumeClaim that names no StorageClass, in a cluster with no default class and no PersistentVolume: the claim stays Pending, so does the pod.", wait=10)
def _(ns):
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    spec = pod_spec(app(volumeMounts=[{"name": "data", "mountPath": "/data"}]), volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    apply(ns, pvc, deployment("api", spec, 1))


@scenario("volume-claim-larger-than-every-volume", "A Deployment mounts a 5Gi claim of a StorageClass without a provisioner (local volumes, bound as created) whose only PersistentVolume holds 1Gi: nothing fits, nothing provisions, the claim stays Pending.", wait=10)
def _(ns):
    cls = f"{ns}-local"
    storage_class = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": cls},
                     "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate"}
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-disk-1"},
              "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                       "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{ns}-disk-1"}}}
    k("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [storage_class, volume]}))
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls, "resources": {"requests": {"storage": "5Gi"}}}}
    spec = pod_spec(app(volumeMounts=[{"name": "data", "mountPath": "/data"}]), volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    apply(ns, pvc, deployment("api", spec, 1))
    return deleted_after(("persistentvolume", f"{ns}-disk-1"), ("storageclass", cls))


@scenario("statefulset-volume-claim-unbound", "A StatefulSet whose volumeClaimTemplate asks for StorageClass fast-ssd, which does not exist: its first claim stays Pending, so does its first pod, and OrderedReady creates no other.", wait=10)
def _(ns):
    sts = stateful_set("db", pod_spec(app("db", volumeMounts=[{"name": "data", "mountPath": "/data"}])), replicas=2)
    sts["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd", "resources": {"requests": {"storage": "1Gi"}}}}]
    apply(ns, service("db", {"app": "db"}, headless=True), sts)


@scenario("pdb-blocks-every-disruption", "A PodDisruptionBudget with minAvailable equal to the replicas: healthy, yet no pod may ever be evicted (drains hang).", wait=8)
def _(ns):
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "api"},
           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "api"}}}}
    apply(ns, deployment("api", pod_spec(app())), pdb)
    rolled_out(ns, "deployment", "api")


@scenario("healthy-pdb", "A PodDisruptionBudget that lets one of two healthy pods go at a time: nothing to report.", wait=8)
def _(ns):
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "api"},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}}}
    apply(ns, deployment("api", pod_spec(app())), pdb)
    rolled_out(ns, "deployment", "api")


# IngressClasses are cluster-wide: the one the Ingress scenarios use is applied (idempotently) by each
# and left for the cluster's life.
INGRESS_CLASS = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "corpus"},
                 "spec": {"controller": "example.com/corpus-ingress"}}


def ingress(name, service, port, class_name="corpus"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"ingressClassName": class_name, "rules": [{"host": f"{name}.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": port}}}}]}}]}}


@scenario("ingress-backend-missing", "Ingresses that route to a Service port that does not exist (8080; the Service has 80) and to a Service that does not exist.", wait=5)
def _(ns):
    k("apply", "-f", "-", stdin=json.dumps(INGRESS_CLASS))
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), ingress("api", "api", 8080), ingress("shop", "storefront", 80))
    rolled_out(ns, "deployment", "api")


@scenario("ingress-class-missing", "An Ingress asks for IngressClass nginx, which the cluster does not have: no controller serves it.", wait=5)
def _(ns):
    k("apply", "-f", "-", stdin=json.dumps(INGRESS_CLASS))
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), ingress("api", "api", 80, "nginx"))
    rolled_out(ns, "deployment", "api")


@scenario("healthy-ingress", "An Ingress of an existing class routing to an existing Service port, terminating TLS with a Secret that exists: nothing to report.", wait=5, secrets=True)
def _(ns):
    k("apply", "-f", "-", stdin=json.dumps(INGRESS_CLASS))
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), tls_secret("api-tls"), with_tls(ingress("api", "api", 80), "api-tls"))
    rolled_out(ns, "deployment", "api")


def tls_secret(name):
    """A kubernetes.io/tls Secret (its values never leave the cluster: the snapshot keeps its keys)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "LS0tLS1CRUdJTg=="}}


def with_tls(ing, secret):
    ing["spec"]["tls"] = [{"hosts": [rule["host"] for rule in ing["spec"]["rules"]], "secretName": secret}]
    return ing


def db_secret_app():
    """The demo app with DATABASE_URL from Secret db, and that Secret: a namespace that holds a Secret."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"url": DB["value"]}}
    env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}, LOG]
    return secret, deployment("api", pod_spec(app(env=env)))


@scenario("ingress-tls-secret-missing", "An Ingress terminates TLS with Secret api-tls, which does not exist (the namespace holds Secret db, which the app reads); captured with its Secrets' names.", wait=5, secrets=True)
def _(ns):
    k("apply", "-f", "-", stdin=json.dumps(INGRESS_CLASS))
    apply(ns, *db_secret_app(), service("api", {"app": "api"}), with_tls(ingress("api", "api", 80), "api-tls"))
    rolled_out(ns, "deployment", "api")


def network_policy(name, selector, **spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": {"podSelector": selector, **spec}}


@scenario("networkpolicy-blocks-service", "A default-deny for ingress and an allow for the metrics port (9090) only: the pods run and are ready, the Service (80 → 8080) reaches none of them.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}),
          network_policy("default-deny", {}, policyTypes=["Ingress"]),
          network_policy("allow-metrics", {"matchLabels": {"app": "api"}}, ingress=[{"ports": [{"port": 9090}]}]))
    rolled_out(ns, "deployment", "api")


@scenario("healthy-networkpolicy", "A default-deny for ingress and an allow for the app's port from its clients: nothing to report.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}),
          network_policy("default-deny", {}, policyTypes=["Ingress"]),
          network_policy("allow-clients", {"matchLabels": {"app": "api"}},
                         ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": 8080}]}]))
    rolled_out(ns, "deployment", "api")


def gateway(name):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
            "spec": {"gatewayClassName": "corpus", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}


def http_route(name, parent, backend, port=80):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": parent}], "hostnames": ["shop.example.com"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": backend, "port": port}]}]}}


# The harness installs the Gateway API's CRDs (scripts/harness/gateway-api.sh); no Gateway controller can
# run here (no Envoy or proxy image), so no controller writes route status: a status is written only
# where a scenario says it stands in for one.
# A route waits this long for a controller's first word before silence means "attached to nothing"
# (crates/aegis-analysis/src/gateway/mod.rs, GRACE_SECONDS), plus a margin; a Gateway's or listener's
# False condition counts after the same time.
ROUTE_GRACE = 130


@scenario("httproute-gateway-missing", "An HTTPRoute whose parentRef names Gateway public; the namespace has only Gateway internal, so no controller ever reports on the route.", wait=ROUTE_GRACE)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), gateway("internal"), http_route("shop", "public", "api"))
    rolled_out(ns, "deployment", "api")


@scenario("httproute-backend-missing", "An HTTPRoute on an existing Gateway whose backendRef names Service api-v2, which does not exist (the Service is api).", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), gateway("public"), http_route("shop", "public", "api-v2"))
    rolled_out(ns, "deployment", "api")


@scenario("healthy-httproute", "An HTTPRoute on an existing Gateway to an existing Service port, accepted and resolved: nothing to report. Its status is written by the capture script in place of a Gateway controller (none can run here), in the shape Envoy Gateway writes.", wait=ROUTE_GRACE)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), gateway("public"), http_route("shop", "public", "api"))
    generation = json.loads(k("-n", ns, "get", "httproute", "shop", "-o", "json").stdout)["metadata"]["generation"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    condition = lambda type_, reason, message: {"type": type_, "status": "True", "reason": reason, "message": message,
                                                "lastTransitionTime": now, "observedGeneration": generation}
    status = {"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"},
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "conditions": [condition("Accepted", "Accepted", "Route is accepted"),
                       condition("ResolvedRefs", "ResolvedRefs", "Resolved all the Object references for the Route")]}]}}
    k("-n", ns, "patch", "httproute", "shop", "--subresource=status", "--type=merge", "-p", json.dumps(status))
    rolled_out(ns, "deployment", "api")


def grpc_route(name, parent, backend, port=9090):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": parent}], "hostnames": ["orders.example.com"],
                     "rules": [{"matches": [{"method": {"service": "shop.Orders"}}], "backendRefs": [{"name": backend, "port": port}]}]}}


@scenario("grpcroute-backend-missing", "A GRPCRoute on an existing Gateway whose backendRef names Service orders, which does not exist (the gRPC Service is api).", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), gateway("public"), grpc_route("orders", "public", "orders"))
    rolled_out(ns, "deployment", "api")


def https_gateway(name, secret):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
            "spec": {"gatewayClassName": "corpus", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP"},
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "shop.example.com",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": secret}]}}]}}


def write_gateway_status(ns, name, https_conditions):
    """Write Gateway `name`'s status as Envoy Gateway does, in place of a controller (none can run
    here): the Gateway and its http listener well, its https listener as `https_conditions` say
    ((type, status, reason, message) each)."""
    generation = json.loads(k("-n", ns, "get", "gateway", name, "-o", "json").stdout)["metadata"]["generation"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    condition = lambda type_, status, reason, message: {"type": type_, "status": status, "reason": reason, "message": message,
                                                        "lastTransitionTime": now, "observedGeneration": generation}
    kinds = [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}, {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]
    healthy_listener = [condition("Programmed", "True", "Programmed", "Sending translated listener configuration to the data plane"),
                        condition("Accepted", "True", "Accepted", "Listener has been successfully translated"),
                        condition("ResolvedRefs", "True", "ResolvedRefs", "Listener references have been resolved"),
                        condition("Conflicted", "False", "NoConflicts", "No conflicts detected")]
    status = {"status": {
        "addresses": [{"type": "IPAddress", "value": "172.18.255.200"}],
        "conditions": [condition("Accepted", "True", "Accepted", "The Gateway has been scheduled by Envoy Gateway"),
                       condition("Programmed", "True", "Programmed", "Address assigned to the Gateway, 1/1 envoy replicas available")],
        "listeners": [{"name": "http", "attachedRoutes": 0, "supportedKinds": kinds, "conditions": healthy_listener},
                      {"name": "https", "attachedRoutes": 1, "supportedKinds": kinds,
                       "conditions": [condition(*c) for c in https_conditions]}]}}
    k("-n", ns, "patch", "gateway", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))


def write_route_status(ns, name, parent, section):
    """Write HTTPRoute `name`'s status as Envoy Gateway does for a route it accepted on listener
    `section` of Gateway `parent` whose own references resolve, in place of a controller."""
    generation = json.loads(k("-n", ns, "get", "httproute", name, "-o", "json").stdout)["metadata"]["generation"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    condition = lambda type_, reason, message: {"type": type_, "status": "True", "reason": reason, "message": message,
                                                "lastTransitionTime": now, "observedGeneration": generation}
    status = {"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": parent, "sectionName": section},
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "conditions": [condition("Accepted", "Accepted", "Route is accepted"),
                       condition("ResolvedRefs", "ResolvedRefs", "Resolved all the Object references for the Route")]}]}}
    k("-n", ns, "patch", "httproute", name, "--subresource=status", "--type=merge", "-p", json.dumps(status))


def https_route(name, parent, backend):
    route = http_route(name, parent, backend)
    route["spec"]["parentRefs"] = [{"name": parent, "sectionName": "https"}]
    return route


@scenario("gateway-certificate-missing", "A Gateway whose https listener names TLS Secret shop-tls, which does not exist; an HTTPRoute, accepted, attaches to that listener. Their status is written by the capture script in place of a Gateway controller (none can run here), as Envoy Gateway reports a missing certificate.", wait=ROUTE_GRACE)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), https_gateway("public", "shop-tls"), https_route("shop", "public", "api"))
    write_gateway_status(ns, "public", [
        ("Programmed", "False", "Invalid", "Listener is invalid, see other Conditions for details."),
        ("Accepted", "True", "Accepted", "Listener has been successfully translated"),
        ("ResolvedRefs", "False", "InvalidCertificateRef", f"Secret {ns}/shop-tls does not exist."),
        ("Conflicted", "False", "NoConflicts", "No conflicts detected")])
    # The route itself is accepted and its backend resolves: the listener, not the route, is broken.
    write_route_status(ns, "shop", "public", "https")
    rolled_out(ns, "deployment", "api")


@scenario("healthy-gateway-https", "A Gateway with an https listener whose TLS Secret exists, every listener programmed (Conflicted False among its conditions), and an HTTPRoute on it: nothing to report. Its status is written by the capture script in place of a Gateway controller (none can run here); captured with its Secrets' names.", wait=ROUTE_GRACE, secrets=True)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), tls_secret("shop-tls"), https_gateway("public", "shop-tls"), https_route("shop", "public", "api"))
    write_gateway_status(ns, "public", [
        ("Programmed", "True", "Programmed", "Sending translated listener configuration to the data plane"),
        ("Accepted", "True", "Accepted", "Listener has been successfully translated"),
        ("ResolvedRefs", "True", "ResolvedRefs", "Listener references have been resolved"),
        ("Conflicted", "False", "NoConflicts", "No conflicts detected")])
    write_route_status(ns, "shop", "public", "https")
    rolled_out(ns, "deployment", "api")


@scenario("gateway-certificate-secret-missing", "A Gateway whose https listener names TLS Secret shop-tls, which does not exist, with an HTTPRoute on it; no Gateway controller runs (none can here), so only the objects say so: captured with the namespace's Secrets' names (Secret db, which the app reads).", wait=ROUTE_GRACE, secrets=True)
def _(ns):
    apply(ns, *db_secret_app(), service("api", {"app": "api"}), https_gateway("public", "shop-tls"), https_route("shop", "public", "api"))
    rolled_out(ns, "deployment", "api")


@scenario("gateway-class-missing", "A Gateway asks for GatewayClass nginx; the cluster's only GatewayClass is corpus (created for the capture, removed after it; no controller implements it here): nothing programs the Gateway, and the HTTPRoute on it attaches to nothing.", wait=ROUTE_GRACE)
def _(ns):
    k("apply", "-f", "-", stdin=json.dumps({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "corpus"},
                                            "spec": {"controllerName": "example.com/corpus-gateway"}}))
    gw = gateway("public")
    gw["spec"]["gatewayClassName"] = "nginx"
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), gw, http_route("shop", "public", "api"))
    rolled_out(ns, "deployment", "api")
    # Cluster-wide: the tests' Gateways name class "none", which a class of another name would make missing.
    return lambda: k("delete", "gatewayclass", "corpus", "--ignore-not-found", check=False)


def tcp_gateway(name, allow_listener_sets=False):
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
          "spec": {"gatewayClassName": "corpus", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"},
                                                               {"name": "db", "port": 5432, "protocol": "TCP"}]}}
    if allow_listener_sets:
        gw["spec"]["allowedListeners"] = {"namespaces": {"from": "Same"}}
    return gw


def tcp_route(name, parent, backend, port, parent_kind="Gateway", section="db"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TCPRoute", "metadata": {"name": name},
            "spec": {"parentRefs": [{"kind": parent_kind, "name": parent, "sectionName": section}],
                     "rules": [{"backendRefs": [{"name": backend, "port": port}]}]}}


def listener_set(name, parent):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet", "metadata": {"name": name},
            "spec": {"parentRef": {"name": parent}, "listeners": [{"name": "cache", "port": 6379, "protocol": "TCP"}]}}


@scenario("tcproute-backend-port-missing", "A TCPRoute on a Gateway's TCP listener whose backendRef names port 5432 of Service api, which serves only 80.", wait=5)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), tcp_gateway("public"), tcp_route("postgres", "public", "api", 5432))
    rolled_out(ns, "deployment", "api")


@scenario("listenerset-not-allowed", "A ListenerSet adds a TCP listener to Gateway public, which does not allow ListenerSets (no allowedListeners: None); a TCPRoute attaches to the ListenerSet. No controller runs here, so none reports on either.", wait=ROUTE_GRACE)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), tcp_gateway("public"), listener_set("extra", "public"),
          tcp_route("cache", "extra", "api", 80, parent_kind="ListenerSet", section="cache"))
    rolled_out(ns, "deployment", "api")


@scenario("listenerset-gateway-in-another-namespace", "A ListenerSet names Gateway public of the namespace beside it (<namespace>-infra), which allows ListenerSets from its own namespace only (Same); a TCPRoute attaches to the ListenerSet. `aegis snapshot -n` reads the parent's Gateways with the namespace's own. No controller runs here.", wait=ROUTE_GRACE)
def _(ns):
    infra = f"{ns}-infra"
    k("delete", "namespace", infra, "--ignore-not-found", "--wait=true")
    k("create", "namespace", infra)
    apply(infra, tcp_gateway("public", allow_listener_sets=True))
    ls = listener_set("extra", "public")
    ls["spec"]["parentRef"]["namespace"] = infra
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), ls,
          tcp_route("cache", "extra", "api", 80, parent_kind="ListenerSet", section="cache"))
    rolled_out(ns, "deployment", "api")
    return lambda: k("delete", "namespace", infra, "--ignore-not-found", "--wait=false", check=False)


@scenario("healthy-listenerset", "A ListenerSet on a Gateway that allows ListenerSets from its own namespace, accepted and programmed, with a TCPRoute on it to an existing Service port: nothing to report. Their status is written by the capture script in place of a Gateway controller (none can run here), in the Gateway API's shape.", wait=ROUTE_GRACE)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), service("api", {"app": "api"}), tcp_gateway("public", allow_listener_sets=True),
          listener_set("extra", "public"), tcp_route("cache", "extra", "api", 80, parent_kind="ListenerSet", section="cache"))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    generation = lambda kind, name: json.loads(k("-n", ns, "get", kind, name, "-o", "json").stdout)["metadata"]["generation"]
    condition = lambda type_, reason, message, gen: {"type": type_, "status": "True", "reason": reason, "message": message,
                                                     "lastTransitionTime": now, "observedGeneration": gen}
    ls_gen = generation("listenerset", "extra")
    ls_status = {"status": {
        "conditions": [condition("Accepted", "Accepted", "ListenerSet is accepted", ls_gen),
                       condition("Programmed", "Programmed", "ListenerSet is programmed", ls_gen)],
        "listeners": [{"name": "cache", "attachedRoutes": 1,
                       "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "TCPRoute"}],
                       "conditions": [condition("Accepted", "Accepted", "Listener is accepted", ls_gen),
                                      condition("Programmed", "Programmed", "Listener is programmed", ls_gen),
                                      condition("ResolvedRefs", "ResolvedRefs", "Listener references have been resolved", ls_gen)]}]}}
    k("-n", ns, "patch", "listenerset", "extra", "--subresource=status", "--type=merge", "-p", json.dumps(ls_status))
    route_gen = generation("tcproute", "cache")
    route_status = {"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "ListenerSet", "name": "extra", "sectionName": "cache"},
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "conditions": [condition("Accepted", "Accepted", "Route is accepted", route_gen),
                       condition("ResolvedRefs", "ResolvedRefs", "Resolved all the Object references for the Route", route_gen)]}]}}
    k("-n", ns, "patch", "tcproute", "cache", "--subresource=status", "--type=merge", "-p", json.dumps(route_status))
    rolled_out(ns, "deployment", "api")


def autoscaler(target):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "api"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "minReplicas": 2, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}


@scenario("hpa-target-missing", "A HorizontalPodAutoscaler scales Deployment api-v2, which does not exist (the workload is api).", wait=25)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), autoscaler("api-v2"))
    rolled_out(ns, "deployment", "api")


@scenario("hpa-metrics-unavailable", "A HorizontalPodAutoscaler on CPU utilization in a cluster without a metrics API: it cannot compute a replica count.", wait=25)
def _(ns):
    apply(ns, deployment("api", pod_spec(app())), autoscaler("api"))
    rolled_out(ns, "deployment", "api")


@scenario("hpa-target-without-requests", "A HorizontalPodAutoscaler on CPU utilization of a Deployment whose container requests no CPU: utilization is a share of the request, so there is nothing to compute (here the missing metrics API fails first).", wait=25)
def _(ns):
    apply(ns, deployment("api", pod_spec(app(limit=None))), autoscaler("api"))
    rolled_out(ns, "deployment", "api")


def taint_the_real_node_after_its_daemon_runs(ns, tolerate):
    """A DaemonSet on the real node, Ready; then the node is tainted dedicated=capture:NoSchedule, as an
    operator dedicating a node would. The pod keeps running; the controller (1.35) does not recount the
    DaemonSet for a new NoSchedule taint, so its status still says 0 misscheduled. The taint is removed
    after the capture."""
    spec = pod_spec(app("agent"))
    if tolerate:
        spec["tolerations"] = spec["tolerations"] + [{"key": "dedicated", "operator": "Equal", "value": "capture", "effect": "NoSchedule"}]
    apply(ns, daemon_set("agent", spec))
    rolled_out(ns, "daemonset", "agent")
    k("taint", "node", "aegis-node", "dedicated=capture:NoSchedule", "--overwrite")
    return lambda: k("taint", "node", "aegis-node", "dedicated:NoSchedule-", check=False)


@scenario(
    "daemonset-misscheduled",
    "The real node is tainted dedicated=capture:NoSchedule after a DaemonSet's pod started there: it keeps running, misscheduled.",
    wait=2,
    exclusive=True,
)
def _(ns):
    return taint_the_real_node_after_its_daemon_runs(ns, tolerate=False)


@scenario(
    "healthy-daemonset-tolerates-taint",
    "Look-alike: the node is tainted the same way, and the DaemonSet tolerates the taint: nothing is misscheduled.",
    wait=2,
    exclusive=True,
)
def _(ns):
    return taint_the_real_node_after_its_daemon_runs(ns, tolerate=True)


def capture(name):
    description, setup, wait = SCENARIOS[name]
    ns = f"corpus-{name}"[:63].rstrip("-")
    k("delete", "namespace", ns, "--ignore-not-found", "--wait=true")
    k("create", "namespace", ns)
    for _ in range(60):
        if k("-n", ns, "get", "serviceaccount", "default", check=False).returncode == 0:
            break
        time.sleep(0.5)
    cleanup = None
    try:
        cleanup = setup(ns)
        time.sleep(wait)
        extra = ["--include-secrets"] if name in WITH_SECRETS else []
        snap = subprocess.run(
            [AEGIS, "snapshot", "-n", ns, "--kubeconfig", KUBECONFIG, *extra], capture_output=True, text=True, check=True
        ).stdout
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"{name}: {' '.join(e.cmd[:6])}: {e.stderr.strip()}")
    finally:
        if cleanup:
            cleanup()
        k("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False)
    header = (
        f"# {description}\n"
        "# Captured on the harness's real node (containerd + runc) by scripts/harness/capture-incidents.py\n"
        f"# with `aegis snapshot -n {ns}{' --include-secrets' if name in WITH_SECRETS else ''}`; expected outcome: examples/incidents/expected.yaml.\n"
    )
    with open(os.path.join(OUT, f"{name}.yaml"), "w") as f:
        f.write(header + snap)
    return name


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    # Four at a time: the node runs them side by side in a few minutes, and no scenario's pods are
    # starved enough to fail for reasons of their own.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for done in pool.map(capture, [n for n in names if n not in EXCLUSIVE]):
            print(f"captured examples/incidents/{done}.yaml", file=sys.stderr)
    for done in map(capture, [n for n in names if n in EXCLUSIVE]):
        print(f"captured examples/incidents/{done}.yaml", file=sys.stderr)


if __name__ == "__main__":
    main()
