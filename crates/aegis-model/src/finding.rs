//! A single security finding, whatever scanner produced it.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Fingerprint, Severity};

/// Which scanner produced a finding (and which section of the policy governs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Trivy,
    Zap,
    Falco,
    Manifest,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Trivy, Source::Zap, Source::Falco, Source::Manifest];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Trivy => "trivy",
            Source::Zap => "zap",
            Source::Falco => "falco",
            Source::Manifest => "manifest",
        }
    }

    /// The name a human knows the tool by.
    pub fn tool_name(self) -> &'static str {
        match self {
            Source::Trivy => "Trivy",
            Source::Zap => "OWASP ZAP",
            Source::Falco => "Falco",
            Source::Manifest => "AEGIS manifest checks",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What sort of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Vulnerability,
    Misconfiguration,
    Secret,
    DastAlert,
    RuntimeAlert,
    PolicyViolation,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Vulnerability => "vulnerability",
            FindingKind::Misconfiguration => "misconfiguration",
            FindingKind::Secret => "secret",
            FindingKind::DastAlert => "dast-alert",
            FindingKind::RuntimeAlert => "runtime-alert",
            FindingKind::PolicyViolation => "policy-violation",
        }
    }
}

/// What was scanned: the thing a finding is *about*.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    /// A container image, by reference and (when known) content digest.
    Image { reference: String, digest: Option<String> },
    /// A Kubernetes object.
    Resource { kind: String, namespace: Option<String>, name: String },
    /// A URL scanned over HTTP.
    Url { url: String },
    /// A running pod. `namespace: null` means the alert carried no attribution.
    Pod { namespace: Option<String>, name: Option<String>, container: Option<String> },
    /// A file system path or repository scanned in place.
    Path { path: String },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Image { reference, .. } => f.write_str(reference),
            Target::Resource { kind, namespace: Some(ns), name } => write!(f, "{kind}/{name} -n {ns}"),
            Target::Resource { kind, namespace: None, name } => write!(f, "{kind}/{name}"),
            Target::Url { url } => f.write_str(url),
            Target::Pod { namespace, name, container } => {
                write!(f, "pod {}/{}", namespace.as_deref().unwrap_or("<unattributed>"), name.as_deref().unwrap_or("?"))?;
                if let Some(c) = container {
                    write!(f, " ({c})")?;
                }
                Ok(())
            }
            Target::Path { path } => f.write_str(path),
        }
    }
}

/// The package a vulnerability sits in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Package {
    pub name: String,
    pub installed_version: Option<String>,
    /// May be a comma-separated list, as Trivy reports it; `None` when no fix exists.
    pub fixed_version: Option<String>,
    /// Trivy's vulnerability status (`fixed`, `affected`, `will_not_fix`, ...), when reported.
    pub status: Option<String>,
}

/// One security finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub source: Source,
    pub kind: FindingKind,
    /// The scanner's identifier: `CVE-…`, a canonical misconfiguration ID (`KSV-0017`), a ZAP
    /// `pluginId` or `alertRef`, a Falco rule name, an AEGIS check ID.
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub target: Target,
    /// Where inside the target: a package, a file and line, a URL parameter, a process.
    pub location: Option<String>,
    pub package: Option<Package>,
    pub references: Vec<String>,
    /// The tool's own words for the severity ("High (Medium confidence)", "Warning"), kept for humans.
    pub native_severity: Option<String>,
    /// Other identifiers the same finding is known by (e.g. Trivy's older `AVD-KSV-0017`), used when
    /// matching ignore lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub fingerprint: Fingerprint,
}

impl Finding {
    /// True if `id` names this finding, by its primary ID or an alias (case-insensitive).
    pub fn is_named(&self, id: &str) -> bool {
        self.id.eq_ignore_ascii_case(id) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
    }
}
