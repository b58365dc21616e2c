//! zap-baseline rules files (`-c`): `<pluginId>\t<IGNORE|INFO|WARN|FAIL>\t<text>` and
//! `<pluginId|*>\tOUTOFSCOPE\t<url regex>`, `#` comments.

use std::collections::BTreeMap;

use regex::Regex;

use super::ZapError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleLevel {
    Ignore,
    Info,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Default)]
pub struct ZapRules {
    levels: BTreeMap<String, RuleLevel>,
    /// plugin id (or `*`) → URL regexes; matched at the start of the URL like Python's `re.match`.
    out_of_scope: Vec<(String, Regex)>,
}

impl ZapRules {
    pub fn parse(text: &str) -> Result<ZapRules, ZapError> {
        let mut rules = ZapRules::default();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim_end_matches(['\r', '\n']);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, '\t');
            let key = parts.next().unwrap_or_default().trim();
            let level = parts.next().map(str::trim).ok_or_else(|| ZapError::RulesFile {
                line: line_no,
                message: "expected `<pluginId>\\t<LEVEL>\\t<text>` separated by tabs".into(),
            })?;
            let text = parts.next().unwrap_or_default();
            let level = match level {
                "IGNORE" => RuleLevel::Ignore,
                "INFO" => RuleLevel::Info,
                "WARN" => RuleLevel::Warn,
                "FAIL" => RuleLevel::Fail,
                "OUTOFSCOPE" => {
                    let re = Regex::new(&format!("^(?:{text})"))
                        .map_err(|e| ZapError::RulesFile { line: line_no, message: format!("invalid OUTOFSCOPE regex {text:?}: {e}") })?;
                    for id in key.split(',') {
                        rules.out_of_scope.push((id.trim().to_owned(), re.clone()));
                    }
                    continue;
                }
                other => {
                    return Err(ZapError::RulesFile {
                        line: line_no,
                        message: format!("unknown level {other:?} (expected IGNORE, INFO, WARN, FAIL or OUTOFSCOPE)"),
                    });
                }
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_digit()) {
                return Err(ZapError::RulesFile { line: line_no, message: format!("plugin id {key:?} is not a number") });
            }
            rules.levels.insert(key.to_owned(), level);
        }
        Ok(rules)
    }

    /// The level the file gives a plugin, if it lists it.
    pub fn level(&self, plugin_id: &str) -> Option<RuleLevel> {
        self.levels.get(plugin_id).copied()
    }

    pub fn in_scope(&self, plugin_id: &str, url: &str) -> bool {
        !self.out_of_scope.iter().any(|(id, re)| (id == "*" || id == plugin_id) && re.is_match(url))
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty() && self.out_of_scope.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_file_levels_and_out_of_scope_regexes_follow_zap_baseline() {
        let rules = ZapRules::parse(
            "# c\n10021\tFAIL\t(x)\n10049\tIGNORE\t(y)\n*\tOUTOFSCOPE\t.*/robots\\.txt$\n10020\tOUTOFSCOPE\thttps://www.zaproxy.com/",
        )
        .unwrap();
        assert_eq!(rules.level("10021"), Some(RuleLevel::Fail));
        assert_eq!(rules.level("10049"), Some(RuleLevel::Ignore));
        assert_eq!(rules.level("99999"), None);
        assert!(!rules.in_scope("10021", "http://x/robots.txt"));
        assert!(rules.in_scope("10021", "http://x/index.html"));
        assert!(!rules.in_scope("10020", "https://www.zaproxy.com/a"));
        // re.match anchors at the start: the regex does not match in the middle.
        assert!(rules.in_scope("10020", "http://proxy/?u=https://www.zaproxy.com/"));
    }

    #[test]
    fn a_bad_level_or_regex_names_its_line() {
        let err = ZapRules::parse("10021\tFAIL\tx\n10022\tFATAL\ty\n").unwrap_err();
        assert!(err.to_string().contains("line 2") && err.to_string().contains("FATAL"), "{err}");
        let err = ZapRules::parse("*\tOUTOFSCOPE\t(unclosed\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
