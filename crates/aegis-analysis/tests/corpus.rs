//! The incident corpus (examples/incidents), scenario by scenario: snapshots captured on the real node
//! with `aegis snapshot` (scripts/harness/capture-incidents.py), and a few hand-written ones. Each
//! must give exactly its incident, evidence and fix; the healthy namespaces must give none.
//! corpus_score.rs scores the whole corpus against examples/incidents/expected.yaml.

use aegis_analysis::{Snapshot, analyze};
use aegis_model::{Category, FixAction, Incident, PatchType, Severity};
use serde_json::Value;

fn incidents(file: &str) -> Vec<Incident> {
    let path = aegis_testkit::repo_root().join("examples/incidents").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    analyze(&Snapshot::from_text(&text).unwrap_or_else(|e| panic!("{file}: {e}")))
}

fn only(file: &str) -> Incident {
    let mut v = incidents(file);
    assert_eq!(v.len(), 1, "{file}: {:#?}", v.iter().map(|i| (i.category, &i.resource)).collect::<Vec<_>>());
    v.remove(0)
}

fn assert_rollback_to_revision_1(i: &Incident) {
    assert_eq!(i.fix.action, FixAction::Rollback { to_revision: 1 });
    let patch = i.fix.patch.as_ref().expect("a rollback renders a patch");
    assert_eq!(patch.patch_type, PatchType::Json);
    let op = &patch.body[0];
    assert_eq!((op["op"].as_str(), op["path"].as_str()), (Some("replace"), Some("/spec/template")));
    assert!(op["value"].pointer("/metadata/labels/pod-template-hash").is_none(), "the ReplicaSet's hash label is not copied back");
    let inverse = i.fix.inverse.as_ref().expect("and its inverse");
    assert_ne!(inverse.body, patch.body);
}

#[test]
fn a_rollout_that_removed_a_required_env_var_is_a_crashloop_fixed_by_rolling_back() {
    let i = only("crashloop-missing-env.yaml");
    assert_eq!(i.category, Category::CrashLoopBackOff);
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("Deployment", "api"));
    assert!(i.root_cause.contains("DATABASE_URL"), "{}", i.root_cause);
    assert!(i.evidence.iter().any(|e| e.contains("exit code 1")));
    assert!(i.evidence.iter().any(|e| e.contains("env DATABASE_URL removed")));
    assert_rollback_to_revision_1(&i);
    // The old revision's template has the env var back.
    let env = i.fix.patch.as_ref().unwrap().body[0]["value"]["spec"]["containers"][0]["env"].as_array().unwrap().clone();
    assert!(env.iter().any(|e| e["name"] == "DATABASE_URL"));
    assert!(i.confidence >= 0.85);
}

#[test]
fn a_rollout_to_a_missing_tag_is_an_image_pull_backoff_fixed_by_rolling_back() {
    let i = only("image-pull-missing-tag.yaml");
    assert_eq!(i.category, Category::ImagePullBackOff);
    assert!(i.root_cause.contains("v2.1-does-not-exist"));
    assert_rollback_to_revision_1(&i);
    assert!(i.verification_plan.security_checks.contains(&aegis_model::Source::Trivy), "an image change needs Trivy");
}

