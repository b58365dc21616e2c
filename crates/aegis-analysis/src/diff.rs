//! What changed between two revisions of a pod template: the evidence behind "the rollout broke it".
//! Env values are never shown (they may be secrets): only names.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One difference, for humans and for the fix rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Image {
        container: String,
        from: String,
        to: String,
    },
    EnvRemoved {
        container: String,
        name: String,
    },
    EnvAdded {
        container: String,
        name: String,
    },
    EnvChanged {
        container: String,
        name: String,
    },
    Resource {
        container: String,
        field: String,
        from: Option<String>,
        to: Option<String>,
    },
    Probe {
        container: String,
        probe: &'static str,
        from: Option<String>,
        to: Option<String>,
    },
    /// An `envFrom` source (`configMap NAME`, `secret NAME`) the container now reads, or no longer.
    EnvFrom {
        container: String,
        source: String,
        added: bool,
    },
    /// A container (or init container) the pod now runs, or no longer.
    Container {
        name: String,
        init: bool,
        added: bool,
    },
    /// A volume added, removed or pointed at another source (`configMap NAME`, `secret NAME`, `pvc NAME`).
    Volume {
        name: String,
        from: Option<String>,
        to: Option<String>,
    },
    /// The ServiceAccount the pods run as (`None`: the namespace's default).
    ServiceAccount {
        from: Option<String>,
        to: Option<String>,
    },
    /// Where the pod may run: `nodeSelector`, `affinity`, `tolerations`, `schedulingGates`,
    /// `priorityClassName` or `runtimeClassName`.
    Placement {
        field: &'static str,
        from: Option<String>,
        to: Option<String>,
    },
    /// Any other field of a container (`container` set) or of the pod: `args`, `securityContext`,
    /// `hostNetwork`… Its values are shown only for fields that cannot hold a secret ([`SHOWN`]);
    /// `None` in both for the others.
    Setting {
        container: Option<String>,
        field: String,
        from: Option<String>,
        to: Option<String>,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
        match self {
            Change::Image { container, from, to } => write!(f, "container {container}: image {from} -> {to}"),
            Change::EnvRemoved { container, name } => write!(f, "container {container}: env {name} removed"),
            Change::EnvAdded { container, name } => write!(f, "container {container}: env {name} added"),
            Change::EnvChanged { container, name } => write!(f, "container {container}: env {name} changed"),
            Change::Resource { container, field, from, to } => write!(f, "container {container}: {field} {} -> {}", q(from), q(to)),
            Change::Probe { container, probe, from, to } => write!(f, "container {container}: {probe} {} -> {}", q(from), q(to)),
            Change::EnvFrom { container, source, added } => {
                write!(f, "container {container}: envFrom {source} {}", if *added { "added" } else { "removed" })
            }
            Change::Container { name, init, added } => {
                write!(f, "{} {name} {}", if *init { "init container" } else { "container" }, if *added { "added" } else { "removed" })
            }
            Change::Volume { name, from, to } => write!(f, "volume {name}: {} -> {}", q(from), q(to)),
            Change::Placement { field, from, to } => write!(f, "{field} {} -> {}", q(from), q(to)),
            Change::ServiceAccount { from, to } => write!(f, "serviceAccountName {} -> {}", q(from), q(to)),
            Change::Setting { container, field, from, to } => {
                if let Some(c) = container {
                    write!(f, "container {c}: ")?;
                }
                match SHOWN.contains(&field.as_str()) {
                    true => write!(f, "{field} {} -> {}", q(from), q(to)),
                    false => write!(f, "{field} changed"),
                }
            }
        }
    }
}

fn containers(t: &PodTemplateSpec) -> Vec<&Container> {
    t.spec.as_ref().map(|s| s.containers.iter().collect()).unwrap_or_default()
}

fn init_containers(t: &PodTemplateSpec) -> Vec<&Container> {
    t.spec.as_ref().and_then(|s| s.init_containers.as_ref()).map(|c| c.iter().collect()).unwrap_or_default()
}

/// Each volume's source as a human names it; the rest of its definition as compact JSON.
fn volumes(t: &PodTemplateSpec) -> BTreeMap<String, String> {
    let spec = t.spec.as_ref();
    spec.and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .map(|v| {
            let source = if let Some(c) = &v.config_map {
                format!("configMap {}", c.name)
            } else if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
                format!("secret {name}")
            } else if let Some(c) = &v.persistent_volume_claim {
                format!("pvc {}", c.claim_name)
            } else if v.empty_dir.is_some() {
                "emptyDir".to_owned()
            } else {
                let mut json = serde_json::to_value(v).unwrap_or_default();
                if let Some(o) = json.as_object_mut() {
                    o.remove("name");
                }
                json.to_string()
            };
            (v.name.clone(), source)
        })
        .collect()
}

