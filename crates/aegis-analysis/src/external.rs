//! Fixes proposed from outside AEGIS's rules by a language model: a suggestion, never a decision.
//!
//! A model's fix is typed like the rules' ([`FixAction`]), but a type is not a reason to trust it. Before
//! it is rendered it must stay within what the workload itself has been:
//! - an image only of a repository the container already runs (another tag or digest of it), or one the
//!   operator allows;
//! - an env value only one the workload's revision history had for that name (no new names: no
//!   `LD_PRELOAD`, no `DATABASE_URL` pointed at another host);
//! - ConfigMaps and Secrets only those the revision history references;
//! - replicas, quantities, label keys and probe paths within sane bounds and syntax (no `$patch` keys);
//!
//! and its verification plan is derived from the fix itself, with a human's approval always required.

use std::collections::BTreeSet;

use aegis_model::{Fix, FixAction, FixOrigin, ResourceRef, VerificationPlan};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::render::quantity_bytes;
use crate::snapshot::Snapshot;
use crate::workload::{Workload, template_references, workloads};

/// The most replicas a model may ask for: twice the current desired count, and never fewer than this.
const MIN_REPLICA_CEILING: i64 = 10;

/// Vet, render and plan a model's fix for `resource`. `allowed_repositories`: image repositories the
/// operator allows besides the ones the container runs (`registry/path/name`, no tag).
pub fn propose_model_fix(
    snapshot: &Snapshot,
    resource: &ResourceRef,
    action: &FixAction,
    model: &str,
    allowed_repositories: &[String],
) -> Result<(Fix, VerificationPlan), String> {
    // What any outside fix must pass first (the container, revision or Service exists), then the
    // stricter rules for a model's.
    let mut fix = crate::render_fix(snapshot, resource, action)?;
    vet(snapshot, resource, action, allowed_repositories)?;
    fix.origin = FixOrigin::Model { model: model.to_owned() };
    fix.summary = format!("{} proposed by the model {model} for {resource}: a suggestion, to be proven and approved", action.kind());
    let mut plan = match action {
        FixAction::Manual { .. } => VerificationPlan {
            duration_seconds: 0,
            health_criteria: Vec::new(),
            security_checks: Vec::new(),
            smoke_paths: Vec::new(),
            approval_required: true,
            workload: None,
        },
        _ => crate::plan_for(snapshot, resource, action)?,
    };
    plan.approval_required = true;
    Ok((fix, plan))
}

