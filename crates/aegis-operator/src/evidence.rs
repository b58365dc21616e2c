//! Verification evidence outside the Incident: the whole `VerificationResult` (security report
//! included) in a ConfigMap named after its digest and owned by the Incident, so it is deleted with
//! it. The Incident's status keeps a summary and the ConfigMap's name; the digest binds the two.

use aegis_model::Digest;
use aegis_verify::VerificationResult;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::crd::Incident;

/// The key holding the result's JSON.
pub const KEY: &str = "verification.json";
/// A ConfigMap holds at most 1 MiB; this leaves room for metadata.
const MAX_BYTES: usize = 900 * 1024;

/// `aegis-evidence-<16 hex digits of the digest>`.
pub fn config_map_name(digest: &Digest) -> String {
    let hex = digest.as_str().trim_start_matches("sha256:");
    format!("aegis-evidence-{}", &hex[..hex.len().min(16)])
}

/// The result as stored: whole when it fits; else without the per-finding lists (the summary, the
/// reasons and the scanner runs stay), marked `truncated`.
pub fn serialize(result: &VerificationResult) -> Result<(String, bool), serde_json::Error> {
    let text = serde_json::to_string(result)?;
    if text.len() <= MAX_BYTES {
        return Ok((text, false));
    }
    let mut smaller = result.clone();
    if let Some(report) = smaller.security.as_mut() {
        report.findings = Default::default();
        for r in report.reasons.iter_mut().chain(report.warnings.iter_mut()) {
            r.findings.clear();
        }
    }
    Ok((serde_json::to_string(&smaller)?, true))
}

/// Store `result` for `incident`; returns the ConfigMap's name. Storing the same evidence twice (a
/// resumed step) finds the ConfigMap already there.
pub async fn store(client: &Client, incident: &Incident, result: &VerificationResult) -> Result<String, kube::Error> {
    let ns = incident.namespace().unwrap_or_default();
    let name = config_map_name(&result.evidence_digest);
    let (text, truncated) = serialize(result).map_err(kube::Error::SerdeError)?;
    let owner = incident.controller_owner_ref(&()).map(|mut o| {
        o.controller = Some(false);
        o
    });
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "aegis", "aegis.io/incident": incident.name_any()},
            "annotations": {"aegis.io/evidence-digest": result.evidence_digest.as_str(), "aegis.io/truncated": truncated.to_string()},
            "ownerReferences": owner.into_iter().collect::<Vec<_>>()
        },
        "data": {KEY: text}
    }))
    .map_err(kube::Error::SerdeError)?;
    match Api::<ConfigMap>::namespaced(client.clone(), &ns).create(&PostParams::default(), &cm).await {
        Ok(_) => Ok(name),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(name),
        Err(e) => Err(e),
    }
}

/// Read a stored result back.
pub async fn load(client: &Client, namespace: &str, name: &str) -> Result<Option<VerificationResult>, kube::Error> {
    let Some(cm) = Api::<ConfigMap>::namespaced(client.clone(), namespace).get_opt(name).await? else { return Ok(None) };
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(KEY)) else { return Ok(None) };
    serde_json::from_str(text).map(Some).map_err(kube::Error::SerdeError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_config_maps_are_named_by_digest() {
        let d = Digest::of_bytes(b"evidence");
        let name = config_map_name(&d);
        assert!(name.starts_with("aegis-evidence-") && name.len() == "aegis-evidence-".len() + 16, "{name}");
        assert_eq!(name, config_map_name(&Digest::of_bytes(b"evidence")));
    }
}
