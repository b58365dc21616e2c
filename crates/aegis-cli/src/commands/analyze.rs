//! `aegis analyze` and `aegis snapshot`.

use aegis_analysis::{Snapshot, analyze};
use aegis_k8s::Scope;
use aegis_model::Incident;
use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cli::{AnalyzeArgs, ClusterArgs, DataFormat, SnapshotArgs};

/// A client and the scope to read, kubectl-style: `-n`, else the context's namespace; `-A` for all.
pub(crate) async fn connect(c: &ClusterArgs) -> Result<(kube::Client, Scope)> {
    let (client, default_ns) = client_for(c.kubeconfig.as_ref(), c.context.clone()).await?;
    let namespace = if c.all_namespaces { None } else { Some(c.namespace.clone().unwrap_or(default_ns)) };
    Ok((client, Scope { namespace, label_selector: c.selector.clone() }))
}

/// A client for the commands that need no namespace (shadows are cluster-wide).
pub(crate) async fn client_only(c: &crate::cli::ClusterOnly) -> Result<kube::Client> {
    Ok(client_for(c.kubeconfig.as_ref(), c.context.clone()).await?.0)
}

/// A client from an explicit kubeconfig, else the default one, else in-cluster; and its namespace.
pub(crate) async fn client_for(kubeconfig: Option<&std::path::PathBuf>, context: Option<String>) -> Result<(kube::Client, String)> {
    observed_client_for(kubeconfig, context, None).await
}

/// [`client_for`], with every API call reported to `observer`.
pub(crate) async fn observed_client_for(
    kubeconfig: Option<&std::path::PathBuf>,
    context: Option<String>,
    observer: Option<aegis_k8s::client::Observer>,
) -> Result<(kube::Client, String)> {
    let options = KubeConfigOptions { context, ..Default::default() };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options).await.context("kubeconfig")?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .or_else(|_| kube::Config::incluster())
            .context("no kubeconfig and not in a cluster")?,
    };
    let ns = config.default_namespace.clone();
    Ok((aegis_k8s::client::build(config, observer).context("kubernetes client")?, ns))
}

/// A snapshot file: JSON is read as it streams in (a List of tens of thousands of pods is never held
/// whole), YAML as text.
fn read_snapshot(path: &std::path::Path) -> Result<Snapshot> {
    use std::io::{BufRead, Read};
    let context = || format!("snapshot {}", path.display());
    let mut reader = std::io::BufReader::with_capacity(1 << 16, crate::input::open_limited(path, crate::input::limits::SNAPSHOT)?);
    // The first character that is not whitespace says which.
    let json = loop {
        let buf = reader.fill_buf().with_context(context)?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let json = matches!(buf[i], b'{' | b'[');
                break json;
            }
            None if buf.is_empty() => break false,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    if json {
        return Snapshot::from_json_reader(reader).with_context(context);
    }
    let mut text = String::new();
    reader.read_to_string(&mut text).with_context(|| format!("{} is not UTF-8, or cannot be read", path.display()))?;
    Snapshot::from_text(&text).with_context(context)
}

pub async fn run(a: &AnalyzeArgs) -> Result<u8> {
    let snapshot = match &a.snapshot {
        Some(path) => read_snapshot(path)?,
        None => live_snapshot(&a.cluster, a.include_secrets).await?,
    };
    if a.lint {
        return print_lint(&snapshot, a);
    }
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
                let (model, allowed) = (&a.llm.llm_model, &a.llm.llm_allow_repository);
                let (enriched, how) =
                    aegis_llm::enrich(&client, i, |r, act| aegis_analysis::propose_model_fix(&snapshot, r, act, model, allowed)).await;
                *i = enriched;
                out.push(how);
            }
            out
        }
    };
    let verifications = if a.verify { verify_all(a, &incidents).await? } else { Vec::new() };
    print_incidents(&incidents, &enrichments, &verifications, a.format)?;
    Ok(0)
}

/// The runner the verification settings describe.
pub(crate) async fn runner_for(v: &crate::cli::VerifyArgs) -> Result<aegis_scanners::Runner> {
    let (trivy, cache) = crate::commands::scan::trivy(&v.trivy)?;
    let falco = match &v.falco_store {
        Some(location) => Some(aegis_scanners::falco::FalcoStore::open_to_read(location).await?),
        None => None,
    };
    let zap = match &v.zap {
        Some(url) => Some((
            aegis_scanners::zap::ZapClient::new(url, v.zap_api_key.clone(), std::time::Duration::from_secs(60))?,
            aegis_scanners::zap::ZapScanOptions::default(),
        )),
        None => None,
    };
    Ok(aegis_scanners::Runner { trivy: Some(trivy), cache, falco, zap, ..Default::default() })
}

