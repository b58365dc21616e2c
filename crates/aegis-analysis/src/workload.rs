//! Pods grouped by the workload that owns them, with the workload's revision history.
//!
//! One incident per broken workload: the pods of a ReplicaSet belong to its Deployment, so N crashing
//! pods are one incident, not N.

use std::collections::{BTreeMap, BTreeSet};

use aegis_model::ResourceRef;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::snapshot::Snapshot;

const REVISION: &str = "deployment.kubernetes.io/revision";

/// One ReplicaSet of a Deployment, i.e. one revision of its pod template.
#[derive(Debug, Clone)]
pub struct Revision<'a> {
    pub number: i64,
    pub replica_set: &'a ReplicaSet,
}

impl<'a> Revision<'a> {
    pub fn template(&self) -> Option<&'a PodTemplateSpec> {
        self.replica_set.spec.as_ref()?.template.as_ref()
    }

    /// Whether pods of this revision were ready: the revision ran healthy.
    pub fn was_healthy(&self) -> bool {
        self.replica_set.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0
    }
}

#[derive(Debug, Clone)]
pub struct Workload<'a> {
    pub resource: ResourceRef,
    pub deployment: Option<&'a Deployment>,
    pub stateful_set: Option<&'a StatefulSet>,
    /// Oldest first (Deployments: their ReplicaSets; StatefulSet revisions live in ControllerRevisions,
    /// which a snapshot does not read).
    pub revisions: Vec<Revision<'a>>,
    pub pods: Vec<&'a Pod>,
}

impl<'a> Workload<'a> {
    pub fn current_revision(&self) -> Option<&Revision<'a>> {
        self.revisions.last()
    }

    /// The newest revision before the current one whose pods are healthy now; else, once a rollout
    /// has completed (old ReplicaSets scaled to zero), the one the current revision replaced — it ran
    /// before, which [`Revision::was_healthy`] cannot show any more. [`Workload::presumed_healthy`]
    /// tells the two apart.
    pub fn last_healthy_revision(&self) -> Option<&Revision<'a>> {
        let current = self.current_revision()?.number;
        let older = || self.revisions.iter().rev().filter(move |r| r.number < current);
        older().find(|r| r.was_healthy()).or_else(|| older().next())
    }

    /// Whether revision `number` is only presumed healthy (no ready pods now; it ran before the
    /// current revision replaced it): a rollback to it rests on weaker evidence.
    pub fn presumed_healthy(&self, number: i64) -> bool {
        self.revisions.iter().any(|r| r.number == number && !r.was_healthy())
    }

    /// The pod template the workload asks for now.
    pub fn template(&self) -> Option<&'a PodTemplateSpec> {
        if let Some(d) = self.deployment {
            return d.spec.as_ref().map(|s| &s.template);
        }
        self.stateful_set.and_then(|s| s.spec.as_ref()).map(|s| &s.template)
    }

    /// Whether AEGIS can patch this workload's pod template (Deployments and StatefulSets).
    /// A workload known only by name so far (its pods or ReplicaSets are found before its controller).
    fn empty(resource: ResourceRef) -> Self {
        Workload { resource, deployment: None, stateful_set: None, revisions: Vec::new(), pods: Vec::new() }
    }

    /// The workload's `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        self.deployment.and_then(|d| d.metadata.generation).or_else(|| self.stateful_set.and_then(|s| s.metadata.generation))
    }

    pub fn patchable(&self) -> bool {
        self.deployment.is_some() || self.stateful_set.is_some()
    }

    pub fn desired_replicas(&self) -> i32 {
        self.deployment
            .and_then(|d| d.spec.as_ref()?.replicas)
            .or_else(|| self.stateful_set.and_then(|s| s.spec.as_ref()?.replicas))
            .unwrap_or(self.pods.len() as i32)
    }

    pub fn available_replicas(&self) -> i32 {
        if let Some(d) = self.deployment {
            return d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
        }
        if let Some(s) = self.stateful_set {
            return s.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
        }
        self.pods.iter().filter(|p| crate::signals::is_ready(p)).count() as i32
    }
}

fn owner(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<(&str, &str)> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| meta.owner_references.as_ref()?.first())
        .map(|o| (o.kind.as_str(), o.name.as_str()))
}

