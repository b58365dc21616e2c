//! Incidents about objects that are not workloads but break them or the paths to them: a
//! PodDisruptionBudget that blocks every eviction, an Ingress whose backend or class does not exist,
//! a HorizontalPodAutoscaler that cannot scale, an admission webhook whose backend cannot answer, a
//! Service that NetworkPolicies cut off from every client.
//! What k8sgpt's Pdb, Ingress, Hpa and webhook analyzers check, each with its evidence. No typed fix yet: the guidance names the change a human makes.

use std::collections::{BTreeMap, BTreeSet};

use aegis_model::{Category, Fix, FixAction, FixOrigin, Incident, ResourceRef, Severity};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::api::networking::v1::{Ingress, IngressServiceBackend, NetworkPolicy, NetworkPolicyIngressRule};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::analyze::plan;
use crate::diff::int_or_string;
use crate::signals::Index;

/// What is wrong with an object that is not a workload (or a Service with no backend to point it at),
/// for which no safe automatic change is known: the guidance says what a human changes.
pub(crate) struct ObjectFinding {
    pub(crate) resource: ResourceRef,
    pub(crate) category: Category,
    pub(crate) severity: Severity,
    pub(crate) root_cause: String,
    pub(crate) evidence: Vec<String>,
    pub(crate) guidance: String,
    pub(crate) confidence: f64,
}

pub(crate) fn object_incident(index: &Index<'_>, f: ObjectFinding) -> Incident {
    let action = FixAction::Manual { guidance: f.guidance };
    let verification_plan = plan(index, None, &None, &action, Some(f.confidence), Some(f.category));
    Incident {
        resource: f.resource,
        category: f.category,
        severity: f.severity,
        root_cause: f.root_cause,
        evidence: f.evidence,
        confidence: f.confidence,
        pods: Vec::new(),
        fix: Fix {
            summary: "No safe automatic fix is known; see the guidance.".into(),
            action,
            patch: None,
            inverse: None,
            origin: FixOrigin::Rules,
        },
        verification_plan,
    }
}

/// Every non-workload incident in the snapshot.
pub(crate) fn analyze_objects(index: &Index<'_>) -> Vec<Incident> {
    let s = index.snapshot;
    let mut out: Vec<Incident> = s.pod_disruption_budgets.iter().filter_map(|p| disruption_blocked(index, p)).collect();
    out.extend(s.ingresses.iter().flat_map(|i| ingress_problems(index, i)));
    out.extend(s.routes.iter().flat_map(|r| crate::gateway::route_problems(index, r)));
    // A Gateway's class comes first: without an accepted class nothing programs it, whatever its listeners say.
    out.extend(
        s.gateways
            .iter()
            .filter_map(|g| crate::gateway::class_problem(index, g).or_else(|| crate::gateway::gateway_problems(index, g.into()))),
    );
    out.extend(s.listener_sets.iter().filter_map(|l| crate::gateway::listener_set_problems(index, l)));
    out.extend(s.horizontal_pod_autoscalers.iter().filter_map(|h| autoscaler_problem(index, h)));
    out.extend(webhook_problems(index));
    out.extend(s.cron_jobs.iter().filter_map(|c| cron_job_not_starting(index, c)));
    out.extend(s.services.iter().filter_map(|svc| service_blocked_by_network_policy(index, svc)));
    out.extend(s.daemon_sets.iter().filter_map(|d| crate::daemonsets::misscheduled(index, d)));
    out
}

/// Whether `policy` governs ingress: named in policyTypes, or, without policyTypes, always (the API
/// server's default: every policy affects ingress, those with egress rules egress too).
fn governs_ingress(policy: &NetworkPolicy) -> bool {
    policy.spec.as_ref().is_some_and(|s| s.policy_types.as_ref().is_none_or(|t| t.iter().any(|t| t == "Ingress")))
}

/// The port number `port` (a number or a container port's name) means on `pod`.
fn port_on(pod: &Pod, port: &IntOrString) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

/// Where a Service port sends: its targetPort, or its own port when none is given.
fn target_port(sp: &ServicePort) -> IntOrString {
    sp.target_port.clone().unwrap_or(IntOrString::Int(sp.port))
}

/// Whether an ingress `rule` admits some client to `target`/`protocol` on `pod`. A rule without
/// `from` admits every source, one without `ports` every port; a peer list, however narrow, admits
/// some client.
fn admits(rule: &NetworkPolicyIngressRule, pod: &Pod, target: i32, protocol: &str) -> bool {
    let Some(ports) = rule.ports.as_ref().filter(|p| !p.is_empty()) else { return true };
    ports.iter().any(|p| {
        p.protocol.as_deref().unwrap_or("TCP") == protocol
            && match (&p.port, p.end_port) {
                (None, _) => true,
                (Some(IntOrString::Int(n)), Some(end)) => (*n..=end).contains(&target),
                (Some(port), _) => port_on(pod, port) == Some(target),
            }
    })
}