#[test]
fn an_oom_with_no_recent_change_doubles_the_memory_limit() {
    let i = only("oom-small-limit.yaml");
    assert_eq!(i.category, Category::OOMKilled);
    assert_eq!(i.severity, Severity::Critical, "no replica is available");
    match &i.fix.action {
        FixAction::SetResources { container, limits, requests } => {
            assert_eq!(container, "api");
            assert_eq!(limits.get("memory").map(String::as_str), Some("256Mi"));
            assert!(requests.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let patch = &i.fix.patch.as_ref().unwrap().body;
    assert_eq!(patch.pointer("/spec/template/spec/containers/0/resources/limits/memory").and_then(Value::as_str), Some("256Mi"));
    let inverse = &i.fix.inverse.as_ref().unwrap().body;
    assert_eq!(inverse.pointer("/spec/template/spec/containers/0/resources/limits/memory").and_then(Value::as_str), Some("128Mi"));
    assert_eq!(i.verification_plan.duration_seconds, 300);
}

#[test]
fn requests_larger_than_every_node_are_lowered_to_fit_and_the_fix_says_so() {
    let i = only("pending-requests-too-large.yaml");
    assert_eq!(i.category, Category::Unschedulable);
    assert!(i.evidence.iter().any(|e| e.contains("Insufficient memory")));
    match &i.fix.action {
        // The workload is pinned to the real node (24005Mi allocatable), not the 16Gi kwok nodes:
        // room there for its 2 replicas and one pod more.
        FixAction::SetResources { requests, .. } => assert_eq!(requests.get("memory").map(String::as_str), Some("8002Mi")),
        other => panic!("{other:?}"),
    }
    assert!(i.fix.summary.contains("64Gi") && i.fix.summary.contains("8002Mi"), "{}", i.fix.summary);
}

/// The same incident when the workload is pinned (nodeSelector + toleration) to one tainted 4Gi node,
/// beside the real node and the three 16Gi kwok nodes it may not use: the requests are sized for the node it may use, with
/// room for its two replicas there and one pod more — not for the larger nodes it can never land on.
#[test]
fn lowered_requests_fit_the_nodes_the_workload_may_use_not_the_largest_in_the_cluster() {
    let path = aegis_testkit::repo_root().join("examples/incidents/pending-requests-too-large.yaml");
    let mut list: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pinned = serde_json::json!({"nodeSelector": {"pool": "small"}, "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "small", "effect": "NoSchedule"}]});
    for item in list["items"].as_array_mut().unwrap() {
        let spec = match item["kind"].as_str() {
            Some("Pod") => item.pointer_mut("/spec"),
            Some("Deployment" | "ReplicaSet") => item.pointer_mut("/spec/template/spec"),
            _ => None,
        };
        if let Some(spec) = spec.and_then(Value::as_object_mut) {
            spec.extend(pinned.as_object().unwrap().clone());
        }
    }
    list["items"].as_array_mut().unwrap().push(serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "small-1", "labels": {"pool": "small"}},
        "spec": {"taints": [{"key": "dedicated", "value": "small", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}, "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}
    }));
    let found = analyze(&Snapshot::from_text(&serde_json::to_string(&list).unwrap()).unwrap());
    let i = found.iter().find(|i| i.category == Category::Unschedulable).unwrap_or_else(|| panic!("{found:#?}"));
    match &i.fix.action {
        // 4Gi over (2 replicas on the one node + 1) = 1366Mi; on the real node it would have been 8002Mi.
        FixAction::SetResources { requests, .. } => assert_eq!(requests.get("memory").map(String::as_str), Some("1366Mi")),
        other => panic!("{other:?}"),
    }
}

/// What a real kubelet (1.35) reports for most of a crash loop's back-off: the exited run as
/// `state.terminated` (kubectl: "Error"), not `waiting: CrashLoopBackOff`. Same incident, same fix.
#[test]
fn a_crash_loop_seen_between_two_runs_is_still_a_crash_loop() {
    let path = aegis_testkit::repo_root().join("examples/incidents/crashloop-missing-env.yaml");
    let mut list: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut rewritten = 0;
    for item in list["items"].as_array_mut().unwrap() {
        for cs in item.pointer_mut("/status/containerStatuses").and_then(Value::as_array_mut).into_iter().flatten() {
            if cs.pointer("/state/waiting/reason").and_then(Value::as_str) == Some("CrashLoopBackOff") {
                cs["state"] = serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-11-26T10:00:00Z", "finishedAt": "2026-11-26T10:00:00Z"}});
                rewritten += 1;
            }
        }
    }
    assert!(rewritten > 0, "the capture has crash-looping containers");
    let found = analyze(&Snapshot::from_text(&serde_json::to_string(&list).unwrap()).unwrap());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].category, Category::CrashLoopBackOff);
    assert_rollback_to_revision_1(&found[0]);
}

/// The kernel's OOM kill as containerd 1.6 on cgroup v1 sometimes reports it: `Error`, exit 137, under
/// a memory limit, with no probe or eviction to explain the SIGKILL. Same incident, same fix.
#[test]
fn an_oom_kill_the_runtime_reports_as_error_137_is_still_an_oom() {
    let path = aegis_testkit::repo_root().join("examples/incidents/oom-small-limit.yaml");
    let text = std::fs::read_to_string(path).unwrap().replace("reason: OOMKilled", "reason: Error");
    let found = analyze(&Snapshot::from_text(&text).unwrap());
    let i = found.iter().find(|i| i.category == Category::OOMKilled).unwrap_or_else(|| panic!("{found:#?}"));
    assert!(i.evidence.iter().any(|e| e.contains("reported as Error by the runtime")), "{:?}", i.evidence);
    assert!(matches!(&i.fix.action, FixAction::SetResources { limits, .. } if limits.get("memory").map(String::as_str) == Some("256Mi")));
}

/// A process that exits by itself (exit 1: its setting is gone) fails its liveness probe too while it is
/// down; the kubelet records that, but did not kill it. Still a crash loop, fixed by the rollback.
#[test]
fn a_crash_loop_whose_pods_also_fail_their_liveness_probe_is_still_a_crash_loop() {
    let path = aegis_testkit::repo_root().join("examples/incidents/crashloop-missing-env.yaml");
    let mut list: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    let (ns, pods): (String, Vec<String>) = {
        let crashing: Vec<&Value> = items
            .iter()
            .filter(|i| {
                i["kind"] == "Pod" && i.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_i64).unwrap_or(0) > 0
            })
            .collect();
        (
            crashing[0]["metadata"]["namespace"].as_str().unwrap().to_owned(),
            crashing.iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect(),
        )
    };
    for (n, pod) in pods.iter().enumerate() {
        items.push(serde_json::json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": format!("liveness-{n}"), "namespace": ns},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns},
            "reason": "Unhealthy", "type": "Warning",
            "message": "Liveness probe failed: Get \"http://10.88.0.9:8080/healthz\": dial tcp 10.88.0.9:8080: connect: connection refused"
        }));
    }
    let found = analyze(&Snapshot::from_text(&serde_json::to_string(&list).unwrap()).unwrap());
    assert_eq!(found.len(), 1, "{:#?}", found.iter().map(|i| i.category).collect::<Vec<_>>());
    assert_eq!(found[0].category, Category::CrashLoopBackOff);
    assert_rollback_to_revision_1(&found[0]);
}

