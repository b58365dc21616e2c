//! The deployment artifacts against the real tools: the real helm (scripts/tools.sh builds it) lints
//! and renders the chart; the plain manifests are exactly the chart's render; the chart's CRD is the
//! binary's; the RBAC names every verb; and the real API server admits every rendered object
//! (server-side dry run) and, applied for real, grants the operator what it needs and not more.
//! Needs both harnesses (tools and cluster); fails loudly without them.

use std::path::PathBuf;
use std::process::Command;

use aegis_testkit::cluster::TestNamespace;
use aegis_testkit::{harness_env, repo_root};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

fn chart() -> PathBuf {
    repo_root().join("deploy/helm/aegis")
}

fn helm(args: &[&str]) -> String {
    let out = Command::new(harness_env("AEGIS_HELM_BIN")).args(args).output().expect("helm runs");
    assert!(out.status.success(), "helm {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template` of the chart into `namespace`, as objects.
fn render(release: &str, namespace: &str, set: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec!["template", release, chart.to_str().unwrap(), "--namespace", namespace, "--include-crds"];
    for s in set {
        args.extend(["--set", s]);
    }
    let text = helm(&args);
    serde_saphyr::from_multiple::<Value>(&text).unwrap().into_iter().filter(|v| !v.is_null()).collect()
}

#[test]
fn the_chart_lints_clean_with_and_without_zap() {
    let chart = chart();
    helm(&["lint", "--strict", chart.to_str().unwrap()]);
    helm(&["lint", "--strict", chart.to_str().unwrap(), "--set", "zap.enabled=true", "--set", "zap.apiKeySecret=zap"]);
}

#[test]
fn zap_without_an_api_key_secret_is_refused_at_render() {
    let out = Command::new(harness_env("AEGIS_HELM_BIN"))
        .args(["template", "aegis", chart().to_str().unwrap(), "--set", "zap.enabled=true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("zap.apiKeySecret"));
}

#[test]
fn the_plain_manifests_are_the_charts_default_render() {
    let chart = chart();
    let rendered = helm(&["template", "aegis", chart.to_str().unwrap(), "--namespace", "aegis-system", "--include-crds"]);
    let committed = std::fs::read_to_string(repo_root().join("deploy/manifests/aegis.yaml")).unwrap();
    assert!(
        committed == rendered,
        "deploy/manifests/aegis.yaml is stale: regenerate it with\n  helm template aegis deploy/helm/aegis --namespace aegis-system --include-crds > deploy/manifests/aegis.yaml"
    );
}

#[test]
fn the_charts_crd_is_the_binarys() {
    let file: Value = serde_saphyr::from_str(&std::fs::read_to_string(chart().join("crds/incidents.aegis.io.yaml")).unwrap()).unwrap();
    assert_eq!(
        file,
        serde_json::to_value(aegis_operator::crd()).unwrap(),
        "regenerate it with `aegis crd > deploy/helm/aegis/crds/incidents.aegis.io.yaml`"
    );
}

#[test]
fn the_rbac_names_every_verb_resource_and_group() {
    for doc in render("aegis", "aegis-system", &["zap.enabled=true", "zap.apiKeySecret=zap"]) {
        if !matches!(doc["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in doc["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                let values = rule[field].as_array().unwrap_or_else(|| panic!("{field} missing in {rule}"));
                assert!(values.iter().all(|v| v != "*"), "a wildcard in {}: {rule}", doc["metadata"]["name"]);
            }
            assert!(rule.get("nonResourceURLs").is_none());
        }
    }
}

/// Every object the chart renders — zap included — passes the API server's validation and admission
/// with a server-side dry run (the CRD first, for real, so its kind is known).
#[tokio::test]
async fn the_api_server_admits_every_rendered_object() {
    let ns = TestNamespace::create("deploy").await;
    let client = ns.client();
    let docs = render("aegis", ns.name(), &["zap.enabled=true", "zap.apiKeySecret=zap", "verifyPolicy=zap: {mode: advisory}"]);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for want in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "ValidatingAdmissionPolicy",
        "ConfigMap",
    ] {
        assert!(kinds.contains(&want), "the chart renders a {want}: {kinds:?}");
    }
    let crd = docs.iter().find(|d| d["kind"] == "CustomResourceDefinition").unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("incidents.aegis.io", &PatchParams::apply("aegis-tests").force(), &Patch::Apply(crd)).await.unwrap();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for doc in &docs {
        let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", doc["apiVersion"].as_str().unwrap()),
        };
        let gvk = kube::core::GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap());
        let (ar, caps) = discovery.resolve_gvk(&gvk).unwrap_or_else(|| panic!("the API server serves {gvk:?}"));
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), ns.name(), &ar),
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let name = doc["metadata"]["name"].as_str().unwrap();
        api.patch(name, &PatchParams::apply("aegis-tests").dry_run().force(), &Patch::Apply(doc))
            .await
            .unwrap_or_else(|e| panic!("{} {name} refused: {e}", doc["kind"]));
    }
}

