//! `aegis operator run` — the real binary — when a Gateway API kind is installed while it leads: its
//! objects are judged from then on, without a new leader. Needs the cluster harness; fails loudly
//! without it.
//!
//! A test binary of its own: it removes the TLSRoute CRD from the shared control plane and installs it
//! again, which every operator running at that moment would follow (and start its caches again), so
//! no other operator test may run beside it. Cargo runs test binaries one after another.

use aegis_operator::crd::Phase;
use aegis_testkit::cluster::{TestNamespace, eventually};
use aegis_testkit::harness_env;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use common::{Operator, WAIT, incident_in, install_crd};

mod common;

const TLS_ROUTES: &str = "tlsroutes.gateway.networking.k8s.io";

/// The TLSRoute CRD as the Gateway API ships it (the harness' copy).
fn tls_route_crd() -> CustomResourceDefinition {
    let path = std::path::Path::new(&harness_env("AEGIS_GATEWAY_API_CRDS")).join("gateway.networking.k8s.io_tlsroutes.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_route_kind_installed_while_the_operator_leads_is_judged_without_a_new_leader() {
    let ns = TestNamespace::create("op-late-gw").await;
    let client = ns.client();
    install_crd(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Not served when the operator starts.
    match crds.delete(TLS_ROUTES, &DeleteParams::default()).await {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(e) => panic!("deleting the TLSRoute CRD: {e}"),
    }
    eventually("the TLSRoute CRD is gone", WAIT, || {
        let crds = crds.clone();
        async move {
            match crds.get_opt(TLS_ROUTES).await {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err("still there".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;
    aegis_testkit::cluster::route_to_missing_backend(&ns).await;
    let operator = Operator::start(ns.name(), &[], None);
    // The lead has started and watches the kinds served now (the route's incident is its proof).
    let first = incident_in(&ns, Phase::Failed, WAIT).await;
    assert_eq!(first.spec.resource.kind, "HTTPRoute");
    assert!(operator.log().contains("Gateway API kinds watched"), "{}", operator.log());
    assert!(!operator.log().contains("TLSRoute"), "TLSRoute is not served yet:\n{}", operator.log());

    crds.patch(TLS_ROUTES, &PatchParams::apply("aegis-tests").force(), &Patch::Apply(tls_route_crd())).await.unwrap();
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "TLSRoute"), "tlsroutes");
    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    let route: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute", "metadata": {"name": "vault"},
        "spec": {"parentRefs": [{"name": "public"}], "hostnames": ["vault.example.com"],
                 "rules": [{"backendRefs": [{"name": "vault", "port": 8200}]}]}
    }))
    .unwrap();
    // Served once the CRD is Established.
    eventually("the TLSRoute is created", WAIT, || {
        let (routes, route) = (routes.clone(), route.clone());
        async move { routes.create(&PostParams::default(), &route).await.map(|_| ()).map_err(|e| e.to_string()) }
    })
    .await;

    let incidents: Api<aegis_operator::crd::Incident> = ns.api();
    let about_the_route = eventually("an incident about the TLSRoute", WAIT, || {
        let incidents = incidents.clone();
        async move {
            let list = incidents.list(&Default::default()).await.map_err(|e| e.to_string())?.items;
            let kinds: Vec<String> = list.iter().map(|i| format!("{}/{}", i.spec.resource.kind, i.spec.category)).collect();
            list.into_iter().find(|i| i.spec.resource.kind == "TLSRoute").ok_or(format!("{kinds:?}"))
        }
    })
    .await;
    assert_eq!(about_the_route.spec.category, aegis_model::Category::RouteBackendMissing);
    assert_eq!(about_the_route.spec.resource.name, "vault");
    assert!(operator.log().contains("watching them from now on"), "{}", operator.log());
}