#[test]
fn a_rollout_that_moved_the_liveness_probe_is_fixed_by_rolling_back() {
    let i = only("liveness-wrong-path.yaml");
    assert_eq!(i.category, Category::LivenessProbeFailure);
    assert!(i.root_cause.contains("/healthz") && i.root_cause.contains("/health"));
    assert_rollback_to_revision_1(&i);
}

#[test]
fn a_readiness_probe_on_an_unserved_path_is_fixed_by_rolling_back() {
    let i = only("readiness-never-ready.yaml");
    assert_eq!(i.category, Category::ReadinessProbeFailure);
    assert_rollback_to_revision_1(&i);
    assert!(
        i.verification_plan.smoke_paths.contains(&"/ready".to_owned()),
        "smoke-check the healthy revision's paths: {:?}",
        i.verification_plan.smoke_paths
    );
}

#[test]
fn a_service_selector_typo_is_fixed_with_the_workloads_labels() {
    let i = only("service-selector-typo.yaml");
    assert_eq!(i.category, Category::ServiceSelectorMismatch);
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("Service", "web"));
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.fix.action, FixAction::SetServiceSelector { selector: [("app".to_owned(), "web".to_owned())].into() });
    assert_eq!(i.fix.patch.as_ref().unwrap().body, serde_json::json!({"spec": {"selector": {"app": "web"}}}));
    assert_eq!(i.fix.inverse.as_ref().unwrap().body, serde_json::json!({"spec": {"selector": {"app": "wbe"}}}));
}

