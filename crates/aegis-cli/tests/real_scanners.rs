//! `aegis` with the real Trivy (v0.74.0), the project's own vulnerability DB and the local registry
//! (scripts/tools.sh + scripts/harness/scanners.sh). Fails loudly without that environment.

use std::path::PathBuf;
use std::process::{Command, Output};

use aegis_testkit::{harness_env, repo_root};
use serde_json::Value;

fn aegis() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aegis"));
    c.current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env("AEGIS_TRIVY_BIN", harness_env("AEGIS_TRIVY_BIN"))
        .env("AEGIS_TRIVY_CACHE_DIR", harness_env("AEGIS_TRIVY_CACHE_DIR"));
    c
}

fn image(tag: &str) -> String {
    format!("{}/demo-api:{tag}", harness_env("AEGIS_REGISTRY"))
}

fn scan(candidate: &str, baseline: &str) -> (Output, Value) {
    let out = aegis()
        .args(["scan", "image", &image(candidate), "--baseline-image", &image(baseline)])
        .args(["--skip-db-update", "--image-src", "remote", "-o", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    (out, report)
}

fn ids(report: &Value, list: &str) -> Vec<String> {
    report["findings"][list].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn upgrading_v1_to_v2_resolves_the_vulnerability_and_passes() {
    let (out, report) = scan("v2", "v1");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["verdict"], "passed");
    assert_eq!(ids(&report, "resolved"), vec!["CVE-2099-1001"]);
    assert!(ids(&report, "new").is_empty());
    let trivy = report["scanners"].as_array().unwrap().iter().find(|s| s["side"] == "candidate").unwrap();
    assert!(trivy["tool_version"].as_str().unwrap().starts_with("0.74.0"), "{trivy}");
}

#[test]
fn going_back_from_v2_to_v1_brings_the_vulnerability_back_as_new_and_blocks() {
    let (out, report) = scan("v1", "v2");
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["verdict"], "blocked");
    assert_eq!(ids(&report, "new"), vec!["CVE-2099-1001"]);
    let reason = &report["reasons"][0];
    assert_eq!(reason["rule"], "trivy.fail_on");
    assert!(reason["message"].as_str().unwrap().contains("CVE-2099-1001 (openssl)"), "{reason}");
}

#[test]
fn a_candidate_that_downgrades_zlib_introduces_a_new_critical_and_blocks() {
    let (out, report) = scan("v3", "v2");
    assert_eq!(out.status.code(), Some(1));
    let new = &report["findings"]["new"][0];
    assert_eq!((new["id"].as_str(), new["severity"].as_str()), (Some("CVE-2099-1002"), Some("CRITICAL")));
}

fn trivy_config(dir: &str) -> PathBuf {
    let out_dir = tempfile::tempdir().unwrap().keep();
    let report = out_dir.join(format!("{}.json", dir.replace('/', "-")));
    let status = Command::new(harness_env("AEGIS_TRIVY_BIN"))
        .args(["config", "--quiet", "--format", "json", "--skip-check-update", "--disable-telemetry", "--cache-dir"])
        .arg(harness_env("AEGIS_TRIVY_CACHE_DIR"))
        .arg("--output")
        .arg(&report)
        .arg(repo_root().join("tests/fixtures/manifests").join(dir))
        .status()
        .unwrap();
    assert!(status.success());
    report
}

#[test]
fn real_trivy_config_output_blocks_an_insecure_manifest_and_passes_a_hardened_one() {
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(policy.path(), "zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let gate = |report: &PathBuf| {
        let out =
            aegis().args(["gate", "--policy"]).arg(policy.path()).arg("--candidate").arg(report).args(["-o", "json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, insecure) = gate(&trivy_config("insecure"));
    assert_eq!(code, Some(1), "{insecure:#}");
    let blocked: Vec<&str> = insecure["findings"]["new"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "HIGH")
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for id in ["KSV-0017", "KSV-0009", "KSV-0005"] {
        assert!(blocked.contains(&id), "{id} (privileged / host network / SYS_ADMIN) missing from {blocked:?}");
    }
    let (code, hardened) = gate(&trivy_config("hardened"));
    assert!(matches!(code, Some(0) | Some(2)), "hardened must pass: {hardened:#}");
    assert!(hardened["findings"]["new"].as_array().unwrap().iter().all(|f| f["severity"] != "HIGH" && f["severity"] != "CRITICAL"));
}

#[test]
fn aegis_scan_manifests_runs_real_trivy_config_beside_the_built_in_checks() {
    let out = aegis()
        .args(["scan", "manifests", "--trivy", "-o", "json"])
        .arg(repo_root().join("tests/fixtures/manifests/insecure"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources: std::collections::BTreeSet<&str> =
        v["findings"]["new"].as_array().unwrap().iter().map(|f| f["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["manifest", "trivy"].into_iter().collect());
}
