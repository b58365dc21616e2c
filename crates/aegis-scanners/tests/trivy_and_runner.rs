//! Trivy's fail-closed paths and the runner's guarantees, with fake `trivy` binaries (shell scripts
//! that answer like Trivy, hang, crash or lie). The real Trivy runs in the scanner-harness tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aegis_model::{RunStatus, Side, Source, Verdict};
use aegis_scanners::cache::ScanCache;
use aegis_scanners::trivy::{TrivyConfig, TrivyScanner};
use aegis_scanners::{ImageRef, Runner, Targets};
use aegis_security::{GatePolicy, Policy, evaluate};

/// A minimal, real-format Trivy image report for the scanned reference, with one HIGH vulnerability
/// and the digest taken from `ref@sha256:...` when the reference has one.
const REPORT: &str = r#"{"SchemaVersion":2,"Trivy":{"Version":"0.0.0-fake"},"ArtifactName":"__REF__","ArtifactType":"container_image","Metadata":{"RepoDigests":["__REPO__@__DIGEST__"]},"Results":[{"Target":"__REF__ (alpine 3.19.1)","Class":"os-pkgs","Type":"alpine","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-0001","PkgName":"openssl","InstalledVersion":"3.1.4-r0","FixedVersion":"3.1.5-r0","Status":"fixed","Severity":"HIGH","Title":"test vulnerability"}]}]}"#;

/// Write a fake trivy whose scan behaviour is `body` (shell), logging each scan to `log`.
fn fake_trivy(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("trivy");
    let log = dir.join("scans.log");
    let report = dir.join("report.tmpl");
    std::fs::write(&report, REPORT).unwrap();
    let script = format!(
        r#"#!/bin/sh
# A stand-in for trivy: same arguments, same JSON shape.
case "$1" in --version) echo "version" >> {log}; echo '{{"Version":"0.0.0-fake","VulnerabilityDB":{{"UpdatedAt":"2026-11-01T00:00:00Z"}}}}'; exit 0;; esac
for a in "$@"; do [ "$a" = "--download-db-only" ] && exit 0; done
for a in "$@"; do ref="$a"; done
repo="${{ref%@*}}"; digest="sha256:0000"; case "$ref" in *@*) digest="${{ref#*@}}";; esac
echo "start $ref $(date +%s%N)" >> {log}
{body}
echo "end $ref $(date +%s%N)" >> {log}
"#,
        log = log.display(),
    );
    let body = script.replace("REPORT_TMPL", &report.display().to_string());
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

const EMIT_REPORT: &str = r#"sed -e "s#__REF__#$ref#g" -e "s#__REPO__#$repo#g" -e "s#__DIGEST__#$digest#g" REPORT_TMPL"#;

fn scanner(bin: PathBuf, timeout: Duration) -> TrivyScanner {
    TrivyScanner::new(TrivyConfig { binary: bin, timeout, ..Default::default() })
}

fn scans(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("scans.log")).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The reason a fake trivy behaving as `body` fails the run. The timeout is generous: a shell script
/// on a busy 2-core CI machine took over a second to say nothing (the run then failed as "did not
/// finish", not for the reason under test). Only the hanging case needs a short one.
async fn failure(body: &str) -> String {
    failure_within(body, Duration::from_secs(30)).await
}