#[test]
fn a_healthy_namespace_has_no_incidents() {
    assert!(incidents("healthy.yaml").is_empty());
}

#[test]
fn every_incident_serialises_with_the_documented_fields() {
    for file in ["crashloop-missing-env.yaml", "oom-small-limit.yaml", "service-selector-typo.yaml"] {
        for i in incidents(file) {
            let v = serde_json::to_value(&i).unwrap();
            for key in ["resource", "category", "severity", "root_cause", "evidence", "confidence", "fix", "verification_plan"] {
                assert!(v.get(key).is_some(), "{file}: {key}");
            }
            for key in ["kind", "namespace", "name"] {
                assert!(v["resource"].get(key).is_some());
            }
            assert!(v["fix"].get("type").is_some() && v["fix"].get("patch").is_some());
        }
    }
}

#[test]
fn a_missing_configmap_key_is_a_create_container_config_error_with_guidance() {
    let i = only("create-container-config-error.yaml");
    assert_eq!(i.category, Category::CreateContainerConfigError);
    assert_eq!(i.severity, Severity::Critical);
    assert!(i.evidence.iter().any(|e| e.contains("configmap \"api-config\" not found")));
    assert!(matches!(i.fix.action, FixAction::Manual { .. }) && i.fix.patch.is_none());
}

#[test]
fn evicted_pods_are_one_incident_for_their_deployment() {
    let i = only("evicted.yaml");
    assert_eq!(i.category, Category::Evicted);
    assert_eq!(i.pods.len(), 3, "the three evicted pods, not the two running ones");
    assert_eq!(i.severity, Severity::Medium, "both replicas are available again");
}

#[test]
fn a_missing_secret_volume_is_a_failed_mount() {
    let i = only("failed-mount.yaml");
    assert_eq!(i.category, Category::FailedMount);
    assert!(i.evidence.iter().any(|e| e.contains("secret \"api-tls\" not found")));
}

#[test]
fn a_rollout_past_its_deadline_without_other_signals_is_rolled_back() {
    let i = only("rollout-stuck.yaml");
    assert_eq!(i.category, Category::RolloutStuck);
    assert!(i.pods.is_empty(), "a Deployment condition names no pod");
    assert_rollback_to_revision_1(&i);
    assert!(i.evidence.iter().any(|e| e.contains("demo-api:v2 -> 127.0.0.1:5000/demo-api:v3")));
}

#[test]
fn a_job_past_its_backoff_limit_is_job_failed_with_the_exit_codes() {
    let i = only("job-failed.yaml");
    assert_eq!(i.category, Category::JobFailed);
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("Job", "db-migrate"));
    assert_eq!(i.pods.len(), 3);
    assert!(i.evidence.iter().filter(|e| e.contains("exit code 2")).count() == 3);
}

#[test]
fn every_category_has_a_scenario_in_the_corpus() {
    let dir = aegis_testkit::repo_root().join("examples/incidents");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") && path.file_stem().is_some_and(|s| s != "expected") {
            seen.extend(incidents(path.file_name().unwrap().to_str().unwrap()).into_iter().map(|i| i.category));
        }
    }
    let all = [
        Category::CrashLoopBackOff,
        Category::OOMKilled,
        Category::ImagePullBackOff,
        Category::CreateContainerConfigError,
        Category::Unschedulable,
        Category::LivenessProbeFailure,
        Category::ReadinessProbeFailure,
        Category::ServiceSelectorMismatch,
        Category::RolloutStuck,
        Category::FailedMount,
        Category::Evicted,
        Category::JobFailed,
    ];
    for c in all {
        assert!(seen.contains(&c), "no scenario for {c}");
    }
}

