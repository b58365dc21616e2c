//! `aegis analyze` and `aegis snapshot`.

use aegis_analysis::{Snapshot, analyze};
use aegis_k8s::Scope;
use aegis_model::Incident;
use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cli::{AnalyzeArgs, ClusterArgs, DataFormat, SnapshotArgs};

/// A client and the scope to read, kubectl-style: `-n`, else the context's namespace; `-A` for all.
async fn connect(c: &ClusterArgs) -> Result<(kube::Client, Scope)> {
    let options = KubeConfigOptions { context: c.context.clone(), ..Default::default() };
    let config = match &c.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options).await.context("kubeconfig")?
        }
        None => kube::Config::from_kubeconfig(&options).await.or_else(|_| kube::Config::incluster()).context("no kubeconfig and not in a cluster")?,
    };
    let namespace = if c.all_namespaces { None } else { Some(c.namespace.clone().unwrap_or_else(|| config.default_namespace.clone())) };
    let client = kube::Client::try_from(config).context("kubernetes client")?;
    Ok((client, Scope { namespace, label_selector: c.selector.clone() }))
}

pub async fn run(a: &AnalyzeArgs) -> Result<u8> {
    let snapshot = match &a.snapshot {
        Some(path) => {
            let bytes = crate::input::read_limited(path, 512 * 1024 * 1024)?;
            let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
            Snapshot::from_text(&text).with_context(|| format!("snapshot {}", path.display()))?
        }
        None => {
            let (client, scope) = connect(&a.cluster).await?;
            aegis_k8s::snapshot(&client, &scope).await?
        }
    };
    let mut incidents = analyze(&snapshot);
    if let Some(ns) = a.cluster.namespace.as_ref().filter(|_| a.snapshot.is_some()) {
        incidents.retain(|i| &i.resource.namespace == ns);
    }
    if let Some(filter) = &a.resource {
        let Some((kind, name)) = filter.split_once('/') else { bail!("resource {filter:?} must be KIND/NAME, e.g. deployment/api") };
        incidents.retain(|i| i.resource.kind.eq_ignore_ascii_case(kind) && i.resource.name == name);
    }
    let enrichments = match &a.llm.llm_endpoint {
        None => Vec::new(),
        Some(endpoint) => {
            let mut cfg = aegis_llm::LlmConfig::new(endpoint, &a.llm.llm_model);
            cfg.api_key = a.llm.llm_api_key.clone();
            cfg.timeout = crate::input::duration(&a.llm.llm_timeout, "--llm-timeout")?;
            cfg.token_budget = a.llm.llm_token_budget;
            cfg.redact_names = a.llm.llm_redact.clone();
            let client = aegis_llm::ChatClient::new(cfg)?;
            let mut out = Vec::new();
            for i in &mut incidents {
                let (enriched, how) = aegis_llm::enrich(&client, i, |r, act| aegis_analysis::render_fix(&snapshot, r, act)).await;
                *i = enriched;
                out.push(how);
            }
            out
        }
    };
    print_incidents(&incidents, &enrichments, a.format)?;
    Ok(0)
}

fn print_incidents(incidents: &[Incident], enrichments: &[aegis_llm::Enrichment], format: DataFormat) -> Result<()> {
    let items: Vec<serde_json::Value> = incidents
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let mut v = serde_json::to_value(i).unwrap_or_default();
            if let Some(e) = enrichments.get(n) {
                v["llm"] = serde_json::to_value(e).unwrap_or_default();
            }
            v
        })
        .collect();
    let doc = serde_json::json!({"incidents": items});
    match format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        DataFormat::Yaml => print!("{}", serde_saphyr::to_string(&doc)?),
        DataFormat::Table => print!("{}", crate::render::incidents::render(incidents, crate::render::table::use_color(true))),
    }
    Ok(())
}

pub async fn snapshot(a: &SnapshotArgs) -> Result<u8> {
    let (client, scope) = connect(&a.cluster).await?;
    let snap = aegis_k8s::snapshot(&client, &scope).await?;
    let list = snap.to_list();
    match a.format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        DataFormat::Yaml | DataFormat::Table => print!("{}", serde_saphyr::to_string(&list)?),
    }
    Ok(0)
}
