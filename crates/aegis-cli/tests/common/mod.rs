//! What the tests that run `aegis operator run` — the real binary — share: the Incident CRD installed,
//! the operator started in a test namespace (and killed on drop), and the wait for an incident's phase.
// Each test binary uses part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aegis_operator::crd::{Incident, Phase};
use aegis_testkit::cluster::{TestNamespace, eventually};
use aegis_testkit::harness_env;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

pub const WAIT: Duration = Duration::from_secs(90);

/// Install (or update) the Incident CRD, as `aegis crd | kubectl apply --server-side -f -` does, and
/// wait until the API serves it.
pub async fn install_crd(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch("incidents.aegis.io", &PatchParams::apply("aegis-tests").force(), &Patch::Apply(aegis_operator::crd())).await.unwrap();
    eventually("the Incident CRD is established", WAIT, || {
        let api = api.clone();
        async move {
            let crd = api.get("incidents.aegis.io").await.map_err(|e| e.to_string())?;
            let established =
                crd.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True");
            if established { Ok(()) } else { Err("not established".to_owned()) }
        }
    })
    .await;
}

/// A running `aegis operator run`, killed on drop. Its log is kept in a file and printed when a
/// test fails (through `log()`).
pub struct Operator {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Operator {
    pub fn start(ns: &str, extra: &[&str], failpoint: Option<&str>) -> Operator {
        Operator::start_with(ns, extra, failpoint, "zap: {mode: off}\nfalco: {mode: off}\n", &[])
    }

    /// Start with this gate policy and these environment variables.
    pub fn start_with(ns: &str, extra: &[&str], failpoint: Option<&str>, policy_yaml: &str, env: &[(&str, &str)]) -> Operator {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, policy_yaml).unwrap();
        let log = dir.path().join("operator.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegis"));
        cmd.args(["operator", "run", "--watch-namespace", ns, "--lease-namespace", ns]).args(["--verify-policy", policy.to_str().unwrap()]);
        // The defaults a test does not set itself.
        let defaults = [
            ("--listen", "127.0.0.1:0"),
            ("--window", "2s"),
            ("--deadline", "90s"),
            ("--image-src", "remote"),
            ("--monitor-window", "5s"),
            ("--resync", "3s"),
            ("--debounce", "200ms"),
            ("--lease-duration", "4s"),
            ("--log-level", "info"),
        ];
        for (flag, value) in defaults.into_iter().filter(|(flag, _)| !extra.contains(flag)) {
            cmd.args([flag, value]);
        }
        cmd.arg("--skip-db-update")
            .args(extra)
            .env("KUBECONFIG", harness_env("AEGIS_KUBECONFIG"))
            .env("AEGIS_TRIVY_BIN", harness_env("AEGIS_TRIVY_BIN"))
            .env("AEGIS_TRIVY_CACHE_DIR", harness_env("AEGIS_TRIVY_CACHE_DIR"))
            .env_remove("AEGIS_FAILPOINT")
            .env_remove("AEGIS_FALCO_STORE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(f) = failpoint {
            cmd.env("AEGIS_FAILPOINT", f);
        }
        cmd.envs(env.iter().copied());
        Operator { child: cmd.spawn().expect("aegis operator run starts"), log, _dir: dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for the process to end by itself (a failpoint); its exit status.
    pub async fn exited(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "the operator did not stop within {limit:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- operator log ---\n{}", self.log());
        }
    }
}

/// Wait until the namespace's only Incident reaches `phase`.
pub async fn incident_in(ns: &TestNamespace, phase: Phase, limit: Duration) -> Incident {
    let api: Api<Incident> = ns.api();
    eventually(&format!("an incident {phase}"), limit, || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
            let phases: Vec<String> =
                list.iter().map(|i| format!("{}={:?}", i.name_any(), i.status.as_ref().map(|s| (s.phase, s.message.clone())))).collect();
            match list.iter().find(|i| i.status.as_ref().is_some_and(|s| s.phase == phase)) {
                Some(i) => Ok(i.clone()),
                None => Err(format!("{phases:?}")),
            }
        }
    })
    .await
}
