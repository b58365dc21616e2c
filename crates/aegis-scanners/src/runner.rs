//! The runner: the only place that schedules scanners.
//!
//! It scans the baseline (production as it is) and the candidate (the fix) with every scanner the
//! policy enables, all at once, each under its own deadline. An image is scanned once per digest: an
//! image both sides share is scanned once and reported on both sides, and digests scanned before are
//! served from the on-disk cache. A scanner the policy requires but that is not configured produces a
//! `skipped` run with the reason, which the gate treats as missing evidence.

use std::collections::HashMap;
use std::time::Duration;

use aegis_model::{RunStatus, ScannerRun, Side, Source};
use aegis_security::evidence::{EvidenceKind, LoadOptions, load};
use aegis_security::policy::Mode;
use aegis_security::{Evidence, GatePolicy};
use jiff::Timestamp;
use tokio::task::JoinSet;

use crate::cache::ScanCache;
use crate::falco::{FalcoStore, window_evidence};
use crate::trivy::{TrivyScanner, scanned_digest};
use crate::zap::{ZapClient, ZapScanOptions};

/// An image to scan. With a digest (from a pod's `imageID`, or `ref@sha256:…`) the cache can answer
/// before any scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub reference: String,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn new(reference: impl Into<String>) -> Self {
        let reference = reference.into();
        let digest = reference.split_once('@').map(|(_, d)| d.to_owned());
        ImageRef { reference, digest }
    }

    /// What identifies the scanned content: the digest when known, else the reference.
    fn identity(&self) -> String {
        self.digest.clone().unwrap_or_else(|| self.reference.clone())
    }
}

/// A manifest to check, by name and text.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    pub name: String,
    pub text: String,
}

/// The Falco window of one side.
#[derive(Debug, Clone)]
pub struct FalcoWindow {
    pub namespace: String,
    pub since: Timestamp,
    pub until: Timestamp,
}

/// What one side consists of.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub images: Vec<ImageRef>,
    pub manifests: Vec<ManifestSource>,
    /// A URL to scan with ZAP.
    pub url: Option<String>,
    pub falco: Option<FalcoWindow>,
}

/// Deadlines per scanner (the whole scanner run, including retries inside it).
#[derive(Debug, Clone)]
pub struct Deadlines {
    pub trivy: Duration,
    pub zap: Duration,
    pub falco: Duration,
    pub manifest: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            trivy: Duration::from_secs(600),
            zap: Duration::from_secs(900),
            falco: Duration::from_secs(30),
            manifest: Duration::from_secs(30),
        }
    }
}

/// What the scanners are doing, for a live display. Sending never blocks a scan, and a display that
/// went away is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanProgress {
    /// A scanner started on a target.
    Started { scanner: Source, side: Side, target: String },
    /// A phase of a scanner and how far it is (ZAP's spider, passive and active scans).
    Phase { scanner: Source, phase: &'static str, percent: Option<u32> },
    /// A scanner finished on a target: `ok`, or why not.
    Finished { scanner: Source, side: Side, target: String, outcome: String },
}

/// Where a runner reports its progress.
pub type ProgressSender = tokio::sync::mpsc::UnboundedSender<ScanProgress>;

/// Send `p` if someone listens.
pub(crate) fn report(to: Option<&ProgressSender>, p: ScanProgress) {
    if let Some(tx) = to {
        let _ = tx.send(p);
    }
}

fn outcome(status: &RunStatus) -> String {
    match status {
        RunStatus::Ok => "ok".into(),
        RunStatus::Incomplete { reason } => format!("incomplete: {reason}"),
        RunStatus::Skipped { reason } => format!("skipped: {reason}"),
        RunStatus::Failed { reason } => format!("failed: {reason}"),
    }
}

/// The configured scanners.
#[derive(Clone, Default)]
pub struct Runner {
    pub trivy: Option<TrivyScanner>,
    pub zap: Option<(ZapClient, ZapScanOptions)>,
    pub falco: Option<FalcoStore>,
    pub cache: Option<ScanCache>,
    pub deadlines: Deadlines,
    /// Where to report what the scanners are doing (a terminal's progress display).
    pub progress: Option<ProgressSender>,
}

/// One unit of scanning work. Each job carries its configured scanner, so a job for a scanner that is
/// not configured cannot exist.
enum Job {
    Image(TrivyScanner, ImageRef),
    Manifests(Side, Vec<ManifestSource>),
    Zap(ZapClient, ZapScanOptions, Side, String),
    Falco(FalcoStore, Side, FalcoWindow),
}

