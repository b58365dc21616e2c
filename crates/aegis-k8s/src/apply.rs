//! The one way AEGIS changes a workload: a fix's patch, then what the workload's kind needs for it to
//! take effect (an `OrderedReady` StatefulSet's forced rollback). Shadows call [`apply_fix`];
//! production calls [`apply_guarded`], which layers its guards on the same patch and the same
//! follow-up:
//! - the object's current `resourceVersion` as a precondition (a `test` operation in a JSON patch;
//!   `metadata.resourceVersion` in a strategic merge patch, which the API server checks), so a
//!   concurrent change makes it fail with 409 instead of merging blindly;
//! - a marker annotation naming the incident and the evidence digest, so that after a crash between
//!   sending the patch and recording it, the resumed step sees the marker and does not send it again.
//!
//! The same mechanism undoes a fix with its inverse patch (another marker).

use aegis_model::{Patch, PatchType, ResourceRef};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PatchParams};
use serde_json::{Value, json};

use crate::{K8sError, apply_patch, dynamic_api, selector_query};

/// What applying a fix did beyond the patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Pods deleted so that a StatefulSet's rolling update can proceed (forced rollback).
    pub deleted_pods: Vec<String>,
}

/// Apply a fix: its patch, then what the workload kind needs for the patch to take effect.
///
/// A StatefulSet with `OrderedReady` pod management updates pods one at a time and waits for each to be
/// Ready — a pod broken by the old template never is, so the rollout would hang forever. Kubernetes'
/// documented remedy ("forced rollback") is to delete the pods the StatefulSet already ran with the bad
/// template; this does that, for pods not Ready and not on the update revision, once the controller has
/// observed the patched generation.
pub async fn apply_fix(client: &Client, fix: &aegis_model::Fix, dry_run: bool, field_manager: &str) -> Result<Applied, K8sError> {
    let Some(patch) = &fix.patch else { return Ok(Applied::default()) };
    apply_patch(client, patch, dry_run, field_manager).await?;
    if dry_run {
        return Ok(Applied::default());
    }
    follow_up(client, &patch.target).await
}