/// A Service that no client can reach: every running pod behind it is isolated for ingress by the
/// NetworkPolicies of its namespace, and no ingress rule of those policies admits the port the
/// Service sends to on any of them (a default-deny without an allow for it, or allows for other
/// ports only). Policies are additive, so the union of their rules is judged. The pods may be
/// running and ready and the Service full of endpoints: every connection still times out.
fn service_blocked_by_network_policy(index: &Index<'_>, svc: &Service) -> Option<Incident> {
    let ns = svc.metadata.namespace.clone()?;
    let name = svc.metadata.name.clone()?;
    let spec = svc.spec.as_ref()?;
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    let service_ports: &[ServicePort] = spec.ports.as_deref().unwrap_or_default();
    // Policies first: most namespaces have none, and then nothing else is looked at.
    let policies: Vec<&NetworkPolicy> = index
        .snapshot
        .network_policies
        .iter()
        .filter(|np| np.metadata.namespace.as_deref() == Some(ns.as_str()) && governs_ingress(np))
        .collect();
    if policies.is_empty() || service_ports.is_empty() {
        return None;
    }
    let pods: Vec<&Pod> = index
        .pods_in(&ns)
        .iter()
        .copied()
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .filter(|p| crate::analyze::selects(selector, p.metadata.labels.as_ref()))
        .collect();
    if pods.is_empty() {
        return None;
    }
    let mut governing: BTreeSet<&str> = BTreeSet::new();
    for pod in &pods {
        let selecting: Vec<&NetworkPolicy> = policies
            .iter()
            .copied()
            .filter(|np| {
                // An absent podSelector, like an empty one, selects every pod.
                np.spec
                    .as_ref()
                    .is_some_and(|s| s.pod_selector.as_ref().is_none_or(|sel| crate::lint::selects(sel, pod.metadata.labels.as_ref())))
            })
            .collect();
        // A pod no policy selects for ingress is open to everything.
        if selecting.is_empty() {
            return None;
        }
        let rules: Vec<&NetworkPolicyIngressRule> =
            selecting.iter().flat_map(|np| np.spec.iter().flat_map(|s| s.ingress.iter().flatten())).collect();
        for sp in service_ports {
            let protocol = sp.protocol.as_deref().unwrap_or("TCP");
            // A named target port the pod does not have sends nothing to it; that is not this finding.
            let Some(target) = port_on(pod, &target_port(sp)) else { continue };
            if rules.iter().any(|r| admits(r, pod, target, protocol)) {
                return None;
            }
        }
        governing.extend(selecting.iter().map(|np| np.metadata.name.as_deref().unwrap_or_default()));
    }
    let governing: Vec<&str> = governing.into_iter().collect();
    let targets: Vec<String> = service_ports
        .iter()
        .map(|sp| {
            let target = sp.target_port.as_ref().map_or(sp.port.to_string(), int_or_string);
            format!("{}/{} → {target}", sp.port, sp.protocol.as_deref().unwrap_or("TCP"))
        })
        .collect();
    let mut evidence = vec![format!(
        "Service {name} (ports {}) selects {} running pod(s), every one isolated for ingress",
        targets.join(", "),
        pods.len()
    )];
    for np in policies.iter().filter(|np| governing.contains(&np.metadata.name.as_deref().unwrap_or_default())) {
        let n = np.metadata.name.as_deref().unwrap_or_default();
        let rules = np.spec.as_ref().and_then(|s| s.ingress.as_ref()).map_or(0, Vec::len);
        let allowed: Vec<String> = np
            .spec
            .iter()
            .flat_map(|s| s.ingress.iter().flatten())
            .flat_map(|r| r.ports.iter().flatten())
            .map(|p| {
                let port = p.port.as_ref().map_or("every port".into(), int_or_string);
                let port = match p.end_port {
                    Some(end) => format!("{port}-{end}"),
                    None => port,
                };
                format!("{port}/{}", p.protocol.as_deref().unwrap_or("TCP"))
            })
            .collect();
        evidence.push(if rules == 0 {
            format!("NetworkPolicy {n}: selects the pods for ingress and has no ingress rule (denies every connection)")
        } else {
            format!("NetworkPolicy {n}: admits ingress to {} only", allowed.join(", "))
        });
    }
    let first_target = service_ports.first().and_then(|sp| port_on(pods[0], &target_port(sp))).map_or_else(String::new, |p| p.to_string());
    let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    Some(object_incident(
        index,
        ObjectFinding {
            resource: ResourceRef { kind: "Service".into(), namespace: ns.clone(), name: name.clone() },
            category: Category::ServiceBlockedByNetworkPolicy,
            severity: Severity::High,
            root_cause: format!(
                "NetworkPolicies ({}) isolate every pod behind Service {name} for ingress and admit none of its target ports: every connection through the Service is dropped, although its pods run.",
                governing.join(", ")
            ),
            evidence,
            guidance: format!(
                "Admit the Service's clients: add an ingress rule for port {first_target} to a policy that selects the pods ({{{}}}), with `from` naming the clients (podSelector, namespaceSelector), e.g. `ingress: [{{from: [{{podSelector: {{matchLabels: {{role: client}}}}}}], ports: [{{port: {first_target}}}]}}]` in namespace {ns}; or narrow a policy that selects these pods by mistake. `kubectl describe networkpolicy -n {ns}` shows what each admits.",
                labels.join(", ")
            ),
            confidence: 0.8,
        },
    ))
}

/// A CronJob whose runs do not start, from what its controller says (the CronJob controller's
/// events): scheduled times missed past `startingDeadlineSeconds` (`MissSchedule`) or too many to
/// count (`TooManyMissedTimes`), a schedule or time zone it cannot use, or its Job refused on creation
/// (a quota, an admission webhook). A suspended CronJob is not starting by choice (`--lint` reports it).
fn cron_job_not_starting(index: &Index<'_>, cj: &k8s_openapi::api::batch::v1::CronJob) -> Option<Incident> {
    if cj.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
        return None;
    }
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let name = cj.metadata.name.clone().unwrap_or_default();
    let events = index.events("CronJob", &ns, &name);
    let last = |reasons: &[&str]| events.iter().rev().find(|(r, _)| reasons.contains(&r.as_str())).cloned();
    let schedule = cj.spec.as_ref().map(|s| s.schedule.clone()).unwrap_or_default();
    let deadline = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds);
    let (cause, guidance, (reason, message)) = if let Some(e) = last(&["InvalidSchedule", "UnparseableSchedule", "UnknownTimeZone"]) {
        (
            format!("its schedule {schedule:?} (or time zone) cannot be used by the CronJob controller"),
            format!(
                "Fix spec.schedule / spec.timeZone of CronJob {name} (`kubectl edit cronjob -n {ns} {name}`): the controller says {:?}.",
                e.1
            ),
            e,
        )
    } else if let Some(e) = last(&["FailedCreate"]) {
        (
            "the API server refuses the Job each run creates".to_owned(),
            format!(
                "The CronJob's Job is refused: {:?}. A quota (`kubectl describe quota -n {ns}`), an admission webhook or Pod Security decides it; change that, or the jobTemplate, so the Job is admitted.",
                e.1
            ),
            e,
        )
    } else if let Some(e) = last(&["MissSchedule", "TooManyMissedTimes"]) {
        let window = deadline.map(|d| format!("its startingDeadlineSeconds ({d} s)")).unwrap_or_else(|| "its starting deadline".into());
        (
            format!("scheduled runs were missed: the controller did not start them within {window}"),
            format!(
                "Runs of CronJob {name} were not started in time. Check kube-controller-manager's health (it starts the runs) and the clock; raise or drop spec.startingDeadlineSeconds ({}); with concurrencyPolicy Forbid, a run that outlasts the schedule makes the next ones wait.",
                deadline.map_or("unset".to_owned(), |d| format!("{d} s"))
            ),
            e,
        )
    } else {
        return None;
    };
    let last_run = cj.status.as_ref().and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0.to_string());
    let mut evidence = vec![format!("CronJob {name} (schedule {schedule:?}) event {reason}: {message}")];
    evidence.push(match last_run {
        Some(t) => format!("CronJob {name}: last scheduled run {t}"),
        None => format!("CronJob {name}: no run scheduled yet"),
    });
    Some(object_incident(
        index,
        ObjectFinding {
            resource: ResourceRef { kind: "CronJob".into(), namespace: ns, name: name.clone() },
            category: Category::CronJobNotStarting,
            severity: Severity::High,
            root_cause: format!("CronJob {name}'s runs do not start: {cause}."),
            evidence,
            guidance,
            confidence: 0.8,
        },
    ))
}

