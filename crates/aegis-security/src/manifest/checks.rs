//! The check table. Each check is a plain function over a pod spec.

use aegis_model::{FindingKind, Severity};
use serde_json::{Map, Value};

/// Where a check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    PssBaseline,
    PssRestricted,
    Hardening,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::PssBaseline => "PSS baseline",
            Profile::PssRestricted => "PSS restricted",
            Profile::Hardening => "hardening",
        }
    }
}

pub struct Context<'a> {
    pub kind: &'a str,
    pub spec: &'a Value,
    pub annotations: Option<&'a Map<String, Value>>,
}

/// One place a check failed: a container (or the pod spec) and what was wrong there.
pub struct Hit {
    pub container: Option<String>,
    pub detail: String,
}

pub struct Check {
    pub id: &'static str,
    pub name: &'static str,
    pub profile: Profile,
    pub kind: FindingKind,
    pub severity: Severity,
    pub title: &'static str,
    pub remediation: &'static str,
    pub run: fn(&Context<'_>) -> Vec<Hit>,
}

macro_rules! check {
    ($id:literal, $name:literal, $profile:ident, $kind:ident, $sev:ident, $title:literal, $fix:literal, $run:path) => {
        Check {
            id: $id,
            name: $name,
            profile: Profile::$profile,
            kind: FindingKind::$kind,
            severity: Severity::$sev,
            title: $title,
            remediation: $fix,
            run: $run,
        }
    };
}

pub static CHECKS: &[Check] = &[
    check!(
        "AEGIS-K8S-001",
        "host-namespaces",
        PssBaseline,
        PolicyViolation,
        High,
        "Pod shares the host's network, PID or IPC namespace",
        "Remove hostNetwork, hostPID and hostIPC (or set them to false).",
        host_namespaces
    ),
    check!(
        "AEGIS-K8S-002",
        "privileged",
        PssBaseline,
        PolicyViolation,
        Critical,
        "Container runs privileged",
        "Set securityContext.privileged to false; grant only the capabilities the process needs.",
        privileged
    ),
    check!(
        "AEGIS-K8S-003",
        "added-capabilities",
        PssBaseline,
        PolicyViolation,
        High,
        "Container adds capabilities beyond the PSS baseline set",
        "Remove capabilities outside the baseline set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).",
        added_capabilities
    ),
    check!(
        "AEGIS-K8S-004",
        "host-path",
        PssBaseline,
        PolicyViolation,
        High,
        "Pod mounts a hostPath volume",
        "Use a PersistentVolumeClaim, emptyDir, ConfigMap or Secret instead of hostPath.",
        host_path
    ),
    check!(
        "AEGIS-K8S-005",
        "host-ports",
        PssBaseline,
        PolicyViolation,
        Medium,
        "Container binds a host port",
        "Remove hostPort; expose the container through a Service.",
        host_ports
    ),
    check!(
        "AEGIS-K8S-006",
        "apparmor-unconfined",
        PssBaseline,
        PolicyViolation,
        Medium,
        "AppArmor profile is unconfined",
        "Use the runtime/default or a Localhost AppArmor profile.",
        apparmor
    ),
    check!(
        "AEGIS-K8S-007",
        "selinux-custom",
        PssBaseline,
        PolicyViolation,
        Medium,
        "SELinux options set a custom user, role or type",
        "Remove seLinuxOptions.user and .role; use type container_t, container_init_t or container_kvm_t.",
        selinux
    ),
    check!(
        "AEGIS-K8S-008",
        "proc-mount-unmasked",
        PssBaseline,
        PolicyViolation,
        Medium,
        "Container uses an unmasked /proc",
        "Remove securityContext.procMount or set it to Default.",
        proc_mount
    ),
    check!(
        "AEGIS-K8S-009",
        "seccomp-unconfined",
        PssBaseline,
        PolicyViolation,
        Medium,
        "Seccomp profile is Unconfined",
        "Set seccompProfile.type to RuntimeDefault or Localhost.",
        seccomp_unconfined
    ),
    check!(
        "AEGIS-K8S-010",
        "unsafe-sysctls",
        PssBaseline,
        PolicyViolation,
        Medium,
        "Pod sets a sysctl outside the safe set",
        "Only set namespaced safe sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, net.ipv4.tcp_keepalive_probes).",
        sysctls
    ),
    check!(
        "AEGIS-K8S-011",
        "restricted-volume-types",
        PssRestricted,
        PolicyViolation,
        Low,
        "Pod uses a volume type the restricted profile forbids",
        "Use only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret volumes.",
        volume_types
    ),
    check!(
        "AEGIS-K8S-012",
        "privilege-escalation",
        PssRestricted,
        PolicyViolation,
        Medium,
        "Container allows privilege escalation",
        "Set securityContext.allowPrivilegeEscalation: false.",
        privilege_escalation
    ),
    check!(
        "AEGIS-K8S-013",
        "run-as-non-root",
        PssRestricted,
        PolicyViolation,
        Medium,
        "Container may run as root (runAsNonRoot is not true)",
        "Set securityContext.runAsNonRoot: true on the pod or every container.",
        run_as_non_root
    ),
    check!(
        "AEGIS-K8S-014",
        "run-as-root-user",
        PssRestricted,
        PolicyViolation,
        High,
        "Container runs as UID 0",
        "Set runAsUser to a non-zero UID.",
        run_as_root_user
    ),
    check!(
        "AEGIS-K8S-015",
        "seccomp-required",
        PssRestricted,
        PolicyViolation,
        Low,
        "No seccomp profile is set",
        "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
        seccomp_required
    ),
    check!(
        "AEGIS-K8S-016",
        "capabilities-drop-all",
        PssRestricted,
        PolicyViolation,
        Low,
        "Container does not drop ALL capabilities (or adds one other than NET_BIND_SERVICE)",
        "Set securityContext.capabilities.drop: [ALL] and add back only NET_BIND_SERVICE if needed.",
        drop_all
    ),
    check!(
        "AEGIS-K8S-017",
        "writable-root-filesystem",
        Hardening,
        Misconfiguration,
        Low,
        "Container root filesystem is writable",
        "Set securityContext.readOnlyRootFilesystem: true; mount emptyDir for scratch space.",
        read_only_root
    ),
    check!(
        "AEGIS-K8S-018",
        "missing-requests",
        Hardening,
        Misconfiguration,
        Low,
        "Container has no CPU or memory request",
        "Set resources.requests.cpu and resources.requests.memory.",
        missing_requests
    ),
    check!(
        "AEGIS-K8S-019",
        "missing-memory-limit",
        Hardening,
        Misconfiguration,
        Low,
        "Container has no memory limit",
        "Set resources.limits.memory.",
        missing_limits
    ),
    check!(
        "AEGIS-K8S-020",
        "missing-probes",
        Hardening,
        Misconfiguration,
        Low,
        "Long-running container has no liveness or readiness probe",
        "Add readinessProbe and livenessProbe.",
        missing_probes
    ),
    check!(
        "AEGIS-K8S-021",
        "image-latest-or-untagged",
        Hardening,
        Misconfiguration,
        Medium,
        "Image uses the latest tag or no tag",
        "Pin the image to a version tag or, better, a digest (image@sha256:...).",
        image_tag
    ),
    check!(
        "AEGIS-K8S-022",
        "service-account-token-automount",
        Hardening,
        Misconfiguration,
        Low,
        "Service account token is mounted automatically",
        "Set automountServiceAccountToken: false unless the pod talks to the API server.",
        automount
    ),
    check!(
        "AEGIS-K8S-023",
        "secret-literal-in-env",
        Hardening,
        Secret,
        High,
        "Secret-looking value written literally in an environment variable",
        "Move the value into a Secret and reference it with valueFrom.secretKeyRef.",
        secret_env
    ),
];

// ---------- helpers ----------

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers", "ephemeralContainers"].into_iter().filter_map(move |k| spec.get(k).and_then(Value::as_array)).flatten()
}

