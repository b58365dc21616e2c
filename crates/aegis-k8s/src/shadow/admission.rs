//! The labels that decide which admission rules a namespace is held to, so that a shadow is held to
//! production's: the API server must refuse in the shadow what it refuses in production, or a fix
//! production cannot run passes verification.
//!
//! Two kinds of rule read a namespace's labels: Pod Security admission (`pod-security.kubernetes.io/*`)
//! and the `namespaceSelector` of admission webhooks and ValidatingAdmissionPolicies (and their
//! bindings). Only the labels those name are copied: the others name production (selectors of
//! NetworkPolicies elsewhere, mesh injection, ownership), and a shadow must not be taken for it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::K8sError;

/// Pod Security admission's labels (`enforce`, `audit`, `warn` and their versions).
const POD_SECURITY_PREFIX: &str = "pod-security.kubernetes.io/";

/// Set by the API server to the namespace's own name: never copied (it could not be).
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The label keys the cluster's admission rules select namespaces by: every key in the
/// `namespaceSelector` of a validating or mutating webhook, a ValidatingAdmissionPolicy's
/// `matchConstraints` or a binding's `matchResources`. A kind the API server does not serve is
/// skipped; any other failure to read one is an error, since the shadow could not be held to those
/// rules.
pub(super) async fn selector_keys(client: &Client) -> Result<BTreeSet<String>, K8sError> {
    let mut keys = BTreeSet::new();
    for webhooks in all::<ValidatingWebhookConfiguration>(client, "ValidatingWebhookConfiguration").await? {
        webhooks.webhooks.iter().flatten().for_each(|w| add_keys(w.namespace_selector.as_ref(), &mut keys));
    }
    for webhooks in all::<MutatingWebhookConfiguration>(client, "MutatingWebhookConfiguration").await? {
        webhooks.webhooks.iter().flatten().for_each(|w| add_keys(w.namespace_selector.as_ref(), &mut keys));
    }
    for policy in all::<ValidatingAdmissionPolicy>(client, "ValidatingAdmissionPolicy").await? {
        let constraints = policy.spec.as_ref().and_then(|s| s.match_constraints.as_ref());
        add_keys(constraints.and_then(|m| m.namespace_selector.as_ref()), &mut keys);
    }
    for binding in all::<ValidatingAdmissionPolicyBinding>(client, "ValidatingAdmissionPolicyBinding").await? {
        let resources = binding.spec.as_ref().and_then(|s| s.match_resources.as_ref());
        add_keys(resources.and_then(|m| m.namespace_selector.as_ref()), &mut keys);
    }
    Ok(keys)
}

async fn all<K>(client: &Client, kind: &'static str) -> Result<Vec<K>, K8sError>
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    match Api::<K>::all(client.clone()).list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
        Err(source) => Err(K8sError::List { kind, scope: "the cluster (the admission rules a shadow is held to)".into(), source }),
    }
}

fn add_keys(selector: Option<&LabelSelector>, keys: &mut BTreeSet<String>) {
    let Some(s) = selector else { return };
    keys.extend(s.match_labels.iter().flatten().map(|(k, _)| k.clone()));
    keys.extend(s.match_expressions.iter().flatten().map(|e| e.key.clone()));
}

/// The labels of production's namespace its shadow carries: Pod Security's, and those `selected`
/// by an admission rule's namespaceSelector ([`selector_keys`]).
pub(super) fn labels_to_copy(production: &Namespace, selected: &BTreeSet<String>) -> BTreeMap<String, String> {
    production
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != NAME_LABEL && (k.starts_with(POD_SECURITY_PREFIX) || selected.contains(k.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_namespace_selector_names_its_keys_from_labels_and_expressions() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"team": "payments"},
            "matchExpressions": [{"key": "environment", "operator": "In", "values": ["prod"]}, {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]
        }))
        .unwrap();
        let mut keys = BTreeSet::new();
        add_keys(Some(&selector), &mut keys);
        add_keys(None, &mut keys);
        assert_eq!(keys, BTreeSet::from(["environment".to_owned(), "kubernetes.io/metadata.name".to_owned(), "team".to_owned()]));
    }

    #[test]
    fn the_shadow_takes_pod_security_labels_and_those_admission_rules_select_by_and_no_other() {
        let production: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop", "labels": {
            "kubernetes.io/metadata.name": "shop",
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
            "team": "payments",
            "istio-injection": "enabled"
        }}}))
        .unwrap();
        let selected = BTreeSet::from(["team".to_owned(), "kubernetes.io/metadata.name".to_owned(), "absent".to_owned()]);
        let copied = labels_to_copy(&production, &selected);
        let names: Vec<&str> = copied.keys().map(String::as_str).collect();
        assert_eq!(names, ["pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/warn", "team"]);
        assert_eq!(copied["team"], "payments");
    }
}
