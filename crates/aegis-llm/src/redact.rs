//! Redaction before anything leaves for a model: secret-looking values and names the operator lists.

use regex::Regex;

pub struct Redactor {
    patterns: Vec<Regex>,
    names: Vec<String>,
}

impl Redactor {
    /// `names`: strings never to send (customer names, internal hostnames, namespaces …).
    pub fn new(names: &[String]) -> Redactor {
        let patterns = [
            // KEY=value and "key": "value" where the key looks secret.
            r#"(?i)((?:password|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)[A-Za-z0-9_\-]*"?\s*[=:]\s*"?)[^\s",}]+"#,
            // Credentials in URLs: scheme://user:pass@host
            r"([a-z][a-z0-9+.\-]*://[^/\s:@]+:)[^@\s/]+(@)",
            // AWS access key IDs, JWTs, long hex or base64 runs.
            r"AKIA[0-9A-Z]{16}",
            r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+",
            r"\b[A-Fa-f0-9]{40,}\b",
            r"\b[A-Za-z0-9+/]{40,}={0,2}",
        ]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect();
        Redactor { patterns, names: names.iter().filter(|n| !n.is_empty()).cloned().collect() }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (i, re) in self.patterns.iter().enumerate() {
            out = match i {
                0 => re.replace_all(&out, "${1}[REDACTED]").into_owned(),
                1 => re.replace_all(&out, "${1}[REDACTED]${2}").into_owned(),
                _ => re.replace_all(&out, "[REDACTED]").into_owned(),
            };
        }
        for (i, name) in self.names.iter().enumerate() {
            out = out.replace(name.as_str(), &format!("[NAME-{}]", i + 1));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_and_listed_names_never_survive() {
        let r = Redactor::new(&["acme-payments".into()]);
        let s = r.redact("DB_PASSWORD=hunter2 url=postgres://app:s3cr3t@db:5432 ns acme-payments token: abc123 AKIAABCDEFGHIJKLMNOP");
        for leaked in ["hunter2", "s3cr3t", "acme-payments", "abc123", "AKIAABCDEFGHIJKLMNOP"] {
            assert!(!s.contains(leaked), "{leaked} leaked: {s}");
        }
        assert!(s.contains("DB_PASSWORD=[REDACTED]") && s.contains("[NAME-1]"), "{s}");
        assert_eq!(r.redact("container api exited with code 1"), "container api exited with code 1");
    }
}