/// Only app containers: probes and resources are judged on these.
fn app_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("containers").and_then(Value::as_array).into_iter().flatten()
}

fn cname(c: &Value) -> Option<String> {
    Some(c.get("name").and_then(Value::as_str).unwrap_or("<unnamed>").to_owned())
}

fn hit(container: Option<String>, detail: impl Into<String>) -> Hit {
    Hit { container, detail: detail.into() }
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn sc<'a>(c: &'a Value, key: &str) -> Option<&'a Value> {
    c.get("securityContext").and_then(|s| s.get(key))
}

fn per_container(ctx: &Context<'_>, f: impl Fn(&Value) -> Option<String>) -> Vec<Hit> {
    containers(ctx.spec).filter_map(|c| f(c).map(|d| hit(cname(c), d))).collect()
}

fn pod_sc<'a>(ctx: &Context<'a>, key: &str) -> Option<&'a Value> {
    ctx.spec.get("securityContext").and_then(|s| s.get(key))
}

// ---------- PSS baseline ----------

fn host_namespaces(ctx: &Context<'_>) -> Vec<Hit> {
    ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| is_true(ctx.spec.get(*k)))
        .map(|k| hit(None, format!("{k}: true")))
        .collect()
}

fn privileged(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| is_true(sc(c, "privileged")).then(|| "securityContext.privileged: true".into()))
}