/// The verification options the flags describe, with the policy narrowed to `checks`.
pub(crate) fn verify_options(
    v: &crate::cli::VerifyArgs,
    runner: aegis_scanners::Runner,
    checks: &[aegis_model::Source],
) -> Result<aegis_verify::VerifyOptions> {
    let policy =
        crate::commands::load_policy(&crate::cli::PolicyArgs { policy: v.verify_policy.clone(), trivyignore: Vec::new() }, Some(checks))?;
    Ok(aegis_verify::VerifyOptions {
        window: crate::input::duration(&v.window, "--window")?,
        deadline: crate::input::duration(&v.deadline, "--deadline")?,
        policy,
        runner,
        aegis_namespace: v.aegis_namespace.clone(),
        runtime_class: v.runtime_class.clone(),
        shadow_ttl: std::time::Duration::from_secs(3600),
        smoke_paths: Vec::new(),
        progress: None,
        isolation_probe: v
            .isolation_probe_image
            .clone()
            .map(|image| aegis_k8s::isolation::ProbeSpec { image, deadline: std::time::Duration::from_secs(90) }),
    })
}

/// Verify one fix in a shadow, with progress lines while it waits.
/// What one verification proves: the fix, its plan, and the incident it is for.
struct Proposal<'a> {
    fix: &'a aegis_model::Fix,
    plan: &'a aegis_model::VerificationPlan,
    incident: Option<String>,
}

async fn verify_one(
    client: &kube::Client,
    v: &crate::cli::VerifyArgs,
    runner: &aegis_scanners::Runner,
    resource: &aegis_model::ResourceRef,
    Proposal { fix, plan, incident }: Proposal<'_>,
    interactive: bool,
) -> Result<aegis_verify::VerificationResult> {
    let mut opts = verify_options(v, runner.clone(), &plan.security_checks)?;
    opts.smoke_paths = plan.smoke_paths.clone();
    let (stage_tx, mut stages) = tokio::sync::mpsc::unbounded_channel();
    opts.progress = Some(stage_tx);
    let (scan_tx, mut scans) = tokio::sync::mpsc::unbounded_channel();
    opts.runner.progress = Some(scan_tx);
    eprintln!("{resource}: verifying the {} fix in a shadow (deadline {})…", fix.action.kind(), v.deadline);
    let work = aegis_verify::verify_until(client, resource, fix, incident, &opts, interrupted());
    tokio::pin!(work);
    // Long waits are visible on a terminal: the stage, each scanner and the time spent, redrawn in
    // place. Piped or captured output gets only the first and last lines.
    let mut live = crate::progress::Live::new(resource.to_string(), interactive);
    live.stage(aegis_verify::Stage::CreatingShadow);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let r = loop {
        tokio::select! {
            r = &mut work => break r?,
            _ = tick.tick() => live.draw(),
            Some(s) = stages.recv() => live.stage(s),
            Some(p) = scans.recv() => live.scan(p),
        }
    };
    live.finish();
    if r.was_cancelled() {
        // Stop here (no further incidents): the user asked to; the shadow is already gone.
        bail!("{resource}: {}; shadow {} deleted", r.reasons.join("; "), r.shadow_namespace);
    }
    eprintln!("{resource}: {} after {:.1}s", r.verdict, r.timings.total_ms as f64 / 1000.0);
    Ok(r)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (a CI job or pod being stopped), naming the signal, so a
/// verification can delete its shadow before the process exits.
/// The handlers are installed at the call, not at the first poll, so a signal that arrives while the
/// shadow is being created is seen as soon as the verification can act on it.
fn interrupted() -> impl Future<Output = String> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            // No handlers: never cancel; the deadline and the expiry collector still bound the shadow's life.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => "SIGINT".to_owned(),
            _ = term.recv() => "SIGTERM".to_owned(),
        }
    }
}

/// Verify each incident's fix in a shadow. `None` where there is nothing to verify.
async fn verify_all(a: &AnalyzeArgs, incidents: &[Incident]) -> Result<Vec<Option<aegis_verify::VerificationResult>>> {
    if a.snapshot.is_some() {
        bail!("--verify needs a live cluster: it creates shadows; drop --snapshot");
    }
    let (client, _) = connect(&a.cluster).await?;
    let runner = runner_for(&a.verification).await?;
    let mut out = Vec::new();
    for i in incidents {
        // The shadow copies the workload the plan names: the incident's own, or for a Service selector
        // fix the workload the Service should select.
        let Some(workload) = i.verification_plan.workload.as_ref().filter(|_| i.fix.patch.is_some()) else {
            eprintln!("{}: nothing to verify ({} fix on a {})", i.resource, i.fix.action.kind(), i.resource.kind);
            out.push(None);
            continue;
        };
        out.push(Some(
            verify_one(
                &client,
                &a.verification,
                &runner,
                workload,
                Proposal { fix: &i.fix, plan: &i.verification_plan, incident: Some(i.category.to_string()) },
                a.format == DataFormat::Table,
            )
            .await?,
        ));
    }
    Ok(out)
}