/// Numbers at the edge of their type in a snapshot (a replica count near i32::MAX) give incidents, not
/// an overflow panic.
#[test]
fn a_replica_count_near_the_limit_of_its_type_is_analyzed_without_overflow() {
    let path = aegis_testkit::repo_root().join("examples/incidents/crashloop-missing-env.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut list: Value = serde_saphyr::from_str(&text).unwrap();
    for item in list["items"].as_array_mut().unwrap() {
        if item["kind"] == "Deployment" {
            item["spec"]["replicas"] = 2_000_000_000.into();
            item["status"]["availableReplicas"] = 1.into();
        }
    }
    let found = analyze(&Snapshot::from_text(&serde_json::to_string(&list).unwrap()).unwrap());
    assert!(found.iter().any(|i| i.category == Category::CrashLoopBackOff), "{found:#?}");
    assert!(found.iter().all(|i| i.severity == Severity::High));
}

/// A plan asks for a human where the inference behind its fix is weaker; the operator never approves
/// such a plan by policy.
#[test]
fn plans_ask_for_a_human_where_the_inference_is_weaker() {
    let strong = only("crashloop-missing-env.yaml");
    assert!(strong.confidence >= aegis_analysis::analyze::APPROVAL_CONFIDENCE);
    assert!(!strong.verification_plan.approval_required, "a rollback that restores a removed env var: {:?}", strong.verification_plan);
    let weaker = only("pending-requests-too-large.yaml");
    assert!(weaker.confidence < aegis_analysis::analyze::APPROVAL_CONFIDENCE);
    assert!(weaker.verification_plan.approval_required, "requests lowered to fit: a human decides");
}

/// Put a sidecar before `api` in every pod template and pod of `file`; in pods it is `sidecar_state`.
fn with_sidecar_first(file: &str, sidecar_state: Value) -> Vec<Incident> {
    let path = aegis_testkit::repo_root().join("examples/incidents").join(file);
    let mut list: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sidecar = serde_json::json!({"name": "proxy", "image": "envoy:v1", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}}});
    for item in list["items"].as_array_mut().unwrap() {
        let spec = match item["kind"].as_str() {
            Some("Pod") => item.pointer_mut("/spec"),
            Some("Deployment" | "ReplicaSet") => item.pointer_mut("/spec/template/spec"),
            _ => None,
        };
        if let Some(containers) = spec.and_then(|s| s["containers"].as_array_mut()) {
            containers.insert(0, sidecar.clone());
        }
        if item["kind"] == "Pod"
            && let Some(statuses) = item.pointer_mut("/status/containerStatuses").and_then(Value::as_array_mut)
        {
            let mut s = serde_json::json!({"name": "proxy", "image": "envoy:v1", "imageID": "", "ready": false, "restartCount": 0});
            s["state"] = sidecar_state.clone();
            statuses.insert(0, s);
        }
    }
    analyze(&Snapshot::from_text(&serde_json::to_string(&list).unwrap()).unwrap())
}