/// The chart's RBAC, applied for real under a unique release name: the operator's ServiceAccount may
/// do its job and nothing it does not need.
#[tokio::test]
async fn the_operator_account_may_do_its_job_and_no_more() {
    let ns = TestNamespace::create("rbac").await;
    let client = ns.client();
    let release = ns.name().trim_start_matches("aegis-test-").to_owned();
    let docs = render(&release, ns.name(), &[]);
    let mut cluster_scoped = Vec::new();
    let wanted = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ];
    for doc in docs.iter().filter(|d| d["kind"].as_str().is_some_and(|k| wanted.contains(&k))) {
        let kind = doc["kind"].as_str().unwrap();
        let group = match kind {
            "ServiceAccount" => "",
            k if k.starts_with("ValidatingAdmission") => "admissionregistration.k8s.io",
            _ => "rbac.authorization.k8s.io",
        };
        let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(group, "v1", kind));
        let api: Api<DynamicObject> = if kind.starts_with("Cluster") || kind.starts_with("ValidatingAdmission") {
            cluster_scoped.push((ar.clone(), doc["metadata"]["name"].as_str().unwrap().to_owned()));
            Api::all_with(client.clone(), &ar)
        } else {
            Api::namespaced_with(client.clone(), ns.name(), &ar)
        };
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    let user = format!("system:serviceaccount:{}:{release}-aegis", ns.name());
    let can = |verb: &str, group: &str, resource: &str, namespace: &str| {
        let client = client.clone();
        let review: SubjectAccessReview = serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:serviceaccounts"],
                     "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace}}
        }))
        .unwrap();
        async move {
            let r = Api::<SubjectAccessReview>::all(client).create(&PostParams::default(), &review).await.unwrap();
            r.status.is_some_and(|s| s.allowed)
        }
    };
    for (verb, group, resource, namespace) in [
        ("patch", "apps", "deployments", "shop"),
        ("create", "", "namespaces", ""),
        ("update", "aegis.io", "incidents/status", "shop"),
        ("create", "events.k8s.io", "events", "shop"),
        ("update", "coordination.k8s.io", "leases", ns.name()),
        ("patch", "", "pods", ns.name()),
    ] {
        assert!(can(verb, group, resource, namespace).await, "the operator may {verb} {group}/{resource}");
    }
    for (verb, group, resource, namespace) in [
        ("delete", "apps", "deployments", "shop"),
        ("delete", "", "secrets", "shop"),
        ("list", "", "secrets", "shop"),
        ("watch", "", "secrets", ""),
        ("update", "aegis.io", "incidents", "shop"),
        ("update", "coordination.k8s.io", "leases", "kube-system"),
        ("patch", "", "pods", "shop"),
        ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
    ] {
        assert!(!can(verb, group, resource, namespace).await, "the operator may not {verb} {group}/{resource} in {namespace:?}");
    }

    // RBAC cannot limit namespace deletes by name; the admission policy does. As the operator (by
    // impersonation), with server-side dry runs, which admission policies judge like real requests:
    let kubeconfig = kube::config::Kubeconfig::read_from(harness_env("AEGIS_KUBECONFIG")).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    config.auth_info.impersonate = Some(user.clone());
    config.auth_info.impersonate_groups = Some(vec!["system:serviceaccounts".into()]);
    let as_operator = kube::Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(as_operator);
    let dry = kube::api::DeleteParams { dry_run: true, ..Default::default() };
    let refused = aegis_testkit::cluster::eventually("the admission policy is in force", std::time::Duration::from_secs(30), || {
        let (namespaces, dry, name) = (namespaces.clone(), dry.clone(), ns.name().to_owned());
        async move {
            match namespaces.delete(&name, &dry).await {
                Err(kube::Error::Api(e)) if e.code == 403 || e.code == 422 => Ok(e.message),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert!(refused.contains("shadow namespaces (aegis-shadow-*) only"), "{refused}");
    let shadow: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "aegis-shadow-rbactest"}})).unwrap();
    let pp = PostParams { dry_run: true, ..Default::default() };
    namespaces.create(&pp, &shadow).await.expect("the operator may create a shadow namespace");
    let other: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({"metadata": {"name": "not-a-shadow"}})).unwrap();
    assert!(namespaces.create(&pp, &other).await.is_err(), "the operator may not create other namespaces");

    // Creates, deletes and production writes, as the operator, judged by the second admission policy.
    writes_are_bound_to_shadows_and_to_what_a_fix_touches(&client, &impersonating(&user).await, ns.name()).await;

    for (ar, name) in cluster_scoped {
        let _ = Api::<DynamicObject>::all_with(client.clone(), &ar).delete(&name, &Default::default()).await;
    }
}

