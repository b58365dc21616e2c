//! Detection latency, measured from outside the operator: for each victim Deployment, break it (drop
//! the env var its pods need), note when the first CrashLoopBackOff is visible in the API (a watch),
//! then when its Incident exists (another watch). Prints one JSON line per run and the median.
//!
//!   cargo run --release -p aegis-operator --example detection_latency -- NAMESPACE VICTIM...
//!
//! Run by bench/operator-scale.sh, which builds the cluster it measures.

use std::time::{Duration, Instant};

use aegis_operator::crd::Incident;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

fn crashlooping(p: &Pod, app: &str) -> bool {
    p.metadata.labels.as_ref().and_then(|l| l.get("app")).map(String::as_str) == Some(app)
        && p.status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .any(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ns, victims) = args.split_first().ok_or("usage: detection_latency NAMESPACE VICTIM...")?;
    let client = kube::Client::try_default().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let incidents: Api<Incident> = Api::namespaced(client.clone(), ns);
    let mut latencies = Vec::new();
    for victim in victims {
        // Only the victim's pods: the watch itself must not list a namespace of thousands per victim.
        let mine = watcher::Config::default().labels(&format!("app={victim}"));
        let mut pod_events = watcher(pods.clone(), mine).default_backoff().applied_objects().boxed();
        let mut incident_events = watcher(incidents.clone(), watcher::Config::default()).default_backoff().applied_objects().boxed();
        let broken = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
        deployments.patch(victim, &PatchParams::default(), &Patch::Strategic(broken)).await?;
        let visible = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(Ok(p)) = pod_events.next().await {
                if crashlooping(&p, victim) {
                    return Some(Instant::now());
                }
            }
            None
        })
        .await?
        .ok_or("pod watch ended")?;
        let created = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(Ok(i)) = incident_events.next().await {
                if i.spec.resource.name == *victim {
                    return Some(Instant::now());
                }
            }
            None
        })
        .await?
        .ok_or("incident watch ended")?;
        // The Incident may have been seen first (no event after it in the pod watch): never negative.
        let ms = created.saturating_duration_since(visible).as_millis();
        println!("{{\"victim\":\"{victim}\",\"detection_ms\":{ms}}}");
        latencies.push(ms);
    }
    latencies.sort();
    if let Some(m) = latencies.get(latencies.len() / 2) {
        // The nearest-rank p99: with fewer than 100 runs, the largest.
        let p99 = latencies[(latencies.len() * 99).div_ceil(100).saturating_sub(1)];
        println!(
            "{{\"runs\":{},\"p50_detection_ms\":{m},\"p99_detection_ms\":{p99},\"max_detection_ms\":{}}}",
            latencies.len(),
            latencies.last().unwrap_or(m)
        );
    }
    Ok(())
}
