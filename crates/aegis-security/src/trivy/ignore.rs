//! `.trivyignore` and `.trivyignore.yaml`, with Trivy's semantics: an entry names an ID (or an alias
//! such as `AVD-KSV-0001`), optionally limited to paths (globs) or package URLs, and optionally expires.
//! Expired entries no longer ignore anything.

use aegis_model::{Finding, FindingKind};
use globset::{Glob, GlobMatcher};
use jiff::civil::Date;
use serde::Deserialize;

use super::TrivyError;

/// A parsed ignore file: Trivy's and the policy's ignore lists both become this.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    entries: Vec<IgnoreEntry>,
}

#[derive(Debug, Clone)]
pub struct IgnoreEntry {
    pub id: String,
    /// Which kinds of finding the entry applies to (`None`: any, as in a plain `.trivyignore`).
    pub kinds: Option<Vec<FindingKind>>,
    pub paths: Vec<GlobMatcher>,
    pub purls: Vec<String>,
    /// Last day the entry is in force: Trivy drops entries once this date has passed.
    pub expires: Option<Date>,
    pub statement: Option<String>,
}

impl IgnoreEntry {
    pub fn is_expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|d| d < today)
    }

    fn matches(&self, f: &Finding) -> bool {
        if !f.is_named(&self.id) && !f.is_named(&super::canonical_check_id(&self.id)) {
            return false;
        }
        if let Some(kinds) = &self.kinds
            && !kinds.contains(&f.kind)
        {
            return false;
        }
        let path = f.location.as_deref().map(|l| l.split(" (").next().unwrap_or(l)).unwrap_or("");
        let path = path.rsplit_once(':').filter(|(_, n)| n.chars().all(|c| c.is_ascii_digit())).map_or(path, |(p, _)| p);
        if !self.paths.is_empty() && !self.paths.iter().any(|g| g.is_match(path)) {
            return false;
        }
        if !self.purls.is_empty() {
            // A purl without version matches every version of the package (Trivy's rule).
            let Some(pkg) = &f.package else { return false };
            if !self.purls.iter().any(|p| purl_names(p, &pkg.name, pkg.installed_version.as_deref())) {
                return false;
            }
        }
        true
    }
}

fn purl_names(purl: &str, name: &str, version: Option<&str>) -> bool {
    let (head, purl_version) = match purl.rsplit_once('@') {
        Some((h, v)) => (h, Some(v)),
        None => (purl, None),
    };
    let purl_name = head.rsplit('/').next().unwrap_or(head);
    let name_ok = purl_name == name || head.ends_with(&format!("/{name}"));
    name_ok && purl_version.is_none_or(|v| Some(v) == version)
}

impl IgnoreList {
    pub fn new(entries: Vec<IgnoreEntry>) -> Self {
        IgnoreList { entries }
    }

    pub fn entries(&self) -> &[IgnoreEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn extend(&mut self, other: IgnoreList) {
        self.entries.extend(other.entries);
    }

    /// The unexpired entry that ignores `finding`, if any.
    pub fn matching(&self, finding: &Finding, today: Date) -> Option<&IgnoreEntry> {
        self.entries.iter().find(|e| !e.is_expired(today) && e.matches(finding))
    }

    /// Parse a plain `.trivyignore`: one ID a line, `#` comments, optional `exp:YYYY-MM-DD`.
    pub fn parse_plain(text: &str) -> Result<IgnoreList, TrivyError> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let id = fields.next().unwrap_or_default().to_owned();
            let mut expires = None;
            for field in fields {
                if let Some(date) = field.strip_prefix("exp:") {
                    expires = Some(parse_date(date).map_err(|e| TrivyError::IgnoreFile(format!("line {}: {e}", n + 1)))?);
                }
                // Other key:value fields are accepted and ignored, as Trivy does.
            }
            entries.push(IgnoreEntry { id, kinds: None, paths: Vec::new(), purls: Vec::new(), expires, statement: None });
        }
        Ok(IgnoreList { entries })
    }

    /// Parse `.trivyignore.yaml`.
    pub fn parse_yaml(text: &str) -> Result<IgnoreList, TrivyError> {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            vulnerabilities: Vec<YamlEntry>,
            #[serde(default)]
            misconfigurations: Vec<YamlEntry>,
            #[serde(default)]
            secrets: Vec<YamlEntry>,
            #[serde(default)]
            licenses: Vec<YamlEntry>,
        }
        if text.trim().is_empty() {
            return Ok(IgnoreList::default());
        }
        let file: File = serde_saphyr::from_str(text).map_err(|e| TrivyError::IgnoreFile(e.to_string()))?;
        let mut entries = Vec::new();
        let sections = [
            (file.vulnerabilities, FindingKind::Vulnerability),
            (file.misconfigurations, FindingKind::Misconfiguration),
            (file.secrets, FindingKind::Secret),
        ];
        for (list, kind) in sections {
            for e in list {
                entries.push(e.into_entry(Some(vec![kind]))?);
            }
        }
        // Licences are not findings in AEGIS; parsed so that a valid file is accepted whole.
        let _ = file.licenses;
        Ok(IgnoreList { entries })
    }

    /// Parse either format, deciding by content (YAML files have top-level section keys).
    pub fn parse_any(text: &str) -> Result<IgnoreList, TrivyError> {
        let looks_yaml = text.lines().any(|l| {
            let l = l.trim_end();
            ["vulnerabilities:", "misconfigurations:", "secrets:", "licenses:"].contains(&l)
        });
        if looks_yaml { Self::parse_yaml(text) } else { Self::parse_plain(text) }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlEntry {
    id: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    purls: Vec<String>,
    expired_at: Option<YamlDate>,
    statement: Option<String>,
}

/// YAML may give a date as a plain scalar; accept it as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum YamlDate {
    Text(String),
}