const BASELINE_CAPS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_caps(c: &Value) -> Vec<String> {
    sc(c, "capabilities")
        .and_then(|caps| caps.get("add"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.trim_start_matches("CAP_").to_ascii_uppercase()).collect())
        .unwrap_or_default()
}

fn added_capabilities(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| {
        let extra: Vec<String> = added_caps(c).into_iter().filter(|cap| !BASELINE_CAPS.contains(&cap.as_str())).collect();
        (!extra.is_empty()).then(|| format!("capabilities.add: {}", extra.join(", ")))
    })
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("volumes").and_then(Value::as_array).into_iter().flatten()
}

fn host_path(ctx: &Context<'_>) -> Vec<Hit> {
    volumes(ctx.spec)
        .filter_map(|v| {
            let path = v.pointer("/hostPath/path")?.as_str().unwrap_or("?");
            Some(hit(None, format!("volume {} mounts host path {path}", v.get("name").and_then(Value::as_str).unwrap_or("?"))))
        })
        .collect()
}

fn host_ports(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| {
        let ports: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_u64).filter(|p| *p != 0))
            .map(|p| p.to_string())
            .collect();
        (!ports.is_empty()).then(|| format!("hostPort {}", ports.join(", ")))
    })
}

fn apparmor(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (k, v) in ctx.annotations.into_iter().flatten() {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") && v.as_str() == Some("unconfined") {
            hits.push(hit(k.rsplit('/').next().map(str::to_owned), format!("annotation {k}: unconfined")));
        }
    }
    if pod_sc(ctx, "appArmorProfile").and_then(|p| p.get("type")).and_then(Value::as_str) == Some("Unconfined") {
        hits.push(hit(None, "securityContext.appArmorProfile.type: Unconfined"));
    }
    hits.extend(per_container(ctx, |c| {
        (sc(c, "appArmorProfile").and_then(|p| p.get("type")).and_then(Value::as_str) == Some("Unconfined"))
            .then(|| "securityContext.appArmorProfile.type: Unconfined".into())
    }));
    hits
}

fn selinux_detail(opts: Option<&Value>) -> Option<String> {
    let opts = opts?;
    let allowed_types = ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
    if let Some(t) = opts.get("type").and_then(Value::as_str)
        && !allowed_types.contains(&t)
    {
        return Some(format!("seLinuxOptions.type: {t}"));
    }
    for k in ["user", "role"] {
        if opts.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
            return Some(format!("seLinuxOptions.{k} is set"));
        }
    }
    None
}

fn selinux(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits: Vec<Hit> = selinux_detail(pod_sc(ctx, "seLinuxOptions")).map(|d| hit(None, d)).into_iter().collect();
    hits.extend(per_container(ctx, |c| selinux_detail(sc(c, "seLinuxOptions"))));
    hits
}

fn proc_mount(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| {
        (sc(c, "procMount").and_then(Value::as_str).is_some_and(|m| m != "Default")).then(|| "procMount: Unmasked".into())
    })
}

fn seccomp_type(v: Option<&Value>) -> Option<&str> {
    v?.get("type")?.as_str()
}

