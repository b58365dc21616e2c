//! What changed between two revisions of a pod template: the evidence behind "the rollout broke it".
//! Env values are never shown (they may be secrets): only names.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Probe};

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
        }
    }
}

fn containers(t: &PodTemplateSpec) -> Vec<&Container> {
    t.spec.as_ref().map(|s| s.containers.iter().collect()).unwrap_or_default()
}

/// A probe as a human reads it: `GET :8080/healthz`, `exec`, `tcp :5432`.
pub fn probe_text(p: Option<&Probe>) -> Option<String> {
    let p = p?;
    if let Some(h) = &p.http_get {
        let port = match &h.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
        };
        return Some(format!("GET :{port}{}", h.path.as_deref().unwrap_or("/")));
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

/// Differences from `old` to `new`, container by container (matched by name).
pub fn diff(old: &PodTemplateSpec, new: &PodTemplateSpec) -> Vec<Change> {
    let mut out = Vec::new();
    let olds: BTreeMap<&str, &Container> = containers(old).into_iter().map(|c| (c.name.as_str(), c)).collect();
    for n in containers(new) {
        let Some(o) = olds.get(n.name.as_str()) else { continue };
        let name = n.name.clone();
        if o.image != n.image {
            out.push(Change::Image {
                container: name.clone(),
                from: o.image.clone().unwrap_or_default(),
                to: n.image.clone().unwrap_or_default(),
            });
        }
        let env = |c: &Container| -> BTreeMap<String, String> {
            c.env
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), serde_json::to_string(&(&e.value, &e.value_from)).unwrap_or_default()))
                .collect()
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
    }
    out
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
}
