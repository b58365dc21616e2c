//! Pods grouped by the workload that owns them, with the workload's revision history.
//!
//! One incident per broken workload: the pods of a ReplicaSet belong to its Deployment, so N crashing
//! pods are one incident, not N.

use std::collections::{BTreeMap, BTreeSet};

use aegis_model::ResourceRef;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::snapshot::Snapshot;

const REVISION: &str = "deployment.kubernetes.io/revision";

/// One revision of a workload's pod template: a Deployment's ReplicaSet, or a StatefulSet's or
/// DaemonSet's ControllerRevision.
#[derive(Debug, Clone)]
pub struct Revision<'a> {
    pub number: i64,
    source: Source<'a>,
}

#[derive(Debug, Clone)]
enum Source<'a> {
    ReplicaSet(&'a ReplicaSet),
    /// The template a ControllerRevision records (its `data` is `{"spec": {"template": ...}}`), and
    /// whether pods of that revision are ready now.
    Controller {
        template: Option<Box<PodTemplateSpec>>,
        ready_pods: bool,
    },
}

impl<'a> Revision<'a> {
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match &self.source {
            Source::ReplicaSet(rs) => rs.spec.as_ref()?.template.as_ref(),
            Source::Controller { template, .. } => template.as_deref(),
        }
    }

    /// Whether pods of this revision were ready: the revision ran healthy.
    pub fn was_healthy(&self) -> bool {
        match &self.source {
            Source::ReplicaSet(rs) => rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0,
            Source::Controller { ready_pods, .. } => *ready_pods,
        }
    }
}

/// The pod template a StatefulSet's or DaemonSet's ControllerRevision records. The controller writes
/// it with `"$patch": "replace"` (a strategic-merge directive, not a field): that is dropped.
fn recorded_template(cr: &ControllerRevision) -> Option<Box<PodTemplateSpec>> {
    let mut template = cr.data.as_ref()?.0.pointer("/spec/template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok().map(Box::new)
}

/// The controller a workload's pods come from, when the snapshot holds it.
#[derive(Debug, Clone, Copy)]
pub enum Controller<'a> {
    Deployment(&'a Deployment),
    StatefulSet(&'a StatefulSet),
    DaemonSet(&'a DaemonSet),
}

#[derive(Debug, Clone)]
pub struct Workload<'a> {
    pub resource: ResourceRef,
    /// `None` for a workload known only by its pods or revisions (a bare ReplicaSet, a Job, a pod).
    pub controller: Option<Controller<'a>>,
    /// Oldest first (Deployments: their ReplicaSets; StatefulSets and DaemonSets: their ControllerRevisions).
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
        match self.controller? {
            Controller::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Controller::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Controller::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    /// A workload known only by name so far (its pods or ReplicaSets are found before its controller).
    fn empty(resource: ResourceRef) -> Self {
        Workload { resource, controller: None, revisions: Vec::new(), pods: Vec::new() }
    }

    /// The workload's `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        match self.controller? {
            Controller::Deployment(d) => d.metadata.generation,
            Controller::StatefulSet(s) => s.metadata.generation,
            Controller::DaemonSet(d) => d.metadata.generation,
        }
    }

    /// Whether AEGIS can patch this workload's pod template and prove the change in a shadow.
    pub fn patchable(&self) -> bool {
        self.controller.is_some()
    }

    /// `spec.replicas` of a Deployment or StatefulSet (a DaemonSet has none: it runs on its nodes).
    pub fn spec_replicas(&self) -> Option<i32> {
        match self.controller? {
            Controller::Deployment(d) => d.spec.as_ref()?.replicas,
            Controller::StatefulSet(s) => s.spec.as_ref()?.replicas,
            Controller::DaemonSet(_) => None,
        }
    }

    /// The pods the workload should have: its replicas, a DaemonSet's scheduled nodes.
    pub fn desired_replicas(&self) -> i32 {
        if let Some(Controller::DaemonSet(d)) = self.controller {
            return d.status.as_ref().map_or(self.pods.len() as i32, |s| s.desired_number_scheduled);
        }
        self.spec_replicas().unwrap_or(self.pods.len() as i32)
    }

    pub fn available_replicas(&self) -> i32 {
        match self.controller {
            Some(Controller::Deployment(d)) => d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0),
            Some(Controller::StatefulSet(s)) => s.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0),
            Some(Controller::DaemonSet(d)) => d.status.as_ref().and_then(|s| s.number_available).unwrap_or(0),
            None => self.pods.iter().filter(|p| crate::signals::is_ready(p)).count() as i32,
        }
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

/// Group every pod (and every Deployment, StatefulSet, DaemonSet and Job, even one without pods) into
/// workloads.
pub fn workloads(s: &Snapshot) -> Vec<Workload<'_>> {
    let mut by_key: BTreeMap<ResourceRef, Workload<'_>> = BTreeMap::new();
    let ns_of = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.namespace.clone().unwrap_or_default();

    let controllers = s
        .deployments
        .iter()
        .map(|d| ("Deployment", &d.metadata, Controller::Deployment(d)))
        .chain(s.stateful_sets.iter().map(|st| ("StatefulSet", &st.metadata, Controller::StatefulSet(st))))
        .chain(s.daemon_sets.iter().map(|d| ("DaemonSet", &d.metadata, Controller::DaemonSet(d))));
    for (kind, meta, controller) in controllers {
        let resource = ResourceRef { kind: kind.into(), namespace: ns_of(meta), name: meta.name.clone().unwrap_or_default() };
        by_key.insert(resource.clone(), Workload { resource, controller: Some(controller), revisions: Vec::new(), pods: Vec::new() });
    }
    // Every Job too: one failed by its activeDeadlineSeconds has its pods deleted, and one whose pods
    // are refused never had any; its status and events are what is left to judge.
    for job in &s.jobs {
        let resource =
            ResourceRef { kind: "Job".into(), namespace: ns_of(&job.metadata), name: job.metadata.name.clone().unwrap_or_default() };
        by_key.insert(resource.clone(), Workload::empty(resource));
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
        by_key
            .entry(workload.clone())
            .or_insert_with(|| Workload::empty(workload))
            .revisions
            .push(Revision { number, source: Source::ReplicaSet(rs) });
    }
    // A StatefulSet's pods carry their revision's name in `controller-revision-hash`, a DaemonSet's
    // the revision's hash (which its ControllerRevision carries as the same label).
    let mut ready_revisions: BTreeSet<(String, &str)> = BTreeSet::new();
    for p in s.pods.iter().filter(|p| crate::signals::is_ready(p)) {
        if let Some(rev) = p.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")) {
            ready_revisions.insert((ns_of(&p.metadata), rev.as_str()));
        }
    }
    for cr in &s.controller_revisions {
        let Some((kind @ ("StatefulSet" | "DaemonSet"), owner_name)) = owner(&cr.metadata) else { continue };
        let ns = ns_of(&cr.metadata);
        let name = cr.metadata.name.clone().unwrap_or_default();
        let hash = cr.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")).map(String::as_str);
        let ready_pods = [Some(name.as_str()), hash].into_iter().flatten().any(|rev| ready_revisions.contains(&(ns.clone(), rev)));
        let key = ResourceRef { kind: kind.into(), namespace: ns, name: owner_name.to_owned() };
        let revision = Revision { number: cr.revision, source: Source::Controller { template: recorded_template(cr), ready_pods } };
        by_key.entry(key.clone()).or_insert_with(|| Workload::empty(key)).revisions.push(revision);
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