fn seccomp_unconfined(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    if seccomp_type(pod_sc(ctx, "seccompProfile")) == Some("Unconfined") {
        hits.push(hit(None, "seccompProfile.type: Unconfined"));
    }
    hits.extend(per_container(ctx, |c| {
        (seccomp_type(sc(c, "seccompProfile")) == Some("Unconfined")).then(|| "seccompProfile.type: Unconfined".into())
    }));
    hits
}

const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

fn sysctls(ctx: &Context<'_>) -> Vec<Hit> {
    pod_sc(ctx, "sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(|n| hit(None, format!("sysctl {n}")))
        .collect()
}

// ---------- PSS restricted ----------

const RESTRICTED_VOLUMES: [&str; 8] =
    ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

fn volume_types(ctx: &Context<'_>) -> Vec<Hit> {
    volumes(ctx.spec)
        .filter_map(|v| {
            let obj = v.as_object()?;
            let kind = obj.keys().find(|k| *k != "name")?;
            (!RESTRICTED_VOLUMES.contains(&kind.as_str()))
                .then(|| hit(None, format!("volume {} is of type {kind}", v.get("name").and_then(Value::as_str).unwrap_or("?"))))
        })
        .collect()
}

fn privilege_escalation(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| {
        (sc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false)).then(|| "allowPrivilegeEscalation is not false".into())
    })
}

fn run_as_non_root(ctx: &Context<'_>) -> Vec<Hit> {
    let pod = pod_sc(ctx, "runAsNonRoot").and_then(Value::as_bool);
    per_container(ctx, |c| {
        let effective = sc(c, "runAsNonRoot").and_then(Value::as_bool).or(pod);
        (effective != Some(true)).then(|| "runAsNonRoot is not true".into())
    })
}

fn run_as_root_user(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    if pod_sc(ctx, "runAsUser").and_then(Value::as_u64) == Some(0) {
        hits.push(hit(None, "securityContext.runAsUser: 0"));
    }
    hits.extend(per_container(ctx, |c| (sc(c, "runAsUser").and_then(Value::as_u64) == Some(0)).then(|| "runAsUser: 0".into())));
    hits
}

fn seccomp_required(ctx: &Context<'_>) -> Vec<Hit> {
    let pod = seccomp_type(pod_sc(ctx, "seccompProfile"));
    per_container(ctx, |c| {
        let t = seccomp_type(sc(c, "seccompProfile")).or(pod);
        (!matches!(t, Some("RuntimeDefault" | "Localhost"))).then(|| "no RuntimeDefault or Localhost seccomp profile".into())
    })
}

fn drop_all(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| {
        let drops_all = sc(c, "capabilities")
            .and_then(|caps| caps.get("drop"))
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x.as_str().is_some_and(|s| s.eq_ignore_ascii_case("ALL"))));
        let bad_adds: Vec<String> = added_caps(c).into_iter().filter(|c| c != "NET_BIND_SERVICE").collect();
        if !drops_all {
            Some("capabilities.drop does not include ALL".into())
        } else if !bad_adds.is_empty() {
            Some(format!("capabilities.add: {}", bad_adds.join(", ")))
        } else {
            None
        }
    })
}

// ---------- hardening ----------

fn read_only_root(ctx: &Context<'_>) -> Vec<Hit> {
    app_containers(ctx.spec)
        .filter(|c| !is_true(sc(c, "readOnlyRootFilesystem")))
        .map(|c| hit(cname(c), "readOnlyRootFilesystem is not true"))
        .collect()
}

fn missing_requests(ctx: &Context<'_>) -> Vec<Hit> {
    app_containers(ctx.spec)
        .filter_map(|c| {
            let missing: Vec<&str> =
                ["cpu", "memory"].into_iter().filter(|r| c.pointer(&format!("/resources/requests/{r}")).is_none()).collect();
            (!missing.is_empty()).then(|| hit(cname(c), format!("no {} request", missing.join(" or "))))
        })
        .collect()
}

fn missing_limits(ctx: &Context<'_>) -> Vec<Hit> {
    app_containers(ctx.spec).filter(|c| c.pointer("/resources/limits/memory").is_none()).map(|c| hit(cname(c), "no memory limit")).collect()
}