async fn failure_within(body: &str, timeout: Duration) -> String {
    let dir = tempfile::tempdir().unwrap();
    let t = scanner(fake_trivy(dir.path(), body), timeout);
    let run = t.scan_image("demo:v1", Side::Candidate).await;
    match run.status {
        RunStatus::Failed { reason } => reason,
        other => panic!("expected a failed run for {body:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_trivy_binary_fails_the_run() {
    let t = scanner(PathBuf::from("/nonexistent/bin/trivy"), Duration::from_secs(5));
    let run = t.scan_image("demo:v1", Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("not found")), "{:?}", run.status);
}

#[tokio::test]
async fn a_hanging_trivy_is_killed_and_fails_the_run() {
    let reason = failure_within("sleep 60", Duration::from_secs(1)).await;
    assert!(reason.contains("did not finish"), "{reason}");
}

#[tokio::test]
async fn a_crashing_trivy_fails_the_run_with_its_stderr() {
    let reason = failure("echo 'FATAL image scan error: unable to initialize' >&2; exit 1").await;
    assert!(reason.contains("exit code 1") && reason.contains("FATAL image scan error"), "{reason}");
}

#[tokio::test]
async fn empty_garbage_and_truncated_output_fail_the_run() {
    let cases = [
        ("true".to_owned(), "empty output"),
        ("echo 'panic: runtime error'".to_owned(), "not valid JSON"),
        (format!("{EMIT_REPORT} | head -c 150"), "not valid JSON"),
        ("echo '{\"SchemaVersion\": 2, \"Results\": [{\"Vulnerabilities\": [{\"Severity\": \"HIGH\"}]}]}'".to_owned(), "not valid JSON"),
    ];
    for (body, expected) in cases {
        let reason = failure(&body).await;
        assert!(reason.contains(expected), "{body}: {reason}");
    }
}

#[tokio::test]
async fn a_well_behaved_trivy_gives_findings_version_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    let t = scanner(fake_trivy(dir.path(), EMIT_REPORT), Duration::from_secs(10));
    let run = t.scan_image("demo@sha256:abc", Side::Baseline).await;
    assert_eq!(run.status, RunStatus::Ok, "{:?}", run.notes);
    assert_eq!(run.findings.len(), 1);
    assert_eq!(run.tool_version.as_deref(), Some("0.0.0-fake (db 2026-11-01T00:00:00Z)"));
    assert_eq!(aegis_scanners::trivy::scanned_digest(&run), Some("sha256:abc"));
}

fn trivy_policy() -> GatePolicy {
    let p = Policy::from_yaml("zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    GatePolicy::compile(p, |_| Err("none".into())).unwrap()
}

fn targets(images: &[&str]) -> Targets {
    Targets { images: images.iter().map(|i| ImageRef::new(*i)).collect(), ..Default::default() }
}

#[tokio::test]
async fn an_image_both_sides_share_is_scanned_once_and_reported_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner { trivy: Some(scanner(fake_trivy(dir.path(), EMIT_REPORT), Duration::from_secs(10))), ..Default::default() };
    let policy = trivy_policy();
    let (base, cand) = runner.scan(&policy, Some(&targets(&["demo:v1"])), &targets(&["demo:v1"])).await;
    let starts = scans(dir.path()).iter().filter(|l| l.starts_with("start")).count();
    assert_eq!(starts, 1, "one scan for one image");
    let base = base.unwrap();
    assert_eq!(base.runs.len(), 1);
    assert_eq!(cand.runs.len(), 1);
    let report = evaluate(&policy, Some(&base), &cand, jiff::Timestamp::now());
    assert!(report.findings.new.is_empty(), "the same image has nothing new");
    assert_eq!(report.verdict, Verdict::Passed);
}

#[tokio::test]
async fn a_digest_scanned_before_is_served_from_the_cache_not_rescanned() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let runner = Runner {
        trivy: Some(scanner(fake_trivy(dir.path(), EMIT_REPORT), Duration::from_secs(10))),
        cache: Some(ScanCache::new(cache_dir.path(), Duration::from_secs(3600))),
        ..Default::default()
    };
    let policy = trivy_policy();
    let image = "registry.local/demo@sha256:1111";
    let (_, first) = runner.scan(&policy, None, &targets(&[image])).await;
    let (_, second) = runner.scan(&policy, None, &targets(&[image])).await;
    assert_eq!(scans(dir.path()).iter().filter(|l| l.starts_with("start")).count(), 1);
    assert_eq!(first.runs[0].findings, second.runs[0].findings);
    assert!(second.runs[0].notes.iter().any(|n| n.contains("digest cache")), "{:?}", second.runs[0].notes);
}

