//! Production patches that cannot be applied twice nor onto a workload that changed.
//!
//! A guarded patch is the typed fix's patch plus two things in the same request:
//! - the object's current `resourceVersion` as a precondition (a `test` operation in a JSON patch;
//!   `metadata.resourceVersion` in a strategic merge patch, which the API server checks), so a
//!   concurrent change makes it fail with 409 instead of merging blindly;
//! - a marker annotation naming the incident and the evidence digest, so that after a crash between
//!   sending the patch and recording it, the resumed step sees the marker and does not send it again.
//!
//! The same mechanism undoes a fix with its inverse patch (another marker).

use aegis_model::{Patch, PatchType, ResourceRef};
use kube::Client;
use kube::api::{Api, DynamicObject, PatchParams};
use serde_json::{Value, json};

/// The annotation that marks a production object as patched by an incident's fix.
pub const APPLIED_ANNOTATION: &str = "aegis.io/applied-fix";
/// The annotation that marks a production object as rolled back by an incident.
pub const ROLLED_BACK_ANNOTATION: &str = "aegis.io/rolled-back-fix";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{target}: {source}")]
    Api { target: String, source: kube::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("{target} kept changing under the patch ({attempts} conflicts)")]
    Contended { target: String, attempts: u32 },
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

fn api_for(client: &Client, target: &ResourceRef) -> Result<Api<DynamicObject>, ApplyError> {
    aegis_k8s::dynamic_api(client, target).map_err(|e| ApplyError::Invalid(e.to_string()))
}

async fn get(client: &Client, target: &ResourceRef) -> Result<DynamicObject, ApplyError> {
    api_for(client, target)?.get(&target.name).await.map_err(|source| ApplyError::Api { target: target.to_string(), source })
}

/// Send `patch` once: server-side dry run, then for real, with the precondition and the marker
/// `annotation: value`. Retries a few times on a 409 from an unrelated write (a controller updating
/// the object), re-checking the precondition each time.
pub async fn apply_guarded(
    client: &Client,
    patch: &Patch,
    precondition: Option<&Precondition>,
    annotation: &str,
    value: &str,
    field_manager: &str,
) -> Result<Guarded, ApplyError> {
    const ATTEMPTS: u32 = 5;
    let api = api_for(client, &patch.target)?;
    for _ in 0..ATTEMPTS {
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
        let send = |pp: PatchParams| {
            let (api, body, name) = (api.clone(), body.clone(), patch.target.name.clone());
            async move { api.patch(&name, &pp, &body).await }
        };
        match send(pp.clone().dry_run()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(source) => return Err(ApplyError::Api { target: format!("{} (server-side dry run)", patch.target), source }),
        }
        pp.dry_run = false;
        match send(pp).await {
            Ok(obj) => return Ok(Guarded::Applied { generation: obj.metadata.generation.unwrap_or(0) }),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(source) => return Err(ApplyError::Api { target: patch.target.to_string(), source }),
        }
    }
    Err(ApplyError::Contended { target: patch.target.to_string(), attempts: ATTEMPTS })
}

/// The patch body with the precondition and the marker added.
fn guarded_body(
    patch: &Patch,
    resource_version: &str,
    has_annotations: bool,
    annotation: &str,
    value: &str,
) -> Result<kube::api::Patch<Value>, ApplyError> {
    match patch.patch_type {
        PatchType::StrategicMerge => {
            let mut body = patch.body.clone();
            let Some(obj) = body.as_object_mut() else {
                return Err(ApplyError::Invalid("a strategic merge patch must be an object".into()));
            };
            let meta = obj.entry("metadata").or_insert_with(|| json!({}));
            meta["resourceVersion"] = resource_version.into();
            meta["annotations"][annotation] = value.into();
            Ok(kube::api::Patch::Strategic(body))
        }
        PatchType::Json => {
            let ops = patch.body.as_array().ok_or_else(|| ApplyError::Invalid("a JSON patch must be an array".into()))?;
            let mut guarded = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})];
            guarded.extend(ops.iter().cloned());
            if has_annotations {
                let escaped = annotation.replace('~', "~0").replace('/', "~1");
                guarded.push(json!({"op": "add", "path": format!("/metadata/annotations/{escaped}"), "value": value}));
            } else {
                guarded.push(json!({"op": "add", "path": "/metadata/annotations", "value": {annotation: value}}));
            }
            let p: json_patch::Patch =
                serde_json::from_value(Value::Array(guarded)).map_err(|e| ApplyError::Invalid(format!("JSON patch: {e}")))?;
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
        let kube::api::Patch::Strategic(body) = guarded_body(&p, "42", true, APPLIED_ANNOTATION, "shop/inc@sha256:ab").unwrap() else {
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
        let kube::api::Patch::Json(ops) = guarded_body(&p, "42", true, APPLIED_ANNOTATION, "v").unwrap() else { panic!() };
        let ops = serde_json::to_value(ops).unwrap();
        assert_eq!(ops[0], json!({"op": "test", "path": "/metadata/resourceVersion", "value": "42"}));
        assert_eq!(ops[1]["path"], "/spec/template");
        assert_eq!(ops[2], json!({"op": "add", "path": "/metadata/annotations/aegis.io~1applied-fix", "value": "v"}));
        let kube::api::Patch::Json(ops) = guarded_body(&p, "42", false, APPLIED_ANNOTATION, "v").unwrap() else { panic!() };
        assert_eq!(
            serde_json::to_value(ops).unwrap()[2],
            json!({"op": "add", "path": "/metadata/annotations", "value": {"aegis.io/applied-fix": "v"}})
        );
    }

    #[test]
    fn a_patch_that_is_not_the_shape_of_its_type_is_refused() {
        assert!(guarded_body(&patch(PatchType::Json, json!({"spec": {}})), "1", true, "a", "b").is_err());
        assert!(guarded_body(&patch(PatchType::StrategicMerge, json!([])), "1", true, "a", "b").is_err());
    }
}