/// The pod-level fields that decide where a pod may run, as compact JSON (unset or empty: `None`).
fn placement(t: &PodTemplateSpec) -> [(&'static str, Option<String>); 6] {
    let spec = t.spec.as_ref();
    [
        ("nodeSelector", compact(spec.and_then(|s| s.node_selector.as_ref()))),
        ("affinity", compact(spec.and_then(|s| s.affinity.as_ref()))),
        ("tolerations", compact(spec.and_then(|s| s.tolerations.as_ref()))),
        ("schedulingGates", compact(spec.and_then(|s| s.scheduling_gates.as_ref()))),
        ("priorityClassName", compact(spec.and_then(|s| s.priority_class_name.as_ref()))),
        ("runtimeClassName", compact(spec.and_then(|s| s.runtime_class_name.as_ref()))),
    ]
}

/// A field as compact JSON; `None` when unset, null or empty (`{}`, `[]`): an empty nodeSelector
/// places a pod no differently from none.
fn compact<T: serde::Serialize>(v: Option<T>) -> Option<String> {
    let v = serde_json::to_value(v?).ok()?;
    let empty = v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) || v.as_array().is_some_and(|a| a.is_empty());
    (!empty).then(|| v.to_string())
}

/// A port or a count that may be a number or a name (`8080`, `http`, `50%`), as written.
pub(crate) fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// A probe as a human reads it: `GET :8080/healthz`, `exec`, `tcp :5432`.
pub fn probe_text(p: Option<&Probe>) -> Option<String> {
    let p = p?;
    if let Some(h) = &p.http_get {
        return Some(format!("GET :{}{}", int_or_string(&h.port), h.path.as_deref().unwrap_or("/")));
    }
    if p.tcp_socket.is_some() {
        return Some("tcp".into());
    }
    if p.exec.is_some() {
        return Some("exec".into());
    }
    Some("probe".into())
}

fn quantities(c: &Container, which: &str) -> BTreeMap<String, String> {
    let r = c.resources.as_ref();
    let m = match which {
        "requests" => r.and_then(|r| r.requests.as_ref()),
        _ => r.and_then(|r| r.limits.as_ref()),
    };
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
}

/// Differences from `old` to `new`: containers and init containers (matched by name), volumes, and
/// where the pod may run.
pub fn diff(old: &PodTemplateSpec, new: &PodTemplateSpec) -> Vec<Change> {
    let mut out = Vec::new();
    for (init, olds, news) in [(false, containers(old), containers(new)), (true, init_containers(old), init_containers(new))] {
        let olds: BTreeMap<&str, &Container> = olds.into_iter().map(|c| (c.name.as_str(), c)).collect();
        let news: BTreeMap<&str, &Container> = news.into_iter().map(|c| (c.name.as_str(), c)).collect();
        for (name, n) in &news {
            match olds.get(name) {
                Some(o) => container_diff(o, n, &mut out),
                None => out.push(Change::Container { name: (*name).to_owned(), init, added: true }),
            }
        }
        out.extend(olds.keys().filter(|k| !news.contains_key(*k)).map(|k| Change::Container { name: (*k).to_owned(), init, added: false }));
    }
    let (ov, nv) = (volumes(old), volumes(new));
    let names: std::collections::BTreeSet<&String> = ov.keys().chain(nv.keys()).collect();
    for name in names {
        if ov.get(name) != nv.get(name) {
            out.push(Change::Volume { name: name.clone(), from: ov.get(name).cloned(), to: nv.get(name).cloned() });
        }
    }
    let account =
        |t: &PodTemplateSpec| t.spec.as_ref().and_then(|s| s.service_account_name.clone()).filter(|a| !a.is_empty() && a != "default");
    if account(old) != account(new) {
        out.push(Change::ServiceAccount { from: account(old), to: account(new) });
    }
    for ((field, from), (_, to)) in placement(old).into_iter().zip(placement(new)) {
        if from != to {
            out.push(Change::Placement { field, from, to });
        }
    }
    if let (Some(o), Some(n)) = (&old.spec, &new.spec) {
        for (field, from, to) in other_fields(o, n, POD_MODELLED) {
            out.push(Change::Setting { container: None, field, from, to });
        }
    }
    out
}

/// The container fields [`container_diff`] compares as changes of their own.
const CONTAINER_MODELLED: &[&str] = &["name", "image", "env", "resources", "envFrom", "livenessProbe", "readinessProbe"];

/// The pod fields [`diff`] compares as changes of their own (`serviceAccount` is the deprecated
/// spelling of `serviceAccountName`).
const POD_MODELLED: &[&str] = &[
    "containers",
    "initContainers",
    "volumes",
    "serviceAccountName",
    "serviceAccount",
    "nodeSelector",
    "affinity",
    "tolerations",
    "schedulingGates",
    "priorityClassName",
    "runtimeClassName",
];

