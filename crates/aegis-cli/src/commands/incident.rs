//! `aegis crd`, `aegis incident list|show|approve|reject`: the human side of the operator.

use aegis_model::Digest;
use aegis_operator::crd::{Approval, Decision, Incident};
use anyhow::{Context, Result, bail};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::cli::{ClusterArgs, DataFormat, IncidentCommand};
use crate::commands::analyze::connect;

pub fn crd(format: DataFormat) -> Result<u8> {
    let crd = aegis_operator::crd();
    match format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&crd)?),
        _ => print!("{}", serde_saphyr::to_string(&crd)?),
    }
    Ok(0)
}

pub async fn run(cmd: &IncidentCommand) -> Result<u8> {
    match cmd {
        IncidentCommand::List { cluster, format } => list(cluster, *format).await,
        IncidentCommand::Show { name, cluster, format } => show(name, cluster, *format).await,
        IncidentCommand::Approve { name, cluster, digest, by, comment } => {
            decide(name, cluster, Decision::Approve, digest.as_deref(), by.clone(), comment.clone()).await
        }
        IncidentCommand::Reject { name, cluster, by, comment } => {
            decide(name, cluster, Decision::Reject, None, by.clone(), comment.clone()).await
        }
    }
}

/// `5m`, `3h`, `2d`, as kubectl prints ages.
fn age(created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    let Some(t) = created else { return "<unknown>".into() };
    let secs = jiff::Timestamp::now().duration_since(t.0).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

async fn incidents(cluster: &ClusterArgs) -> Result<(Client, Api<Incident>, bool)> {
    let (client, scope) = connect(cluster).await?;
    let api = match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    Ok((client, api, scope.namespace.is_none()))
}

async fn list(cluster: &ClusterArgs, format: DataFormat) -> Result<u8> {
    let (_, api, all) = incidents(cluster).await?;
    let items =
        api.list(&ListParams::default()).await.context("listing incidents (is the CRD installed? `aegis crd | kubectl apply -f -`)")?.items;
    match format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        DataFormat::Yaml => print!("{}", serde_saphyr::to_string(&items)?),
        DataFormat::Table => {
            let items = crate::render::safe::sanitized(&items);
            if items.is_empty() {
                eprintln!("No incidents found.");
                return Ok(0);
            }
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::NOTHING);
            let mut header = vec!["NAME", "SEVERITY", "RESOURCE", "CATEGORY", "PHASE", "VERDICT", "AGE"];
            if all {
                header.insert(0, "NAMESPACE");
            }
            t.set_header(header);
            for i in &items {
                let st = i.status.clone().unwrap_or_default();
                let mut row = vec![
                    i.name_any(),
                    i.spec.severity.to_string(),
                    format!("{}/{}", i.spec.resource.kind.to_ascii_lowercase(), i.spec.resource.name),
                    i.spec.category.to_string(),
                    st.phase.to_string(),
                    st.verification.map(|v| v.verdict.to_string()).unwrap_or_else(|| "-".into()),
                    age(i.metadata.creation_timestamp.as_ref()),
                ];
                if all {
                    row.insert(0, i.namespace().unwrap_or_default());
                }
                t.add_row(row);
            }
            println!("{t}");
        }
    }
    Ok(0)
}

async fn show(name: &str, cluster: &ClusterArgs, format: DataFormat) -> Result<u8> {
    let (client, api, _) = incidents(cluster).await?;
    let i = api.get(name).await.with_context(|| format!("incident {name}"))?;
    match format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&i)?),
        DataFormat::Yaml => print!("{}", serde_saphyr::to_string(&i)?),
        DataFormat::Table => {
            print!("{}", describe(&crate::render::safe::sanitized(&i)));
            // The whole verification (scanners, findings, smoke checks) lives in its evidence ConfigMap.
            if let Some(v) = i.status.as_ref().and_then(|s| s.verification.as_ref()) {
                let ns = i.namespace().unwrap_or_default();
                match aegis_operator::evidence::load(&client, &ns, &v.evidence_config_map).await {
                    Ok(Some(result)) => {
                        println!("Evidence (ConfigMap {}):", v.evidence_config_map);
                        print!("{}", crate::render::incidents::verification(&crate::render::safe::sanitized(&result), false));
                    }
                    Ok(None) => println!("Evidence:    ConfigMap {} not found (deleted, or never stored)", v.evidence_config_map),
                    Err(e) => println!("Evidence:    ConfigMap {} not readable: {e}", v.evidence_config_map),
                }
            }
        }
    }
    Ok(0)
}

