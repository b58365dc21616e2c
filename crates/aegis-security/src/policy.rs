//! The security policy: what each scanner must show for a fix to reach production.
//!
//! Unknown keys are refused (`deny_unknown_fields`): a typo in a security policy must never weaken it
//! silently. Every field has a default, documented in docs/security-gate.md and in `aegis schema policy`.

use std::collections::BTreeSet;

use aegis_model::{Digest, FalcoPriority, Severity, Source, ZapRisk};
use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::trivy::{IgnoreEntry, IgnoreList};
use crate::zap::ZapRules;

/// How much a scanner's result counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Missing evidence is an error and failing findings block.
    #[default]
    Required,
    /// Missing evidence and failing findings only warn.
    Advisory,
    /// The scanner's evidence is not considered at all.
    Off,
}

/// Which candidate findings are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delta {
    /// Only findings the candidate introduces (not in the baseline). Without baseline evidence every
    /// finding is new.
    New,
    /// Every candidate finding, whether or not production already has it.
    Absolute,
}

/// A finding deliberately accepted, until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// A vulnerability, check or rule ID (aliases such as `AVD-KSV-0001` match too).
    pub id: String,
    /// Path globs the exception is limited to (Trivy semantics). Empty: everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Last day the exception holds (`YYYY-MM-DD`). After it, the finding counts again and the report
    /// warns that the exception expired.
    #[schemars(with = "Option<String>")]
    pub expires: Option<Date>,
    /// Why the finding is accepted; shown in reports.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrivyPolicy {
    pub mode: Mode,
    pub delta: Delta,
    /// Severities that block.
    pub fail_on: BTreeSet<Severity>,
    /// Severities that warn.
    pub warn_on: BTreeSet<Severity>,
    /// Drop vulnerabilities without a fix (statuses affected, will_not_fix, fix_deferred, end_of_life).
    pub ignore_unfixed: bool,
    /// Vulnerability statuses to drop, as Trivy's `--ignore-status`.
    pub ignore_statuses: Vec<String>,
    pub ignore: Vec<Exception>,
    /// `.trivyignore` / `.trivyignore.yaml` files, relative to the policy file.
    pub ignore_files: Vec<String>,
}

