#!/usr/bin/env python3
"""Write the incident scenarios the harness's real node cannot produce, or that predate it
(CreateContainerConfigError, Evicted, FailedMount, RolloutStuck, JobFailed, a node gone NotReady, a node under memory pressure,
a volume another node still holds, an autoscaler at its maximum, a CronJob run missed) as kubectl `List` files in examples/incidents/, in exactly the shape
and wording a real cluster and kubelet print (status fields, reasons, event messages). Hand-written by the
project; each file says so in its first line. Run: python3 scripts/harness/write-incident-fixtures.py
"""
import hashlib
import json
import os

import yaml

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "incidents")
T0, T1 = "2026-11-26T08:00:00Z", "2026-11-26T08:05:00Z"


def meta(name, ns, uid, **extra):
    m = {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": T0, "resourceVersion": "1000"}
    m.update(extra)
    return m


def owner(kind, name, uid, api="apps/v1"):
    return [{"apiVersion": api, "kind": kind, "name": name, "uid": uid, "controller": True, "blockOwnerDeletion": True}]


def container(image="127.0.0.1:5000/demo-api:v2", **extra):
    c = {"name": "api", "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}],
         "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}
    c.update(extra)
    return c


def deployment(ns, name, template, replicas, available, conditions, revision):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(name, ns, f"d-{name}", generation=revision, labels={"app": name},
                             annotations={"deployment.kubernetes.io/revision": str(revision)}),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template,
                     "progressDeadlineSeconds": 600, "strategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": revision, "replicas": replicas, "availableReplicas": available,
                       "readyReplicas": available, "updatedReplicas": 1, "unavailableReplicas": replicas - available,
                       "conditions": conditions}}


def replicaset(ns, name, hash_, template, revision, replicas, ready):
    t = json.loads(json.dumps(template))
    t["metadata"]["labels"]["pod-template-hash"] = hash_
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": meta(f"{name}-{hash_}", ns, f"rs-{hash_}", labels={"app": name, "pod-template-hash": hash_},
                             annotations={"deployment.kubernetes.io/revision": str(revision)},
                             ownerReferences=owner("Deployment", name, f"d-{name}")),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name, "pod-template-hash": hash_}}, "template": t},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1}}


def pod(ns, name, rs, spec, status, labels=None, owner_ref=None):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": meta(name, ns, f"p-{name}", labels=labels or {}, ownerReferences=owner_ref or owner("ReplicaSet", rs, f"rs-{rs.split('-')[-1]}")),
            "spec": spec, "status": status}


def event(ns, kind, name, reason, message, type_="Warning", count=5, component="kubelet"):
    # A stable name (Python's string hash is salted per run): the files do not change when rewritten.
    digest = int(hashlib.sha256(f"{reason}{message}".encode()).hexdigest()[:13], 16)
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{digest:x}", "namespace": ns},
            "involvedObject": {"kind": kind, "name": name, "namespace": ns, "apiVersion": "v1"},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": T0, "lastTimestamp": T1, "source": {"component": component}}


def cond(type_, status, reason=None, message=None):
    c = {"type": type_, "status": status, "lastTransitionTime": T0}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def running_ready(image):
    return {"phase": "Running", "conditions": [cond("Ready", "True"), cond("ContainersReady", "True"), cond("PodScheduled", "True")],
            "containerStatuses": [{"name": "api", "image": image, "imageID": "", "ready": True, "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": T0}}}]}


