//! A fix rendered to the exact patch it applies and to its inverse, against the current object.
//!
//! Strategic-merge patches for targeted changes (containers are merged by name, env entries by name;
//! `null` deletes a map key and `$patch: delete` a list entry, so the inverse removes what the fix
//! added). A rollback is a JSON patch replacing `spec.template`, as `kubectl rollout undo` does,
//! because a merge would keep fields the bad revision added.

use aegis_model::{FixAction, Patch, PatchType, ProbeKind, ResourceRef};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service};
use serde_json::{Map, Value, json};

use crate::workload::Workload;

/// The pod-template annotation a `restart` fix sets (as `kubectl rollout restart` sets
/// `kubectl.kubernetes.io/restartedAt`).
pub const RESTART_ANNOTATION: &str = "aegis.io/restarted-at-generation";

fn container_patch(container: &str, fields: Value) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), container.into());
    if let Value::Object(m) = fields {
        c.extend(m);
    }
    json!({"spec": {"template": {"spec": {"containers": [Value::Object(c)]}}}})
}

fn strategic(target: &ResourceRef, body: Value) -> Patch {
    Patch { patch_type: PatchType::StrategicMerge, target: target.clone(), body }
}

fn current_container<'a>(t: Option<&'a PodTemplateSpec>, name: &str) -> Option<&'a k8s_openapi::api::core::v1::Container> {
    t?.spec.as_ref()?.containers.iter().find(|c| c.name == name)
}

/// A pod template as it goes back into a Deployment: without the ReplicaSet's `pod-template-hash`.
fn clean_template(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(labels) = v.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    v
}