fn missing_probes(ctx: &Context<'_>) -> Vec<Hit> {
    // Run-to-completion pods are not probed for liveness or readiness.
    if matches!(ctx.kind, "Job" | "CronJob") {
        return Vec::new();
    }
    app_containers(ctx.spec)
        .filter_map(|c| {
            let missing: Vec<&str> = ["livenessProbe", "readinessProbe"].into_iter().filter(|p| c.get(*p).is_none()).collect();
            (!missing.is_empty()).then(|| hit(cname(c), format!("no {}", missing.join(" or "))))
        })
        .collect()
}

/// The tag of an image reference, if any (`None` for untagged or digest-pinned references).
fn image_tag_of(image: &str) -> Option<&str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

fn image_tag(ctx: &Context<'_>) -> Vec<Hit> {
    per_container(ctx, |c| {
        let image = c.get("image").and_then(Value::as_str)?;
        if image.contains('@') {
            return None;
        }
        match image_tag_of(image) {
            None => Some(format!("image {image} has no tag")),
            Some("latest") => Some(format!("image {image} uses :latest")),
            Some(_) => None,
        }
    })
}

fn automount(ctx: &Context<'_>) -> Vec<Hit> {
    (ctx.spec.get("automountServiceAccountToken").and_then(Value::as_bool) != Some(false))
        .then(|| hit(None, "automountServiceAccountToken is not false"))
        .into_iter()
        .collect()
}

fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "ACCESS_KEY", "CREDENTIAL"].iter().any(|k| n.contains(k))
}

fn secret_env(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for c in containers(ctx.spec) {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = e.get("name").and_then(Value::as_str) else { continue };
            let value = e.get("value").and_then(Value::as_str).unwrap_or("");
            // `$(OTHER_VAR)` references and empty values hold no secret. The value is never reported.
            if looks_secret(name) && !value.is_empty() && !(value.starts_with("$(") && value.ends_with(')')) {
                hits.push(hit(cname(c), format!("env {name} has a literal value")));
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::super::check_text;
    use super::*;

    #[test]
    fn check_ids_are_unique_and_numbered_in_order() {
        for (i, c) in CHECKS.iter().enumerate() {
            assert_eq!(c.id, format!("AEGIS-K8S-{:03}", i + 1));
        }
    }

    #[test]
    fn a_privileged_deployment_with_a_secret_literal_is_flagged_without_printing_the_value() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    spec:
      hostNetwork: true
      containers:
        - name: api
          image: nginx
          securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN]}}
          env: [{name: DB_PASSWORD, value: hunter2}]
"#;
        let findings = check_text(yaml).unwrap().findings;
        let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
        for id in ["AEGIS-K8S-001", "AEGIS-K8S-002", "AEGIS-K8S-003", "AEGIS-K8S-021", "AEGIS-K8S-023"] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert!(!serde_json::to_string(&findings).unwrap().contains("hunter2"));
    }

    #[test]
    fn a_hardened_pod_passes_every_check() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: app
      image: registry.example/app:1.2.3
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
      readinessProbe: {httpGet: {path: /ready, port: 8080}}
      livenessProbe: {httpGet: {path: /healthz, port: 8080}}
"#;
        let findings = check_text(yaml).unwrap().findings;
        assert!(findings.is_empty(), "{:#?}", findings.iter().map(|f| (&f.id, &f.location)).collect::<Vec<_>>());
    }

    #[test]
    fn image_tags_are_read_past_registry_ports() {
        assert_eq!(image_tag_of("127.0.0.1:5000/demo"), None);
        assert_eq!(image_tag_of("127.0.0.1:5000/demo:v1"), Some("v1"));
        assert_eq!(image_tag_of("nginx@sha256:abc"), None);
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    #[test]
    fn docs_list_every_manifest_check() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/manifest-checks.md"))
            .expect("docs/manifest-checks.md");
        for c in CHECKS {
            let row = doc.lines().find(|l| l.starts_with(&format!("| {} |", c.id))).unwrap_or_else(|| panic!("{} missing from docs", c.id));
            assert!(row.contains(&format!("`{}`", c.name)), "{row}");
            assert!(row.contains(&format!("| {} |", c.severity)), "{row}");
            assert!(row.contains(c.profile.as_str()), "{row}");
        }
    }
}