#[test]
fn an_oom_in_the_second_container_raises_that_containers_limit_not_the_sidecars() {
    let found = with_sidecar_first("oom-small-limit.yaml", serde_json::json!({"running": {"startedAt": "2026-11-26T08:03:57Z"}}));
    let oom = found.iter().find(|i| i.category == Category::OOMKilled).unwrap_or_else(|| panic!("{found:#?}"));
    match &oom.fix.action {
        FixAction::SetResources { container, limits, .. } => {
            assert_eq!(container, "api", "the container that was OOM-killed");
            assert_eq!(limits.get("memory").map(String::as_str), Some("256Mi"), "double api's 128Mi, not the sidecar's 64Mi");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crash_loop_behind_a_sidecar_that_is_still_starting_is_seen() {
    let waiting = serde_json::json!({"waiting": {"reason": "ContainerCreating"}});
    let found = with_sidecar_first("crashloop-missing-env.yaml", waiting);
    assert!(found.iter().any(|i| i.category == Category::CrashLoopBackOff), "{found:#?}");
}

#[test]
fn requests_too_large_in_the_second_container_are_lowered_there() {
    let found = with_sidecar_first("pending-requests-too-large.yaml", serde_json::json!({"waiting": {"reason": "ContainerCreating"}}));
    let i = found.iter().find(|i| i.category == Category::Unschedulable).unwrap_or_else(|| panic!("{found:#?}"));
    match &i.fix.action {
        FixAction::SetResources { container, requests, .. } => {
            assert_eq!(container, "api");
            assert!(requests.contains_key("memory"), "{requests:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// Once a rollout has completed, the revision it replaced has no ready pods; when the new revision
/// breaks later, the rollback to the one before still follows from the revision history — with less
/// confidence, so a human approves it.
#[test]
fn a_revision_that_breaks_after_its_rollout_completed_is_rolled_back_with_a_human_approving() {
    let path = aegis_testkit::repo_root().join("examples/incidents/crashloop-missing-env.yaml");
    let mut list: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for item in list["items"].as_array_mut().unwrap() {
        if item["kind"] == "ReplicaSet" && item.pointer("/metadata/annotations/deployment.kubernetes.io~1revision") == Some(&"1".into()) {
            item["spec"]["replicas"] = 0.into();
            item["status"] = serde_json::json!({"replicas": 0, "observedGeneration": 2});
        }
    }
    let found = analyze(&Snapshot::from_text(&serde_json::to_string(&list).unwrap()).unwrap());
    let i = found.iter().find(|i| i.category == Category::CrashLoopBackOff).unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(i.fix.action, FixAction::Rollback { to_revision: 1 });
    assert!(i.evidence.iter().any(|e| e.contains("presumed healthy")), "{:?}", i.evidence);
    assert!(i.verification_plan.approval_required, "weaker evidence: a human approves");
}

fn list(items: Value) -> Vec<Incident> {
    let doc = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    analyze(&Snapshot::from_text(&doc.to_string()).unwrap())
}

/// A Job whose pods fail while it still has retries left is backing off: reported before it gives up,
/// with the exit codes and the retries left.
#[test]
fn a_job_with_failed_pods_and_retries_left_is_reported_while_it_backs_off() {
    let job = serde_json::json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop", "uid": "j1"},
        "spec": {"backoffLimit": 6, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "migrate:v1"}]}}},
        "status": {"failed": 2, "active": 1, "startTime": "2026-11-30T01:00:00Z"}});
    let pod = |name: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "migrate", "uid": "j1", "controller": true}]},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "migrate:v1"}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "migrate", "image": "migrate:v1", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}})
    };
    let found = list(serde_json::json!([job.clone(), pod("migrate-a"), pod("migrate-b")]));
    let i = found.iter().find(|i| i.category == Category::JobRetrying).unwrap_or_else(|| panic!("{found:#?}"));
    assert!(i.evidence.iter().any(|e| e.contains("5 retries left")), "{:?}", i.evidence);
    assert!(i.evidence.iter().any(|e| e.contains("exit code 3")), "{:?}", i.evidence);
    // The healthy look-alike: a Job that succeeded after a failure raises nothing.
    let mut done = job;
    done["status"] = serde_json::json!({"failed": 1, "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
    assert!(list(serde_json::json!([done])).is_empty());
}

/// Pods held by scheduling gates for longer than a controller takes to lift them are reported, with
/// the gates; a pod gated a moment ago is not.
#[test]
fn pods_held_by_scheduling_gates_too_long_are_reported() {
    let pod = |name: &str, since: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": since},
        "spec": {"schedulingGates": [{"name": "example.com/quota"}], "containers": [{"name": "app", "image": "app:v1"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates", "lastTransitionTime": since}]}})
    };
    let event = serde_json::json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": "other", "namespace": "shop"}, "reason": "Pulled", "message": "x",
        "lastTimestamp": "2026-11-30T02:00:00Z"});
    let found = list(serde_json::json!([pod("held", "2026-11-30T01:30:00Z"), event.clone()]));
    let i = found.iter().find(|i| i.category == Category::SchedulingGated).unwrap_or_else(|| panic!("{found:#?}"));
    assert!(i.evidence.iter().any(|e| e.contains("example.com/quota")), "{:?}", i.evidence);
    assert!(list(serde_json::json!([pod("fresh", "2026-11-30T01:59:50Z"), event])).is_empty(), "gated ten seconds ago");
}

/// Seen on the real node: a namespace where nothing happens after its pods were gated has no later
/// event or condition, so the snapshot alone cannot tell that minutes went by. `aegis snapshot`
/// records when it was taken (the List's `aegis.io/captured-at`), and that is the analysis' "now".
#[test]
fn a_snapshot_taken_long_after_the_pods_were_gated_reports_them_by_its_capture_time() {
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "held", "namespace": "shop", "creationTimestamp": "2026-11-30T01:30:00Z"},
        "spec": {"schedulingGates": [{"name": "example.com/quota"}], "containers": [{"name": "app", "image": "app:v1"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
            "lastTransitionTime": "2026-11-30T01:30:00Z"}]}});
    let taken = |at: &str| {
        let text = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"annotations": {"aegis.io/captured-at": at}}, "items": [pod.clone()]});
        let snapshot = Snapshot::from_text(&text.to_string()).unwrap();
        assert_eq!(
            Snapshot::from_text(&snapshot.to_list().to_string()).unwrap().captured_at,
            snapshot.captured_at,
            "written and read back"
        );
        analyze(&snapshot)
    };
    assert!(taken("2026-11-30T01:31:00Z").is_empty(), "a minute after the gate");
    let found = taken("2026-11-30T01:36:00Z");
    assert!(found.iter().any(|i| i.category == Category::SchedulingGated), "{found:#?}");
}