/// Group every pod (and every Deployment, even one without pods) into workloads.
pub fn workloads(s: &Snapshot) -> Vec<Workload<'_>> {
    let mut by_key: BTreeMap<ResourceRef, Workload<'_>> = BTreeMap::new();
    let ns_of = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.namespace.clone().unwrap_or_default();

    for d in &s.deployments {
        let resource =
            ResourceRef { kind: "Deployment".into(), namespace: ns_of(&d.metadata), name: d.metadata.name.clone().unwrap_or_default() };
        by_key.insert(
            resource.clone(),
            Workload { resource, deployment: Some(d), stateful_set: None, revisions: Vec::new(), pods: Vec::new() },
        );
    }
    for st in &s.stateful_sets {
        let resource =
            ResourceRef { kind: "StatefulSet".into(), namespace: ns_of(&st.metadata), name: st.metadata.name.clone().unwrap_or_default() };
        by_key.insert(
            resource.clone(),
            Workload { resource, deployment: None, stateful_set: Some(st), revisions: Vec::new(), pods: Vec::new() },
        );
    }
    let rs_owner: BTreeMap<(String, String), ResourceRef> = s
        .replica_sets
        .iter()
        .map(|rs| {
            let ns = ns_of(&rs.metadata);
            let name = rs.metadata.name.clone().unwrap_or_default();
            let workload = match owner(&rs.metadata) {
                Some((kind, owner_name)) => ResourceRef { kind: kind.to_owned(), namespace: ns.clone(), name: owner_name.to_owned() },
                None => ResourceRef { kind: "ReplicaSet".into(), namespace: ns.clone(), name: name.clone() },
            };
            ((ns, name), workload)
        })
        .collect();
    for rs in &s.replica_sets {
        let key = (ns_of(&rs.metadata), rs.metadata.name.clone().unwrap_or_default());
        let workload = rs_owner[&key].clone();
        let number = rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok()).unwrap_or(0);
        by_key.entry(workload.clone()).or_insert_with(|| Workload::empty(workload)).revisions.push(Revision { number, replica_set: rs });
    }
    for p in &s.pods {
        let ns = ns_of(&p.metadata);
        let workload = match owner(&p.metadata) {
            Some(("ReplicaSet", rs)) => rs_owner.get(&(ns.clone(), rs.to_owned())).cloned().unwrap_or(ResourceRef {
                kind: "ReplicaSet".into(),
                namespace: ns.clone(),
                name: rs.to_owned(),
            }),
            Some((kind, name)) => ResourceRef { kind: kind.to_owned(), namespace: ns.clone(), name: name.to_owned() },
            None => ResourceRef { kind: "Pod".into(), namespace: ns.clone(), name: p.metadata.name.clone().unwrap_or_default() },
        };
        by_key.entry(workload.clone()).or_insert_with(|| Workload::empty(workload)).pods.push(p);
    }
    let mut out: Vec<Workload<'_>> = by_key.into_values().collect();
    for w in &mut out {
        w.revisions.sort_by_key(|r| r.number);
    }
    out
}

/// Names of ConfigMaps and Secrets a pod template references (env, envFrom, volumes, pull secrets).
pub fn template_references(t: &PodTemplateSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut cms = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    let Some(spec) = &t.spec else {
        return (cms, secrets);
    };
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for e in c.env.iter().flatten() {
            if let Some(vf) = &e.value_from {
                if let Some(r) = &vf.config_map_key_ref {
                    cms.insert(r.name.clone());
                }
                if let Some(r) = &vf.secret_key_ref {
                    secrets.insert(r.name.clone());
                }
            }
        }
        for ef in c.env_from.iter().flatten() {
            if let Some(r) = &ef.config_map_ref {
                cms.insert(r.name.clone());
            }
            if let Some(r) = &ef.secret_ref {
                secrets.insert(r.name.clone());
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(c) = &v.config_map {
            cms.insert(c.name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.insert(s);
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(c) = &src.config_map {
                cms.insert(c.name.clone());
            }
            if let Some(s) = &src.secret {
                secrets.insert(s.name.clone());
            }
        }
    }
    for s in spec.image_pull_secrets.iter().flatten() {
        secrets.insert(s.name.clone());
    }
    (cms, secrets.into_iter().filter(|s| !s.is_empty()).collect())
}