/// One webhook of a Validating- or MutatingWebhookConfiguration that calls a Service.
struct WebhookCall<'a> {
    configuration: String,
    webhook: &'a str,
    service: &'a k8s_openapi::api::admissionregistration::v1::ServiceReference,
    /// `Fail` (the default in admissionregistration/v1) or `Ignore`.
    failure_policy: &'a str,
}

/// Admission webhooks whose backend cannot answer: the Service is missing, has no port the webhook
/// calls, or has no ready endpoint. With `failurePolicy: Fail` the API server refuses every request
/// the webhook matches — cluster-wide, whatever namespace it comes from — and with `Ignore` the check
/// is skipped without a word (a policy webhook then enforces nothing). What k8sgpt's
/// ValidatingWebhook and MutatingWebhook analyzers check. One incident per backend Service, judged in
/// its own namespace and only when the snapshot holds that namespace (a namespace it did not read says
/// nothing about the Service).
fn webhook_problems(index: &Index<'_>) -> Vec<Incident> {
    let s = index.snapshot;
    let validating = s.validating_webhooks.iter().flat_map(|c| {
        c.webhooks.iter().flatten().filter_map(move |w| {
            Some(WebhookCall {
                configuration: format!("ValidatingWebhookConfiguration {}", c.metadata.name.as_deref().unwrap_or("")),
                webhook: w.name.as_str(),
                service: w.client_config.service.as_ref()?,
                failure_policy: w.failure_policy.as_deref().unwrap_or("Fail"),
            })
        })
    });
    let mutating = s.mutating_webhooks.iter().flat_map(|c| {
        c.webhooks.iter().flatten().filter_map(move |w| {
            Some(WebhookCall {
                configuration: format!("MutatingWebhookConfiguration {}", c.metadata.name.as_deref().unwrap_or("")),
                webhook: w.name.as_str(),
                service: w.client_config.service.as_ref()?,
                failure_policy: w.failure_policy.as_deref().unwrap_or("Fail"),
            })
        })
    });
    let held: std::collections::BTreeSet<&str> = s
        .services
        .iter()
        .map(|o| &o.metadata)
        .chain(s.endpoints.iter().map(|o| &o.metadata))
        .chain(s.pods.iter().map(|o| &o.metadata))
        .chain(s.deployments.iter().map(|o| &o.metadata))
        .filter_map(|m| m.namespace.as_deref())
        .collect();
    let mut by_service: BTreeMap<(String, String), Vec<(WebhookCall<'_>, String)>> = BTreeMap::new();
    for call in validating.chain(mutating) {
        let (ns, name) = (call.service.namespace.as_str(), call.service.name.as_str());
        if !held.contains(ns) {
            continue;
        }
        if let Some(problem) = webhook_backend_problem(index, call.service) {
            by_service.entry((ns.to_owned(), name.to_owned())).or_default().push((call, problem));
        }
    }
    by_service
        .into_iter()
        .map(|((ns, name), calls)| {
            let refusing = calls.iter().any(|(c, _)| c.failure_policy != "Ignore");
            let problem = calls[0].1.clone();
            let webhooks: Vec<String> = calls.iter().map(|(c, _)| format!("{} ({}, failurePolicy {})", c.webhook, c.configuration, c.failure_policy)).collect();
            let effect = if refusing {
                "the API server refuses every request these webhooks match (failurePolicy Fail), in every namespace they select"
            } else {
                "the API server skips these webhooks without a word (failurePolicy Ignore): what they check or change is not done"
            };
            object_incident(
                index,
                ObjectFinding {
                    resource: ResourceRef { kind: "Service".into(), namespace: ns.clone(), name: name.clone() },
                    category: Category::WebhookUnavailable,
                    severity: if refusing { Severity::Critical } else { Severity::Medium },
                    root_cause: format!("The admission webhook backend Service {ns}/{name} cannot answer ({problem}): {effect}."),
                    evidence: calls
                        .iter()
                        .map(|(c, p)| format!("{}: webhook {} calls Service {ns}/{name}: {p}", c.configuration, c.webhook))
                        .collect(),
                    guidance: format!(
                        "Bring the webhook's backend back (`kubectl get deploy,pods,endpoints -n {ns}`: the pods Service {name} selects must be Ready and serve the port the webhook calls). If the webhook is obsolete, delete its configuration; while it is down, `failurePolicy: Ignore` lets requests through unchecked. Webhooks: {}.",
                        webhooks.join("; ")
                    ),
                    confidence: 0.8,
                },
            )
        })
        .collect()
}

/// Why a webhook's Service cannot answer it, if it cannot.
fn webhook_backend_problem(index: &Index<'_>, svc_ref: &k8s_openapi::api::admissionregistration::v1::ServiceReference) -> Option<String> {
    let (ns, name) = (svc_ref.namespace.as_str(), svc_ref.name.as_str());
    let Some(svc) = index.services_in(ns).iter().find(|s| s.metadata.name.as_deref() == Some(name)) else {
        return Some(format!("Service {name} not found"));
    };
    let port = svc_ref.port.unwrap_or(443);
    let ports: Vec<i32> = svc.spec.iter().flat_map(|s| s.ports.iter().flatten()).map(|p| p.port).collect();
    if !ports.contains(&port) {
        let has: Vec<String> = ports.iter().map(i32::to_string).collect();
        return Some(format!("Service {name} has no port {port} (it has {})", has.join(", ")));
    }
    let endpoints =
        index.snapshot.endpoints.iter().find(|e| e.metadata.namespace.as_deref() == Some(ns) && e.metadata.name.as_deref() == Some(name));
    let ready = endpoints.iter().flat_map(|e| e.subsets.iter().flatten()).any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()));
    if ready {
        return None;
    }
    let not_ready = endpoints
        .iter()
        .flat_map(|e| e.subsets.iter().flatten())
        .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
        .sum::<usize>();
    Some(if not_ready > 0 {
        format!("Service {name} has no ready endpoint ({not_ready} not ready)")
    } else {
        format!("Service {name} has no endpoint: no ready pod matches its selector")
    })
}

