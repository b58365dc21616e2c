//! The labels that decide which admission rules a namespace is held to, so that a shadow is held to
//! production's: the API server must refuse in the shadow what it refuses in production, or a fix
//! production cannot run passes verification.
//!
//! Two kinds of rule that refuse read a namespace's labels: Pod Security admission
//! (`pod-security.kubernetes.io/*`) and the `namespaceSelector` of validating webhooks and
//! ValidatingAdmissionPolicies (and their bindings). Only the labels those name are copied: the others
//! name production (selectors of NetworkPolicies elsewhere, ownership), and a shadow must not be taken
//! for it. Mutating webhooks' selectors are not followed: what they inject (a mesh's sidecar, an
//! agent) reaches for a control plane the shadow's isolation cuts off, so their labels would fail
//! every verification in the shadow for a reason production does not have.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;

use crate::{K8sError, try_cluster_list};

/// Pod Security admission's labels (`enforce`, `audit`, `warn` and their versions).
const POD_SECURITY_PREFIX: &str = "pod-security.kubernetes.io/";

/// Set by the API server to the namespace's own name: never copied (it could not be).
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The label keys the cluster's refusing admission rules select namespaces by ([`keys_of`]). A kind
/// the API server does not serve is skipped; any other failure to read one is an error, since the
/// shadow could not be held to those rules.
pub(super) async fn selector_keys(client: &Client) -> Result<BTreeSet<String>, K8sError> {
    let webhooks = try_cluster_list::<ValidatingWebhookConfiguration>(client, "ValidatingWebhookConfiguration").await?;
    let policies = try_cluster_list::<ValidatingAdmissionPolicy>(client, "ValidatingAdmissionPolicy").await?;
    let bindings = try_cluster_list::<ValidatingAdmissionPolicyBinding>(client, "ValidatingAdmissionPolicyBinding").await?;
    Ok(keys_of(&webhooks, &policies, &bindings))
}

/// Every key in the `namespaceSelector` of a validating webhook, a ValidatingAdmissionPolicy's
/// `matchConstraints` or a binding's `matchResources`.
fn keys_of(
    webhooks: &[ValidatingWebhookConfiguration],
    policies: &[ValidatingAdmissionPolicy],
    bindings: &[ValidatingAdmissionPolicyBinding],
) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for w in webhooks.iter().flat_map(|c| c.webhooks.iter().flatten()) {
        add_keys(w.namespace_selector.as_ref(), &mut keys);
    }
    for p in policies {
        add_keys(p.spec.as_ref().and_then(|s| s.match_constraints.as_ref()).and_then(|m| m.namespace_selector.as_ref()), &mut keys);
    }
    for b in bindings {
        add_keys(b.spec.as_ref().and_then(|s| s.match_resources.as_ref()).and_then(|m| m.namespace_selector.as_ref()), &mut keys);
    }
    keys
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
    fn the_keys_come_from_validating_webhooks_policies_and_bindings() {
        let webhooks: ValidatingWebhookConfiguration = serde_json::from_value(json!({"metadata": {"name": "w"}, "webhooks": [
            {"name": "a.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None", "clientConfig": {},
             "namespaceSelector": {"matchLabels": {"team": "payments"}}}]}))
        .unwrap();
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"matchConstraints": {"namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}}}))
        .unwrap();
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({"metadata": {"name": "b"},
            "spec": {"policyName": "p", "matchResources": {"namespaceSelector": {"matchLabels": {"environment": "prod"}}}}}))
        .unwrap();
        let keys = keys_of(&[webhooks], &[policy], &[binding]);
        assert_eq!(keys, BTreeSet::from(["environment".to_owned(), "team".to_owned(), "tier".to_owned()]));
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