/// Render a workload fix. `None` for actions that do not patch the workload (`manual`).
pub fn render_workload(action: &FixAction, w: &Workload<'_>) -> (Option<Patch>, Option<Patch>) {
    let target = &w.resource;
    let template = w.template();
    match action {
        FixAction::Rollback { to_revision } => {
            let Some(rev) = w.revisions.iter().find(|r| r.number == *to_revision).and_then(|r| r.template()) else {
                return (None, None);
            };
            let to = clean_template(rev);
            let from = template.map(clean_template).unwrap_or(Value::Null);
            let p = |v: Value| Patch {
                patch_type: PatchType::Json,
                target: target.clone(),
                body: json!([{"op": "replace", "path": "/spec/template", "value": v}]),
            };
            (Some(p(to)), Some(p(from)))
        }
        FixAction::SetImage { container, image } => {
            let old = current_container(template, container).and_then(|c| c.image.clone());
            (
                Some(strategic(target, container_patch(container, json!({"image": image})))),
                Some(strategic(target, container_patch(container, json!({"image": old})))),
            )
        }
        FixAction::SetResources { container, requests, limits } => {
            let c = current_container(template, container);
            let old = |which: &str, key: &str| -> Value {
                let r = c.and_then(|c| c.resources.as_ref());
                let m = if which == "requests" { r.and_then(|r| r.requests.as_ref()) } else { r.and_then(|r| r.limits.as_ref()) };
                m.and_then(|m| m.get(key)).map(|q| Value::String(q.0.clone())).unwrap_or(Value::Null)
            };
            let mut fwd = Map::new();
            let mut inv = Map::new();
            for (which, values) in [("requests", requests), ("limits", limits)] {
                if values.is_empty() {
                    continue;
                }
                fwd.insert(which.into(), json!(values));
                inv.insert(which.into(), Value::Object(values.keys().map(|k| (k.clone(), old(which, k))).collect()));
            }
            (
                Some(strategic(target, container_patch(container, json!({"resources": fwd})))),
                Some(strategic(target, container_patch(container, json!({"resources": inv})))),
            )
        }
        FixAction::SetEnv { container, name, value } => {
            let old = current_container(template, container).and_then(|c| c.env.iter().flatten().find(|e| &e.name == name).cloned());
            let inverse_entry = match old {
                Some(e) => serde_json::to_value(e).unwrap_or(Value::Null),
                None => json!({"name": name, "$patch": "delete"}),
            };
            (
                Some(strategic(target, container_patch(container, json!({"env": [{"name": name, "value": value}]})))),
                Some(strategic(target, container_patch(container, json!({"env": [inverse_entry]})))),
            )
        }
        FixAction::EnvFrom { container, config_map, secret } => {
            let source = match (config_map, secret) {
                (Some(cm), _) => json!({"configMapRef": {"name": cm}}),
                (None, Some(s)) => json!({"secretRef": {"name": s}}),
                (None, None) => return (None, None),
            };
            let old = current_container(template, container)
                .map(|c| serde_json::to_value(&c.env_from).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            let mut list = old.as_array().cloned().unwrap_or_default();
            list.push(source);
            // envFrom has no merge key: the patch carries the whole list, and so does the inverse.
            (
                Some(strategic(target, container_patch(container, json!({"envFrom": list})))),
                Some(strategic(target, container_patch(container, json!({"envFrom": old})))),
            )
        }
        FixAction::AdjustProbe { container, probe, path } => {
            let field = match probe {
                ProbeKind::Liveness => "livenessProbe",
                ProbeKind::Readiness => "readinessProbe",
            };
            let c = current_container(template, container);
            let old = c
                .and_then(|c| if *probe == ProbeKind::Liveness { c.liveness_probe.as_ref() } else { c.readiness_probe.as_ref() })
                .and_then(|p| p.http_get.as_ref())
                .and_then(|h| h.path.clone());
            (
                Some(strategic(target, container_patch(container, json!({field: {"httpGet": {"path": path}}})))),
                Some(strategic(target, container_patch(container, json!({field: {"httpGet": {"path": old}}})))),
            )
        }
        // A DaemonSet has no replicas to scale: it runs where its nodes are.
        FixAction::Scale { .. } if matches!(w.controller, Some(crate::workload::Controller::DaemonSet(_))) => (None, None),
        FixAction::Scale { replicas } => {
            // A StatefulSet's replicas too: an inverse of `null` would reset it to one.
            let old = w.spec_replicas();
            (Some(strategic(target, json!({"spec": {"replicas": replicas}}))), Some(strategic(target, json!({"spec": {"replicas": old}}))))
        }
        FixAction::Restart => {
            // A new value each time the workload changes: the generation the restart was decided on.
            // Deterministic (the analysis is pure), the same in the shadow and in production, and a
            // second restart after the first is a change again (a fixed string would change nothing).
            let old = template.and_then(|t| t.metadata.as_ref()?.annotations.as_ref()?.get(RESTART_ANNOTATION).cloned());
            let generation = w.generation().unwrap_or(0);
            let value = format!("generation-{generation}");
            (
                Some(strategic(target, json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: value}}}}}))),
                Some(strategic(target, json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: old}}}}}))),
            )
        }
        FixAction::SetServiceSelector { .. } | FixAction::Manual { .. } => (None, None),
    }
}

/// Render a Service selector fix: keys only in the old selector are removed (`null`), and back.
pub fn render_service_selector(service: &Service, selector: &std::collections::BTreeMap<String, String>) -> (Patch, Patch) {
    let target = ResourceRef {
        kind: "Service".into(),
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        name: service.metadata.name.clone().unwrap_or_default(),
    };
    let old = service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let mut fwd: Map<String, Value> = selector.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    for k in old.keys().filter(|k| !selector.contains_key(*k)) {
        fwd.insert(k.clone(), Value::Null);
    }
    let mut inv: Map<String, Value> = old.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    for k in selector.keys().filter(|k| !old.contains_key(*k)) {
        inv.insert(k.clone(), Value::Null);
    }
    (strategic(&target, json!({"spec": {"selector": fwd}})), strategic(&target, json!({"spec": {"selector": inv}})))
}