/// A PodDisruptionBudget that allows no disruption while every pod it guards is healthy: nothing is
/// broken now, but every drain and node upgrade will hang on it. (A budget at zero because pods are
/// unhealthy is doing its job.)
fn disruption_blocked(index: &Index<'_>, pdb: &PodDisruptionBudget) -> Option<Incident> {
    let st = pdb.status.as_ref()?;
    if st.disruptions_allowed > 0 || st.expected_pods == 0 || st.current_healthy < st.expected_pods {
        return None;
    }
    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let spec = pdb.spec.as_ref();
    let budget = match (spec.and_then(|s| s.min_available.as_ref()), spec.and_then(|s| s.max_unavailable.as_ref())) {
        (Some(min), _) => format!("minAvailable {}", int_or_string(min)),
        (None, Some(max)) => format!("maxUnavailable {}", int_or_string(max)),
        (None, None) => "no budget".into(),
    };
    Some(object_incident(
        index,
        ObjectFinding {
            resource: ResourceRef { kind: "PodDisruptionBudget".into(), namespace: ns, name: name.clone() },
            category: Category::DisruptionBlocked,
            severity: Severity::Medium,
            root_cause: format!(
                "PodDisruptionBudget {name} ({budget}) allows no disruption although all {} of its pods are healthy: every eviction, drain and node upgrade will wait on it.",
                st.expected_pods
            ),
            evidence: vec![format!(
                "PodDisruptionBudget {name}: {budget}, {} expected pod(s), {} healthy, {} desired healthy, disruptionsAllowed 0",
                st.expected_pods, st.current_healthy, st.desired_healthy
            )],
            guidance: format!(
                "Allow one pod at a time to go: set `maxUnavailable: 1` on PodDisruptionBudget {name} (or minAvailable below {}), or run more replicas.",
                st.expected_pods
            ),
            confidence: 0.8,
        },
    ))
}

/// An Ingress that routes to nothing: a backend Service that does not exist or has no such port, or
/// an IngressClass the cluster does not have (no controller serves it). One incident per Ingress,
/// every broken backend in its evidence.
fn ingress_problems(index: &Index<'_>, ing: &Ingress) -> Vec<Incident> {
    let ns = ing.metadata.namespace.clone().unwrap_or_default();
    let name = ing.metadata.name.clone().unwrap_or_default();
    let resource = ResourceRef { kind: "Ingress".into(), namespace: ns.clone(), name: name.clone() };
    let spec = ing.spec.as_ref();
    let mut out = Vec::new();
    let class = spec
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| ing.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/ingress.class")).cloned());
    // IngressClasses are cluster-scoped: a snapshot that holds none (RBAC, or a file without them)
    // says nothing about whether the class exists.
    if let Some(class) = class
        && !index.snapshot.ingress_classes.is_empty()
        && !index.snapshot.ingress_classes.iter().any(|c| c.metadata.name.as_deref() == Some(&class))
    {
        let known: Vec<String> = index.snapshot.ingress_classes.iter().filter_map(|c| c.metadata.name.clone()).collect();
        let known = known.join(", ");
        let root_cause = format!(
            "Ingress {name} asks for IngressClass {class}, which does not exist: no controller serves it, so nothing routes its traffic."
        );
        out.push(object_incident(
            index,
            ObjectFinding {
                resource: resource.clone(),
                category: Category::IngressClassMissing,
                severity: Severity::High,
                root_cause,
                evidence: vec![format!("Ingress {name}: ingressClassName {class}; IngressClasses in the cluster: {known}")],
                guidance: format!("Set spec.ingressClassName of Ingress {name} to a class the cluster has ({known})."),
                confidence: 0.8,
            },
        ));
    }
    // Secrets are judged only where the snapshot holds some of the namespace's (`--include-secrets`, or
    // a file with them): absent from a snapshot without any says nothing.
    let missing: Vec<(String, Vec<String>)> = spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .filter_map(|t| {
            let secret = t.secret_name.clone()?;
            (index.snapshot.secret_exists(&ns, &secret) == Some(false)).then(|| (secret, t.hosts.clone().unwrap_or_default()))
        })
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|(s, _)| s.as_str()).collect();
        out.push(object_incident(
            index,
            ObjectFinding {
                resource: resource.clone(),
                category: Category::IngressTlsSecretMissing,
                severity: Severity::High,
                root_cause: format!(
                    "Ingress {name} terminates TLS with Secret(s) {} that do not exist in {ns}: its controller serves its default (self-signed) certificate for those hosts, or none, and clients refuse the connection.",
                    names.join(", ")
                ),
                evidence: missing
                    .iter()
                    .map(|(secret, hosts)| format!("Ingress {name}: tls secretName {secret} (hosts {}): no such Secret in {ns}", hosts.join(", ")))
                    .collect(),
                guidance: format!(
                    "Create the TLS Secret(s) {} in {ns} (`kubectl create secret tls NAME --cert=… --key=… -n {ns}`, or the Certificate of cert-manager that writes it), or point spec.tls[].secretName at one that exists: `kubectl get secrets -n {ns} --field-selector type=kubernetes.io/tls`.",
                    names.join(", ")
                ),
                confidence: 0.8,
            },
        ));
    }
    let backends = spec.and_then(|s| s.default_backend.as_ref()).and_then(|b| b.service.as_ref()).into_iter().chain(
        spec.iter()
            .flat_map(|s| s.rules.iter().flatten())
            .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
            .filter_map(|p| p.backend.service.as_ref()),
    );
    let broken: Vec<String> =
        backends.filter_map(|b| backend_problem(index, &ns, b)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if !broken.is_empty() {
        out.push(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::IngressBackendMissing,
                severity: Severity::High,
                root_cause: format!("Ingress {name} routes to a backend that does not exist: {}.", broken.join("; ")),
                evidence: broken.iter().map(|b| format!("Ingress {name}: {b}")).collect(),
                guidance: format!("Point Ingress {name}'s backends at a Service and port that exist: `kubectl get svc -n {ns}`."),
                confidence: 0.8,
            },
        ));
    }
    out
}

