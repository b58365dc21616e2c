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

/// The demo API's container: healthy as long as DATABASE_URL is set.
fn api_container(image: &str) -> Value {
    json!({"name": "api", "image": image, "env": [{"name": "DATABASE_URL", "value": "postgres://db"}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}}})
}

fn summary(json: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["category"].as_str().unwrap().to_owned(),
                i["resource"]["name"].as_str().unwrap().to_owned(),
                i["fix"]["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn live_analysis_matches_the_captured_file_and_aegis_snapshot_round_trips() {
    let ns = TestNamespace::create("cli-analyze").await;
    // The app holds 200 MiB under a 128Mi limit: the kernel kills it.
    let container = json!({
        "name": "api", "image": format!("{}/demo-api:v2", harness_env("AEGIS_REGISTRY")),
        "env": [{"name": "DATABASE_URL", "value": "postgres://db"}, {"name": "ALLOCATE_MIB", "value": "200"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    });
    ns.api::<Deployment>().create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();

    let live = eventually("OOMKilled found live", Duration::from_secs(90), || {
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
    assert!(list.contains("kind: Pod") && !list.contains("managedFields"), "a snapshot reads as kubectl prints it: no managedFields");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.yaml");
    std::fs::write(&file, list).unwrap();
    let (code, from_file) = aegis(&["analyze", "--snapshot", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary(&from_file), live);
}

#[tokio::test]
async fn secrets_enter_a_snapshot_as_names_and_keys_only_when_asked_and_their_values_never() {
    use k8s_openapi::api::core::v1::{Secret, Service};
    use k8s_openapi::api::networking::v1::Ingress;
    let ns = TestNamespace::create("cli-secrets").await;
    let value = "a-value-that-must-never-leave-the-cluster";
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "db"}, "stringData": {"password": value}})).unwrap();
    ns.api::<Secret>().create(&PostParams::default(), &secret).await.unwrap();
    let service: Service =
        serde_json::from_value(json!({"metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}}))
            .unwrap();
    ns.api::<Service>().create(&PostParams::default(), &service).await.unwrap();
    let ingress: Ingress = serde_json::from_value(json!({"metadata": {"name": "shop"}, "spec": {
        "defaultBackend": {"service": {"name": "api", "port": {"number": 80}}},
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]}}))
    .unwrap();
    ns.api::<Ingress>().create(&PostParams::default(), &ingress).await.unwrap();

    let (code, without) = aegis(&["snapshot", "-n", ns.name()]);
    assert_eq!(code, Some(0));
    assert!(without.contains("kind: Ingress") && !without.contains("kind: Secret"), "Secrets are read only when asked:\n{without}");
    let (code, with) = aegis(&["snapshot", "-n", ns.name(), "--include-secrets", "-o", "json"]);
    assert_eq!(code, Some(0));
    let list: Value = serde_json::from_str(&with).unwrap();
    let secrets: Vec<&Value> = list["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "Secret").collect();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert_eq!((&secrets[0]["metadata"]["name"], &secrets[0]["data"]), (&json!("db"), &json!({"password": ""})));
    let encoded = "YS12YWx1ZS10aGF0LW11c3QtbmV2ZXItbGVhdmUtdGhlLWNsdXN0ZXI="; // base64 of `value`, as the API server stores it
    assert!(!with.contains(value) && !with.contains(encoded), "a Secret's value entered the snapshot");

    let tls_missing = |args: &[&str]| summary(&aegis(args).1).iter().any(|(c, n, _)| c == "IngressTlsSecretMissing" && n == "shop");
    assert!(!tls_missing(&["analyze", "-n", ns.name(), "-o", "json"]), "without Secrets, their absence says nothing");
    assert!(tls_missing(&["analyze", "-n", ns.name(), "--include-secrets", "-o", "json"]));
}

#[tokio::test]
async fn analyze_verify_proves_the_fix_in_a_shadow_and_fails_closed_without_the_plans_scanners() {
    use k8s_openapi::api::apps::v1::Deployment as D;
    use kube::api::{Patch, PatchParams};
    let ns = TestNamespace::create("cli-verify").await;
    let container = api_container(&format!("{}/demo-api:v2", harness_env("AEGIS_REGISTRY")));
    let api = ns.api::<D>();
    api.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    aegis_testkit::cluster::wait_available(&api, "api", Duration::from_secs(90)).await;
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    api.patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let name = ns.name().to_owned();
    eventually("crashloop found", Duration::from_secs(90), || {
        let name = name.clone();
        async move {
            let (_, out) = aegis(&["analyze", "-n", &name, "-o", "json"]);
            if summary(&out).iter().any(|(c, _, _)| c == "CrashLoopBackOff") { Ok(()) } else { Err(out) }
        }
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "zap: {mode: off}\nfalco: {mode: off}\n").unwrap();
    let common = ["--window", "2s", "--deadline", "90s", "--skip-db-update", "--image-src", "remote"];
    let mut args = vec!["analyze", "-n", &name, "--verify", "--verify-policy", policy.to_str().unwrap(), "-o", "json"];
    args.extend(common);
    let (code, out) = aegis(&args);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    let verification = &v["incidents"][0]["verification"];
    assert_eq!(verification["verdict"], "passed", "{verification:#}");
    assert_eq!(verification["health"]["healthy"], true);

    // The plan names Falco for every fix; without a Falco store the verification cannot pass.
    let mut args = vec!["analyze", "-n", &name, "--verify", "-o", "json"];
    args.extend(common);
    let (_, out) = aegis(&args);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["incidents"][0]["verification"]["verdict"], "error", "{out}");

    let mut args = vec!["analyze", "-n", &name, "--verify", "--verify-policy", policy.to_str().unwrap()];
    args.extend(common);
    let (_, table) = aegis(&args);
    let order: Vec<usize> = ["Root Cause Analysis", "Proposed Fix", "Verification Plan", "Verification\n", "Security Report"]
        .iter()
        .map(|h| table.find(h).unwrap_or(usize::MAX))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{table}");

    let (code, list) = aegis(&["shadow", "list"]);
    assert_eq!(code, Some(0));
    assert!(list.contains("NAMESPACE"));
    let (code, gc) = aegis(&["shadow", "gc"]);
    assert_eq!(code, Some(0));
    assert!(gc.contains("expired shadow(s) deleted"));
}

#[tokio::test]
async fn shadow_create_status_verify_with_a_fix_file_and_delete() {
    use k8s_openapi::api::apps::v1::Deployment as D;
    use kube::api::{Patch, PatchParams};
    let ns = TestNamespace::create("cli-shadow").await;
    // The image lives in the harness registry, so Trivy can really scan it (an unreachable image blocks the gate).
    let image = format!("{}/demo-api:v2", aegis_testkit::harness_env("AEGIS_REGISTRY"));
    let container = api_container(&image);
    let api = ns.api::<D>();
    api.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    aegis_testkit::cluster::wait_available(&api, "api", Duration::from_secs(90)).await;
    let name = ns.name().to_owned();

    let (code, out) = aegis(&["shadow", "create", "deployment/api", "-n", &name, "--ttl", "10m"]);
    assert_eq!(code, Some(0), "{out}");
    let shadow_ns = out.split_whitespace().find(|w| w.starts_with("aegis-shadow-")).expect("namespace printed").to_owned();
    let status = eventually("shadow copy ready", Duration::from_secs(90), || {
        let shadow_ns = shadow_ns.clone();
        async move {
            let (_, s) = aegis(&["shadow", "status", &shadow_ns]);
            if s.contains("Deployment/api: 2/2 ready") { Ok(s) } else { Err(s) }
        }
    })
    .await;
    assert!(status.contains(&format!("Deployment/api -n {name}")), "{status}");
    let (code, _) = aegis(&["shadow", "delete", &shadow_ns]);
    assert_eq!(code, Some(0));
    let (code, _) = aegis(&["shadow", "delete", &name]);
    assert_ne!(code, Some(0), "a namespace that is not a shadow is never deleted");

    // Production breaks (DATABASE_URL removed); a typed fix file puts it back, and is proven in a shadow.
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    api.patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fix = dir.path().join("fix.yaml");
    std::fs::write(&fix, "type: set-env\ncontainer: api\nname: DATABASE_URL\nvalue: postgres://db\n").unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "zap: {mode: off}\nfalco: {mode: off}\n").unwrap();
    let (code, out) = aegis(&[
        "shadow",
        "verify",
        "deployment/api",
        "-n",
        &name,
        "--fix",
        fix.to_str().unwrap(),
        "--verify-policy",
        policy.to_str().unwrap(),
        "--window",
        "2s",
        "--deadline",
        "90s",
        "--skip-db-update",
        "--image-src",
        "remote",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!((code, v["verdict"].as_str()), (Some(0), Some("passed")), "{v:#}");
    assert_eq!(v["health"]["healthy"], true);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "type: set-env\ncontainer: sidecar\nname: X\nvalue: y\n").unwrap();
    let (code, _) = aegis(&["shadow", "verify", "deployment/api", "-n", &name, "--fix", bad.to_str().unwrap()]);
    assert_eq!(code, Some(3), "a fix for a container the workload does not have is refused");
}

#[tokio::test]
async fn a_sigint_cancels_a_verification_and_deletes_its_shadow_before_exiting() {
    use k8s_openapi::api::core::v1::Namespace;
    let ns = TestNamespace::create("cli-cancel").await;
    let image = format!("{}/demo-api:v2", harness_env("AEGIS_REGISTRY"));
    let container = api_container(&image);
    let api = ns.api::<Deployment>();
    api.create(&PostParams::default(), &deployment("api", 1, container)).await.unwrap();
    aegis_testkit::cluster::wait_available(&api, "api", Duration::from_secs(90)).await;
    let name = ns.name().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let fix = dir.path().join("fix.yaml");
    std::fs::write(&fix, "type: set-env\ncontainer: api\nname: LOG_LEVEL\nvalue: debug\n").unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "zap: {mode: off}\nfalco: {mode: off}\n").unwrap();

    // A health window far longer than the test: only the signal can end this verification.
    let child = Command::new(env!("CARGO_BIN_EXE_aegis"))
        .args(["shadow", "verify", "deployment/api", "-n", &name, "--fix", fix.to_str().unwrap(), "--window", "10m", "--deadline", "15m"])
        .args(["--verify-policy", policy.to_str().unwrap(), "--skip-db-update", "--image-src", "remote"])
        .env("KUBECONFIG", harness_env("AEGIS_KUBECONFIG"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = ns.client();
    let shadow = eventually("the verification's shadow exists", Duration::from_secs(90), || {
        let client = client.clone();
        let name = name.clone();
        async move {
            let all = aegis_k8s::shadow::list_shadows(&client).await.map_err(|e| e.to_string())?;
            all.into_iter().find(|s| s.source.contains(&name)).map(|s| s.namespace).ok_or_else(|| "no shadow yet".to_owned())
        }
    })
    .await;
    // Let the shadow's workload roll out, so the signal lands in the middle of the health window.
    let shadow_api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), &shadow);
    aegis_testkit::cluster::wait_available(&shadow_api, "api", Duration::from_secs(90)).await;

    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "a cancelled verification is an error, never a pass: {stderr}");
    assert!(stderr.contains("cancelled (SIGINT)") && stderr.contains(&format!("shadow {shadow} deleted")), "{stderr}");
    // Deleted before the process exited: gone, or already terminating.
    let left = kube::Api::<Namespace>::all(client).get_opt(&shadow).await.unwrap();
    assert!(left.is_none_or(|n| n.metadata.deletion_timestamp.is_some()), "shadow {shadow} survived the cancellation");
}