impl YamlEntry {
    fn into_entry(self, kinds: Option<Vec<FindingKind>>) -> Result<IgnoreEntry, TrivyError> {
        let paths = self
            .paths
            .iter()
            .map(|p| Glob::new(p).map(|g| g.compile_matcher()).map_err(|e| TrivyError::IgnoreFile(format!("{}: path {p:?}: {e}", self.id))))
            .collect::<Result<Vec<_>, _>>()?;
        let expires = match self.expired_at {
            Some(YamlDate::Text(t)) => Some(parse_date(&t).map_err(|e| TrivyError::IgnoreFile(format!("{}: {e}", self.id)))?),
            None => None,
        };
        Ok(IgnoreEntry { id: self.id, kinds, paths, purls: self.purls, expires, statement: self.statement })
    }
}

fn parse_date(s: &str) -> Result<Date, String> {
    s.trim().parse::<Date>().map_err(|e| format!("invalid date {s:?} (expected YYYY-MM-DD): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_model::{Fingerprint, Package, Severity, Source, Target};

    fn vuln(id: &str, path: &str) -> Finding {
        Finding {
            source: Source::Trivy,
            kind: FindingKind::Vulnerability,
            id: id.into(),
            title: id.into(),
            severity: Severity::High,
            target: Target::Path { path: ".".into() },
            location: Some(format!("{path} (pkg)")),
            package: Some(Package { name: "bar".into(), installed_version: Some("1.0".into()), fixed_version: None, status: None }),
            references: vec![],
            native_severity: None,
            aliases: vec![],
            fingerprint: Fingerprint::of(&[id]),
        }
    }

    #[test]
    fn plain_ignore_file_honours_expiry_and_tolerates_extra_fields() {
        let list = IgnoreList::parse_plain("# c\nCVE-1\nCVE-2 exp:2020-01-01\nCVE-3 exp:9999-01-01 key2:value2\n").unwrap();
        let today: Date = "2026-11-26".parse().unwrap();
        assert!(list.matching(&vuln("CVE-1", "a"), today).is_some());
        assert!(list.matching(&vuln("CVE-2", "a"), today).is_none(), "expired entries ignore nothing");
        assert!(list.matching(&vuln("CVE-3", "a"), today).is_some());
        assert!(list.matching(&vuln("CVE-4", "a"), today).is_none());
    }

    #[test]
    fn a_bad_expiry_date_is_a_precise_error() {
        let err = IgnoreList::parse_plain("CVE-1\nCVE-2 exp:2020-13-45\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn yaml_entries_are_limited_by_path_globs_and_kind() {
        let list = IgnoreList::parse_yaml("vulnerabilities:\n  - id: CVE-1\n    paths: [\"**/*-lock.json\"]\n").unwrap();
        let today: Date = "2026-11-26".parse().unwrap();
        assert!(list.matching(&vuln("CVE-1", "app/package-lock.json"), today).is_some());
        assert!(list.matching(&vuln("CVE-1", "app/go.sum"), today).is_none());
    }
}