def node(name, conditions, taints):
    """A 4-CPU, 16 GiB node with these conditions and (key, effect) taints added at T1."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": f"n-{name}", "labels": {"kubernetes.io/hostname": name}},
            "spec": {"taints": [{"key": k, "effect": e, "timeAdded": T1} for k, e in taints]} if taints else {},
            "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"}, "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                       "conditions": conditions}}


def write(name, header, items):
    doc = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
    with open(os.path.join(OUT, f"{name}.yaml"), "w") as f:
        f.write(f"# {header}\n# Hand-written by AEGIS (scripts/harness/write-incident-fixtures.py) in the exact shape of\n# `kubectl get pods,deployments,replicasets,services,endpoints,events,jobs -o yaml`.\n")
        yaml.safe_dump(doc, f, sort_keys=False)


def template(labels, c, volumes=None):
    spec = {"containers": [c], "restartPolicy": "Always"}
    if volumes:
        spec["volumes"] = volumes
    return {"metadata": {"labels": labels}, "spec": spec}


# CreateContainerConfigError: env from a ConfigMap key that does not exist.
ns = "shop-config"
c = container(env=[{"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "api-config", "key": "db_host"}}}])
tpl = template({"app": "api"}, c)
items = [deployment(ns, "api", tpl, 2, 0, [cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")], 1),
         replicaset(ns, "api", "7c9f8d6b5", tpl, 1, 2, 0)]
for i in range(2):
    pname = f"api-7c9f8d6b5-q{i}x2z"
    items.append(pod(ns, pname, "api-7c9f8d6b5", tpl["spec"], {"phase": "Pending", "conditions": [cond("Ready", "False", "ContainersNotReady", "containers with unready status: [api]"), cond("PodScheduled", "True")],
        "containerStatuses": [{"name": "api", "image": c["image"], "imageID": "", "ready": False, "restartCount": 0, "started": False,
                               "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"api-config\" not found"}}}]}, {"app": "api", "pod-template-hash": "7c9f8d6b5"}))
    items.append(event(ns, "Pod", pname, "Failed", "Error: configmap \"api-config\" not found"))
write("create-container-config-error", "A Deployment whose env references a ConfigMap that does not exist.", items)

# Evicted: the kubelet evicted pods under memory pressure; the ReplicaSet replaced them.
ns = "shop-evicted"
tpl = template({"app": "api"}, container())
items = [deployment(ns, "api", tpl, 2, 2, [cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")], 1),
         replicaset(ns, "api", "5d8c7b9f4", tpl, 1, 2, 2)]
for i in range(2):
    items.append(pod(ns, f"api-5d8c7b9f4-r{i}k8m", "api-5d8c7b9f4", tpl["spec"], running_ready(tpl["spec"]["containers"][0]["image"]), {"app": "api", "pod-template-hash": "5d8c7b9f4"}))
for i in range(3):
    pname = f"api-5d8c7b9f4-e{i}v7q"
    msg = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91232Ki. Container api was using 1894320Ki, request is 128Mi, has larger consumption of memory. "
    items.append(pod(ns, pname, "api-5d8c7b9f4", tpl["spec"], {"phase": "Failed", "reason": "Evicted", "message": msg,
        "conditions": [cond("DisruptionTarget", "True", "TerminationByKubelet", "The node was low on resource: memory.")]}, {"app": "api", "pod-template-hash": "5d8c7b9f4"}))
    items.append(event(ns, "Pod", pname, "Evicted", msg.strip(), count=1))
write("evicted", "Pods evicted by the kubelet under memory pressure.", items)

# FailedMount: a volume from a Secret that does not exist.
ns = "shop-mount"
tpl = template({"app": "api"}, container(volumeMounts=[{"name": "tls", "mountPath": "/etc/tls", "readOnly": True}]),
               volumes=[{"name": "tls", "secret": {"secretName": "api-tls"}}])
items = [deployment(ns, "api", tpl, 1, 0, [cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")], 1),
         replicaset(ns, "api", "6b7d9c8f5", tpl, 1, 1, 0)]
pname = "api-6b7d9c8f5-m4n8p"
items.append(pod(ns, pname, "api-6b7d9c8f5", tpl["spec"], {"phase": "Pending", "conditions": [cond("Ready", "False", "ContainersNotReady"), cond("PodScheduled", "True")],
    "containerStatuses": [{"name": "api", "image": tpl["spec"]["containers"][0]["image"], "imageID": "", "ready": False, "restartCount": 0, "started": False,
                           "state": {"waiting": {"reason": "ContainerCreating"}}}]}, {"app": "api", "pod-template-hash": "6b7d9c8f5"}))
items.append(event(ns, "Pod", pname, "FailedMount", "MountVolume.SetUp failed for volume \"tls\" : secret \"api-tls\" not found", count=12))
write("failed-mount", "A pod that cannot start because its Secret volume does not exist.", items)

# RolloutStuck: the new revision's pods never become ready and there is no probe event; the deadline passed.
ns = "shop-rollout"
good = template({"app": "api"}, container())
bad = template({"app": "api"}, container(image="127.0.0.1:5000/demo-api:v3"))
items = [deployment(ns, "api", bad, 3, 3, [cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                                           cond("Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet \"api-8d9f7c6b4\" has timed out progressing.")], 2),
         replicaset(ns, "api", "5c6d7e8f9", good, 1, 3, 3), replicaset(ns, "api", "8d9f7c6b4", bad, 2, 1, 0)]
for i in range(3):
    items.append(pod(ns, f"api-5c6d7e8f9-g{i}h2j", "api-5c6d7e8f9", good["spec"], running_ready(good["spec"]["containers"][0]["image"]), {"app": "api", "pod-template-hash": "5c6d7e8f9"}))
items.append(pod(ns, "api-8d9f7c6b4-n3w5x", "api-8d9f7c6b4", bad["spec"], {"phase": "Running", "conditions": [cond("Ready", "False", "ContainersNotReady"), cond("PodScheduled", "True")],
    "containerStatuses": [{"name": "api", "image": "127.0.0.1:5000/demo-api:v3", "imageID": "", "ready": False, "restartCount": 0, "started": True, "state": {"running": {"startedAt": T0}}}]},
    {"app": "api", "pod-template-hash": "8d9f7c6b4"}))
items.append(event(ns, "Deployment", "api", "ProgressDeadlineExceeded", "ReplicaSet \"api-8d9f7c6b4\" has timed out progressing.", component="deployment-controller", count=1))
write("rollout-stuck", "A rollout that does not progress: the new pods never become ready, without a probe event.", items)

# JobFailed: a migration Job whose pods exit 2 until the backoff limit.
ns = "shop-jobs"
jt = {"metadata": {"labels": {"job-name": "db-migrate"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "127.0.0.1:5000/demo-api:v2", "command": ["/bin/demo-api", "migrate"]}]}}
items = [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("db-migrate", ns, "j-db-migrate", labels={"job-name": "db-migrate"}),
          "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1, "template": jt},
          "status": {"failed": 3, "startTime": T0, "conditions": [cond("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                                                                  cond("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]}}]
for i in range(3):
    pname = f"db-migrate-{i}k2f{i}"
    items.append(pod(ns, pname, "", jt["spec"], {"phase": "Failed", "conditions": [cond("Ready", "False", "PodFailed")],
        "containerStatuses": [{"name": "migrate", "image": "127.0.0.1:5000/demo-api:v2", "imageID": "", "ready": False, "restartCount": 0, "started": False,
                               "state": {"terminated": {"exitCode": 2, "reason": "Error", "startedAt": T0, "finishedAt": T0}},
                               "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "startedAt": T0, "finishedAt": T0}}}]},
        {"job-name": "db-migrate"}, owner("Job", "db-migrate", "j-db-migrate", "batch/v1")))
items.append(event(ns, "Job", "db-migrate", "BackoffLimitExceeded", "Job has reached the specified backoff limit", component="job-controller", count=1))
write("job-failed", "A Job whose pods fail until the backoff limit.", items)
# NodeNotReady: the kubelet of worker-2 stopped posting its status; the node lifecycle controller
# marked the node Unknown, tainted it unreachable and marked its pods not ready. (The harness's real
# node cannot be made to vanish without taking the harness with it.)
ns = "shop-node"
tpl = template({"app": "api"}, container())
items = []
for name, ready in (("worker-1", True), ("worker-2", False)):
    conds = [cond("MemoryPressure", "False", "KubeletHasSufficientMemory"), cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
             cond("PIDPressure", "False", "KubeletHasSufficientPID")]
    conds = [c if ready else dict(c, status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.") for c in conds]
    conds.append(cond("Ready", "True", "KubeletReady", "kubelet is posting ready status") if ready
                 else cond("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."))
    items.append(node(name, conds, [] if ready else [("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")]))
items += [deployment(ns, "api", tpl, 3, 2, [cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")], 1),
          replicaset(ns, "api", "6f8b9d7c5", tpl, 1, 3, 2)]
for i, node_name in enumerate(("worker-1", "worker-1", "worker-2")):
    pname = f"api-6f8b9d7c5-w{i}z4k"
    spec = dict(tpl["spec"], nodeName=node_name)
    status = running_ready(tpl["spec"]["containers"][0]["image"])
    if node_name == "worker-2":
        status["conditions"] = [cond("Ready", "False"), cond("ContainersReady", "True"), cond("PodScheduled", "True")]
        items.append(event(ns, "Pod", pname, "NodeNotReady", "Node is not ready", component="node-controller", count=1))
    items.append(pod(ns, pname, "api-6f8b9d7c5", spec, status, {"app": "api", "pod-template-hash": "6f8b9d7c5"}))
write("node-not-ready", "A node whose kubelet stopped posting its status: the pod on it is not ready, the other two serve.", items)

# NodePressure: worker-2's kubelet reports MemoryPressure (and the node lifecycle controller taints it
# memory-pressure:NoSchedule); nothing is evicted yet, the pod on it still serves. (Memory pressure
# cannot be made on the harness's one real node without starving the harness itself.)
ns = "shop-pressure"
tpl = template({"app": "api"}, container())
items = []
for name, pressed in (("worker-1", False), ("worker-2", True)):
    conds = [cond("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available") if pressed
             else cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
             cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
             cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
             cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
    items.append(node(name, conds, [("node.kubernetes.io/memory-pressure", "NoSchedule")] if pressed else []))
items += [deployment(ns, "api", tpl, 3, 3, [cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")], 1),
          replicaset(ns, "api", "8d7c6b5f9", tpl, 1, 3, 3)]
for i, node_name in enumerate(("worker-1", "worker-1", "worker-2")):
    spec = dict(tpl["spec"], nodeName=node_name)
    items.append(pod(ns, f"api-8d7c6b5f9-p{i}m3n", "api-8d7c6b5f9", spec, running_ready(tpl["spec"]["containers"][0]["image"]),
                     {"app": "api", "pod-template-hash": "8d7c6b5f9"}))
write("node-memory-pressure", "A node under memory pressure, before it evicts anything: one of the three pods runs there.", items)

# FailedAttachVolume: a rolling update of a Deployment whose pod mounts a ReadWriteOnce volume. The
# new pod lands on another node; the attach/detach controller refuses to attach the volume there while
# the old pod's node still holds it (Multi-Attach error), and the kubelet times out waiting. (Attaching
# needs a CSI driver with an attacher, which the harness does not run.)
ns = "shop-multi-attach"
volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
mounts = [{"name": "data", "mountPath": "/data"}]
old_tpl = template({"app": "api"}, container(volumeMounts=mounts), volumes)
new_tpl = template({"app": "api"}, container(image="127.0.0.1:5000/demo-api:v3", volumeMounts=mounts), volumes)
pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
       "metadata": meta("data", ns, "pvc-data", annotations={"pv.kubernetes.io/bind-completed": "yes",
                                                            "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"}),
       "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "volumeMode": "Filesystem",
                "volumeName": "pvc-6a1e2f3c-4b5d-4e6f-8a9b-0c1d2e3f4a5b", "resources": {"requests": {"storage": "10Gi"}}},
       "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}}
items = [deployment(ns, "api", new_tpl, 1, 1, [
             cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
             cond("Progressing", "True", "ReplicaSetUpdated", "ReplicaSet \"api-7b6c5d4e3\" is progressing.")], 2),
         replicaset(ns, "api", "5f7d8c9b6", old_tpl, 1, 1, 1),
         replicaset(ns, "api", "7b6c5d4e3", new_tpl, 2, 1, 0),
         pvc]
old_pod = "api-5f7d8c9b6-k2m4p"
items.append(pod(ns, old_pod, "api-5f7d8c9b6", dict(old_tpl["spec"], nodeName="worker-1"), running_ready(old_tpl["spec"]["containers"][0]["image"]),
                 {"app": "api", "pod-template-hash": "5f7d8c9b6"}))
new_pod = "api-7b6c5d4e3-w8x9z"
items.append(pod(ns, new_pod, "api-7b6c5d4e3", dict(new_tpl["spec"], nodeName="worker-2"), {"phase": "Pending",
    "conditions": [cond("Ready", "False", "ContainersNotReady", "containers with unready status: [api]"), cond("PodScheduled", "True")],
    "containerStatuses": [{"name": "api", "image": new_tpl["spec"]["containers"][0]["image"], "imageID": "", "ready": False, "restartCount": 0,
                           "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}]}, {"app": "api", "pod-template-hash": "7b6c5d4e3"}))
items.append(event(ns, "Pod", new_pod, "FailedAttachVolume",
                   f"Multi-Attach error for volume \"pvc-6a1e2f3c-4b5d-4e6f-8a9b-0c1d2e3f4a5b\" Volume is already used by pod(s) {old_pod}",
                   count=1, component="attachdetach-controller"))
items.append(event(ns, "Pod", new_pod, "FailedMount",
                   "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[]: timed out waiting for the condition",
                   count=3))
write("volume-multi-attach", "A rolling update whose new pod, on another node, cannot attach the ReadWriteOnce volume the old pod still holds (Multi-Attach error).", items)

# AutoscalerAtMaxReplicas: a HorizontalPodAutoscaler on CPU holds its Deployment at maxReplicas while
# utilization is far over target, and says so (ScalingLimited: TooManyReplicas). The look-alike is at
# maxReplicas too, but within target (DesiredWithinRange): nothing to report. (The harness runs no
# metrics API, so no autoscaler there computes a replica count.)
def autoscaled(ns, utilization, limited):
    tpl = template({"app": "api"}, container())
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("api", ns, "hpa-api"),
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 2, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
           "status": {"currentReplicas": 5, "desiredReplicas": 5, "lastScaleTime": T0,
                      "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": utilization, "averageValue": f"{utilization}m"}}}],
                      "conditions": [cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
                                     cond("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"),
                                     cond("ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more than the maximum replica count") if limited
                                     else cond("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range")]}}
    items = [deployment(ns, "api", tpl, 5, 5, [cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")], 1),
             replicaset(ns, "api", "6c8d9b7f5", tpl, 1, 5, 5), hpa]
    for i in range(5):
        items.append(pod(ns, f"api-6c8d9b7f5-a{i}t7r", "api-6c8d9b7f5", tpl["spec"], running_ready(tpl["spec"]["containers"][0]["image"]),
                         {"app": "api", "pod-template-hash": "6c8d9b7f5"}))
    return items


write("hpa-at-max-replicas", "A HorizontalPodAutoscaler holds its Deployment at maxReplicas (5) with CPU at 182 % of requests against a 70 % target.",
      autoscaled("shop-hpa-max", 182, True))
write("healthy-hpa-at-max-replicas", "Look-alike: a HorizontalPodAutoscaler at maxReplicas (5) whose CPU is within target: nothing to report.",
      autoscaled("shop-hpa-max-ok", 65, False))

# CronJobNotStarting: the hourly run of 07:00 was not started within startingDeadlineSeconds (60 s):
# the CronJob controller was not running then (kube-controller-manager restarted), and says so once it
# is back (MissSchedule). (The harness's controller manager is shared by every scenario.)
ns = "shop-cron-missed"
jt = {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container(name="report", args=["report"])]}}}}
cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("report", ns, "cj-report"),
        "spec": {"schedule": "0 * * * *", "startingDeadlineSeconds": 60, "concurrencyPolicy": "Allow", "suspend": False,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1, "jobTemplate": jt},
        "status": {"lastScheduleTime": "2026-11-26T06:00:00Z", "lastSuccessfulTime": "2026-11-26T06:00:41Z"}}
missed = event(ns, "CronJob", "report", "MissSchedule", "Missed scheduled time to start a job: Thu, 26 Nov 2026 07:00:00 +0000",
               count=1, component="cronjob-controller")
missed["involvedObject"]["apiVersion"] = "batch/v1"
write("cronjob-missed-schedule", "An hourly CronJob whose 07:00 run was not started within its startingDeadlineSeconds (60 s): MissSchedule.", [cron, missed])
print("wrote 11 scenarios")