/// What is wrong with one backend: its Service missing, or no port of it matching.
fn backend_problem(index: &Index<'_>, ns: &str, b: &IngressServiceBackend) -> Option<String> {
    let svc = index.services_in(ns).iter().find(|s| s.metadata.name.as_deref() == Some(b.name.as_str()));
    let Some(svc) = svc else {
        return Some(format!("Service {} not found", b.name));
    };
    let port = b.port.as_ref()?;
    let ports = svc.spec.iter().flat_map(|s| s.ports.iter().flatten());
    let matches = |p: &&k8s_openapi::api::core::v1::ServicePort| match (&port.number, &port.name) {
        (Some(n), _) => p.port == *n,
        (None, Some(name)) => p.name.as_deref() == Some(name.as_str()),
        (None, None) => true,
    };
    if ports.clone().any(|p| matches(&p)) {
        return None;
    }
    let wanted = port.number.map(|n| n.to_string()).or_else(|| port.name.clone()).unwrap_or_default();
    let has: Vec<String> = ports.map(|p| p.name.as_ref().map_or(p.port.to_string(), |n| format!("{} ({n})", p.port))).collect();
    Some(format!("Service {} has no port {wanted} (it has {})", b.name, has.join(", ")))
}

/// A HorizontalPodAutoscaler that cannot do its job: its target does not exist, it cannot read its
/// metrics (no metrics API, or containers without the requests a utilization target needs), or it is
/// pinned at maxReplicas while the metric stays over target.
fn autoscaler_problem(index: &Index<'_>, hpa: &HorizontalPodAutoscaler) -> Option<Incident> {
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let name = hpa.metadata.name.clone().unwrap_or_default();
    let spec = hpa.spec.as_ref()?;
    let target = &spec.scale_target_ref;
    let resource = ResourceRef { kind: "HorizontalPodAutoscaler".into(), namespace: ns.clone(), name: name.clone() };
    let scaled = scale_target(index, hpa);
    let conditions: Vec<_> = hpa.status.iter().flat_map(|st| st.conditions.iter().flatten()).collect();
    let condition = |t: &str, status: &str| conditions.iter().find(|c| c.type_ == t && c.status == status);
    let said = |c: &&&k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition| {
        format!("{}={} {}: {}", c.type_, c.status, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
    };
    let target_text = format!("{}/{}", target.kind, target.name);
    if matches!(scaled, ScaleTarget::Missing) {
        return Some(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::AutoscalerTargetMissing,
                severity: Severity::High,
                root_cause: format!("HorizontalPodAutoscaler {name} scales {target_text}, which does not exist: nothing is autoscaled."),
                evidence: vec![format!("HorizontalPodAutoscaler {name}: scaleTargetRef {target_text} not found in namespace {ns}")],
                guidance: format!("Point scaleTargetRef of HorizontalPodAutoscaler {name} at the workload it should scale, or delete it."),
                confidence: 0.85,
            },
        ));
    }
    // Why it cannot read its metrics: a utilization target is a share of each container's request, so
    // without one there is nothing to compute whether or not the metrics API answers (here it fails
    // before the controller says so); else what the controller reports.
    let unrequested = match scaled {
        ScaleTarget::Found(template) => unrequested_utilization(spec, template),
        ScaleTarget::Missing | ScaleTarget::NotJudged => Vec::new(),
    };
    let unreadable = if !unrequested.is_empty() {
        let distinct = |pick: fn(&(String, String)) -> &str| -> Vec<&str> {
            unrequested.iter().map(pick).collect::<std::collections::BTreeSet<_>>().into_iter().collect()
        };
        let (resources, containers) = (distinct(|(r, _)| r), distinct(|(_, c)| c));
        let mut evidence: Vec<String> = unrequested
            .iter()
            .map(|(r, c)| format!("HorizontalPodAutoscaler {name}: targets {r} utilization; {target_text}: container {c} requests no {r}"))
            .collect();
        evidence.extend(condition("ScalingActive", "False").map(|c| format!("HorizontalPodAutoscaler {name}: {}", said(&c))));
        let set = resources.iter().map(|r| format!("{r}=…")).collect::<Vec<_>>().join(",");
        Some((
            format!(
                "HorizontalPodAutoscaler {name} scales {target_text} on {} utilization, a share of each container's request, but container(s) {} request none: it cannot compute a replica count.",
                resources.join(" and "),
                containers.join(", ")
            ),
            evidence,
            format!(
                "Give container(s) {} of {target_text} a request for {} near their usual use: `kubectl set resources {} -n {ns} -c {} --requests={set}`; or target an averageValue instead of a utilization.",
                containers.join(", "),
                resources.join(" and "),
                target_text.to_lowercase(),
                containers.join(","),
            ),
            0.85,
        ))
    } else if let Some(c) = condition("ScalingActive", "False") {
        let mut evidence = vec![format!("HorizontalPodAutoscaler {name}: {}", said(&c))];
        evidence
            .extend(index.events("HorizontalPodAutoscaler", &ns, &name).into_iter().rev().take(2).map(|(r, m)| format!("event {r}: {m}")));
        let missing_request = c.message.as_deref().is_some_and(|m| m.contains("missing request"));
        let guidance = if missing_request {
            format!(
                "Give every container of {target_text} a request for the resource the HorizontalPodAutoscaler measures (utilization is a share of the request)."
            )
        } else {
            "Check that the metrics API serves the autoscaler (`kubectl get apiservices | grep metrics`; metrics-server or an adapter)."
                .into()
        };
        let root_cause =
            format!("HorizontalPodAutoscaler {name} cannot compute a replica count for {target_text}: it cannot read its metrics.");
        Some((root_cause, evidence, guidance, 0.8))
    } else {
        None
    };
    if let Some((root_cause, evidence, guidance, confidence)) = unreadable {
        return Some(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::AutoscalerMetricsUnavailable,
                severity: Severity::Medium,
                root_cause,
                evidence,
                guidance,
                confidence,
            },
        ));
    }
    let st = hpa.status.as_ref()?;
    if st.current_replicas.unwrap_or(0) >= spec.max_replicas
        && let Some(c) = condition("ScalingLimited", "True").filter(|c| c.reason.as_deref() == Some("TooManyReplicas"))
    {
        return Some(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::AutoscalerAtMaxReplicas,
                severity: Severity::Medium,
                root_cause: format!(
                    "HorizontalPodAutoscaler {name} holds {target_text} at its maxReplicas ({}) and would scale further: the load is over what it may give.",
                    spec.max_replicas
                ),
                evidence: vec![format!(
                    "HorizontalPodAutoscaler {name}: {} of max {} replicas; {}",
                    st.current_replicas.unwrap_or(0),
                    spec.max_replicas,
                    said(&c)
                )],
                guidance: format!(
                    "Raise maxReplicas of HorizontalPodAutoscaler {name} if the nodes have room, or make each replica cheaper."
                ),
                confidence: 0.6,
            },
        ));
    }
    None
}