/// A StatefulSet's history lives in its ControllerRevisions (`aegis snapshot` captures them): the
/// revision before the rollout is what the rollback returns to, without the controller's `$patch`.
#[test]
fn a_statefulset_rolled_out_without_its_setting_is_rolled_back_to_its_previous_controller_revision() {
    let i = only("statefulset-crashloop.yaml");
    assert_eq!(i.category, Category::CrashLoopBackOff);
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("StatefulSet", "db"));
    assert_eq!(i.fix.action, FixAction::Rollback { to_revision: 1 });
    assert!(i.evidence.iter().any(|e| e.contains("env DATABASE_URL removed")), "{:#?}", i.evidence);
    let template = &i.fix.patch.as_ref().expect("a rollback renders a patch").body[0]["value"];
    assert!(template.get("$patch").is_none(), "the controller's merge directive is not a field");
    let env = template["spec"]["containers"][0]["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "DATABASE_URL"));
}

/// A DaemonSet's rollout is read the same way, and rolled back the same way.
#[test]
fn a_daemonset_rolled_out_without_its_setting_is_rolled_back_to_its_previous_controller_revision() {
    let i = only("daemonset-crashloop.yaml");
    assert_eq!(i.category, Category::CrashLoopBackOff);
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("DaemonSet", "agent"));
    assert!(i.evidence.iter().any(|e| e.contains("env DATABASE_URL removed")), "{:#?}", i.evidence);
    assert_eq!(i.fix.action, FixAction::Rollback { to_revision: 1 });
    let template = &i.fix.patch.as_ref().expect("a rollback renders a patch").body[0]["value"];
    assert!(template["spec"]["containers"][0]["env"].as_array().unwrap().iter().any(|e| e["name"] == "DATABASE_URL"));
}

/// A failing run of a CronJob: the Job cannot be patched, but the CronJob's jobTemplate can, and every
/// run fails until it is. The guidance says so, and names the CronJob.
#[test]
fn a_failing_cronjob_run_points_at_the_cronjobs_template() {
    let i = only("cronjob-run-failing.yaml");
    assert_eq!(i.category, Category::JobRetrying);
    assert!(i.evidence.iter().any(|e| e == "Job report-manual is a run of CronJob report"), "{:#?}", i.evidence);
    match &i.fix.action {
        FixAction::Manual { guidance } => assert!(guidance.contains("kubectl edit cronjob") && guidance.contains("suspend"), "{guidance}"),
        other => panic!("{other:?}"),
    }
}