/// What a workload kind needs after its patch for the patch to take effect: for an `OrderedReady`
/// StatefulSet, the forced rollback. Shadows and production both run it, so a fix proven in a shadow
/// does not hang in production.
async fn follow_up(client: &Client, target: &ResourceRef) -> Result<Applied, K8sError> {
    if target.kind != "StatefulSet" {
        return Ok(Applied::default());
    }
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), &target.namespace);
    let name = &target.name;
    let get = || async { api.get(name).await.map_err(|source| K8sError::Patch { target: target.to_string(), source }) };
    let mut sts = get().await?;
    if sts.spec.as_ref().and_then(|s| s.pod_management_policy.as_deref()) == Some("Parallel") {
        return Ok(Applied::default());
    }
    for _ in 0..50 {
        let observed = sts.status.as_ref().and_then(|s| s.observed_generation);
        if observed.is_some() && observed == sts.metadata.generation {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sts = get().await?;
    }
    let Some(selector) = sts.spec.as_ref().and_then(|s| selector_query(&s.selector)) else {
        return Err(K8sError::Invalid(format!("{target}: an empty selector; not deleting pods by it")));
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let list = pods.list(&ListParams::default().labels(&selector)).await.map_err(|source| K8sError::List {
        kind: "Pod",
        scope: target.namespace.clone(),
        source,
    })?;
    let mut applied = Applied::default();
    for pod in stale_unready_pods(&sts, &list.items) {
        pods.delete(&pod, &Default::default()).await.map_err(|source| K8sError::Patch { target: format!("Pod/{pod}"), source })?;
        applied.deleted_pods.push(pod);
    }
    Ok(applied)
}

/// The pods a StatefulSet's forced rollback deletes: its own (the controller owner reference is this
/// StatefulSet: a selector alone may match another workload's pods), not Ready, and not on the update
/// revision.
pub fn stale_unready_pods(sts: &StatefulSet, pods: &[Pod]) -> Vec<String> {
    let Some(update_revision) = sts.status.as_ref().and_then(|s| s.update_revision.as_deref()) else { return Vec::new() };
    let owned = |p: &Pod| {
        p.metadata.owner_references.iter().flatten().any(|o| {
            o.controller == Some(true)
                && o.kind == "StatefulSet"
                && Some(&o.name) == sts.metadata.name.as_ref()
                && sts.metadata.uid.as_ref().is_none_or(|uid| &o.uid == uid)
        })
    };
    pods.iter()
        .filter(|p| owned(p))
        .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")).map(String::as_str) != Some(update_revision))
        .filter(|p| {
            !p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

/// What a guarded patch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    /// Sent now; the object's generation after it.
    Applied { generation: i64 },
    /// The marker was already there: sent before (a resumed step). Nothing sent.
    AlreadyApplied { generation: i64 },
    /// The precondition object is not at the expected generation: someone else changed it.
    Changed { expected: i64, found: i64 },
}

/// The workload generation a patch requires.
#[derive(Debug, Clone)]
pub struct Precondition {
    pub workload: ResourceRef,
    pub generation: i64,
}

async fn get(client: &Client, target: &ResourceRef) -> Result<DynamicObject, K8sError> {
    dynamic_api(client, target)?.get(&target.name).await.map_err(|source| K8sError::Patch { target: target.to_string(), source })
}

/// Production's path: the same patch and follow-up as [`apply_fix`], sent once — server-side dry run,
/// then for real, with the precondition and the marker `annotation: value`. Retries a few times on a
/// 409 from an unrelated write (a controller updating the object), re-checking the precondition each
/// time. The follow-up (a StatefulSet's forced rollback) runs after a patch sent now or before.
pub async fn apply_guarded(
    client: &Client,
    patch: &Patch,
    precondition: Option<&Precondition>,
    annotation: &str,
    value: &str,
    field_manager: &str,
) -> Result<(Guarded, Applied), K8sError> {
    let guarded = send_guarded(client, patch, precondition, annotation, value, field_manager).await?;
    let applied = match guarded {
        Guarded::Applied { .. } | Guarded::AlreadyApplied { .. } => follow_up(client, &patch.target).await?,
        Guarded::Changed { .. } => Applied::default(),
    };
    Ok((guarded, applied))
}

async fn send_guarded(
    client: &Client,
    patch: &Patch,
    precondition: Option<&Precondition>,
    annotation: &str,
    value: &str,
    field_manager: &str,
) -> Result<Guarded, K8sError> {
    const ATTEMPTS: u32 = 5;
    let api = dynamic_api(client, &patch.target)?;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Back off between conflicts: a controller writing the object settles in a moment.
            tokio::time::sleep(CONFLICT_BACKOFF * 2u32.pow(attempt - 1)).await;
        }
        let current = get(client, &patch.target).await?;
        let generation = current.metadata.generation.unwrap_or(0);
        if current.metadata.annotations.as_ref().and_then(|a| a.get(annotation)).map(String::as_str) == Some(value) {
            return Ok(Guarded::AlreadyApplied { generation });
        }
        if let Some(pre) = precondition {
            let found =
                if pre.workload == patch.target { generation } else { get(client, &pre.workload).await?.metadata.generation.unwrap_or(0) };
            if found != pre.generation {
                return Ok(Guarded::Changed { expected: pre.generation, found });
            }
        }
        let rv = current.metadata.resource_version.clone().unwrap_or_default();
        let body = guarded_body(patch, &rv, current.metadata.annotations.is_some(), annotation, value)?;
        let mut pp = PatchParams { field_manager: Some(field_manager.to_owned()), ..Default::default() };
        // Every write has its own deadline: a hung API server is an error to retry, never a hang.
        let send = |pp: PatchParams| {
            let (api, body, name) = (api.clone(), body.clone(), patch.target.name.clone());
            async move {
                tokio::time::timeout(WRITE_TIMEOUT, api.patch(&name, &pp, &body))
                    .await
                    .map_err(|_| K8sError::Invalid(format!("{name}: no answer to the patch within {}s", WRITE_TIMEOUT.as_secs())))
            }
        };
        match send(pp.clone().dry_run()).await? {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => continue,
            Err(source) => return Err(K8sError::Patch { target: format!("{} (server-side dry run)", patch.target), source }),
        }
        pp.dry_run = false;
        match send(pp).await? {
            Ok(obj) => return Ok(Guarded::Applied { generation: obj.metadata.generation.unwrap_or(0) }),
            Err(e) if is_conflict(&e) => continue,
            Err(source) => return Err(K8sError::Patch { target: patch.target.to_string(), source }),
        }
    }
    Err(K8sError::Contended { target: patch.target.to_string(), attempts: ATTEMPTS })
}

/// The deadline of one write to the API server.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
/// The first pause after a conflict; it doubles with each further one.
const CONFLICT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// A write that lost a race: 409 (a resourceVersion precondition in a merge patch), or 422 from a
/// JSON patch whose `test` of the resourceVersion failed. Both mean "read again and retry".
fn is_conflict(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(e) if e.code == 409 => true,
        kube::Error::Api(e) if e.code == 422 => e.message.contains("test") && e.message.contains("resourceVersion"),
        _ => false,
    }
}