#[tokio::test]
async fn different_images_are_scanned_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("sleep 1; {EMIT_REPORT}");
    let runner = Runner { trivy: Some(scanner(fake_trivy(dir.path(), &body), Duration::from_secs(20))), ..Default::default() };
    let (base, cand) = runner.scan(&trivy_policy(), Some(&targets(&["demo:v1"])), &targets(&["demo:v2"])).await;
    assert!(base.unwrap().runs[0].status.is_ok() && cand.runs[0].status.is_ok());
    // Both scans started before either ended: they overlapped.
    let log = scans(dir.path());
    let first_end = log.iter().position(|l| l.starts_with("end")).unwrap();
    assert_eq!(log[..first_end].iter().filter(|l| l.starts_with("start")).count(), 2, "{log:?}");
}

#[tokio::test]
async fn a_required_scanner_that_is_not_configured_blocks_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner { trivy: Some(scanner(fake_trivy(dir.path(), EMIT_REPORT), Duration::from_secs(10))), ..Default::default() };
    let p = Policy::from_yaml("trivy: {fail_on: [], warn_on: []}\nmanifest: {mode: off}\n").unwrap(); // zap + falco required
    let policy = GatePolicy::compile(p, |_| Err("none".into())).unwrap();
    let (_, cand) = runner.scan(&policy, None, &targets(&["demo:v1"])).await;
    let report = evaluate(&policy, None, &cand, jiff::Timestamp::now());
    assert_eq!(report.verdict, Verdict::Error);
    let reasons: Vec<_> = report.reasons.iter().map(|r| (r.scanner, r.message.clone())).collect();
    assert!(reasons.iter().any(|(s, m)| *s == Some(Source::Zap) && m.contains("no ZAP daemon configured")), "{reasons:?}");
    assert!(reasons.iter().any(|(s, m)| *s == Some(Source::Falco) && m.contains("no Falco alert store")), "{reasons:?}");
}

#[tokio::test]
async fn a_scanner_past_its_deadline_fails_without_holding_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = Runner { trivy: Some(scanner(fake_trivy(dir.path(), "sleep 60"), Duration::from_secs(120))), ..Default::default() };
    runner.deadlines.trivy = Duration::from_millis(500);
    let p = Policy::from_yaml("zap: {mode: off}\nfalco: {mode: off}\n").unwrap();
    let policy = GatePolicy::compile(p, |_| Err("none".into())).unwrap();
    let mut t = targets(&["demo:v1"]);
    t.manifests.push(aegis_scanners::ManifestSource {
        name: "pod.yaml".into(),
        text: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x:1}]\n".into(),
    });
    let (_, cand) = runner.scan(&policy, None, &t).await;
    let trivy = cand.runs.iter().find(|r| r.scanner == Source::Trivy).unwrap();
    assert!(matches!(trivy.status, RunStatus::Failed { ref reason } if reason.contains("deadline")), "{:?}", trivy.status);
    assert!(cand.runs.iter().find(|r| r.scanner == Source::Manifest).unwrap().status.is_ok());
}

#[tokio::test]
async fn trivy_is_asked_its_version_once_for_many_scans() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner { trivy: Some(scanner(fake_trivy(dir.path(), EMIT_REPORT), Duration::from_secs(10))), ..Default::default() };
    let (_, cand) = runner.scan(&trivy_policy(), None, &targets(&["a:1", "b:1", "c:1"])).await;
    assert!(cand.runs.iter().all(|r| r.status.is_ok() && r.tool_version.is_some()));
    let log = scans(dir.path());
    assert_eq!(log.iter().filter(|l| l.starts_with("start")).count(), 3);
    assert_eq!(log.iter().filter(|l| *l == "version").count(), 1, "{log:?}");
}