/// Why a model's fix may not be rendered, if it may not.
pub fn vet(snapshot: &Snapshot, resource: &ResourceRef, action: &FixAction, allowed_repositories: &[String]) -> Result<(), String> {
    if let FixAction::SetServiceSelector { selector } = action {
        for (k, v) in selector {
            if !is_label_key(k) || !is_label_value(v) {
                return Err(format!("{k:?}={v:?} is not a valid label selector entry"));
            }
        }
        return Ok(());
    }
    let all = workloads(snapshot);
    let Some(w) = all.iter().find(|w| &w.resource == resource) else {
        // A Service incident with a non-selector fix: render_fix refuses it with its own reason.
        return Ok(());
    };
    let history = templates(w);
    match action {
        FixAction::SetImage { container, image } => {
            if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{image:?} is not an image reference"));
            }
            let known: BTreeSet<String> =
                history.iter().flat_map(|t| containers(t, container)).filter_map(|c| c.image.as_deref()).map(repository).collect();
            let wanted = repository(image);
            if !known.contains(&wanted) && !allowed_repositories.iter().any(|r| r.trim_end_matches('/') == wanted) {
                return Err(format!(
                    "a model may change an image's tag or digest, not its repository: {wanted} is not {} (allow it in the policy to permit it)",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        FixAction::SetEnv { container, name, value } => {
            let had: Vec<Option<&str>> = history
                .iter()
                .flat_map(|t| containers(t, container))
                .flat_map(|c| c.env.iter().flatten())
                .filter(|e| &e.name == name)
                .map(|e| e.value.as_deref())
                .collect();
            if had.is_empty() {
                return Err(format!("a model may not add env {name}: no revision of {resource} had it"));
            }
            if !had.contains(&Some(value.as_str())) {
                return Err(format!("a model may only restore a value env {name} had in {resource}'s revision history, not a new one"));
            }
        }
        FixAction::EnvFrom { config_map, secret, .. } => {
            let (cms, secrets) = history.iter().map(|t| template_references(t)).fold((BTreeSet::new(), BTreeSet::new()), |mut acc, r| {
                acc.0.extend(r.0);
                acc.1.extend(r.1);
                acc
            });
            if let Some(cm) = config_map.as_ref().filter(|cm| !cms.contains(*cm)) {
                return Err(format!("a model may not reference ConfigMap {cm}: no revision of {resource} did"));
            }
            if let Some(s) = secret.as_ref().filter(|s| !secrets.contains(*s)) {
                return Err(format!("a model may not reference Secret {s}: no revision of {resource} did"));
            }
        }
        FixAction::Scale { replicas } => {
            let ceiling = (2 * i64::from(w.desired_replicas())).max(MIN_REPLICA_CEILING);
            if *replicas < 1 || i64::from(*replicas) > ceiling {
                return Err(format!("a model may scale {resource} to 1..={ceiling} replicas, not {replicas}"));
            }
        }
        FixAction::SetResources { requests, limits, .. } => {
            for (key, q) in requests.iter().chain(limits) {
                if !is_resource_name(key) {
                    return Err(format!("{key:?} is not a resource name"));
                }
                // CPU in millicores, everything else in bytes (or units), as the node's allocatable.
                let parse = if key == "cpu" { crate::render::cpu_millis } else { quantity_bytes };
                let value = parse(q).filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| format!("{key}: {q:?} is not a quantity"))?;
                if matches!(key.as_str(), "cpu" | "memory")
                    && let Some(node) = crate::analyze::largest_node(snapshot, key, None).filter(|n| value > *n)
                {
                    return Err(format!("{key} {q} is more than the largest node can offer ({node})"));
                }
            }
        }
        FixAction::AdjustProbe { path, .. } => {
            if !path.starts_with('/') || path.len() > 1024 || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{path:?} is not an HTTP path"));
            }
        }
        FixAction::Rollback { .. } | FixAction::Restart | FixAction::Manual { .. } | FixAction::SetServiceSelector { .. } => {}
    }
    Ok(())
}

/// Every pod template the workload is known to have had: its revisions and the current one.
fn templates<'a>(w: &'a Workload<'a>) -> Vec<&'a PodTemplateSpec> {
    w.revisions.iter().filter_map(|r| r.template()).chain(w.template()).collect()
}

fn containers<'a>(t: &'a PodTemplateSpec, name: &'a str) -> impl Iterator<Item = &'a k8s_openapi::api::core::v1::Container> {
    t.spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())).filter(move |c| c.name == name)
}

/// An image reference without its tag and digest: `registry/path/name`.
pub fn repository(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once('/') {
        Some((path, last)) => format!("{path}/{}", last.split(':').next().unwrap_or(last)),
        None => no_digest.split(':').next().unwrap_or(no_digest).to_owned(),
    }
}

fn is_dns_label_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `[prefix/]name` as Kubernetes label keys allow: a DNS subdomain prefix and a name of at most 63
/// characters, alphanumeric at both ends.
fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let edges = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
    };
    prefix.is_none_or(|p| p.len() <= 253 && is_dns_label_chars(p) && !p.contains('_') && edges(p))
        && name.len() <= 63
        && is_dns_label_chars(name)
        && edges(name)
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && is_dns_label_chars(v)
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && v.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()))
}