/// The patch body with the precondition and the marker added.
fn guarded_body(
    patch: &Patch,
    resource_version: &str,
    has_annotations: bool,
    annotation: &str,
    value: &str,
) -> Result<kube::api::Patch<Value>, K8sError> {
    match patch.patch_type {
        PatchType::StrategicMerge => {
            let mut body = patch.body.clone();
            let Some(obj) = body.as_object_mut() else {
                return Err(K8sError::Invalid("a strategic merge patch must be an object".into()));
            };
            let meta = obj.entry("metadata").or_insert_with(|| json!({}));
            meta["resourceVersion"] = resource_version.into();
            meta["annotations"][annotation] = value.into();
            Ok(kube::api::Patch::Strategic(body))
        }
        PatchType::Json => {
            let ops = patch.body.as_array().ok_or_else(|| K8sError::Invalid("a JSON patch must be an array".into()))?;
            let mut guarded = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})];
            guarded.extend(ops.iter().cloned());
            if has_annotations {
                let escaped = annotation.replace('~', "~0").replace('/', "~1");
                guarded.push(json!({"op": "add", "path": format!("/metadata/annotations/{escaped}"), "value": value}));
            } else {
                guarded.push(json!({"op": "add", "path": "/metadata/annotations", "value": {annotation: value}}));
            }
            let p: json_patch::Patch =
                serde_json::from_value(Value::Array(guarded)).map_err(|e| K8sError::Invalid(format!("JSON patch: {e}")))?;
            Ok(kube::api::Patch::Json(p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(patch_type: PatchType, body: Value) -> Patch {
        Patch { patch_type, target: ResourceRef { kind: "Deployment".into(), namespace: "shop".into(), name: "api".into() }, body }
    }

    #[test]
    fn a_strategic_merge_patch_carries_the_resource_version_and_the_marker() {
        let p = patch(PatchType::StrategicMerge, json!({"spec": {"replicas": 3}}));
        let kube::api::Patch::Strategic(body) = guarded_body(&p, "42", true, "aegis.io/applied-fix", "shop/inc@sha256:ab").unwrap() else {
            panic!()
        };
        assert_eq!(
            body,
            json!({"spec": {"replicas": 3}, "metadata": {"resourceVersion": "42", "annotations": {"aegis.io/applied-fix": "shop/inc@sha256:ab"}}})
        );
    }

    #[test]
    fn a_json_patch_tests_the_resource_version_first_and_marks_last() {
        let p = patch(PatchType::Json, json!([{"op": "replace", "path": "/spec/template", "value": {}}]));
        let kube::api::Patch::Json(ops) = guarded_body(&p, "42", true, "aegis.io/applied-fix", "v").unwrap() else { panic!() };
        let ops = serde_json::to_value(ops).unwrap();
        assert_eq!(ops[0], json!({"op": "test", "path": "/metadata/resourceVersion", "value": "42"}));
        assert_eq!(ops[1]["path"], "/spec/template");
        assert_eq!(ops[2], json!({"op": "add", "path": "/metadata/annotations/aegis.io~1applied-fix", "value": "v"}));
        let kube::api::Patch::Json(ops) = guarded_body(&p, "42", false, "aegis.io/applied-fix", "v").unwrap() else { panic!() };
        assert_eq!(
            serde_json::to_value(ops).unwrap()[2],
            json!({"op": "add", "path": "/metadata/annotations", "value": {"aegis.io/applied-fix": "v"}})
        );
    }

    #[test]
    fn a_failed_resource_version_test_is_a_conflict_to_retry() {
        let api = |code: u16, message: &str| kube::Error::Api(Box::new(kube::core::Status::failure(message, "").with_code(code)));
        assert!(is_conflict(&api(409, "the object has been modified")));
        assert!(is_conflict(&api(
            422,
            r#"the server rejected our request due to an error in our request: testing value /metadata/resourceVersion failed: test failed"#
        )));
        assert!(!is_conflict(&api(422, "spec.replicas: Invalid value: -1")), "a real validation error is not retried");
        assert!(!is_conflict(&api(403, "forbidden")));
    }

    #[test]
    fn a_patch_that_is_not_the_shape_of_its_type_is_refused() {
        assert!(guarded_body(&patch(PatchType::Json, json!({"spec": {}})), "1", true, "a", "b").is_err());
        assert!(guarded_body(&patch(PatchType::StrategicMerge, json!([])), "1", true, "a", "b").is_err());
    }

    #[test]
    fn a_forced_rollback_deletes_only_the_stateful_sets_own_stale_unready_pods() {
        let sts: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "db", "uid": "u1"},
            "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}, "serviceName": "db",
                     "template": {"metadata": {"labels": {"app": "db"}}}},
            "status": {"replicas": 2, "updateRevision": "db-new"}
        }))
        .unwrap();
        let pod = |name: &str, owner: &str, revision: &str, ready: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app": "db", "controller-revision-hash": revision},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": owner, "uid": "u1", "controller": true}]},
                "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .unwrap()
        };
        let pods = [
            pod("db-0", "db", "db-old", false),
            pod("db-1", "db", "db-new", false),
            pod("db-2", "db", "db-old", true),
            pod("other-0", "other", "db-old", false),
        ];
        assert_eq!(stale_unready_pods(&sts, &pods), ["db-0"]);
    }
}