async fn impersonating(user: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(harness_env("AEGIS_KUBECONFIG")).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(vec!["system:serviceaccounts".into()]);
    kube::Client::try_from(config).unwrap()
}

/// What the operator may write where (server-side dry runs as the operator: admission judges them as
/// real requests): objects in shadows; outside them only its evidence ConfigMaps, and changes to
/// workloads and Services only of the fields a typed fix touches.
async fn writes_are_bound_to_shadows_and_to_what_a_fix_touches(admin: &kube::Client, operator: &kube::Client, production: &str) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
    let deployment = |name: &str| -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "api", "image": "demo-api:v1"}]}}}
        }))
        .unwrap()
    };
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    // Production objects, as an admin.
    Api::<Deployment>::namespaced(admin.clone(), production).create(&PostParams::default(), &deployment("api")).await.unwrap();
    Api::<Service>::namespaced(admin.clone(), production).create(&PostParams::default(), &service).await.unwrap();
    let shadow = format!("aegis-shadow-w{}", &production[production.len().saturating_sub(6)..]);
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({"metadata": {"name": shadow}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone()).create(&PostParams::default(), &ns).await.unwrap();

    let dry = PostParams { dry_run: true, ..Default::default() };
    let dry_patch = PatchParams { dry_run: true, ..Default::default() };
    let refused = |r: Result<(), kube::Error>| matches!(r, Err(kube::Error::Api(ref e)) if e.code == 403 || e.code == 422);
    let deployments = |ns: &str| Api::<Deployment>::namespaced(operator.clone(), ns);
    let config_maps = Api::<ConfigMap>::namespaced(operator.clone(), production);
    let cm = |name: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap() };

    // The policy takes a moment to be in force after it is created.
    aegis_testkit::cluster::eventually("the writes policy is in force", std::time::Duration::from_secs(30), || {
        let (deployments, dry, d) = (deployments(production), dry.clone(), deployment("other"));
        async move {
            match deployments.create(&dry, &d).await {
                Err(kube::Error::Api(e)) if e.code == 403 || e.code == 422 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert!(deployments(&shadow).create(&dry, &deployment("api")).await.is_ok(), "creates in a shadow are allowed");
    assert!(config_maps.create(&dry, &cm("aegis-evidence-0123")).await.is_ok(), "evidence ConfigMaps are allowed");
    assert!(refused(config_maps.create(&dry, &cm("app-config")).await.map(|_| ())), "other ConfigMaps in production are not");
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "stolen"}, "stringData": {"a": "b"}})).unwrap();
    assert!(refused(Api::<Secret>::namespaced(operator.clone(), production).create(&dry, &secret).await.map(|_| ())));

    let patch = |body: Value| Patch::Strategic(body);
    let image = patch(json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "demo-api:v2"}]}}}}));
    assert!(deployments(production).patch("api", &dry_patch, &image).await.is_ok(), "a fix's image change is allowed");
    for (what, body) in [
        ("service account", json!({"spec": {"template": {"spec": {"serviceAccountName": "cluster-admin"}}}})),
        ("host network", json!({"spec": {"template": {"spec": {"hostNetwork": true}}}})),
        ("privileged", json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "securityContext": {"privileged": true}}]}}}})),
    ] {
        assert!(refused(deployments(production).patch("api", &dry_patch, &patch(body)).await.map(|_| ())), "{what} is refused");
    }
    let services = Api::<Service>::namespaced(operator.clone(), production);
    assert!(services.patch("api", &dry_patch, &patch(json!({"spec": {"selector": {"app": "api2"}}}))).await.is_ok());
    assert!(refused(services.patch("api", &dry_patch, &patch(json!({"spec": {"type": "NodePort"}}))).await.map(|_| ())));

    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone()).delete(&shadow, &Default::default()).await;
}

