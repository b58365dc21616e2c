//! `aegis scan image|manifests|url`: run scanners now, then gate their results.

use std::time::Duration;

use aegis_model::{Side, Source};
use aegis_scanners::cache::ScanCache;
use aegis_scanners::trivy::{TrivyConfig, TrivyScanner};
use aegis_scanners::zap::{ZapClient, ZapScanOptions};
use aegis_scanners::{ImageRef, Runner, Targets};
use aegis_security::evidence::{self, EvidenceKind, LoadOptions};
use aegis_security::{Evidence, evaluate};
use anyhow::Result;
use jiff::Timestamp;

use crate::cli::{ScanCommand, ScanImageArgs, ScanManifestsArgs, ScanUrlArgs, TrivyArgs};
use crate::input;

pub async fn run(cmd: &ScanCommand) -> Result<u8> {
    match cmd {
        ScanCommand::Image(a) => image(a).await,
        ScanCommand::Manifests(a) => manifests(a).await,
        ScanCommand::Url(a) => url(a).await,
    }
}

pub(crate) fn trivy(a: &TrivyArgs) -> Result<(TrivyScanner, Option<ScanCache>)> {
    let timeout = input::duration(&a.trivy_timeout, "--trivy-timeout")?;
    let scanner = TrivyScanner::new(TrivyConfig {
        binary: a.trivy_bin.clone(),
        cache_dir: a.trivy_cache_dir.clone(),
        server: a.trivy_server.clone(),
        token: a.trivy_token.clone(),
        timeout,
        skip_db_update: a.skip_db_update,
        insecure_registry: a.insecure,
        memory_cache: true,
        image_src: a.image_src.clone(),
    });
    let cache = a.scan_cache_dir.as_ref().map(|d| ScanCache::new(d, Duration::from_secs(24 * 3600)));
    Ok((scanner, cache))
}

async fn image(a: &ScanImageArgs) -> Result<u8> {
    let policy = super::load_policy(&a.policy, Some(&[Source::Trivy]))?;
    let (scanner, cache) = trivy(&a.trivy)?;
    let mut runner = Runner { trivy: Some(scanner), cache, ..Default::default() };
    runner.deadlines.trivy = input::duration(&a.trivy.trivy_timeout, "--trivy-timeout")? + Duration::from_secs(30);
    let side = |refs: &[String]| Targets { images: refs.iter().map(ImageRef::new).collect(), ..Default::default() };
    let baseline = (!a.baseline_images.is_empty()).then(|| side(&a.baseline_images));
    let candidate = side(&a.images);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    runner.progress = Some(tx);
    let (base, cand) = with_progress("scan image", interactive(&a.output), rx, runner.scan(&policy, baseline.as_ref(), &candidate)).await;
    let report = evaluate(&policy, base.as_ref(), &cand, Timestamp::now());
    super::emit(&report, &a.output)
}

/// Await `work` with a live display of the runner's progress (`rx`) on a terminal.
async fn with_progress<T>(
    label: &str,
    interactive: bool,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<aegis_scanners::ScanProgress>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut live = crate::progress::Live::new(label, interactive);
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => live.draw(),
            Some(p) = rx.recv() => live.scan(p),
        }
    };
    live.finish();
    out
}

/// A person reads the output (a table): only then is progress drawn.
fn interactive(out: &crate::cli::OutputArgs) -> bool {
    matches!(out.format, crate::cli::OutputFormat::Table)
}

async fn manifests(a: &ScanManifestsArgs) -> Result<u8> {
    let sources: &[Source] = if a.trivy { &[Source::Manifest, Source::Trivy] } else { &[Source::Manifest] };
    let policy = super::load_policy(&a.policy, Some(sources))?;
    let now = Timestamp::now();
    let mut runs = Vec::new();
    for f in input::expand_manifest_paths(&a.paths)? {
        let bytes = input::read_limited(&f, input::limits::MANIFEST)?;
        let name = f.display().to_string();
        runs.push(evidence::load(EvidenceKind::Manifest, &name, &bytes, Side::Candidate, &policy, &LoadOptions::default(), now));
    }
    if a.trivy {
        let (scanner, _) = trivy(&a.trivy_args)?;
        for p in &a.paths {
            runs.push(scanner.scan_config(p, Side::Candidate).await);
        }
    }
    let report = evaluate(&policy, None, &Evidence::new(runs), now);
    super::emit(&report, &a.output)
}

async fn url(a: &ScanUrlArgs) -> Result<u8> {
    let policy = super::load_policy(&a.policy, Some(&[Source::Zap]))?;
    let phase = input::duration(&a.phase_timeout, "--phase-timeout")?;
    let client = ZapClient::new(&a.zap, a.zap_api_key.clone(), Duration::from_secs(60))?;
    let opts = ZapScanOptions {
        ajax_spider: a.ajax_spider,
        active_scan: a.active,
        spider_timeout: phase,
        passive_timeout: phase,
        active_timeout: phase * 5,
        ..Default::default()
    };
    let mut runner = Runner { zap: Some((client, opts)), ..Default::default() };
    runner.deadlines.zap = phase * 10;
    let targets = Targets { url: Some(a.url.clone()), ..Default::default() };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    runner.progress = Some(tx);
    let (_, cand) = with_progress("scan url", interactive(&a.output), rx, runner.scan(&policy, None, &targets)).await;
    let report = evaluate(&policy, None, &cand, Timestamp::now());
    super::emit(&report, &a.output)
}