/// `kubectl describe`-like text.
fn describe(i: &Incident) -> String {
    use std::fmt::Write;
    let st = i.status.clone().unwrap_or_default();
    let mut o = String::new();
    let _ = writeln!(o, "Name:        {}", i.name_any());
    let _ = writeln!(o, "Namespace:   {}", i.namespace().unwrap_or_default());
    let _ = writeln!(
        o,
        "Resource:    {}/{} (generation {} when detected)",
        i.spec.resource.kind, i.spec.resource.name, i.spec.detected_generation
    );
    let _ = writeln!(o, "Category:    {}", i.spec.category);
    let _ = writeln!(o, "Severity:    {}", i.spec.severity);
    let _ = writeln!(o, "Phase:       {}{}", st.phase, st.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default());
    if let Some(a) = &st.analysis {
        let _ = writeln!(o, "Root cause:  {} (confidence {:.0}%)", a.root_cause, a.confidence * 100.0);
        let _ = writeln!(o, "Fix:         {} — {}", a.fix.action.kind(), a.fix.summary);
        for e in &a.evidence {
            let _ = writeln!(o, "  evidence:  {e}");
        }
    }
    if let Some(v) = &st.verification {
        let _ = writeln!(
            o,
            "Verification: {} ({}; {} ms, shadow {})",
            v.verdict,
            if v.healthy { "healthy" } else { "unhealthy" },
            v.total_ms,
            v.shadow_namespace
        );
        let _ = writeln!(o, "  evidence digest: {}  (full result: ConfigMap {})", v.evidence_digest.as_str(), v.evidence_config_map);
        if !v.new_findings.is_empty() {
            let counts: Vec<String> = v.new_findings.iter().map(|(s, n)| format!("{n} {s}")).collect();
            let _ = writeln!(o, "  new findings: {}", counts.join(", "));
        }
        for r in &v.reasons {
            let _ = writeln!(o, "  ✗ {r}");
        }
    }
    if let Some(a) = &i.spec.approval {
        let _ = writeln!(o, "Decision:    {:?} by {} at {} for evidence {}", a.decision, a.by, a.at, a.evidence_digest.as_str());
    }
    if let Some(a) = &st.applied {
        let _ = writeln!(
            o,
            "Applied:     {} (generation {})",
            a.at.as_deref().unwrap_or("in progress"),
            a.generation.map(|g| g.to_string()).unwrap_or_else(|| "-".into())
        );
    }
    if let Some(r) = &st.rollback {
        let _ = writeln!(o, "Rolled back: {} — {}", r.at, r.reason);
    }
    for c in &st.conditions {
        let _ = writeln!(o, "Condition:   {}={} ({}): {}", c.type_, c.status, c.reason, c.message);
    }
    let _ = writeln!(o, "History:");
    for t in &st.transitions {
        let _ = writeln!(o, "  {}  {:<16} {}", t.at, t.phase.as_str(), t.reason);
    }
    o
}

/// Who the API server says the caller is (a SelfSubjectReview): the identity an approval records. A
/// kubeconfig's user name, `--as` or `$USER` are only what the caller claims.
async fn authenticated_user(client: &kube::Client) -> Result<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let review = kube::Api::<SelfSubjectReview>::all(client.clone())
        .create(&Default::default(), &SelfSubjectReview::default())
        .await
        .context("asking the API server who you are (SelfSubjectReview)")?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .context("the API server did not say who you are")
}

async fn decide(
    name: &str,
    cluster: &ClusterArgs,
    decision: Decision,
    digest: Option<&str>,
    by: Option<String>,
    comment: Option<String>,
) -> Result<u8> {
    let (client, api, _) = incidents(cluster).await?;
    let i = api.get(name).await.with_context(|| format!("incident {name}"))?;
    let st = i.status.clone().unwrap_or_default();
    if st.phase.is_terminal() {
        bail!("incident {name} has ended ({}): nothing to decide", st.phase);
    }
    let user = authenticated_user(&client).await?;
    if let Some(claimed) = by.filter(|b| *b != user) {
        bail!("--as {claimed}: the API server authenticates you as {user}, and a decision records who decided; drop --as");
    }
    let by = user;
    let current = st.verification.as_ref().map(|v| v.evidence_digest.clone());
    let evidence_digest = match (decision, digest, &current) {
        (_, Some(d), _) => Digest::parse(d).map_err(|e| anyhow::anyhow!("--digest: {e}"))?,
        (Decision::Approve, None, Some(c)) => c.clone(),
        (Decision::Approve, None, None) => bail!("incident {name} has no verified fix yet ({}): nothing to approve", st.phase),
        (Decision::Reject, None, c) => c.clone().unwrap_or_else(|| Digest::of_bytes(b"")),
    };
    let approval =
        Approval { decision, by: by.clone(), evidence_digest: evidence_digest.clone(), at: jiff::Timestamp::now().to_string(), comment };
    // The resourceVersion read above is a precondition: a decision on an incident that changed since it
    // was read fails instead of landing on state the user did not see.
    let patch = json!({"metadata": {"resourceVersion": i.resource_version()}, "spec": {"approval": approval}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.with_context(|| format!("recording the decision on {name}"))?;
    match decision {
        Decision::Approve => {
            println!("incident {name} approved by {by} for evidence {}", evidence_digest.as_str());
            if current.as_ref() != Some(&evidence_digest) {
                eprintln!("warning: that is not the current verification's evidence; the operator will refuse it");
            }
        }
        Decision::Reject => println!("incident {name} rejected by {by}"),
    }
    Ok(0)
}
