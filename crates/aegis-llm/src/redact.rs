//! Redaction before anything leaves for a model: secret-looking values and names the operator lists.
//!
//! The rules are one table, a rule per secret family, named after the rule IDs of Trivy's built-in
//! secret scanner and gitleaks (`github-pat`, `slack-access-token`, `private-key` …) so that a family
//! either tool knows is easy to check for here. Each family has a test. A rule with a `keep` group keeps
//! that prefix (the key's name, the header, the flag) and replaces only the value, so the model still
//! reads what kind of thing was there.

use regex::Regex;

/// One family of secrets.
struct Rule {
    id: &'static str,
    pattern: &'static str,
}

/// Most specific first: a PEM block or a provider token is named before a generic rule eats it.
const RULES: &[Rule] = &[
    // Whole PEM private key blocks, to their last line (or the end of the text when cut off).
    Rule {
        id: "private-key",
        pattern: r"-----BEGIN[ A-Z0-9]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY( BLOCK)?-----|\z)",
    },
    Rule { id: "github-pat", pattern: r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255}\b" },
    Rule { id: "github-fine-grained-pat", pattern: r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b" },
    Rule { id: "gitlab-pat", pattern: r"\bglpat-[A-Za-z0-9_\-]{20,}\b" },
    Rule { id: "slack-access-token", pattern: r"\bxox[abposr]-[A-Za-z0-9\-]{10,}" },
    Rule { id: "slack-web-hook", pattern: r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_\-]{20,}" },
    Rule { id: "stripe-secret-token", pattern: r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}\b" },
    Rule { id: "gcp-api-key", pattern: r"\bAIza[0-9A-Za-z_\-]{35}\b" },
    Rule { id: "gcp-oauth-token", pattern: r"\bya29\.[0-9A-Za-z_\-]{20,}" },
    Rule { id: "npm-access-token", pattern: r"\bnpm_[A-Za-z0-9]{36}\b" },
    Rule { id: "aws-access-key-id", pattern: r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b" },
    Rule { id: "aws-secret-access-key", pattern: r#"(?i)(?P<keep>aws.{0,20}?secret.{0,20}?(?:[=:]|\s)\s*"?)[A-Za-z0-9/+=]{40}"# },
    Rule { id: "openai-api-key", pattern: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" },
    Rule { id: "anthropic-api-key", pattern: r"\bsk-ant-[A-Za-z0-9_\-]{20,}" },
    Rule { id: "twilio-api-key", pattern: r"\bSK[0-9a-fA-F]{32}\b" },
    Rule { id: "sendgrid-api-token", pattern: r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}" },
    Rule { id: "azure-storage-key", pattern: r"(?P<keep>AccountKey=)[A-Za-z0-9+/=]{20,}" },
    Rule { id: "jwt", pattern: r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+" },
    // `Authorization: Basic …`, `Bearer …`, in headers and in curl/wget command lines.
    Rule {
        id: "authorization-header",
        pattern: r#"(?i)(?P<keep>(?:proxy-)?authorization"?\s*[:=]\s*"?(?:basic|bearer|token|digest|negotiate)\s+)[^\s",']+"#,
    },
    // A docker config's `"auth": "<base64 user:password>"`.
    Rule { id: "docker-config-auth", pattern: r#"(?P<keep>"auth"\s*:\s*")[A-Za-z0-9+/=]{8,}"# },
    // Credentials in URLs: scheme://user:password@host.
    Rule { id: "url-userinfo-password", pattern: r"(?P<keep>[a-z][a-z0-9+.\-]*://[^/\s:@]+:)[^@\s/]+" },
    // Command-line flags: `--db-password VALUE`, `--token=VALUE`, and mysql's attached `-pVALUE`.
    Rule {
        id: "cli-password-flag",
        pattern: r"(?i)(?P<keep>(?:^|\s)--?[a-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key)[a-z0-9_\-]*(?:=|\s+))[^\s'-][^\s']*",
    },
    Rule { id: "mysql-password-flag", pattern: r"(?P<keep>(?:^|\s)-p)[^\s\-][^\s]*" },
    // KEY=value and "key": "value" where the key looks secret.
    Rule {
        id: "generic-secret-assignment",
        pattern: r#"(?i)(?P<keep>(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)[A-Za-z0-9_\-]*"?\s*[=:]\s*"?)[^\s",}]+"#,
    },
    // Long hex or base64 runs: keys and hashes whatever their provider.
    Rule { id: "long-hex", pattern: r"\b[A-Fa-f0-9]{40,}\b" },
    Rule { id: "long-base64", pattern: r"\b[A-Za-z0-9+/]{40,}={0,2}" },
];

pub struct Redactor {
    rules: Vec<(&'static str, Regex)>,
    names: Vec<String>,
}

impl Redactor {
    /// `names`: strings never to send (customer names, internal hostnames, namespaces …).
    pub fn new(names: &[String]) -> Redactor {
        // The table is compiled in and tested: a pattern that did not compile would fail its test.
        let rules = RULES.iter().filter_map(|r| Regex::new(r.pattern).ok().map(|re| (r.id, re))).collect();
        Redactor { rules, names: names.iter().filter(|n| !n.is_empty()).cloned().collect() }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (id, re) in &self.rules {
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| format!("{}[REDACTED:{id}]", c.name("keep").map(|m| m.as_str()).unwrap_or("")))
                .into_owned();
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

    fn redacted(text: &str) -> String {
        Redactor::new(&[]).redact(text)
    }

    #[test]
    fn every_rule_compiles() {
        for r in RULES {
            assert!(Regex::new(r.pattern).is_ok(), "{}", r.id);
        }
    }

    /// (family, text holding a secret, the secret) — each family's secret must not survive.
    #[test]
    fn every_family_of_secret_is_redacted() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naIhG5ADWg0gOpUTW0ZdQb5l4gPIgl6RCM+2aVM9kr9ZrRfKQ1g1YQ==\nLASTLINEsecretTail\n-----END RSA PRIVATE KEY-----";
        let cases: &[(&str, String, &str)] = &[
            ("github classic", "token ghp_1234567890abcdefghijABCDEFGHIJ123456 used".into(), "ghp_1234567890abcdefghijABCDEFGHIJ123456"),
            ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz".into(), "github_pat_11ABCDEFG0123456789"),
            ("gitlab", "glpat-abcdefghij0123456789".into(), "glpat-abcdefghij0123456789"),
            ("slack token", "SLACK=xoxb-1234567890-abcdefghij".into(), "xoxb-1234567890-abcdefghij"),
            ("slack webhook", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX".into(), "XXXXXXXXXXXXXXXXXXXXXXXX"),
            ("stripe", "key sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(), "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            ("google api key", "AIzaSyA1234567890abcdefghijklmnopqrstuv".into(), "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
            (
                "npm",
                "//registry.npmjs.org/:_authToken npm_abcdefghijklmnopqrstuvwxyz0123456789".into(),
                "npm_abcdefghijklmnopqrstuvwxyz0123456789",
            ),
            ("aws key id", "AKIAABCDEFGHIJKLMNOP".into(), "AKIAABCDEFGHIJKLMNOP"),
            (
                "aws secret",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("openai", "OPENAI sk-proj-abcdefghijklmnopqrstuvwx".into(), "sk-proj-abcdefghijklmnopqrstuvwx"),
            ("sendgrid", "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(), "SG.abcdefghijklmnopqrstuv"),
            ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_def-123".into(), "eyJhbGciOiJIUzI1NiJ9"),
            ("basic auth", "curl -H 'Authorization: Basic dXNlcjpodW50ZXIy' https://x".into(), "dXNlcjpodW50ZXIy"),
            ("bearer", "Authorization: Bearer abc.def.ghi".into(), "abc.def.ghi"),
            ("url credentials", "postgres://app:s3cr3t@db:5432/shop".into(), "s3cr3t"),
            ("flag with a space", "migrate --db-password hunter2 --host db".into(), "hunter2"),
            ("flag with =", "run --api-key=abc123xyz".into(), "abc123xyz"),
            ("mysql -p", "mysql -uroot -phunter2 shop".into(), "hunter2"),
            ("assignment", "DB_PASSWORD=hunter2".into(), "hunter2"),
            ("docker auth", r#"{"auths":{"r":{"auth":"dXNlcjpwYXNz"}}}"#.into(), "dXNlcjpwYXNz"),
            ("pem, every line", pem.into(), "LASTLINEsecretTail"),
            ("pem cut off", pem[..120].into(), "MIIEowIBAAKCAQEA0Z3VS5"),
        ];
        for (family, text, secret) in cases {
            let out = redacted(text);
            assert!(!out.contains(secret), "{family}: {secret} survived in {out:?}");
            assert!(out.contains("[REDACTED"), "{family}: {out:?}");
        }
    }

    #[test]
    fn secret_values_and_listed_names_never_survive() {
        let r = Redactor::new(&["acme-payments".into()]);
        let s = r.redact("DB_PASSWORD=hunter2 url=postgres://app:s3cr3t@db:5432 ns acme-payments token: abc123 AKIAABCDEFGHIJKLMNOP");
        for leaked in ["hunter2", "s3cr3t", "acme-payments", "abc123", "AKIAABCDEFGHIJKLMNOP"] {
            assert!(!s.contains(leaked), "{leaked} leaked: {s}");
        }
        assert!(s.contains("DB_PASSWORD=[REDACTED") && s.contains("[NAME-1]"), "{s}");
    }

    #[test]
    fn what_an_sre_needs_to_read_is_left_alone() {
        for text in [
            "container api exited with code 1",
            "Back-off restarting failed container api in pod api-7d9f8-x2x",
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
            "0/3 nodes are available: 3 Insufficient memory.",
            "kubectl logs -n shop api-1 --previous",
            "image 127.0.0.1:5000/demo-api:v2 -p 8080",
        ] {
            assert_eq!(redacted(text), text);
        }
    }
}