fn parse_resource(text: &str, namespace: &str) -> Result<aegis_model::ResourceRef> {
    let Some((kind, name)) = text.split_once('/') else { bail!("resource {text:?} must be KIND/NAME, e.g. deployment/api") };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => "Deployment",
        "statefulset" | "statefulsets" | "sts" => "StatefulSet",
        "daemonset" | "daemonsets" | "ds" => "DaemonSet",
        // A Service's selector fix is proven on a copy of the workload it should select.
        "service" | "services" | "svc" => "Service",
        other => bail!("shadows copy Deployments, StatefulSets and DaemonSets (and prove Service fixes), not {other:?}"),
    };
    Ok(aegis_model::ResourceRef { kind: kind.into(), namespace: namespace.to_owned(), name: name.to_owned() })
}

pub async fn shadow(cmd: &crate::cli::ShadowCommand) -> Result<u8> {
    use crate::cli::ShadowCommand;
    match cmd {
        ShadowCommand::Create { resource, cluster, ttl, aegis_namespace } => {
            let (client, scope) = connect(cluster).await?;
            let source = parse_resource(resource, scope.namespace.as_deref().unwrap_or("default"))?;
            let spec = aegis_k8s::shadow::ShadowSpec {
                source,
                incident: None,
                ttl: crate::input::duration(ttl, "--ttl")?,
                aegis_namespace: aegis_namespace.clone(),
                runtime_class: None,
                fix: None,
            };
            let shadow = aegis_k8s::shadow::create_shadow(&client, &spec, jiff::Timestamp::now()).await?;
            println!("shadow {} created: namespace {} holds {}", shadow.id, shadow.namespace, shadow.workload);
            return Ok(0);
        }
        ShadowCommand::Verify { resource, cluster, fix, from_analysis, verification, format } => {
            let (client, scope) = connect(cluster).await?;
            let source = parse_resource(resource, scope.namespace.as_deref().unwrap_or("default"))?;
            let snap = aegis_k8s::snapshot(&client, &Scope { namespace: Some(source.namespace.clone()), label_selector: None }).await?;
            let incidents = analyze(&snap);
            let from = incidents.iter().find(|i| i.resource == source);
            let (the_fix, plan) = match (fix, from_analysis) {
                (Some(path), _) => {
                    let text = crate::input::read_text(path, crate::input::limits::SMALL_FILE)?;
                    let action: aegis_model::FixAction = serde_saphyr::from_str(&text)
                        .with_context(|| format!("{} is not a typed fix (e.g. type: set-env)", path.display()))?;
                    let rendered = aegis_analysis::render_fix(&snap, &source, &action).map_err(|e| anyhow::anyhow!("fix refused: {e}"))?;
                    let plan = aegis_analysis::plan_for(&snap, &source, &action).map_err(|e| anyhow::anyhow!("fix refused: {e}"))?;
                    (rendered, plan)
                }
                (None, true) => match from {
                    Some(i) => (i.fix.clone(), i.verification_plan.clone()),
                    None => {
                        bail!("aegis analyze finds no incident for {source}: nothing to verify")
                    }
                },
                (None, false) => bail!("give --fix FILE or --from-analysis"),
            };
            let runner = runner_for(verification).await?;
            let workload = plan.workload.clone().with_context(|| format!("no workload to copy into a shadow for {source}"))?;
            let proposal = Proposal { fix: &the_fix, plan: &plan, incident: None };
            let result = verify_one(&client, verification, &runner, &workload, proposal, *format == DataFormat::Table).await?;
            match format {
                DataFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
                DataFormat::Yaml => print!("{}", serde_saphyr::to_string(&result)?),
                DataFormat::Table => {
                    let result = crate::render::safe::sanitized(&result);
                    println!("Verification of the {} fix for {source}: {}", the_fix.action.kind(), result.verdict);
                    for r in &result.reasons {
                        println!("  ✗ {r}");
                    }
                    println!("  health: {}", if result.health.healthy { "healthy".to_owned() } else { result.health.reasons.join("; ") });
                    if let Some(report) = &result.security {
                        print!("{}", crate::render::table::render(report, crate::render::table::use_color(true)));
                    }
                }
            }
            return Ok(result.verdict.exit_code());
        }
        ShadowCommand::Status { id, cluster } => {
            let client = client_only(cluster).await?;
            shadow_status(&client, id).await?;
        }
        ShadowCommand::List(cluster) => {
            let client = client_only(cluster).await?;
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_header(["ID", "NAMESPACE", "SOURCE", "INCIDENT", "EXPIRES", "STATUS"]);
            for s in aegis_k8s::shadow::list_shadows(&client).await? {
                t.add_row([s.id, s.namespace, s.source, s.incident, s.expires, s.phase]);
            }
            println!("{t}");
        }
        ShadowCommand::Delete { id, cluster } => {
            let client = client_only(cluster).await?;
            let namespace = aegis_k8s::shadow::shadow_namespace(id);
            aegis_k8s::shadow::delete_shadow_namespace(&client, &namespace).await?;
            println!("shadow {namespace} deleted");
        }
        ShadowCommand::Gc(cluster) => {
            let client = client_only(cluster).await?;
            let deleted = aegis_k8s::shadow::collect_expired(&client, jiff::Timestamp::now()).await?;
            println!(
                "{} expired shadow(s) deleted{}",
                deleted.len(),
                if deleted.is_empty() { String::new() } else { format!(": {}", deleted.join(", ")) }
            );
        }
    }
    Ok(0)
}