/// Bytes in a Kubernetes quantity (`128Mi`, `1Gi`, `500M`, `1e9`), for memory arithmetic.
pub fn quantity_bytes(q: &str) -> Option<f64> {
    let q = q.trim();
    let units = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
    ];
    for (suffix, mult) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    q.parse::<f64>().ok()
}

/// Millicores in a CPU quantity (`500m`, `2`, `0.5`).
pub fn cpu_millis(q: &str) -> Option<f64> {
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q.parse::<f64>().ok().map(|c| c * 1000.0),
    }
}

/// A CPU or memory amount in the unit the analysis compares with a node's: CPU in millicores, memory in
/// bytes; `None` for other resources (the analysis reasons about these two) or an unreadable quantity.
pub fn schedulable_amount(resource: &str, q: &str) -> Option<f64> {
    match resource {
        "cpu" => cpu_millis(q),
        "memory" => quantity_bytes(q),
        _ => None,
    }
}

/// Bytes as a quantity in whole MiB (`256Mi`), or GiB when exact.
pub fn mib_quantity(bytes: f64) -> String {
    let mib = (bytes / 1024f64.powi(2)).ceil() as u64;
    if mib >= 1024 && mib.is_multiple_of(1024) { format!("{}Gi", mib / 1024) } else { format!("{mib}Mi") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload_at(snapshot: &crate::Snapshot, generation: i64) -> crate::Snapshot {
        let mut s = snapshot.clone();
        for d in &mut s.deployments {
            d.metadata.generation = Some(generation);
        }
        for st in &mut s.stateful_sets {
            st.metadata.generation = Some(generation);
        }
        s
    }

    fn example(file: &str) -> crate::Snapshot {
        let path = format!("{}/../../examples/incidents/{file}", env!("CARGO_MANIFEST_DIR"));
        crate::Snapshot::from_text(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_second_restart_is_a_change_again() {
        let base = example("crashloop-missing-env.yaml");
        let value = |g: i64| {
            let s = workload_at(&base, g);
            let w = crate::workload::workloads(&s)
                .into_iter()
                .find(|w| matches!(w.controller, Some(crate::workload::Controller::Deployment(_))))
                .unwrap();
            let (patch, _) = render_workload(&FixAction::Restart, &w);
            patch.unwrap().body.pointer(&format!("/spec/template/metadata/annotations/{}", RESTART_ANNOTATION.replace('/', "~1"))).cloned()
        };
        assert_ne!(value(3), value(4));
        assert!(!serde_json::to_string(&value(3)).unwrap().contains("${"), "no placeholder left: {:?}", value(3));
    }

    #[test]
    fn the_inverse_of_scaling_a_stateful_set_restores_its_replicas() {
        let base = example("crashloop-missing-env.yaml");
        let mut list = serde_json::to_value(base.to_list()).unwrap();
        list["items"].as_array_mut().unwrap().push(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop", "generation": 1},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}
        }));
        let s = crate::Snapshot::from_text(&list.to_string()).unwrap();
        let w = crate::workload::workloads(&s)
            .into_iter()
            .find(|w| matches!(w.controller, Some(crate::workload::Controller::StatefulSet(_))))
            .unwrap();
        let (_, inverse) = render_workload(&FixAction::Scale { replicas: 5 }, &w);
        assert_eq!(inverse.unwrap().body, json!({"spec": {"replicas": 3}}));
    }

    #[test]
    fn quantities_parse_and_format_like_kubernetes() {
        assert_eq!(quantity_bytes("128Mi"), Some(128.0 * 1048576.0));
        assert_eq!(quantity_bytes("1Gi"), Some(1073741824.0));
        assert_eq!(quantity_bytes("500M"), Some(5e8));
        assert_eq!(mib_quantity(256.0 * 1048576.0), "256Mi");
        assert_eq!(mib_quantity(8.0 * 1073741824.0), "8Gi");
        assert_eq!(quantity_bytes("lots"), None);
    }
}