/// Fields whose values a [`Change::Setting`] shows: they describe how the pod runs and cannot hold a
/// secret. Any other field (`args`, `command`, `lifecycle`, `startupProbe`, `hostAliases`…) is only
/// named, as env values are.
const SHOWN: &[&str] = &[
    "securityContext",
    "ports",
    "volumeMounts",
    "volumeDevices",
    "imagePullPolicy",
    "restartPolicy",
    "terminationMessagePolicy",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostUsers",
    "shareProcessNamespace",
    "dnsPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "preemptionPolicy",
    "topologySpreadConstraints",
    "readinessGates",
    "os",
];

/// The fields of two objects (a container, a pod spec) that differ, but for `modelled`, with their
/// values as compact JSON (unset, null or empty: `None`).
fn other_fields<T: serde::Serialize>(old: &T, new: &T, modelled: &[&str]) -> Vec<(String, Option<String>, Option<String>)> {
    let fields = |v: &T| -> BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(v) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().filter(|(k, _)| !modelled.contains(&k.as_str())).collect(),
            _ => BTreeMap::new(),
        }
    };
    let (o, n) = (fields(old), fields(new));
    let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (from, to) = (compact(o.get(k)), compact(n.get(k)));
            // A value that may hold a secret is compared, never kept.
            let shown = SHOWN.contains(&k.as_str());
            (from != to).then(|| (k.clone(), from.filter(|_| shown), to.filter(|_| shown)))
        })
        .collect()
}