async fn shadow_status(client: &kube::Client, id: &str) -> Result<()> {
    let namespace = aegis_k8s::shadow::shadow_namespace(id);
    let info = aegis_k8s::shadow::list_shadows(client).await?.into_iter().find(|s| s.namespace == namespace);
    let Some(s) = info else { bail!("no shadow {namespace}") };
    println!(
        "shadow {} ({})\n  source:   {}\n  incident: {}\n  expires:  {}\n  status:   {}",
        s.id, s.namespace, s.source, s.incident, s.expires, s.phase
    );
    for w in aegis_k8s::shadow::workload_readiness(client, &namespace).await? {
        println!("  {}/{}: {}/{} ready", w.kind, w.name, w.ready, w.desired);
    }
    Ok(())
}

fn print_incidents(
    incidents: &[Incident],
    enrichments: &[aegis_llm::Enrichment],
    verifications: &[Option<aegis_verify::VerificationResult>],
    format: DataFormat,
) -> Result<()> {
    let items: Vec<serde_json::Value> = incidents
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let mut v = serde_json::to_value(i).unwrap_or_default();
            if let Some(e) = enrichments.get(n) {
                v["llm"] = serde_json::to_value(e).unwrap_or_default();
            }
            if let Some(Some(r)) = verifications.get(n) {
                v["verification"] = serde_json::to_value(r).unwrap_or_default();
            }
            v
        })
        .collect();
    let doc = serde_json::json!({"incidents": items});
    match format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        DataFormat::Yaml => print!("{}", serde_saphyr::to_string(&doc)?),
        DataFormat::Table => {
            print!("{}", crate::render::incidents::render(incidents, verifications, crate::render::table::use_color(true)))
        }
    }
    Ok(())
}

/// `aegis analyze --lint`: hygiene findings, kubectl-style (`-n` filters a snapshot file's).
fn print_lint(snapshot: &Snapshot, a: &AnalyzeArgs) -> Result<u8> {
    let mut findings = aegis_analysis::lint::lint(snapshot);
    if let Some(ns) = a.cluster.namespace.as_ref().filter(|_| a.snapshot.is_some()) {
        findings.retain(|f| &f.resource.namespace == ns);
    }
    match a.format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({"findings": findings}))?),
        DataFormat::Yaml => print!("{}", serde_saphyr::to_string(&serde_json::json!({"findings": findings}))?),
        DataFormat::Table if findings.is_empty() => println!("No hygiene findings."),
        DataFormat::Table => {
            // Object names come from the cluster: terminal-safe.
            let safe = crate::render::safe::safe;
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::NOTHING);
            t.set_header(["NAMESPACE", "RESOURCE", "RULE", "MESSAGE"]);
            for f in &findings {
                let r = &f.resource;
                t.add_row([
                    safe(&r.namespace),
                    safe(&format!("{}/{}", r.kind.to_ascii_lowercase(), r.name)),
                    f.rule.to_owned(),
                    safe(&f.message),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(0)
}

/// The cluster in scope as a snapshot, with its Secrets' names and keys when asked.
async fn live_snapshot(cluster: &ClusterArgs, include_secrets: bool) -> Result<Snapshot> {
    let (client, scope) = connect(cluster).await?;
    let (snap, secrets) = tokio::try_join!(aegis_k8s::snapshot(&client, &scope), async {
        match include_secrets {
            true => aegis_k8s::secret_keys(&client, &scope).await,
            false => Ok(Vec::new()),
        }
    })?;
    Ok(Snapshot { secrets, ..snap })
}

pub async fn snapshot(a: &SnapshotArgs) -> Result<u8> {
    let snap = live_snapshot(&a.cluster, a.include_secrets).await?;
    let list = snap.to_list();
    match a.format {
        DataFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        DataFormat::Yaml | DataFormat::Table => print!("{}", serde_saphyr::to_string(&list)?),
    }
    Ok(0)
}