/// A default install never serves the Falco receiver unauthenticated: the chart names a token Secret,
/// the operator creates it with a random token on first start, and every later start reads that one.
#[tokio::test]
async fn the_default_install_serves_the_falco_receiver_with_a_generated_token() {
    let docs = render("aegis", "aegis-system", &[]);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("a Deployment");
    let args: Vec<&str> =
        deployment["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(args.contains(&"--falco-token-secret=aegis-falco-token"), "{args:?}");
    let with_own = render("aegis", "aegis-system", &["falco.tokenSecret=mine"]);
    let deployment = with_own.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert!(deployment.to_string().contains("AEGIS_FALCO_TOKEN") && !deployment.to_string().contains("--falco-token-secret"));

    let ns = TestNamespace::create("falco-token").await;
    let client = ns.client();
    let first = aegis_operator::run::falco_token(&client, ns.name(), "aegis-falco-token").await.unwrap();
    assert_eq!(first.len(), 64, "32 random bytes, hex");
    let again = aegis_operator::run::falco_token(&client, ns.name(), "aegis-falco-token").await.unwrap();
    assert_eq!(first, again, "a restart reads the token senders already use");
}

/// Falco's evidence survives a restart and a failover. By default the embedded store sits on a
/// PersistentVolumeClaim (never an emptyDir) with one replica, recreated rather than rolled (the claim
/// is one pod's); more replicas need PostgreSQL. With PostgreSQL every replica receives (the Service
/// selects them all), the URL comes from a Secret, and no volume is mounted.
#[test]
fn the_falco_store_survives_restarts_on_a_claim_and_failovers_on_postgresql() {
    let docs = render("aegis", "aegis-system", &[]);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("a Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1, "the embedded store is one replica's");
    assert_eq!(spec["strategy"]["type"], "Recreate", "a ReadWriteOnce claim cannot be mounted by the next pod during a rolling update");
    let volumes = spec["template"]["spec"]["volumes"].as_array().unwrap();
    let falco = volumes.iter().find(|v| v["name"] == "falco").expect("a falco volume");
    assert_eq!(falco["persistentVolumeClaim"]["claimName"], "aegis-falco", "{falco}");
    let claim = docs.iter().find(|d| d["kind"] == "PersistentVolumeClaim").expect("a claim for the store");
    assert_eq!(claim["metadata"]["name"], "aegis-falco");
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteOnce");

    let out = Command::new(harness_env("AEGIS_HELM_BIN"))
        .args(["template", "aegis", chart().to_str().unwrap(), "--set", "replicaCount=2"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "two replicas on the embedded store are refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("falco.store.postgres.dsnSecret"), "{}", String::from_utf8_lossy(&out.stderr));

    let ha = render("aegis", "aegis-system", &["replicaCount=3", "falco.store.postgres.dsnSecret=aegis-pg"]);
    let deployment = ha.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().unwrap();
    let store = env.iter().find(|e| e["name"] == "AEGIS_FALCO_STORE").expect("the store URL from the environment");
    assert_eq!(store["valueFrom"]["secretKeyRef"]["name"], "aegis-pg");
    assert_eq!(store["valueFrom"]["secretKeyRef"]["key"], "dsn");
    let args = container["args"].to_string();
    assert!(!args.contains("--falco-store"), "no password in the arguments: {args}");
    assert!(!ha.iter().any(|d| d["kind"] == "PersistentVolumeClaim"), "no claim with PostgreSQL");
    let service = ha.iter().find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "aegis-falco").unwrap();
    assert!(service["spec"]["selector"].get("aegis.io/leader").is_none(), "every replica receives: {}", service["spec"]["selector"]);
    helm(&["lint", "--strict", chart().to_str().unwrap(), "--set", "replicaCount=3", "--set", "falco.store.postgres.dsnSecret=aegis-pg"]);
}

/// With watchNamespaces, reading Secrets and opening Incidents is granted per watched namespace, not
/// cluster-wide, and the writes policy names the namespaces production changes may touch.
#[test]
fn watched_namespaces_get_namespaced_roles_and_the_cluster_role_loses_those_grants() {
    let docs = render("aegis", "aegis-system", &["watchNamespaces={shop,billing}"]);
    let roles: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Role" && d["metadata"]["name"] == "aegis-watch").collect();
    let namespaces: Vec<&str> = roles.iter().filter_map(|r| r["metadata"]["namespace"].as_str()).collect();
    assert_eq!(namespaces, ["shop", "billing"]);
    assert!(roles[0]["rules"].to_string().contains("secrets"));
    let cluster_role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    for rule in cluster_role["rules"].as_array().unwrap() {
        let resources = rule["resources"].to_string();
        let verbs = rule["verbs"].to_string();
        assert!(!(resources.contains("\"secrets\"") && verbs.contains("\"get\"")), "cluster-wide secret reads: {rule}");
        assert!(!(resources.contains("\"incidents\"") && verbs.contains("\"create\"")), "cluster-wide incident creates: {rule}");
        assert!(!(resources.contains("\"secrets\"") && (verbs.contains("\"list\"") || verbs.contains("\"watch\""))), "{rule}");
    }
    let policy = docs.iter().find(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == "aegis-writes").unwrap();
    assert!(policy.to_string().contains(r#"request.namespace in [\"shop\", \"billing\"]"#), "{policy}");
    helm(&["lint", "--strict", chart().to_str().unwrap(), "--set", "watchNamespaces={shop,billing}"]);
}

/// `spec.approval.by` is bound to the identity the API server authenticated for the write: a user may
/// record an approval as themselves, never as someone else.
#[tokio::test]
async fn an_approval_can_only_name_who_wrote_it() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let ns = TestNamespace::create("approver").await;
    let admin = ns.client();
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.patch("incidents.aegis.io", &PatchParams::apply("aegis-tests").force(), &Patch::Apply(aegis_operator::crd())).await.unwrap();
    let release = ns.name().trim_start_matches("aegis-test-").to_owned();
    let policies: Vec<Value> = render(&release, ns.name(), &[])
        .into_iter()
        .filter(|d| d["kind"].as_str().is_some_and(|k| k.starts_with("ValidatingAdmission")))
        .filter(|d| d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-approver-identity")))
        .collect();
    assert_eq!(policies.len(), 2, "the policy and its binding");
    let mut created = Vec::new();
    for doc in &policies {
        let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            doc["kind"].as_str().unwrap(),
        ));
        let api: Api<DynamicObject> = Api::all_with(admin.clone(), &ar);
        api.create(&PostParams::default(), &serde_json::from_value(doc.clone()).unwrap()).await.unwrap();
        created.push((api, doc["metadata"]["name"].as_str().unwrap().to_owned()));
    }
    // Mallory may write Incidents in this namespace (RBAC), as herself only (admission).
    let rbac = |kind: &str, body: Value| {
        let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind));
        let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), ns.name(), &ar);
        async move { api.create(&PostParams::default(), &serde_json::from_value(body).unwrap()).await.unwrap() }
    };
    rbac(
        "Role",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "approver"},
        "rules": [{"apiGroups": ["aegis.io"], "resources": ["incidents"], "verbs": ["get", "create", "patch", "update"]}]}),
    )
    .await;
    rbac(
        "RoleBinding",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "approver"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "approver"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]}),
    )
    .await;
    let incident = json!({"apiVersion": "aegis.io/v1alpha1", "kind": "Incident", "metadata": {"name": "api-crash"},
        "spec": {"resource": {"kind": "Deployment", "namespace": ns.name(), "name": "api"}, "category": "CrashLoopBackOff",
                 "severity": "HIGH", "detectedGeneration": 2}});
    let incidents: Api<aegis_operator::crd::Incident> = Api::namespaced(admin.clone(), ns.name());
    incidents.create(&PostParams::default(), &serde_json::from_value(incident).unwrap()).await.unwrap();

    let mallory = impersonating("mallory").await;
    let as_mallory: Api<aegis_operator::crd::Incident> = Api::namespaced(mallory, ns.name());
    let approve_as = |by: &str| json!({"spec": {"approval": {"decision": "Approve", "by": by, "evidenceDigest": format!("sha256:{}", "a".repeat(64)), "at": "2026-11-30T00:00:00Z"}}});
    let dry = PatchParams { dry_run: true, ..Default::default() };
    let refusal = aegis_testkit::cluster::eventually("the approver policy is in force", std::time::Duration::from_secs(30), || {
        let (api, dry, body) = (as_mallory.clone(), dry.clone(), approve_as("alice"));
        async move {
            match api.patch("api-crash", &dry, &Patch::Merge(&body)).await {
                Err(kube::Error::Api(e)) if e.code == 403 || e.code == 422 => Ok(e.message),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert!(refusal.contains("must be who writes it") && refusal.contains("mallory"), "{refusal}");
    as_mallory.patch("api-crash", &dry, &Patch::Merge(&approve_as("mallory"))).await.expect("an approval in one's own name");
    for (api, name) in created {
        let _ = api.delete(&name, &Default::default()).await;
    }
}