/// What an autoscaler scales, as the snapshot holds it.
enum ScaleTarget<'a> {
    /// A kind not judged here (a custom resource with a scale subresource).
    NotJudged,
    /// A Deployment, StatefulSet or ReplicaSet that does not exist.
    Missing,
    /// It exists, with its pod template (none when its spec is absent).
    Found(Option<&'a k8s_openapi::api::core::v1::PodTemplateSpec>),
}

fn scale_target<'a>(index: &Index<'a>, hpa: &HorizontalPodAutoscaler) -> ScaleTarget<'a> {
    let Some(target) = hpa.spec.as_ref().map(|s| &s.scale_target_ref) else { return ScaleTarget::NotJudged };
    let ns = hpa.metadata.namespace.as_deref();
    let named = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.namespace.as_deref() == ns && m.name.as_deref() == Some(target.name.as_str())
    };
    let s = index.snapshot;
    let found = match target.kind.as_str() {
        "Deployment" => s.deployments.iter().find(|d| named(&d.metadata)).map(|d| d.spec.as_ref().map(|s| &s.template)),
        "StatefulSet" => s.stateful_sets.iter().find(|d| named(&d.metadata)).map(|d| d.spec.as_ref().map(|s| &s.template)),
        "ReplicaSet" => s.replica_sets.iter().find(|d| named(&d.metadata)).map(|d| d.spec.as_ref().and_then(|s| s.template.as_ref())),
        _ => return ScaleTarget::NotJudged,
    };
    found.map_or(ScaleTarget::Missing, ScaleTarget::Found)
}