/// Captured on the real node: the API server refused the new ReplicaSet's pods for a capability the
/// namespace's Pod Security level forbids. The only change of the rollout is the container's
/// securityContext, and it is named.
#[test]
fn a_rollout_refused_by_pod_security_is_rolled_back_naming_the_security_context_it_changed() {
    let i = only("failed-create-pod-security.yaml");
    assert_eq!(i.category, Category::FailedCreate);
    assert_rollback_to_revision_1(&i);
    assert!(i.evidence.iter().any(|e| e.contains("violates PodSecurity \"baseline:latest\"")), "{:?}", i.evidence);
    assert!(i.root_cause.contains("securityContext") && i.root_cause.contains("NET_ADMIN"), "{}", i.root_cause);
}

/// Captured on the real node: the Job controller deleted the pod when activeDeadlineSeconds passed.
#[test]
fn a_job_past_its_deadline_is_job_failed_though_its_pods_are_gone() {
    let i = only("job-deadline-exceeded.yaml");
    assert_eq!(i.category, Category::JobFailed);
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("Job", "migrate"));
    assert!(i.pods.is_empty());
    assert!(i.evidence.iter().any(|e| e.contains("DeadlineExceeded")), "{:?}", i.evidence);
}

/// Captured on the real node: a StorageClass without a provisioner whose one volume is too small.
#[test]
fn a_claim_no_volume_fits_under_a_class_without_a_provisioner_says_so() {
    let i = only("volume-claim-larger-than-every-volume.yaml");
    assert_eq!(i.category, Category::VolumeClaimPending);
    assert!(i.root_cause.contains("no provisioner") && i.root_cause.contains("PersistentVolume"), "{}", i.root_cause);
}

/// A namespace's LimitRange gives containers without a memory limit a default one: the pods carry it,
/// their template does not. An OOM under it is the limit's, not the node's: the analysis raises the
/// limit the pods ran under (in the template, where it then overrides the default), and the inverse
/// takes it out of the template again.
#[test]
fn an_oom_under_a_limit_the_namespaces_limit_range_set_raises_that_limit_in_the_template() {
    let path = aegis_testkit::repo_root().join("examples/incidents/oom-small-limit.yaml");
    let mut doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for item in doc["items"].as_array_mut().unwrap() {
        if matches!(item["kind"].as_str(), Some("Deployment" | "ReplicaSet")) {
            for c in item.pointer_mut("/spec/template/spec/containers").and_then(Value::as_array_mut).unwrap() {
                c["resources"].as_object_mut().unwrap().remove("limits");
            }
        }
    }
    let found = list(doc["items"].take());
    let i = found.iter().find(|i| i.category == Category::OOMKilled).unwrap_or_else(|| panic!("{found:#?}"));
    match &i.fix.action {
        FixAction::SetResources { limits, .. } => assert_eq!(limits.get("memory").map(String::as_str), Some("256Mi")),
        other => panic!("{other:?}: {}", i.root_cause),
    }
    assert!(i.evidence.iter().any(|e| e.contains("LimitRange")), "{:?}", i.evidence);
    let inverse = &i.fix.inverse.as_ref().unwrap().body;
    let limit = inverse.pointer("/spec/template/spec/containers/0/resources/limits/memory");
    assert!(limit.is_none_or(Value::is_null), "the inverse leaves the template without a limit again: {inverse}");
}

/// Captured on the real API server: a ValidatingAdmissionPolicy bound to the namespace refuses the
/// pods of a new Deployment. No rollout to undo: the guidance names the policy that refuses them.
#[test]
fn pods_a_validating_admission_policy_refuses_are_failed_create_naming_the_policy() {
    let i = only("failed-create-admission-policy.yaml");
    assert_eq!(i.category, Category::FailedCreate);
    let FixAction::Manual { guidance } = &i.fix.action else { panic!("{:?}", i.fix.action) };
    assert!(guidance.contains("ValidatingAdmissionPolicy") && guidance.contains("no-net-admin"), "{guidance}");
}
