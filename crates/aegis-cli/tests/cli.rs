//! The `aegis` binary as CI and people use it: exit codes, output formats, the Falco receiver process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aegis_testkit as testkit;
use serde_json::Value;

fn aegis() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aegis"));
    c.current_dir(testkit::repo_root()).env_remove("RUST_LOG").env("NO_COLOR", "1");
    c
}

fn examples() -> PathBuf {
    testkit::repo_root().join("examples/gate")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(examples().join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn gate(candidate: &str, extra: &[&str]) -> Output {
    let mut c = aegis();
    c.arg("gate").arg("--policy").arg(examples().join("policy.yaml"));
    c.arg("--baseline").args(files("baseline"));
    c.arg("--candidate").args(files(candidate));
    c.args(["-n", "aegis-shadow-demo"]).args(extra);
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_fix_that_resolves_the_vulnerability_passes_with_exit_0() {
    let out = gate("candidate-fixed", &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("Security Report") && text.contains("PASSED"));
    assert!(text.contains("1 resolved"));
}

#[test]
fn a_regressing_candidate_is_blocked_with_exit_1_and_every_reason() {
    let out = gate("candidate-regressed", &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for needle in ["BLOCKED", "CVE-2099-0003", "AEGIS-K8S-002", "Terminal shell in container", "trivy.fail_on", "manifest.fail_severity"] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn warnings_exit_2_and_missing_required_evidence_exits_3() {
    // Only Trivy evidence with a MEDIUM finding and no exception: passes with a warning.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let out = aegis()
        .args(["gate", "--policy"])
        .arg(&policy)
        .arg("--baseline")
        .arg(examples().join("baseline/trivy-demo-api-v1.json"))
        .arg("--candidate")
        .arg(examples().join("candidate-fixed/trivy-demo-api-v2.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "busybox MEDIUM persists from the baseline: not new");
    let out = aegis()
        .args(["gate", "--policy"])
        .arg(&policy)
        .arg("--candidate")
        .arg(examples().join("candidate-fixed/trivy-demo-api-v2.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "without a baseline the MEDIUM is new and warns: {}", stdout(&out));

    // The default policy requires all four scanners: Trivy evidence alone cannot be evaluated.
    let out = aegis().args(["gate", "--candidate"]).arg(examples().join("candidate-fixed/trivy-demo-api-v2.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("no candidate evidence from OWASP ZAP"));
}

#[test]
fn unreadable_inputs_exit_3_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let out = aegis().args(["gate", "--candidate"]).arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.txt") && err.contains("not recognised"), "{err}");

    let out = aegis().args(["gate", "--candidate", "/nonexistent/report.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/report.json"));

    let bad_policy = dir.path().join("policy.yaml");
    std::fs::write(&bad_policy, "trivy:\n  fail_onn: [LOW]\n").unwrap();
    let out = aegis().args(["gate", "--policy"]).arg(&bad_policy).arg("--candidate").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fail_onn"));

    // A truncated Trivy report is recognised as Trivy's and fails that scanner: could not evaluate.
    let full = std::fs::read(examples().join("candidate-fixed/trivy-demo-api-v2.json")).unwrap();
    let cut = dir.path().join("truncated.json");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let out = aegis().args(["gate", "--policy"]).arg(&policy).arg("--candidate").arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("not valid JSON"), "{}", stdout(&out));

    let big = aegis().args(["gate", "--max-file-mib", "0", "--candidate"]).arg(&cut).output().unwrap();
    assert_eq!(big.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&big.stderr).contains("limit"));
}

#[test]
fn bad_usage_exits_64_and_help_exits_0() {
    assert_eq!(aegis().args(["gate"]).output().unwrap().status.code(), Some(64));
    assert_eq!(aegis().args(["gate", "--frobnicate"]).output().unwrap().status.code(), Some(64));
    assert_eq!(aegis().args(["--help"]).output().unwrap().status.code(), Some(0));
    assert_eq!(aegis().args(["gate", "--help"]).output().unwrap().status.code(), Some(0));
}

#[test]
fn json_output_has_the_documented_top_level_contract() {
    let out = gate("candidate-regressed", &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], "aegis.io/security-report/v1");
    assert_eq!(v["verdict"], "blocked");
    for key in ["summary", "findings", "scanners", "reasons", "warnings", "policy_digest", "evidence_digest"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for list in ["new", "resolved", "persisting"] {
        for f in v["findings"][list].as_array().unwrap() {
            for key in ["source", "id", "severity", "target", "fingerprint"] {
                assert!(f.get(key).is_some(), "{list} finding lacks {key}: {f}");
            }
        }
    }
    assert_eq!(v["summary"]["new"].as_u64().unwrap() as usize, v["findings"]["new"].as_array().unwrap().len());
    // The report validates against the schema the binary publishes (spot-check: verdict enum).
    let schema: Value = serde_json::from_slice(&aegis().args(["schema", "report"]).output().unwrap().stdout).unwrap();
    let verdicts = schema.pointer("/$defs/Verdict").expect("Verdict in schema").to_string();
    for v in ["passed", "passed_with_warnings", "blocked", "error"] {
        assert!(verdicts.contains(v), "{verdicts}");
    }
}

fn node_modules() -> String {
    std::env::var("AEGIS_NODE_MODULES").unwrap_or_else(|_| {
        panic!("\n\n*** AEGIS_NODE_MODULES is not set: run `eval \"$(scripts/tools.sh)\"` (scripts/test.sh does) ***\n")
    })
}

fn validate_sarif(path: &Path) -> Output {
    Command::new("node")
        .arg(testkit::repo_root().join("scripts/validate-sarif.cjs"))
        .arg(path)
        .env("AEGIS_NODE_MODULES", node_modules())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("node (Node.js 20) is needed to validate SARIF")
}

#[test]
fn sarif_output_is_valid_against_the_official_2_1_0_schema() {
    let dir = tempfile::tempdir().unwrap();
    for (candidate, name) in [("candidate-regressed", "regressed.sarif"), ("candidate-fixed", "fixed.sarif")] {
        let path = dir.path().join(name);
        let out = gate(candidate, &["-o", "sarif", "--output-file", path.to_str().unwrap()]);
        assert!(out.status.code().unwrap() <= 2);
        let v = validate_sarif(&path);
        assert!(v.status.success(), "{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["version"], "2.1.0");
        let levels: Vec<&str> = doc["runs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["results"].as_array().unwrap())
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        if candidate == "candidate-regressed" {
            assert!(levels.contains(&"error"));
        }
    }
    // The validator can fail: a document missing `version` is rejected.
    let broken = dir.path().join("broken.sarif");
    std::fs::write(&broken, r#"{"runs": []}"#).unwrap();
    assert!(!validate_sarif(&broken).status.success());
}

#[test]
fn junit_output_has_a_case_per_scanner_and_per_rule_with_failures_for_what_blocked() {
    let out = gate("candidate-regressed", &["-o", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut failed_names, mut skipped) = (0, 0, Vec::new(), Vec::new());
    let mut current = String::new();
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Empty(e) if e.name().0 == "skipped" => skipped.push(current.clone()),
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) if e.name().0 == "testcase" => {
                cases += 1;
                current = e.try_get_attribute("name").unwrap().unwrap().value.into_owned();
            }
            quick_xml::events::Event::Start(e) if e.name().0 == "failure" => {
                failures += 1;
                failed_names.push(current.clone());
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(cases, 5 + 1 + 10, "5 scanner runs + ZAP, off in the policy and shown skipped + 10 gate rules");
    assert_eq!(failures, 3, "{failed_names:?}");
    assert_eq!(skipped, ["candidate zap "], "ZAP, off in the policy, is skipped, not failed");
    for rule in ["trivy.fail_on", "falco.min_priority", "manifest.fail_severity"] {
        assert!(failed_names.iter().any(|n| n == rule), "{failed_names:?}");
    }
}

#[test]
fn scan_manifests_checks_a_directory_and_blocks_a_privileged_workload() {
    let out = aegis().args(["scan", "manifests"]).arg(examples().join("candidate-regressed")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("AEGIS-K8S-002"));
    let out = aegis().args(["scan", "manifests"]).arg(examples().join("baseline/deployment.yaml")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn scan_image_without_trivy_fails_closed_with_exit_3() {
    let out = aegis().args(["scan", "image", "demo:v1", "--trivy-bin", "/nonexistent/trivy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("not found"), "{}", stdout(&out));
}

#[test]
fn falco_serve_receives_stores_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = aegis()
        .args(["falco", "serve", "--listen", &format!("127.0.0.1:{port}"), "--store"])
        .arg(dir.path())
        .args(["--token", "t0ken"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if Command::new("curl").args(["-sf", &format!("{url}/healthz")]).output().is_ok_and(|o| o.status.success()) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "receiver did not come up");
    let alerts = testkit::testdata().join("falco/falcosidekick-readme-example.jsonl");
    let post = |auth: &str| {
        let o = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", auth, "-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", alerts.display()))
            .arg(format!("{url}/"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(post("Authorization: Bearer nope"), "401");
    assert_eq!(post("Authorization: Bearer t0ken"), "200");
    // SIGTERM, as Kubernetes stops a pod.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status:?}");

    let out = aegis().args(["falco", "query", "--store"]).arg(dir.path()).args(["--since", "100000d", "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored.as_array().unwrap().len(), 1);

    // The gate reads what `falco query -o json` printed.
    let printed = dir.path().join("query.json");
    std::fs::write(&printed, &out.stdout).unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "trivy: {mode: off}\nzap: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let gated = aegis().args(["gate", "--policy"]).arg(&policy).arg("--candidate").arg(&printed).args(["-o", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&gated.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&gated.stderr)));
    assert_eq!(report["scanners"][0]["scanner"], "falco", "{report}");
    assert_eq!(report["scanners"][0]["status"]["state"], "ok", "{report}");

    // A read-only store is read; a mistyped path is an error, not an empty store.
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        let mut perms = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
        std::fs::set_permissions(&p, perms).unwrap();
    }
    let out = aegis().args(["falco", "query", "--count", "--store"]).arg(dir.path()).args(["--since", "100000d"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{}", String::from_utf8_lossy(&out.stderr));
    let typo = dir.path().join("no-such-store");
    let out = aegis().args(["falco", "query", "--store"]).arg(&typo).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no alert store"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!typo.exists(), "nothing is created at a mistyped path");
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.path(), perms).unwrap();
}

#[test]
fn the_published_json_schemas_are_what_the_binary_prints() {
    for (which, file) in [
        ("report", "docs/schemas/security-report.v1.json"),
        ("policy", "docs/schemas/policy.v1alpha1.json"),
        ("fix", "docs/schemas/fix.v1alpha1.json"),
    ] {
        let printed = aegis().args(["schema", which]).output().unwrap();
        assert_eq!(printed.status.code(), Some(0));
        let published = std::fs::read(testkit::repo_root().join(file)).unwrap();
        let a: Value = serde_json::from_slice(&printed.stdout).unwrap();
        let b: Value = serde_json::from_slice(&published).unwrap();
        assert_eq!(a, b, "{file} is stale: regenerate with `aegis schema {which} > {file}`");
    }
}

#[test]
fn analyze_reads_a_captured_list_and_prints_incidents_as_json_yaml_or_panels() {
    let file = testkit::repo_root().join("examples/incidents/service-selector-typo.yaml");
    let out = aegis().arg("analyze").arg("--snapshot").arg(&file).args(["-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = &v["incidents"][0];
    assert_eq!(i["category"], "ServiceSelectorMismatch");
    assert_eq!(i["resource"], serde_json::json!({"kind": "Service", "namespace": "corpus-service-selector-typo", "name": "web"}));
    assert_eq!(i["fix"]["type"], "set-service-selector");
    for key in ["root_cause", "evidence", "confidence", "severity", "verification_plan"] {
        assert!(i.get(key).is_some(), "{key}");
    }
    let table = aegis().arg("analyze").arg("--snapshot").arg(&file).output().unwrap();
    let text = stdout(&table);
    let order: Vec<usize> = ["Root Cause Analysis", "Proposed Fix", "Verification Plan"].iter().map(|h| text.find(h).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    let yaml = aegis().arg("analyze").arg("--snapshot").arg(&file).args(["-o", "yaml"]).output().unwrap();
    assert!(stdout(&yaml).starts_with("incidents:"));
}

/// A manual fix is never applied, so nothing is verified in a shadow (the operator marks such an
/// incident Failed with the guidance; `--verify` skips it): the panel must not promise a watch.
#[test]
fn a_manual_fix_promises_no_shadow_verification_in_the_incident_panel() {
    let file = testkit::repo_root().join("examples/incidents/hpa-at-max-replicas.yaml");
    let text = stdout(&aegis().arg("analyze").arg("--snapshot").arg(&file).output().unwrap());
    let plan = &text[text.find("Verification Plan").expect(&text)..];
    assert!(!plan.contains("in a shadow") && !plan.contains('✓'), "{plan}");
    assert!(plan.contains("nothing for AEGIS to apply or verify"), "{plan}");
    let typed = stdout(
        &aegis()
            .arg("analyze")
            .arg("--snapshot")
            .arg(testkit::repo_root().join("examples/incidents/service-selector-typo.yaml"))
            .output()
            .unwrap(),
    );
    assert!(typed.contains("in a shadow"), "a typed fix keeps its plan: {typed}");
}

#[test]
fn analyze_exits_0_without_incidents_and_3_on_an_unreadable_snapshot() {
    let healthy =
        aegis().arg("analyze").arg("--snapshot").arg(testkit::repo_root().join("examples/incidents/healthy.yaml")).output().unwrap();
    assert_eq!(healthy.status.code(), Some(0));
    assert!(stdout(&healthy).contains("No incidents found."));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: List\nitems: [{kind: Pod, apiVersion: v1, metadata: {name: p}, spec: {containers: 7}}]\n").unwrap();
    let out = aegis().arg("analyze").arg("--snapshot").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Pod \"p\""));
}

#[test]
fn a_malformed_falco_alert_beside_a_heartbeat_exits_3_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let falco = dir.path().join("falco.jsonl");
    std::fs::write(
        &falco,
        concat!(
            r#"{"output":"metrics","priority":"Informational","rule":"Falco internal: metrics snapshot","source":"internal","time":"2026-11-26T11:59:00Z","output_fields":{}}"#,
            "\n",
            r#"{"output":"shell","priority":"Critical","rule":"Terminal shell in container","output_fields":{"k8s.ns.name":"aegis-shadow-demo"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "trivy: {mode: off}\nzap: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let out = aegis()
        .args(["gate", "--policy"])
        .arg(&policy)
        .arg("--candidate")
        .arg(&falco)
        .args(["-n", "aegis-shadow-demo", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "error");
    let reason = report["reasons"][0]["message"].as_str().unwrap();
    assert!(reason.contains("line 2") && reason.contains("time"), "{reason}");
}

/// Devices, FIFOs and other files that are not regular files would bypass the size limits (`/dev/zero`
/// never ends, a FIFO blocks): every file the CLI reads refuses them, naming the file.
#[test]
fn files_that_are_not_regular_files_are_refused_wherever_a_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let report = examples().join("candidate-fixed/trivy-demo-api-v2.json");
    let fix = dir.path().join("fix.yaml");
    std::fs::write(&fix, "type: restart\n").unwrap();
    let cases: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
        ("evidence", vec!["gate".into(), "--candidate".into(), "/dev/zero".into()]),
        ("evidence (FIFO)", vec!["gate".into(), "--candidate".into(), fifo.clone().into()]),
        ("--policy", vec!["gate".into(), "--policy".into(), "/dev/zero".into(), "--candidate".into(), report.clone().into()]),
        ("--trivyignore", vec!["gate".into(), "--trivyignore".into(), fifo.clone().into(), "--candidate".into(), report.clone().into()]),
        ("--snapshot", vec!["analyze".into(), "--snapshot".into(), "/dev/zero".into()]),
    ];
    for (what, args) in cases {
        let mut c = aegis();
        c.args(&args).stdin(Stdio::null());
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{what}: {err}");
    }
}

#[test]
fn numbers_too_large_are_usage_errors_not_panics() {
    let report = examples().join("candidate-fixed/trivy-demo-api-v2.json");
    let out = aegis().args(["gate", "--max-file-mib", "18446744073709551615", "--candidate"]).arg(&report).output().unwrap();
    assert_ne!(out.status.code(), Some(101), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(matches!(out.status.code(), Some(0..=3) | Some(64)), "{:?}", out.status);
}

/// A scanner title carrying escape sequences and a line break cannot forge a verdict on the terminal.
#[test]
fn escape_sequences_in_evidence_cannot_forge_the_verdict_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("trivy.json");
    let title = "bad\\u001b[2K\\r\\nVerdict:   PASSED\\u001b[8m";
    std::fs::write(
        &report,
        format!(
            r#"{{"SchemaVersion":2,"ArtifactName":"x:1","ArtifactType":"container_image","Results":[{{"Target":"x:1 (alpine 3.20.0)","Class":"os-pkgs","Type":"alpine","Vulnerabilities":[{{"VulnerabilityID":"CVE-2099-7","PkgName":"p","Severity":"CRITICAL","Title":"{title}"}}]}}]}}"#
        ),
    )
    .unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap();
    let out = aegis().args(["gate", "--policy"]).arg(&policy).arg("--candidate").arg(&report).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "no escape reaches the terminal:\n{text}");
    let verdicts: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("Verdict:")).collect();
    assert_eq!(verdicts, ["Verdict:   BLOCKED"], "{text}");
}

/// `aegis analyze --lint`: hygiene findings, not incidents, exit 0.
#[test]
fn lint_reports_unused_config_maps_without_making_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("ns.json");
    std::fs::write(
        &snap,
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stale-flags", "namespace": "shop"}, "data": {"a": "1"}}
        ]})
        .to_string(),
    )
    .unwrap();
    let out = aegis().args(["analyze", "--lint", "--snapshot"]).arg(&snap).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("configmap/stale-flags") && text.contains("configmap-unused"), "{text}");
    let out = aegis().args(["analyze", "--snapshot"]).arg(&snap).args(["-o", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["incidents"], serde_json::json!([]), "hygiene is never an incident");
}