/// The (resource, container) pairs of an autoscaler's utilization targets whose container in the
/// target's pod template requests none of that resource. Only targets the spec lists are judged (the API
/// server writes its default, CPU at 80 %, into every autoscaler it admits).
fn unrequested_utilization(
    spec: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec,
    template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
) -> Vec<(String, String)> {
    let Some(containers) = template.and_then(|t| t.spec.as_ref()).map(|s| &s.containers) else { return Vec::new() };
    let requests = |c: &k8s_openapi::api::core::v1::Container, r: &str| {
        c.resources.as_ref().and_then(|x| x.requests.as_ref()).is_some_and(|q| q.contains_key(r))
    };
    let mut out = Vec::new();
    for m in spec.metrics.iter().flatten() {
        // A Resource target counts every container; a ContainerResource one, the container it names.
        let (resource, only) = match (&m.resource, &m.container_resource) {
            (Some(r), _) if m.type_ == "Resource" && r.target.type_ == "Utilization" => (r.name.as_str(), None),
            (_, Some(r)) if m.type_ == "ContainerResource" && r.target.type_ == "Utilization" => {
                (r.name.as_str(), Some(r.container.as_str()))
            }
            _ => continue,
        };
        for c in containers.iter().filter(|c| only.is_none_or(|o| o == c.name)) {
            if !requests(c, resource) {
                out.push((resource.to_owned(), c.name.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Snapshot, analyze};
    use aegis_model::{Category, Incident, Severity};

    fn incidents(items: serde_json::Value) -> Vec<Incident> {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        analyze(&Snapshot::from_text(&list.to_string()).unwrap())
    }

    fn found(items: serde_json::Value) -> Vec<(Category, String)> {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        analyze(&Snapshot::from_text(&list.to_string()).unwrap()).into_iter().map(|i| (i.category, i.resource.name)).collect()
    }

    fn hpa(current: i32, limited: &str) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 2, "maxReplicas": 5},
            "status": {"currentReplicas": current, "desiredReplicas": current, "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
                {"type": "ScalingLimited", "status": limited, "reason": if limited == "True" { "TooManyReplicas" } else { "DesiredWithinRange" },
                 "message": "the desired replica count is more than the maximum replica count"}]}})
    }

    fn deployment() -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "x"}]}}}})
    }

    /// Metrics are not served on this cluster, so an autoscaler at its limit is shown with the objects
    /// the HPA controller writes.
    #[test]
    fn an_autoscaler_pinned_at_max_replicas_that_would_scale_further_is_reported_and_one_within_range_is_not() {
        assert_eq!(found(json!([deployment(), hpa(5, "True")])), [(Category::AutoscalerAtMaxReplicas, "api".to_owned())]);
        assert!(found(json!([deployment(), hpa(3, "False")])).is_empty());
    }

    #[test]
    fn an_autoscaler_on_cpu_utilization_of_containers_without_a_cpu_request_names_them_and_one_with_requests_is_quiet() {
        let mut hpa = hpa(2, "False");
        hpa["spec"]["metrics"] =
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]);
        let found = incidents(json!([deployment(), hpa.clone()]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::AutoscalerMetricsUnavailable);
        assert!(
            found[0].root_cause.contains("on cpu utilization") && found[0].root_cause.contains("container(s) api request none"),
            "{}",
            found[0].root_cause
        );
        let aegis_model::FixAction::Manual { guidance } = &found[0].fix.action else { panic!("{:?}", found[0].fix.action) };
        assert!(guidance.contains("kubectl set resources deployment/api -n shop -c api --requests=cpu=…"), "{guidance}");
        let mut requested = deployment();
        requested["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
        assert!(incidents(json!([requested, hpa.clone()])).is_empty());
        hpa["spec"]["metrics"][0]["resource"]["target"] = json!({"type": "AverageValue", "averageValue": "200m"});
        assert!(incidents(json!([deployment(), hpa])).is_empty(), "an average value needs no request");
    }

    /// A snapshot without IngressClasses (an operator without the RBAC to read them, a file captured
    /// without them) cannot say a class is missing.
    fn webhook(policy: &str) -> serde_json::Value {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "policy"},
            "webhooks": [{"name": "pods.policy.example.com", "failurePolicy": policy, "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "shop", "name": "policy-webhook", "port": 443}}}]})
    }

    fn webhook_service(port: i32) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "policy-webhook", "namespace": "shop"},
            "spec": {"selector": {"app": "policy"}, "ports": [{"port": port, "targetPort": 8443}]}})
    }

    fn webhook_endpoints(ready: bool) -> serde_json::Value {
        let address = json!([{"ip": "10.0.0.9"}]);
        let subset = if ready {
            json!({"addresses": address, "ports": [{"port": 8443}]})
        } else {
            json!({"notReadyAddresses": address, "ports": [{"port": 8443}]})
        };
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "policy-webhook", "namespace": "shop"}, "subsets": [subset]})
    }

    #[test]
    fn a_webhook_whose_service_has_no_ready_endpoint_is_critical_when_it_fails_closed() {
        let found = incidents(json!([webhook("Fail"), webhook_service(443), webhook_endpoints(false)]));
        let w: Vec<&Incident> = found.iter().filter(|i| i.category == Category::WebhookUnavailable).collect();
        assert_eq!(w.len(), 1, "{found:?}");
        assert_eq!((w[0].resource.kind.as_str(), w[0].resource.name.as_str()), ("Service", "policy-webhook"));
        assert_eq!(w[0].severity, Severity::Critical);
        assert!(
            w[0].root_cause.contains("no ready endpoint (1 not ready)") && w[0].root_cause.contains("refuses every request"),
            "{}",
            w[0].root_cause
        );
        assert!(w[0].evidence[0].contains("ValidatingWebhookConfiguration policy"), "{:?}", w[0].evidence);
    }

    #[test]
    fn a_webhook_that_fails_open_is_reported_as_a_check_silently_skipped() {
        let found = incidents(json!([webhook("Ignore"), webhook_service(443)]));
        let w = found.iter().find(|i| i.category == Category::WebhookUnavailable).expect("reported");
        assert_eq!(w.severity, Severity::Medium);
        assert!(w.root_cause.contains("no endpoint") && w.root_cause.contains("skips these webhooks"), "{}", w.root_cause);
    }

    #[test]
    fn a_webhook_calling_a_missing_service_or_port_is_reported_and_a_healthy_one_is_not() {
        let missing =
            incidents(json!([webhook("Fail"), json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "shop"}})]));
        assert!(
            missing.iter().any(|i| i.category == Category::WebhookUnavailable && i.root_cause.contains("Service policy-webhook not found")),
            "{missing:?}"
        );
        let wrong_port = incidents(json!([webhook("Fail"), webhook_service(8443), webhook_endpoints(true)]));
        assert!(wrong_port.iter().any(|i| i.root_cause.contains("has no port 443 (it has 8443)")), "{wrong_port:?}");
        let healthy = incidents(json!([webhook("Fail"), webhook_service(443), webhook_endpoints(true)]));
        assert!(!healthy.iter().any(|i| i.category == Category::WebhookUnavailable), "{healthy:?}");
    }

    #[test]
    fn a_webhook_backend_in_a_namespace_the_snapshot_did_not_read_is_not_judged() {
        let elsewhere = incidents(json!([
            webhook("Fail"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "billing"}})
        ]));
        assert!(!elsewhere.iter().any(|i| i.category == Category::WebhookUnavailable), "{elsewhere:?}");
    }

    fn cron_job(suspend: bool) -> serde_json::Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "shop"},
            "spec": {"schedule": "*/5 * * * *", "suspend": suspend, "startingDeadlineSeconds": 30,
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "r", "image": "report:1"}]}}}}}})
    }

    fn cron_event(reason: &str, message: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": format!("report.{reason}"), "namespace": "shop"},
            "involvedObject": {"kind": "CronJob", "namespace": "shop", "name": "report"}, "reason": reason, "message": message,
            "type": "Warning", "lastTimestamp": "2026-11-30T10:00:00Z"})
    }

    #[test]
    fn a_cron_job_that_misses_its_starts_is_reported_with_its_deadline() {
        let found = incidents(json!([
            cron_job(false),
            cron_event("MissSchedule", "Missed scheduled time to start a job: Mon, 30 Nov 2026 09:55:00 +0000")
        ]));
        let c = found.iter().find(|i| i.category == Category::CronJobNotStarting).expect("reported");
        assert_eq!((c.resource.kind.as_str(), c.resource.name.as_str()), ("CronJob", "report"));
        assert!(c.root_cause.contains("startingDeadlineSeconds (30 s)"), "{}", c.root_cause);
        assert!(c.evidence[0].contains("MissSchedule") && c.evidence[1].contains("no run scheduled yet"), "{:?}", c.evidence);
    }

    #[test]
    fn a_cron_job_whose_job_is_refused_names_the_refusal_and_a_suspended_one_is_not_reported() {
        let refused = cron_event(
            "FailedCreate",
            "Error creating job: jobs.batch \"report-29400000\" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=0, limited: count/jobs.batch=0",
        );
        let found = incidents(json!([cron_job(false), refused.clone()]));
        let c = found.iter().find(|i| i.category == Category::CronJobNotStarting).expect("reported");
        assert!(c.root_cause.contains("refuses the Job") && c.evidence[0].contains("exceeded quota"), "{c:?}");
        let suspended = incidents(json!([cron_job(true), refused]));
        assert!(!suspended.iter().any(|i| i.category == Category::CronJobNotStarting), "{suspended:?}");
        let quiet = incidents(json!([cron_job(false), cron_event("SuccessfulCreate", "Created job report-1")]));
        assert!(!quiet.iter().any(|i| i.category == Category::CronJobNotStarting), "{quiet:?}");
    }

    #[test]
    fn an_ingress_class_is_judged_missing_only_against_the_classes_the_snapshot_holds() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}});
        let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"ingressClassName": "nginx", "defaultBackend": {"service": {"name": "api", "port": {"number": 80}}}}});
        let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "traefik"}, "spec": {"controller": "x"}});
        assert!(found(json!([svc.clone(), ing.clone()])).is_empty());
        assert_eq!(found(json!([svc, ing, class])), [(Category::IngressClassMissing, "api".to_owned())]);
    }

    /// Two ready pods of `api` behind a Service sending 80 → the container port named `http` (8080),
    /// and `policies`.
    fn guarded_service(policies: serde_json::Value) -> Vec<Incident> {
        let pod = |n: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "namespace": "shop", "labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}})
        };
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": "http"}]}});
        let mut items = vec![pod("api-1"), pod("api-2"), svc];
        items.extend(policies.as_array().unwrap().iter().cloned());
        incidents(json!(items))
    }

    fn policy(name: &str, selector: serde_json::Value, spec: serde_json::Value) -> serde_json::Value {
        let mut spec = spec;
        spec["podSelector"] = selector;
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "shop"}, "spec": spec})
    }

    fn blocked(found: &[Incident]) -> Option<&Incident> {
        found.iter().find(|i| i.category == Category::ServiceBlockedByNetworkPolicy)
    }

    #[test]
    fn a_service_whose_pods_a_default_deny_isolates_with_allows_for_other_ports_only_is_blocked() {
        let found = guarded_service(json!([
            policy("default-deny", json!({}), json!({"policyTypes": ["Ingress"]})),
            policy("allow-metrics", json!({"matchLabels": {"app": "api"}}), json!({"ingress": [{"ports": [{"port": 9090}]}]})),
        ]));
        let i = blocked(&found).expect("reported");
        assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str(), i.severity), ("Service", "api", Severity::High));
        assert!(i.root_cause.contains("allow-metrics, default-deny"), "{}", i.root_cause);
        assert!(i.evidence.iter().any(|e| e.contains("default-deny") && e.contains("no ingress rule")), "{:?}", i.evidence);
        assert!(i.evidence.iter().any(|e| e.contains("allow-metrics") && e.contains("9090/TCP only")), "{:?}", i.evidence);
        assert!(i.evidence[0].contains("80/TCP → http"), "{:?}", i.evidence);
        let aegis_model::FixAction::Manual { guidance } = &i.fix.action else { panic!("manual") };
        assert!(guidance.contains("port 8080"), "{guidance}");
    }

    #[test]
    fn a_service_is_not_blocked_when_some_rule_admits_its_target_port_by_number_name_range_or_any_port() {
        let deny = policy("default-deny", json!({}), json!({"policyTypes": ["Ingress"]}));
        for rule in [
            json!({"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": 8080}]}),
            json!({"ports": [{"port": "http"}]}),
            json!({"ports": [{"port": 8000, "endPort": 8100}]}),
            json!({"from": [{"namespaceSelector": {}}]}),
        ] {
            let found = guarded_service(json!([
                deny.clone(),
                policy("allow", json!({"matchLabels": {"app": "api"}}), json!({"ingress": [rule.clone()]}))
            ]));
            assert!(blocked(&found).is_none(), "{rule}: {found:?}");
        }
        // UDP on the right port does not admit TCP.
        let udp = policy("allow", json!({}), json!({"ingress": [{"ports": [{"port": 8080, "protocol": "UDP"}]}]}));
        assert!(blocked(&guarded_service(json!([deny, udp]))).is_some());
    }

    #[test]
    fn a_service_is_not_blocked_without_a_policy_that_isolates_its_pods_for_ingress() {
        assert!(blocked(&guarded_service(json!([]))).is_none());
        let others = policy("deny-db", json!({"matchLabels": {"app": "db"}}), json!({"policyTypes": ["Ingress"]}));
        assert!(blocked(&guarded_service(json!([others]))).is_none(), "a policy for other pods");
        let egress = policy("deny-egress", json!({}), json!({"policyTypes": ["Egress"]}));
        assert!(blocked(&guarded_service(json!([egress]))).is_none(), "an egress-only policy");
    }

    fn tls_ingress(secrets: &[&str]) -> Vec<Incident> {
        let mut items = vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": "shop"},
                "spec": {"tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                    "rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}),
        ];
        items.extend(
            secrets
                .iter()
                .map(|n| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n, "namespace": "shop"}, "data": {"k": ""}})),
        );
        incidents(json!(items))
    }

    #[test]
    fn an_ingress_whose_tls_secret_does_not_exist_is_reported_only_where_the_snapshot_holds_secrets() {
        let found = tls_ingress(&["db-password"]);
        let i = found.iter().find(|i| i.category == Category::IngressTlsSecretMissing).expect("reported");
        assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str(), i.severity), ("Ingress", "shop", Severity::High));
        assert_eq!(i.evidence, ["Ingress shop: tls secretName shop-tls (hosts shop.example.com): no such Secret in shop"]);
        assert!(!tls_ingress(&["db-password", "shop-tls"]).iter().any(|i| i.category == Category::IngressTlsSecretMissing));
        // A live snapshot never lists Secrets: their absence says nothing.
        assert!(!tls_ingress(&[]).iter().any(|i| i.category == Category::IngressTlsSecretMissing));
    }
}
