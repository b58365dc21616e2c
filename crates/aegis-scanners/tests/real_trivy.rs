//! The real Trivy (v0.74.0, built by scripts/tools.sh) against the local registry and the project's
//! own vulnerability DB (scripts/harness). Needs the harness environment; fails loudly without it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aegis_model::{RunStatus, Severity, Side, Source};
use aegis_scanners::cache::ScanCache;
use aegis_scanners::trivy::{TrivyConfig, TrivyScanner, scanned_digest};
use aegis_scanners::{ImageRef, Runner, Targets};
use aegis_security::{GatePolicy, Policy};
use aegis_testkit::harness_env;

fn config() -> TrivyConfig {
    TrivyConfig {
        binary: PathBuf::from(harness_env("AEGIS_TRIVY_BIN")),
        cache_dir: Some(PathBuf::from(harness_env("AEGIS_TRIVY_CACHE_DIR"))),
        skip_db_update: true,
        image_src: Some("remote".into()),
        timeout: Duration::from_secs(120),
        ..Default::default()
    }
}

fn image(tag: &str) -> String {
    format!("{}/demo-api:{tag}", harness_env("AEGIS_REGISTRY"))
}

#[tokio::test]
async fn real_trivy_finds_v1s_vulnerability_with_the_projects_db_and_none_in_v2() {
    let trivy = TrivyScanner::new(config());
    let v1 = trivy.scan_image(&image("v1"), Side::Baseline).await;
    assert_eq!(v1.status, RunStatus::Ok, "{:?} {:?}", v1.status, v1.notes);
    let version = v1.tool_version.clone().unwrap();
    assert!(version.starts_with("0.74.0"), "{version}");
    let cve = v1.findings.iter().find(|f| f.id == "CVE-2099-1001").expect("openssl advisory found in v1");
    assert_eq!(cve.severity, Severity::High);
    let pkg = cve.package.as_ref().unwrap();
    assert_eq!(
        (pkg.name.as_str(), pkg.installed_version.as_deref(), pkg.fixed_version.as_deref()),
        ("openssl", Some("3.5.1-r0"), Some("3.5.2-r0"))
    );
    assert!(scanned_digest(&v1).is_some_and(|d| d.starts_with("sha256:")), "{:?}", v1.notes);

    let v2 = trivy.scan_image(&image("v2"), Side::Candidate).await;
    assert_eq!(v2.status, RunStatus::Ok);
    assert!(v2.findings.iter().all(|f| f.kind != aegis_model::FindingKind::Vulnerability), "{:?}", v2.findings);

    let v3 = trivy.scan_image(&image("v3"), Side::Candidate).await;
    let zlib = v3.findings.iter().find(|f| f.id == "CVE-2099-1002").expect("zlib advisory found in v3");
    assert_eq!(zlib.severity, Severity::Critical);
}

#[tokio::test]
async fn concurrent_real_scans_share_one_cache_dir_and_a_second_verification_is_served_by_digest() {
    let scan_cache = tempfile::tempdir().unwrap();
    let runner = Runner {
        trivy: Some(TrivyScanner::new(config())),
        cache: Some(ScanCache::new(scan_cache.path(), Duration::from_secs(3600))),
        ..Default::default()
    };
    let p = Policy::from_yaml("zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let policy = GatePolicy::compile(p, |_| Err("none".into())).unwrap();
    let targets = |tags: &[&str]| Targets { images: tags.iter().map(|t| ImageRef::new(image(t))).collect(), ..Default::default() };

    // Three real Trivy processes at once on one --cache-dir: no BoltDB lock timeouts.
    let (base, cand) = runner.scan(&policy, Some(&targets(&["v1"])), &targets(&["v2", "v3"])).await;
    let runs: Vec<_> = base.unwrap().runs.into_iter().chain(cand.runs).collect();
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r.status, RunStatus::Ok, "{}: {:?}", r.target, r.status);
    }

    // A second verification names the images by digest (as a pod's imageID does): nothing is rescanned.
    let pinned: Vec<String> =
        runs.iter().map(|r| format!("{}/demo-api@{}", harness_env("AEGIS_REGISTRY"), scanned_digest(r).expect("digest"))).collect();
    let again = Targets { images: pinned.iter().map(ImageRef::new).collect(), ..Default::default() };
    let (_, second) = runner.scan(&policy, None, &again).await;
    assert_eq!(second.runs.len(), 3);
    for r in &second.runs {
        assert!(r.notes.iter().any(|n| n.contains("digest cache")), "{}: {:?}", r.target, r.notes);
    }
    let ids = |runs: &[aegis_model::ScannerRun]| {
        let mut v: Vec<String> = runs.iter().flat_map(|r| r.findings.iter().map(|f| f.id.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&second.runs), ids(&runs));
    assert!(second.runs.iter().all(|r| r.scanner == Source::Trivy));
}

struct TrivyServer(Child);

impl Drop for TrivyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn client_server_mode_scans_with_the_token_and_fails_closed_with_a_wrong_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = config();
    let _server = TrivyServer(
        Command::new(&base.binary)
            .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--token", "s3cret", "--skip-db-update", "--cache-dir"])
            .arg(base.cache_dir.as_ref().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..150 {
        if Command::new("curl").args(["-sf", &format!("{url}/healthz")]).output().is_ok_and(|o| o.status.success()) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "trivy server did not become healthy");

    let client = |token: &str| TrivyScanner::new(TrivyConfig { server: Some(url.clone()), token: Some(token.into()), ..config() });
    let ok = client("s3cret").scan_image(&image("v1"), Side::Candidate).await;
    assert_eq!(ok.status, RunStatus::Ok, "{:?}", ok.status);
    assert!(ok.findings.iter().any(|f| f.id == "CVE-2099-1001"));
    let denied = client("wrong").scan_image(&image("v1"), Side::Candidate).await;
    assert!(matches!(denied.status, RunStatus::Failed { .. }), "a rejected token must fail the run: {:?}", denied.status);
}