impl Runner {
    /// Scan both sides concurrently. `baseline: None` gives `None` back (every finding will be new).
    pub async fn scan(&self, policy: &GatePolicy, baseline: Option<&Targets>, candidate: &Targets) -> (Option<Evidence>, Evidence) {
        let p = &policy.policy;
        let sides: Vec<(Side, &Targets)> =
            baseline.map(|b| (Side::Baseline, b)).into_iter().chain([(Side::Candidate, candidate)]).collect();
        let mut runs: Vec<ScannerRun> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        // Which sides asked for each image identity.
        let mut image_sides: HashMap<String, Vec<(Side, ImageRef)>> = HashMap::new();

        for (side, t) in &sides {
            let side = *side;
            if p.trivy.mode != Mode::Off {
                match &self.trivy {
                    None => runs.push(skipped(Source::Trivy, side, "images", "Trivy is not configured")),
                    Some(_) if t.images.is_empty() => {
                        runs.push(skipped(Source::Trivy, side, "images", "no images to scan"));
                    }
                    Some(_) => {
                        for img in &t.images {
                            image_sides.entry(img.identity()).or_default().push((side, img.clone()));
                        }
                    }
                }
            }
            if p.manifest.mode != Mode::Off {
                if t.manifests.is_empty() {
                    runs.push(skipped(Source::Manifest, side, "manifests", "no manifests to check"));
                } else {
                    jobs.push(Job::Manifests(side, t.manifests.clone()));
                }
            }
            if p.zap.mode != Mode::Off {
                match (&self.zap, &t.url) {
                    (None, _) => runs.push(skipped(Source::Zap, side, t.url.as_deref().unwrap_or("url"), "no ZAP daemon configured")),
                    (_, None) => runs.push(skipped(Source::Zap, side, "url", "no URL to scan (the workload serves no HTTP?)")),
                    (Some((client, opts)), Some(url)) => jobs.push(Job::Zap(client.clone(), opts.clone(), side, url.clone())),
                }
            }
            if p.falco.mode != Mode::Off {
                match (&self.falco, &t.falco) {
                    (None, _) => runs.push(skipped(Source::Falco, side, "namespace", "no Falco alert store configured")),
                    (_, None) => {
                        // Falco watches the running candidate; a baseline without a window is normal.
                        if side == Side::Candidate {
                            runs.push(skipped(Source::Falco, side, "namespace", "no namespace window to query"));
                        }
                    }
                    (Some(store), Some(w)) => jobs.push(Job::Falco(store.clone(), side, w.clone())),
                }
            }
        }

        // Images: refresh the vulnerability DB once (the scans then only read it), read the scanner's
        // version (with the DB date: part of the cache key), answer from the cache where the digest is
        // known, and scan each remaining identity once.
        let mut trivy_version = None;
        let mut to_scan: Vec<(String, ImageRef)> = Vec::new();
        if let (Some(trivy), false) = (&self.trivy, image_sides.is_empty()) {
            let ready = match trivy.prepare_db().await {
                Ok(()) => Ok(()),
                Err(e) => Err(format!("vulnerability DB update failed: {e}")),
            };
            match ready {
                Err(reason) => {
                    for wanted in image_sides.values() {
                        for (side, img) in wanted {
                            runs.push(ScannerRun::failed(Source::Trivy, *side, &img.reference, Timestamp::now(), reason.clone()));
                        }
                    }
                }
                Ok(()) => {
                    trivy_version = match &self.cache {
                        Some(_) => trivy.version().await.ok().map(|v| v.label()),
                        None => None,
                    };
                    for (identity, wanted) in &image_sides {
                        let cached = match (&self.cache, &trivy_version, &wanted[0].1.digest) {
                            (Some(cache), Some(version), Some(digest)) => cache.get(&ScanCache::key(digest, version), Timestamp::now()),
                            _ => None,
                        };
                        match cached {
                            Some(run) => {
                                for (side, img) in wanted {
                                    runs.push(for_side(&run, *side, img, "served from the digest cache (not rescanned)"));
                                }
                            }
                            None => to_scan.push((identity.clone(), wanted[0].1.clone())),
                        }
                    }
                }
            }
        }
        if let Some(trivy) = &self.trivy {
            jobs.extend(to_scan.into_iter().map(|(_, img)| Job::Image(trivy.clone(), img)));
        }

        let mut set: JoinSet<(Option<String>, ScannerRun)> = JoinSet::new();
        for job in jobs {
            let runner = self.clone();
            let policy = policy.clone();
            set.spawn(async move { runner.run_job(job, &policy).await });
        }
        while let Some(done) = set.join_next().await {
            match done {
                Ok((Some(identity), run)) => {
                    // An image scan: record it for every side that asked, and cache it by digest.
                    if let (Some(cache), Some(version), Some(digest)) =
                        (&self.cache, &trivy_version, scanned_digest(&run).map(str::to_owned))
                        && let Err(e) = cache.put(&ScanCache::key(&digest, version), &run, Timestamp::now())
                    {
                        tracing::warn!(error = %e, "could not write the scan cache");
                    }
                    let wanted = &image_sides[&identity];
                    for (i, (side, img)) in wanted.iter().enumerate() {
                        let note = if i == 0 { "" } else { "same image as the other side: scanned once" };
                        runs.push(for_side(&run, *side, img, note));
                    }
                }
                Ok((None, run)) => runs.push(run),
                Err(e) => runs.push(ScannerRun::failed(
                    Source::Trivy,
                    Side::Candidate,
                    "scanner task",
                    Timestamp::now(),
                    format!("scanner task panicked: {e}"),
                )),
            }
        }

        runs.sort_by(|a, b| (a.side, a.scanner, &a.target).cmp(&(b.side, b.scanner, &b.target)));
        let (base, cand): (Vec<_>, Vec<_>) = runs.into_iter().partition(|r| r.side == Side::Baseline);
        (baseline.map(|_| Evidence::new(base)), Evidence::new(cand))
    }