/// Differences between two versions of one container.
fn container_diff(o: &Container, n: &Container, out: &mut Vec<Change>) {
    let name = n.name.clone();
    if o.image != n.image {
        out.push(Change::Image {
            container: name.clone(),
            from: o.image.clone().unwrap_or_default(),
            to: n.image.clone().unwrap_or_default(),
        });
    }
    let env = |c: &Container| -> BTreeMap<String, String> {
        c.env.iter().flatten().map(|e| (e.name.clone(), serde_json::to_string(&(&e.value, &e.value_from)).unwrap_or_default())).collect()
    };
    let (oe, ne) = (env(o), env(n));
    for k in oe.keys().filter(|k| !ne.contains_key(*k)) {
        out.push(Change::EnvRemoved { container: name.clone(), name: k.clone() });
    }
    for (k, v) in &ne {
        match oe.get(k) {
            None => out.push(Change::EnvAdded { container: name.clone(), name: k.clone() }),
            Some(ov) if ov != v => out.push(Change::EnvChanged { container: name.clone(), name: k.clone() }),
            _ => {}
        }
    }
    for which in ["requests", "limits"] {
        let (oq, nq) = (quantities(o, which), quantities(n, which));
        let keys: std::collections::BTreeSet<&String> = oq.keys().chain(nq.keys()).collect();
        for k in keys {
            if oq.get(k) != nq.get(k) {
                out.push(Change::Resource {
                    container: name.clone(),
                    field: format!("{which}.{k}"),
                    from: oq.get(k).cloned(),
                    to: nq.get(k).cloned(),
                });
            }
        }
    }
    let env_from = |c: &Container| -> std::collections::BTreeSet<String> {
        c.env_from
            .iter()
            .flatten()
            .filter_map(|e| {
                e.config_map_ref
                    .as_ref()
                    .map(|r| format!("configMap {}", r.name))
                    .or_else(|| e.secret_ref.as_ref().map(|r| format!("secret {}", r.name)))
            })
            .collect()
    };
    let (of, nf) = (env_from(o), env_from(n));
    for source in nf.difference(&of) {
        out.push(Change::EnvFrom { container: name.clone(), source: source.clone(), added: true });
    }
    for source in of.difference(&nf) {
        out.push(Change::EnvFrom { container: name.clone(), source: source.clone(), added: false });
    }
    for (probe, a, b) in
        [("livenessProbe", &o.liveness_probe, &n.liveness_probe), ("readinessProbe", &o.readiness_probe, &n.readiness_probe)]
    {
        let (from, to) = (probe_text(a.as_ref()), probe_text(b.as_ref()));
        if from != to {
            out.push(Change::Probe { container: name.clone(), probe, from, to });
        }
    }
    for (field, from, to) in other_fields(o, n, CONTAINER_MODELLED) {
        out.push(Change::Setting { container: Some(name.clone()), field, from, to });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(env_from: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({"spec": {"containers": [{"name": "api", "image": "x:1", "envFrom": env_from}]}})).unwrap()
    }

    #[test]
    fn a_configmap_a_rollout_starts_reading_from_is_a_change() {
        let old = template(serde_json::json!([{"secretRef": {"name": "db"}}]));
        let new = template(serde_json::json!([{"secretRef": {"name": "db"}}, {"configMapRef": {"name": "api-settings"}}]));
        let changes = diff(&old, &new);
        assert_eq!(changes, [Change::EnvFrom { container: "api".into(), source: "configMap api-settings".into(), added: true }]);
        assert_eq!(changes[0].to_string(), "container api: envFrom configMap api-settings added");
        assert_eq!(diff(&new, &old)[0], Change::EnvFrom { container: "api".into(), source: "configMap api-settings".into(), added: false });
    }

    fn spec(spec: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({"spec": spec})).unwrap()
    }

    #[test]
    fn an_init_container_a_rollout_adds_is_a_change_and_init_containers_are_compared_too() {
        let old = spec(serde_json::json!({"containers": [{"name": "api", "image": "x:1"}]}));
        let new = spec(
            serde_json::json!({"containers": [{"name": "api", "image": "x:1"}], "initContainers": [{"name": "migrate", "image": "x:1"}]}),
        );
        let changes = diff(&old, &new);
        assert_eq!(changes, [Change::Container { name: "migrate".into(), init: true, added: true }]);
        assert_eq!(changes[0].to_string(), "init container migrate added");
        let newer = spec(
            serde_json::json!({"containers": [{"name": "api", "image": "x:1"}], "initContainers": [{"name": "migrate", "image": "x:2"}]}),
        );
        assert_eq!(diff(&new, &newer)[0].to_string(), "container migrate: image x:1 -> x:2");
    }

    /// What the diff does not model field by field still counts: a rollout that only changes a
    /// container's args or its securityContext (a capability the namespace's Pod Security level
    /// forbids) broke the pods as surely as a new image, and a rollback undoes it. Args are named, not
    /// shown: like env values, they may carry secrets.
    #[test]
    fn a_rollout_that_changes_only_args_a_security_context_or_a_pod_field_is_a_change() {
        let old = spec(serde_json::json!({"containers": [{"name": "api", "image": "x:1", "args": ["serve"]}]}));
        let new = spec(serde_json::json!({
            "containers": [{"name": "api", "image": "x:1", "args": ["serve", "--port=80"], "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}],
            "hostNetwork": true
        }));
        let changes: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert!(
            diff(&old, &new)
                .iter()
                .all(|c| !matches!(c, Change::Setting { field, from, to, .. } if field == "args" && (from.is_some() || to.is_some()))),
            "args' values are not kept"
        );
        assert_eq!(
            changes,
            [
                "container api: args changed",
                r#"container api: securityContext unset -> {"capabilities":{"add":["NET_ADMIN"]}}"#,
                "hostNetwork unset -> true",
            ]
        );
    }

    #[test]
    fn a_field_modelled_on_its_own_is_not_reported_twice_and_a_restart_is_no_change() {
        let old = spec(serde_json::json!({"containers": [{"name": "api", "image": "x:1"}]}));
        let new = spec(serde_json::json!({"containers": [{"name": "api", "image": "x:2"}], "nodeSelector": {"disk": "ssd"}}));
        let changes: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(changes, ["container api: image x:1 -> x:2", r#"nodeSelector unset -> {"disk":"ssd"}"#]);
        let mut restarted = old.clone();
        restarted.metadata = Some(
            serde_json::from_value(serde_json::json!({"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-01T10:00:00Z"}}))
                .unwrap(),
        );
        assert_eq!(diff(&old, &restarted), [], "`kubectl rollout restart` changes no setting");
    }

    #[test]
    fn a_volume_a_rollout_mounts_is_a_change_named_by_its_source() {
        let old = spec(serde_json::json!({"containers": [{"name": "api"}]}));
        let new = spec(
            serde_json::json!({"containers": [{"name": "api"}], "volumes": [{"name": "settings", "configMap": {"name": "api-settings"}}]}),
        );
        let changes = diff(&old, &new);
        assert_eq!(changes, [Change::Volume { name: "settings".into(), from: None, to: Some("configMap api-settings".into()) }]);
        assert_eq!(changes[0].to_string(), "volume settings: unset -> configMap api-settings");
    }

    #[test]
    fn a_node_selector_a_rollout_adds_is_a_placement_change() {
        let old = spec(serde_json::json!({"containers": [{"name": "api"}], "nodeSelector": {"pool": "a"}}));
        let new = spec(serde_json::json!({"containers": [{"name": "api"}], "nodeSelector": {"pool": "a", "disktype": "ssd"}}));
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].to_string(), r#"nodeSelector {"pool":"a"} -> {"disktype":"ssd","pool":"a"}"#);
        assert!(diff(&old, &old).is_empty());
    }
}
