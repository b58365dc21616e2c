//! `aegis analyze` and `aegis snapshot` against the local control plane (scripts/harness/cluster.sh):
//! the live analysis finds the same incident as the captured corpus file, and a snapshot captured with
//! `aegis snapshot` analyzes to the same incidents as the live cluster.

use std::process::Command;
use std::time::Duration;

use aegis_testkit::cluster::{TestNamespace, deployment, eventually};
use aegis_testkit::{harness_env, repo_root};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::PostParams;
use serde_json::{Value, json};

fn aegis(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(args)
        .env("KUBECONFIG", harness_env("AEGIS_KUBECONFIG"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("aegis {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn summary(json: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["incidents"].as_array().unwrap().iter().map(|i| (i["category"].as_str().unwrap().to_owned(), i["resource"]["name"].as_str().unwrap().to_owned(), i["fix"]["type"].as_str().unwrap().to_owned())).collect()
}

#[tokio::test]
async fn live_analysis_matches_the_captured_file_and_aegis_snapshot_round_trips() {
    let ns = TestNamespace::create("cli-analyze").await;
    let container = json!({
        "name": "api", "image": "127.0.0.1:5000/demo-api:v2",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}}
    });
    ns.api::<Deployment>().create(&PostParams::default(), &deployment("api", 2, json!({"aegis.io/memory-need-mib": "200"}), container)).await.unwrap();

    let live = eventually("OOMKilled found live", Duration::from_secs(60), || {
        let name = ns.name().to_owned();
        async move {
            let (code, out) = aegis(&["analyze", "-n", &name, "-o", "json"]);
            let found = summary(&out);
            if code == Some(0) && found.iter().any(|(c, _, _)| c == "OOMKilled") { Ok(found) } else { Err(format!("{code:?} {found:?}")) }
        }
    })
    .await;
    let captured = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["analyze", "--snapshot"])
        .arg(repo_root().join("examples/incidents/oom-small-limit.yaml"))
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert_eq!(live, summary(&String::from_utf8_lossy(&captured.stdout)), "live and captured analyses agree");

    let (code, list) = aegis(&["snapshot", "-n", ns.name()]);
    assert_eq!(code, Some(0));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.yaml");
    std::fs::write(&file, list).unwrap();
    let (code, from_file) = aegis(&["analyze", "--snapshot", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&from_file), live);
}