    /// Scan one side only (the other side is scanned at another time, e.g. the baseline before a fix
    /// is applied and the candidate after it).
    pub async fn scan_side(&self, policy: &GatePolicy, side: Side, targets: &Targets) -> Evidence {
        let (_, mut evidence) = self.scan(policy, None, targets).await;
        for run in &mut evidence.runs {
            run.side = side;
        }
        evidence
    }

    async fn run_job(&self, job: Job, policy: &GatePolicy) -> (Option<String>, ScannerRun) {
        let (scanner, side, target) = match &job {
            Job::Image(_, img) => (Source::Trivy, Side::Candidate, img.reference.clone()),
            Job::Manifests(side, m) => (Source::Manifest, *side, format!("{} manifest(s)", m.len())),
            Job::Zap(_, _, side, url) => (Source::Zap, *side, url.clone()),
            Job::Falco(_, side, w) => (Source::Falco, *side, format!("namespace {}", w.namespace)),
        };
        report(self.progress.as_ref(), ScanProgress::Started { scanner, side, target: target.clone() });
        let (identity, run) = self.run_job_quietly(job, policy).await;
        report(self.progress.as_ref(), ScanProgress::Finished { scanner, side, target, outcome: outcome(&run.status) });
        (identity, run)
    }

    async fn run_job_quietly(&self, job: Job, policy: &GatePolicy) -> (Option<String>, ScannerRun) {
        let d = &self.deadlines;
        match job {
            Job::Image(trivy, img) => {
                let identity = img.identity();
                let run =
                    deadline(d.trivy, Source::Trivy, Side::Candidate, &img.reference, trivy.scan_image(&img.reference, Side::Candidate))
                        .await;
                (Some(identity), run)
            }
            Job::Manifests(side, manifests) => {
                let started = Timestamp::now();
                let fut = async move {
                    let mut merged = ScannerRun::new(Source::Manifest, side, "", started);
                    let mut names = Vec::new();
                    for m in &manifests {
                        let run = load(EvidenceKind::Manifest, &m.name, m.text.as_bytes(), side, policy, &LoadOptions::default(), started);
                        names.push(m.name.clone());
                        match run.status {
                            RunStatus::Failed { reason } | RunStatus::Skipped { reason } => {
                                merged.status = RunStatus::Failed { reason: format!("{}: {reason}", m.name) }
                            }
                            RunStatus::Incomplete { reason } => merged.mark_incomplete(format!("{}: {reason}", m.name)),
                            RunStatus::Ok => {}
                        }
                        merged.tool_version = run.tool_version;
                        merged.findings.extend(run.findings);
                    }
                    merged.target = names.join(", ");
                    merged
                };
                (None, deadline(d.manifest, Source::Manifest, side, "manifests", fut).await)
            }
            Job::Zap(client, mut opts, side, url) => {
                if opts.progress.is_none() {
                    opts.progress = self.progress.clone();
                }
                let rules = policy.zap_rules.clone();
                let target = url.clone();
                (None, deadline(d.zap, Source::Zap, side, &target, async move { client.scan(&url, &opts, &rules, side).await }).await)
            }
            Job::Falco(store, side, w) => {
                let target = format!("namespace {}", w.namespace);
                let fut = async move { window_evidence(&store, &w.namespace, w.since, w.until, side).await };
                (None, deadline(d.falco, Source::Falco, side, &target, fut).await)
            }
        }
    }
}

fn skipped(scanner: Source, side: Side, target: &str, reason: &str) -> ScannerRun {
    ScannerRun::skipped(scanner, side, target, Timestamp::now(), reason)
}

fn for_side(run: &ScannerRun, side: Side, img: &ImageRef, note: &str) -> ScannerRun {
    let mut r = run.clone();
    r.side = side;
    r.target = img.reference.clone();
    if !note.is_empty() {
        r.notes.push(note.to_owned());
    }
    r
}

async fn deadline(
    limit: Duration,
    scanner: Source,
    side: Side,
    target: &str,
    fut: impl std::future::Future<Output = ScannerRun>,
) -> ScannerRun {
    let started = Timestamp::now();
    match tokio::time::timeout(limit, fut).await {
        Ok(run) => run,
        Err(_) => ScannerRun::failed(scanner, side, target, started, format!("did not finish within its {}s deadline", limit.as_secs())),
    }
}
