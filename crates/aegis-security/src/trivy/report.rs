//! Trivy JSON, every shape it has had: the legacy bare array of results (≤ v0.19), the
//! `SchemaVersion: 2` object, and the two `trivy k8s` layouts (`Resources[]`, and the older
//! `Vulnerabilities[]` / `Misconfigurations[]` lists).

use aegis_model::{Finding, FindingKind, Fingerprint, Package, Severity, Source, Target};
use serde::Deserialize;

use super::TrivyError;

/// A Trivy report reduced to what the gate needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReport {
    /// `Trivy.Version` (v0.69+), when the report carries it.
    pub tool_version: Option<String>,
    /// What was scanned, as far as the report says.
    pub artifact: Option<Target>,
    /// Failing findings (misconfigurations with `Status: PASS` are not findings).
    pub findings: Vec<Finding>,
    /// Per-resource errors of a `trivy k8s` scan: those resources were *not* scanned.
    pub resource_errors: Vec<String>,
    /// How many resources a `trivy k8s` report lists (0 for other reports).
    pub resources: usize,
}

impl ParsedReport {
    /// Fill `run` with the report: findings and version; resources Trivy could not scan make the run
    /// incomplete (they are missing evidence, not clean ones).
    pub fn fill(self, run: &mut aegis_model::ScannerRun) {
        if run.tool_version.is_none() {
            run.tool_version = self.tool_version;
        }
        if !self.resource_errors.is_empty() {
            let shown = self.resource_errors.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
            let more = if self.resource_errors.len() > 3 { format!(" (+{} more)", self.resource_errors.len() - 3) } else { String::new() };
            run.mark_incomplete(format!(
                "{} of {} resource(s) could not be scanned, so they cannot be cleared: {shown}{more}",
                self.resource_errors.len(),
                self.resources
            ));
        }
        run.findings = self.findings;
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyReport {
    Legacy(Vec<TrivyResult>),
    Object(Box<ReportObject>),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReportObject {
    schema_version: Option<u32>,
    trivy: Option<TrivyInfo>,
    artifact_name: Option<String>,
    artifact_type: Option<String>,
    metadata: Option<Metadata>,
    results: Option<Vec<TrivyResult>>,
    // trivy k8s
    cluster_name: Option<String>,
    resources: Option<Vec<K8sResource>>,
    vulnerabilities: Option<Vec<K8sResource>>,
    misconfigurations: Option<Vec<K8sResource>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TrivyInfo {
    version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    image_id: Option<String>,
    repo_digests: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct K8sResource {
    namespace: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    results: Option<Vec<TrivyResult>>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult {
    target: Option<String>,
    class: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    vulnerabilities: Option<Vec<Vulnerability>>,
    misconfigurations: Option<Vec<Misconfiguration>>,
    secrets: Option<Vec<Secret>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: String,
    pkg_name: Option<String>,
    pkg_path: Option<String>,
    installed_version: Option<String>,
    fixed_version: Option<String>,
    status: Option<String>,
    title: Option<String>,
    severity: Option<String>,
    #[serde(rename = "PrimaryURL")]
    primary_url: Option<String>,
    references: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Misconfiguration {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AVDID")]
    avd_id: Option<String>,
    title: Option<String>,
    message: Option<String>,
    severity: Option<String>,
    #[serde(rename = "PrimaryURL")]
    primary_url: Option<String>,
    references: Option<Vec<String>>,
    status: Option<String>,
    cause_metadata: Option<CauseMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CauseMetadata {
    resource: Option<String>,
    start_line: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Secret {
    #[serde(rename = "RuleID")]
    rule_id: String,
    title: Option<String>,
    severity: Option<String>,
    start_line: Option<u64>,
    #[serde(rename = "Match")]
    matched: Option<String>,
}

/// Parse a Trivy JSON report of any supported shape. Fails on empty, truncated or invalid JSON and on
/// JSON that is not a Trivy report — never returns "no findings" for input it did not understand.
pub fn parse_report(bytes: &[u8]) -> Result<ParsedReport, TrivyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(TrivyError::EmptyOutput);
    }
    let any: AnyReport = serde_json::from_slice(bytes).map_err(|e| TrivyError::InvalidJson(e.to_string()))?;
    match any {
        AnyReport::Legacy(results) => {
            let artifact = legacy_artifact(&results);
            let mut out = Collector::new(artifact.clone());
            for r in &results {
                out.result(r, None)?;
            }
            Ok(out.finish(None, Vec::new()))
        }
        AnyReport::Object(obj) => parse_object(*obj),
    }
}

fn parse_object(obj: ReportObject) -> Result<ParsedReport, TrivyError> {
    let tool_version = obj.trivy.as_ref().and_then(|t| t.version.clone());
    if obj.cluster_name.is_some() || obj.resources.is_some() || obj.vulnerabilities.is_some() || obj.misconfigurations.is_some() {
        let mut out = Collector::new(None);
        let mut errors = Vec::new();
        let lists = [obj.resources, obj.vulnerabilities, obj.misconfigurations];
        let mut resources = 0usize;
        for res in lists.into_iter().flatten().flatten() {
            resources += 1;
            let scope = K8sScope {
                kind: res.kind.clone().unwrap_or_else(|| "Unknown".into()),
                namespace: res.namespace.clone().filter(|n| !n.is_empty()),
                name: res.name.clone().unwrap_or_default(),
            };
            if let Some(err) = res.error.as_ref().filter(|e| !e.is_null() && e.as_str() != Some("")) {
                errors.push(format!(
                    "{}/{}: {}",
                    scope.kind,
                    scope.name,
                    err.as_str().map(str::to_owned).unwrap_or_else(|| err.to_string())
                ));
            }
            for r in res.results.iter().flatten() {
                out.result(r, Some(&scope))?;
            }
        }
        return Ok(ParsedReport { resources, ..out.finish(tool_version, errors) });
    }
    match obj.schema_version {
        Some(2) => {}
        Some(v) => return Err(TrivyError::UnsupportedSchema(v)),
        None => {
            return Err(TrivyError::NotATrivyReport("expected SchemaVersion 2, a legacy array of results, or a `trivy k8s` report".into()));
        }
    }
    let artifact = artifact_target(obj.artifact_name.as_deref(), obj.artifact_type.as_deref(), obj.metadata.as_ref());
    let mut out = Collector::new(artifact);
    for r in obj.results.iter().flatten() {
        out.result(r, None)?;
    }
    Ok(out.finish(tool_version, Vec::new()))
}

struct K8sScope {
    kind: String,
    namespace: Option<String>,
    name: String,
}

struct Collector {
    artifact: Option<Target>,
    findings: Vec<Finding>,
}

impl Collector {
    fn new(artifact: Option<Target>) -> Self {
        Collector { artifact, findings: Vec::new() }
    }

    fn finish(self, tool_version: Option<String>, resource_errors: Vec<String>) -> ParsedReport {
        ParsedReport { tool_version, artifact: self.artifact, findings: self.findings, resource_errors, resources: 0 }
    }

    fn target(&self, scope: Option<&K8sScope>, result_target: &str) -> Target {
        if let Some(s) = scope {
            return Target::Resource { kind: s.kind.clone(), namespace: s.namespace.clone(), name: s.name.clone() };
        }
        self.artifact.clone().unwrap_or_else(|| Target::Path { path: result_target.to_owned() })
    }

    fn result(&mut self, r: &TrivyResult, scope: Option<&K8sScope>) -> Result<(), TrivyError> {
        let result_target = r.target.as_deref().unwrap_or("");
        let class = r.class.as_deref().unwrap_or("");
        let scope_key = scope.map(|s| format!("{}/{}", s.kind, s.name)).unwrap_or_default();
        // OS package results are named after the image and its OS release ("alpine:3.9 (alpine 3.9.4)"),
        // which differ between baseline and candidate; language and config results are named after a
        // file inside the artifact, which is stable.
        let stable_place = if class == "os-pkgs" { r.kind.as_deref().unwrap_or("os") } else { result_target };

        for v in r.vulnerabilities.iter().flatten() {
            let severity = severity(v.severity.as_deref(), &v.vulnerability_id)?;
            let pkg_name = v.pkg_name.clone().unwrap_or_default();
            let fingerprint = Fingerprint::of(&[
                "trivy",
                "vulnerability",
                &v.vulnerability_id,
                &scope_key,
                stable_place,
                &pkg_name,
                v.pkg_path.as_deref().unwrap_or(""),
            ]);
            let mut references: Vec<String> = v.primary_url.iter().cloned().collect();
            references.extend(v.references.iter().flatten().take(4).cloned());
            references.dedup();
            self.findings.push(Finding {
                source: Source::Trivy,
                kind: FindingKind::Vulnerability,
                id: v.vulnerability_id.clone(),
                title: v.title.clone().unwrap_or_else(|| format!("{} in {}", v.vulnerability_id, pkg_name)),
                severity,
                target: self.target(scope, result_target),
                location: Some(location(result_target, class, v.pkg_path.as_deref(), &pkg_name, v.installed_version.as_deref())),
                package: Some(Package {
                    name: pkg_name,
                    installed_version: v.installed_version.clone(),
                    fixed_version: v.fixed_version.clone().filter(|f| !f.is_empty()),
                    status: v.status.clone(),
                }),
                references,
                native_severity: v.severity.clone(),
                aliases: Vec::new(),
                fingerprint,
            });
        }

        for m in r.misconfigurations.iter().flatten() {
            // Only failures are findings; PASS and EXCEPTION appear with --include-non-failures. A status
            // Trivy never writes cannot be judged either way.
            match m.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("FAIL") => {}
                Some("PASS" | "EXCEPTION") => continue,
                Some(other) => {
                    let id = m.id.as_deref().or(m.avd_id.as_deref()).unwrap_or("misconfiguration");
                    return Err(TrivyError::InvalidField(format!("{id}: unknown Status {other:?} (Trivy writes FAIL, PASS or EXCEPTION)")));
                }
            }
            let raw_id = m.id.clone().or_else(|| m.avd_id.clone()).unwrap_or_else(|| "UNKNOWN".into());
            let id = canonical_check_id(&raw_id);
            let severity = severity(m.severity.as_deref(), &raw_id)?;
            let mut aliases: Vec<String> = [Some(raw_id.clone()), m.avd_id.clone()].into_iter().flatten().filter(|a| *a != id).collect();
            aliases.dedup();
            let message = m.message.clone().unwrap_or_default();
            let cause_resource = m.cause_metadata.as_ref().and_then(|c| c.resource.clone()).unwrap_or_default();
            let fingerprint = Fingerprint::of(&["trivy", "misconfiguration", &id, &scope_key, result_target, &cause_resource, &message]);
            let line = m.cause_metadata.as_ref().and_then(|c| c.start_line);
            self.findings.push(Finding {
                source: Source::Trivy,
                kind: FindingKind::Misconfiguration,
                title: m.title.clone().unwrap_or_else(|| id.clone()),
                id,
                severity,
                target: self.target(scope, result_target),
                location: Some(match line {
                    Some(l) => format!("{result_target}:{l}"),
                    None => result_target.to_owned(),
                }),
                package: None,
                references: m.primary_url.iter().chain(m.references.iter().flatten()).take(4).cloned().collect(),
                native_severity: m.severity.clone(),
                aliases,
                fingerprint,
            });
        }

        for s in r.secrets.iter().flatten() {
            let severity = severity(s.severity.as_deref(), &s.rule_id)?;
            let matched = s.matched.clone().unwrap_or_default();
            let fingerprint = Fingerprint::of(&["trivy", "secret", &s.rule_id, &scope_key, result_target, &matched]);
            self.findings.push(Finding {
                source: Source::Trivy,
                kind: FindingKind::Secret,
                id: s.rule_id.clone(),
                title: s.title.clone().unwrap_or_else(|| s.rule_id.clone()),
                severity,
                target: self.target(scope, result_target),
                location: Some(match s.start_line {
                    Some(l) => format!("{result_target}:{l}"),
                    None => result_target.to_owned(),
                }),
                package: None,
                references: Vec::new(),
                native_severity: s.severity.clone(),
                aliases: Vec::new(),
                fingerprint,
            });
        }
        Ok(())
    }
}

fn severity(raw: Option<&str>, id: &str) -> Result<Severity, TrivyError> {
    match raw {
        // Trivy writes UNKNOWN when no source rates a vulnerability; a missing field means the same.
        None => Ok(Severity::Unknown),
        Some(s) => s.parse().map_err(|e| TrivyError::InvalidField(format!("{id}: {e}"))),
    }
}

/// `<file> (<package> <version>)`. OS package results are named "image (os release)"; the image is
/// already the finding's target, so only the OS release is kept.
fn location(result_target: &str, class: &str, pkg_path: Option<&str>, pkg_name: &str, version: Option<&str>) -> String {
    let pkg = match version {
        Some(v) => format!("{pkg_name} {v}"),
        None => pkg_name.to_owned(),
    };
    let place = match pkg_path {
        Some(p) if !p.is_empty() => p,
        _ if class == "os-pkgs" => result_target.rsplit_once(" (").map(|(_, os)| os.trim_end_matches(')')).unwrap_or(result_target),
        _ => result_target,
    };
    format!("{place} ({pkg})")
}

fn artifact_target(name: Option<&str>, kind: Option<&str>, meta: Option<&Metadata>) -> Option<Target> {
    let name = name?.to_owned();
    Some(match kind.unwrap_or("") {
        "container_image" => Target::Image { digest: image_digest(meta), reference: name },
        _ => Target::Path { path: name },
    })
}

fn image_digest(meta: Option<&Metadata>) -> Option<String> {
    let meta = meta?;
    meta.repo_digests
        .iter()
        .flatten()
        .find_map(|d| d.split_once('@').map(|(_, digest)| digest.to_owned()))
        .or_else(|| meta.image_id.clone())
}

/// Legacy reports name no artifact; the OS result's target is "image (os version)".
fn legacy_artifact(results: &[TrivyResult]) -> Option<Target> {
    let os = results.iter().find(|r| r.kind.as_deref().is_some_and(is_os_type) || r.class.as_deref() == Some("os-pkgs"))?;
    let target = os.target.as_deref()?;
    let reference = target.split(" (").next().unwrap_or(target).trim();
    Some(Target::Image { reference: reference.to_owned(), digest: None })
}

fn is_os_type(t: &str) -> bool {
    matches!(
        t,
        "alpine"
            | "debian"
            | "ubuntu"
            | "centos"
            | "redhat"
            | "rocky"
            | "alma"
            | "amazon"
            | "oracle"
            | "photon"
            | "suse linux enterprise server"
            | "opensuse.leap"
            | "wolfi"
            | "chainguard"
            | "mariner"
            | "azurelinux"
    )
}

/// One spelling for a check across Trivy versions: `KSV001`, `AVD-KSV-0001` and `KSV-0001` all become
/// `KSV-0001`; IDs of another form are kept as they are.
pub fn canonical_check_id(raw: &str) -> String {
    let id = raw.trim();
    let id = id.strip_prefix("AVD-").unwrap_or(id);
    let split = id.find(|c: char| c.is_ascii_digit());
    if let Some(pos) = split {
        let (prefix, digits) = id.split_at(pos);
        let prefix = prefix.strip_suffix('-').unwrap_or(prefix);
        if !prefix.is_empty()
            && prefix.chars().all(|c| c.is_ascii_uppercase())
            && !digits.is_empty()
            && digits.len() <= 4
            && digits.chars().all(|c| c.is_ascii_digit())
        {
            return format!("{prefix}-{digits:0>4}");
        }
    }
    id.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_misconfiguration_ids_share_one_canonical_form() {
        assert_eq!(canonical_check_id("KSV001"), "KSV-0001");
        assert_eq!(canonical_check_id("AVD-KSV-0001"), "KSV-0001");
        assert_eq!(canonical_check_id("KSV-0001"), "KSV-0001");
        assert_eq!(canonical_check_id("DS002"), "DS-0002");
        assert_eq!(canonical_check_id("AVD-DS-0002"), "DS-0002");
        assert_eq!(canonical_check_id("my-custom-check"), "my-custom-check");
        assert_eq!(canonical_check_id("CVE-2020-1234"), "CVE-2020-1234");
    }

    #[test]
    fn empty_truncated_and_foreign_json_are_errors_not_clean_reports() {
        assert!(matches!(parse_report(b"  \n"), Err(TrivyError::EmptyOutput)));
        assert!(matches!(parse_report(br#"{"SchemaVersion": 2, "Results": ["#), Err(TrivyError::InvalidJson(_))));
        assert!(matches!(parse_report(br#"{"hello": "world"}"#), Err(TrivyError::NotATrivyReport(_))));
        assert!(matches!(parse_report(br#"{"SchemaVersion": 3}"#), Err(TrivyError::UnsupportedSchema(3))));
        assert!(matches!(parse_report(b"[1, 2]"), Err(TrivyError::InvalidJson(_))));
    }

    #[test]
    fn a_garbage_severity_is_an_error() {
        let json = br#"{"SchemaVersion":2,"ArtifactName":"x","ArtifactType":"container_image","Results":[{"Target":"x","Class":"os-pkgs","Type":"alpine","Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"p","Severity":"SEVERE"}]}]}"#;
        let err = parse_report(json).unwrap_err();
        assert!(err.to_string().contains("SEVERE"), "{err}");
    }

    #[test]
    fn the_same_vulnerability_in_two_images_has_one_fingerprint() {
        let report = |image: &str, version: &str| {
            format!(
                r#"{{"SchemaVersion":2,"ArtifactName":"{image}","ArtifactType":"container_image","Results":[{{"Target":"{image} (alpine 3.19.{version})","Class":"os-pkgs","Type":"alpine","Vulnerabilities":[{{"VulnerabilityID":"CVE-2024-1","PkgName":"openssl","InstalledVersion":"3.1.{version}","Severity":"HIGH"}}]}}]}}"#
            )
        };
        let a = parse_report(report("demo:v1", "1").as_bytes()).unwrap();
        let b = parse_report(report("demo:v2", "2").as_bytes()).unwrap();
        assert_eq!(a.findings[0].fingerprint, b.findings[0].fingerprint);
        assert_eq!(a.artifact, Some(Target::Image { reference: "demo:v1".into(), digest: None }));
    }
}