/// `cpu`, `memory`, `ephemeral-storage`, `hugepages-<size>`, or an extended resource `domain/name`.
fn is_resource_name(k: &str) -> bool {
    matches!(k, "cpu" | "memory" | "ephemeral-storage")
        || k.strip_prefix("hugepages-").is_some_and(|s| quantity_bytes(s).is_some())
        || (k.contains('/') && is_label_key(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn snapshot(file: &str) -> Snapshot {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/incidents/");
        Snapshot::from_text(&std::fs::read_to_string(format!("{path}{file}")).unwrap()).unwrap()
    }

    fn api(s: &Snapshot) -> ResourceRef {
        crate::analyze(s).into_iter().find(|i| i.resource.kind == "Deployment").unwrap().resource
    }

    fn image_of(s: &Snapshot) -> String {
        s.deployments[0].spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].image.clone().unwrap()
    }

    #[test]
    fn a_model_may_retag_an_image_but_not_move_it_to_another_repository() {
        let s = snapshot("crashloop-missing-env.yaml");
        let r = api(&s);
        let image = image_of(&s);
        let retag = FixAction::SetImage { container: "api".into(), image: format!("{}:v9", repository(&image)) };
        assert_eq!(vet(&s, &r, &retag, &[]), Ok(()));
        let elsewhere = FixAction::SetImage { container: "api".into(), image: "evil.example/api:v1".into() };
        let err = vet(&s, &r, &elsewhere, &[]).unwrap_err();
        assert!(err.contains("repository"), "{err}");
        assert_eq!(vet(&s, &r, &elsewhere, &["evil.example/api".into()]), Ok(()), "unless the operator allows it");
    }

    #[test]
    fn a_model_may_restore_an_env_value_from_history_but_add_none() {
        let s = snapshot("crashloop-missing-env.yaml");
        let r = api(&s);
        let old = s.replica_sets.iter().find_map(|rs| {
            rs.spec.as_ref()?.template.as_ref()?.spec.as_ref()?.containers[0]
                .env
                .iter()
                .flatten()
                .find(|e| e.name == "DATABASE_URL")
                .and_then(|e| e.value.clone())
        });
        let old = old.expect("revision 1 had DATABASE_URL");
        let restore = FixAction::SetEnv { container: "api".into(), name: "DATABASE_URL".into(), value: old };
        assert_eq!(vet(&s, &r, &restore, &[]), Ok(()));
        let redirect =
            FixAction::SetEnv { container: "api".into(), name: "DATABASE_URL".into(), value: "postgres://attacker.example/db".into() };
        assert!(vet(&s, &r, &redirect, &[]).unwrap_err().contains("restore"));
        let preload = FixAction::SetEnv { container: "api".into(), name: "LD_PRELOAD".into(), value: "/tmp/x.so".into() };
        assert!(vet(&s, &r, &preload, &[]).unwrap_err().contains("may not add env LD_PRELOAD"));
        let secret = FixAction::EnvFrom { container: "api".into(), config_map: None, secret: Some("cluster-admin-token".into()) };
        assert!(vet(&s, &r, &secret, &[]).unwrap_err().contains("Secret cluster-admin-token"));
    }

    #[test]
    fn numbers_keys_and_paths_stay_within_bounds_and_syntax() {
        let s = snapshot("oom-small-limit.yaml");
        let r = api(&s);
        for bad in [
            FixAction::Scale { replicas: 0 },
            FixAction::Scale { replicas: i32::MAX },
            FixAction::SetResources {
                container: "api".into(),
                requests: BTreeMap::new(),
                limits: [("$patch".to_owned(), "replace".to_owned())].into(),
            },
            FixAction::SetResources {
                container: "api".into(),
                requests: BTreeMap::new(),
                limits: [("memory".to_owned(), "64Ti".to_owned())].into(),
            },
            FixAction::SetResources {
                container: "api".into(),
                requests: BTreeMap::new(),
                limits: [("memory".to_owned(), "lots".to_owned())].into(),
            },
            FixAction::SetServiceSelector { selector: [("$patch".to_owned(), "replace".to_owned())].into() },
            FixAction::AdjustProbe { container: "api".into(), probe: aegis_model::ProbeKind::Liveness, path: "healthz; rm -rf /".into() },
        ] {
            assert!(vet(&s, &r, &bad, &[]).is_err(), "{bad:?} must be refused");
        }
        for good in [
            FixAction::Scale { replicas: 3 },
            FixAction::SetResources {
                container: "api".into(),
                requests: BTreeMap::new(),
                limits: [("memory".to_owned(), "512Mi".to_owned())].into(),
            },
            FixAction::AdjustProbe { container: "api".into(), probe: aegis_model::ProbeKind::Liveness, path: "/healthz".into() },
        ] {
            assert_eq!(vet(&s, &r, &good, &[]), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn a_model_fix_says_so_always_needs_approval_and_gets_the_plan_of_the_fix_itself() {
        let s = snapshot("oom-small-limit.yaml");
        let r = api(&s);
        let image = image_of(&s);
        let action = FixAction::SetImage { container: "api".into(), image: format!("{}:v2", repository(&image)) };
        let (fix, plan) = propose_model_fix(&s, &r, &action, "llama3.1:8b", &[]).unwrap();
        assert_eq!(fix.origin, FixOrigin::Model { model: "llama3.1:8b".into() });
        assert!(plan.approval_required);
        assert!(plan.security_checks.contains(&aegis_model::Source::Trivy), "a new image is scanned: {plan:?}");
    }

    #[test]
    fn repositories_lose_tag_and_digest_but_keep_registry_and_port() {
        assert_eq!(repository("127.0.0.1:5000/demo-api:v1"), "127.0.0.1:5000/demo-api");
        assert_eq!(repository("nginx:1.27"), "nginx");
        assert_eq!(repository("ghcr.io/a/b@sha256:abc"), "ghcr.io/a/b");
        assert_eq!(repository("ghcr.io/a/b:v1@sha256:abc"), "ghcr.io/a/b");
    }
}