impl Default for TrivyPolicy {
    fn default() -> Self {
        TrivyPolicy {
            mode: Mode::Required,
            delta: Delta::New,
            fail_on: [Severity::High, Severity::Critical].into(),
            warn_on: [Severity::Medium].into(),
            ignore_unfixed: false,
            ignore_statuses: Vec::new(),
            ignore: Vec::new(),
            ignore_files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ZapPolicy {
    pub mode: Mode,
    pub delta: Delta,
    /// A zap-baseline rules file (`-c`), relative to the policy file. Its FAIL / WARN / INFO / IGNORE
    /// levels override the risk thresholds for the plugins it lists; OUTOFSCOPE drops URLs.
    pub rules_file: Option<String>,
    /// Alerts at or above this risk block (after the confidence adjustment).
    pub fail_risk: ZapRisk,
    /// Alerts at or above this risk warn.
    pub warn_risk: ZapRisk,
}

impl Default for ZapPolicy {
    fn default() -> Self {
        ZapPolicy { mode: Mode::Required, delta: Delta::New, rules_file: None, fail_risk: ZapRisk::High, warn_risk: ZapRisk::Medium }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FalcoPolicy {
    pub mode: Mode,
    pub delta: Delta,
    /// Alerts at or above this priority block.
    pub min_priority: FalcoPriority,
    /// Rules whose alerts are expected (e.g. a shell the smoke check opens); never block.
    pub allow_rules: Vec<String>,
    /// An alert without a namespace may come from the shadow: it blocks like an attributed one. Set to
    /// false only where Falco's k8s metadata is known to be complete.
    pub require_attribution: bool,
}

impl Default for FalcoPolicy {
    fn default() -> Self {
        FalcoPolicy {
            mode: Mode::Required,
            delta: Delta::Absolute,
            min_priority: FalcoPriority::Warning,
            allow_rules: Vec::new(),
            require_attribution: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ManifestPolicy {
    pub mode: Mode,
    pub delta: Delta,
    /// Findings at or above this severity block.
    pub fail_severity: Severity,
    /// Findings at or above this severity warn.
    pub warn_severity: Severity,
    pub ignore: Vec<Exception>,
}

impl Default for ManifestPolicy {
    fn default() -> Self {
        ManifestPolicy {
            mode: Mode::Required,
            delta: Delta::New,
            fail_severity: Severity::High,
            warn_severity: Severity::Medium,
            ignore: Vec::new(),
        }
    }
}

/// When a shadow whose isolation was not shown to be enforced stops the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum IsolationBlock {
    /// When Secrets were copied into the shadow: their values would sit in a namespace that can reach
    /// production or the API server.
    #[default]
    WhenSecretsCopied,
    /// Always: every verification needs an isolation probe that shows enforcement.
    Always,
    /// Never: isolation is reported, not required.
    Never,
}

/// The shadow's isolation, as a probe from inside it shows it (`aegis_k8s::isolation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IsolationPolicy {
    /// When "not enforced" (or not checked) blocks: `when_secrets_copied` (default), `always`, `never`.
    pub block: IsolationBlock,
}

impl IsolationPolicy {
    /// Whether isolation must be shown enforced for this shadow.
    pub fn required(&self, secrets_copied: bool) -> bool {
        match self.block {
            IsolationBlock::WhenSecretsCopied => secrets_copied,
            IsolationBlock::Always => true,
            IsolationBlock::Never => false,
        }
    }
}

/// The policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct Policy {
    /// Optional, for kubectl-style files: `aegis.io/v1alpha1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Optional: `SecurityPolicy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub trivy: TrivyPolicy,
    pub zap: ZapPolicy,
    pub falco: FalcoPolicy,
    pub manifest: ManifestPolicy,
    /// The shadow's isolation (verifications only; `aegis gate` has no shadow).
    pub isolation: IsolationPolicy,
}

/// Why a policy could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy: {0}")]
    Invalid(String),
    #[error("policy apiVersion {0:?} is not supported (expected aegis.io/v1alpha1)")]
    ApiVersion(String),
    #[error("policy kind {0:?} is not SecurityPolicy")]
    Kind(String),
    #[error("policy: {0}")]
    Referenced(String),
}

impl Policy {
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        if text.trim().is_empty() {
            return Ok(Policy::default());
        }
        let p: Policy = serde_saphyr::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if let Some(v) = &p.api_version
            && v != "aegis.io/v1alpha1"
        {
            return Err(PolicyError::ApiVersion(v.clone()));
        }
        if let Some(k) = &p.kind
            && k != "SecurityPolicy"
        {
            return Err(PolicyError::Kind(k.clone()));
        }
        Ok(p)
    }

    pub fn mode(&self, source: Source) -> Mode {
        match source {
            Source::Trivy => self.trivy.mode,
            Source::Zap => self.zap.mode,
            Source::Falco => self.falco.mode,
            Source::Manifest => self.manifest.mode,
        }
    }

    pub fn delta(&self, source: Source) -> Delta {
        match source {
            Source::Trivy => self.trivy.delta,
            Source::Zap => self.zap.delta,
            Source::Falco => self.falco.delta,
            Source::Manifest => self.manifest.delta,
        }
    }

    /// A policy that judges only `sources`; the others are `off`. Used by `aegis scan`, which runs one
    /// scanner and must not fail for lack of the others.
    pub fn only(mut self, sources: &[Source]) -> Policy {
        for s in Source::ALL {
            if !sources.contains(&s) {
                match s {
                    Source::Trivy => self.trivy.mode = Mode::Off,
                    Source::Zap => self.zap.mode = Mode::Off,
                    Source::Falco => self.falco.mode = Mode::Off,
                    Source::Manifest => self.manifest.mode = Mode::Off,
                }
            }
        }
        self
    }
}

/// A policy with the files it references already read: what the gate evaluates.
#[derive(Debug, Clone, Default)]
pub struct GatePolicy {
    pub policy: Policy,
    pub zap_rules: ZapRules,
    pub trivy_ignore: IgnoreList,
    pub manifest_ignore: IgnoreList,
    /// The referenced files' contents, in order, for the digest.
    referenced: Vec<(String, String)>,
}

impl GatePolicy {
    /// Compile a policy. `read` resolves a path from the policy (relative to the policy file) to its
    /// text; it is the only I/O and is supplied by the caller.
    pub fn compile(policy: Policy, mut read: impl FnMut(&str) -> Result<String, String>) -> Result<GatePolicy, PolicyError> {
        let mut referenced = Vec::new();
        let zap_rules = match &policy.zap.rules_file {
            Some(path) => {
                let text = read(path).map_err(|e| PolicyError::Referenced(format!("zap.rules_file {path}: {e}")))?;
                let rules = ZapRules::parse(&text).map_err(|e| PolicyError::Referenced(format!("zap.rules_file {path}: {e}")))?;
                referenced.push((path.clone(), text));
                rules
            }
            None => ZapRules::default(),
        };
        let mut trivy_ignore = exceptions(&policy.trivy.ignore)?;
        for path in &policy.trivy.ignore_files {
            let text = read(path).map_err(|e| PolicyError::Referenced(format!("trivy.ignore_files {path}: {e}")))?;
            let list = IgnoreList::parse_any(&text).map_err(|e| PolicyError::Referenced(format!("{path}: {e}")))?;
            trivy_ignore.extend(list);
            referenced.push((path.clone(), text));
        }
        let manifest_ignore = exceptions(&policy.manifest.ignore)?;
        Ok(GatePolicy { policy, zap_rules, trivy_ignore, manifest_ignore, referenced })
    }

    /// Add ignore entries from outside the policy (`aegis gate --trivyignore FILE`).
    pub fn add_trivy_ignore(&mut self, name: &str, text: &str) -> Result<(), PolicyError> {
        let list = IgnoreList::parse_any(text).map_err(|e| PolicyError::Referenced(format!("{name}: {e}")))?;
        self.trivy_ignore.extend(list);
        self.referenced.push((name.to_owned(), text.to_owned()));
        Ok(())
    }

    /// Digest of the effective policy and every file it references.
    pub fn digest(&self) -> Digest {
        Digest::of_json(&(&self.policy, &self.referenced))
    }
}

fn exceptions(list: &[Exception]) -> Result<IgnoreList, PolicyError> {
    let mut entries = Vec::new();
    for e in list {
        let paths = e
            .paths
            .iter()
            .map(|p| {
                globset::Glob::new(p)
                    .map(|g| g.compile_matcher())
                    .map_err(|err| PolicyError::Invalid(format!("exception {}: path {p:?}: {err}", e.id)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        entries.push(IgnoreEntry {
            id: e.id.clone(),
            kinds: None,
            paths,
            purls: Vec::new(),
            expires: e.expires,
            statement: e.reason.clone(),
        });
    }
    Ok(IgnoreList::new(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_policy_means_every_scanner_is_required_with_documented_thresholds() {
        let p = Policy::from_yaml("").unwrap();
        assert_eq!(p, Policy::default());
        assert!(Source::ALL.iter().all(|s| p.mode(*s) == Mode::Required));
        assert_eq!(p.trivy.fail_on, [Severity::High, Severity::Critical].into());
        assert_eq!(p.zap.fail_risk, ZapRisk::High);
        assert_eq!(p.falco.min_priority, FalcoPriority::Warning);
    }

    #[test]
    fn a_misspelt_key_is_refused_rather_than_ignored() {
        let err = Policy::from_yaml("trivy:\n  fail_onn: [LOW]\n").unwrap_err();
        assert!(err.to_string().contains("fail_onn"), "{err}");
    }

    #[test]
    fn a_full_policy_parses() {
        let p = Policy::from_yaml(
            "apiVersion: aegis.io/v1alpha1\nkind: SecurityPolicy\ntrivy:\n  mode: advisory\n  fail_on: [CRITICAL]\n  ignore:\n    - id: CVE-2024-1\n      expires: 2027-01-31\n      reason: no fix upstream\nzap:\n  fail_risk: Medium\nfalco:\n  min_priority: error\n  allow_rules: [Terminal shell in container]\nmanifest:\n  mode: off\n",
        )
        .unwrap();
        assert_eq!(p.trivy.mode, Mode::Advisory);
        assert_eq!(p.trivy.ignore[0].expires, Some("2027-01-31".parse().unwrap()));
        assert_eq!(p.falco.min_priority, FalcoPriority::Error);
        assert_eq!(p.manifest.mode, Mode::Off);
    }

    #[test]
    fn the_digest_changes_with_a_referenced_file() {
        let p = Policy { zap: ZapPolicy { rules_file: Some("r.conf".into()), ..Default::default() }, ..Default::default() };
        let a = GatePolicy::compile(p.clone(), |_| Ok("10021\tFAIL\tx\n".into())).unwrap();
        let b = GatePolicy::compile(p, |_| Ok("10021\tWARN\tx\n".into())).unwrap();
        assert_ne!(a.digest(), b.digest());
    }
}
