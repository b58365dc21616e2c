//! One severity scale for every scanner, and the documented mappings into it.
//!
//! The scale is Trivy's (`UNKNOWN < LOW < MEDIUM < HIGH < CRITICAL`) because image vulnerabilities are the
//! bulk of the evidence and SREs already read it. ZAP risks and Falco priorities map onto it as follows
//! (also in docs/security-gate.md):
//!
//! | ZAP risk      | Severity | Falco priority                 | Severity |
//! |---------------|----------|--------------------------------|----------|
//! | High          | HIGH     | Emergency, Alert, Critical     | CRITICAL |
//! | Medium        | MEDIUM   | Error                          | HIGH     |
//! | Low           | LOW      | Warning                        | MEDIUM   |
//! | Informational | UNKNOWN  | Notice                         | LOW      |
//! |               |          | Informational, Debug           | UNKNOWN  |
//!
//! ZAP confidence adjusts the mapped severity: `False Positive` alerts are not findings at all, `Low`
//! confidence lowers the severity one step, `Medium`, `High` and `Confirmed` keep it.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A value that is not one of an enum's known spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} (expected one of: {expected})")]
pub struct ParseEnumError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Severity of a finding, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE", try_from = "String")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// All severities, least severe first.
    pub const ALL: [Severity; 5] = [Severity::Unknown, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// One step less severe (UNKNOWN stays UNKNOWN).
    pub fn lowered(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            Severity::Low | Severity::Unknown => Severity::Unknown,
        }
    }

    /// The documented mapping from a ZAP alert's risk and confidence. `None` for false positives.
    pub fn from_zap(risk: ZapRisk, confidence: ZapConfidence) -> Option<Severity> {
        let base = match risk {
            ZapRisk::High => Severity::High,
            ZapRisk::Medium => Severity::Medium,
            ZapRisk::Low => Severity::Low,
            ZapRisk::Informational => Severity::Unknown,
        };
        match confidence {
            ZapConfidence::FalsePositive => None,
            ZapConfidence::Low => Some(base.lowered()),
            ZapConfidence::Medium | ZapConfidence::High | ZapConfidence::Confirmed => Some(base),
        }
    }

    /// The documented mapping from a Falco rule priority.
    pub fn from_falco(priority: FalcoPriority) -> Severity {
        match priority {
            FalcoPriority::Emergency | FalcoPriority::Alert | FalcoPriority::Critical => Severity::Critical,
            FalcoPriority::Error => Severity::High,
            FalcoPriority::Warning => Severity::Medium,
            FalcoPriority::Notice => Severity::Low,
            FalcoPriority::Informational | FalcoPriority::Debug => Severity::Unknown,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = ParseEnumError;

    /// Case-insensitive, as Trivy accepts `--severity high`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => Ok(Severity::Unknown),
            "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            _ => Err(ParseEnumError { what: "severity", value: s.to_owned(), expected: "UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL" }),
        }
    }
}

/// ZAP's alert risk, as the API spells it (`riskcode` 0..3 in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
pub enum ZapRisk {
    Informational,
    Low,
    Medium,
    High,
}

impl ZapRisk {
    /// From a report's `riskcode` ("0".."3").
    pub fn from_code(code: &str) -> Result<ZapRisk, ParseEnumError> {
        match code.trim() {
            "0" => Ok(ZapRisk::Informational),
            "1" => Ok(ZapRisk::Low),
            "2" => Ok(ZapRisk::Medium),
            "3" => Ok(ZapRisk::High),
            _ => Err(ParseEnumError { what: "ZAP riskcode", value: code.to_owned(), expected: "0, 1, 2, 3" }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ZapRisk::Informational => "Informational",
            ZapRisk::Low => "Low",
            ZapRisk::Medium => "Medium",
            ZapRisk::High => "High",
        }
    }
}

impl FromStr for ZapRisk {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Ok(ZapRisk::Informational),
            "low" => Ok(ZapRisk::Low),
            "medium" => Ok(ZapRisk::Medium),
            "high" => Ok(ZapRisk::High),
            _ => Err(ParseEnumError { what: "ZAP risk", value: s.to_owned(), expected: "Informational, Low, Medium, High" }),
        }
    }
}

impl fmt::Display for ZapRisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ZAP's alert confidence (`confidence` 0..4 in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
pub enum ZapConfidence {
    FalsePositive,
    Low,
    Medium,
    High,
    Confirmed,
}

impl ZapConfidence {
    /// From a report's `confidence` code ("0".."4").
    pub fn from_code(code: &str) -> Result<ZapConfidence, ParseEnumError> {
        match code.trim() {
            "0" => Ok(ZapConfidence::FalsePositive),
            "1" => Ok(ZapConfidence::Low),
            "2" => Ok(ZapConfidence::Medium),
            "3" => Ok(ZapConfidence::High),
            "4" => Ok(ZapConfidence::Confirmed),
            _ => Err(ParseEnumError { what: "ZAP confidence code", value: code.to_owned(), expected: "0, 1, 2, 3, 4" }),
        }
    }
}

impl ZapConfidence {
    pub fn as_str(self) -> &'static str {
        match self {
            ZapConfidence::FalsePositive => "False Positive",
            ZapConfidence::Low => "Low",
            ZapConfidence::Medium => "Medium",
            ZapConfidence::High => "High",
            ZapConfidence::Confirmed => "Confirmed",
        }
    }
}

impl fmt::Display for ZapConfidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ZapConfidence {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "false positive" | "falsepositive" => Ok(ZapConfidence::FalsePositive),
            "low" => Ok(ZapConfidence::Low),
            "medium" => Ok(ZapConfidence::Medium),
            "high" => Ok(ZapConfidence::High),
            "confirmed" | "user confirmed" => Ok(ZapConfidence::Confirmed),
            _ => Err(ParseEnumError {
                what: "ZAP confidence",
                value: s.to_owned(),
                expected: "False Positive, Low, Medium, High, Confirmed",
            }),
        }
    }
}

/// Falco rule priority, least urgent first so that `>=` reads as "at least".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
pub enum FalcoPriority {
    Debug,
    Informational,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl FalcoPriority {
    pub fn as_str(self) -> &'static str {
        match self {
            FalcoPriority::Debug => "Debug",
            FalcoPriority::Informational => "Informational",
            FalcoPriority::Notice => "Notice",
            FalcoPriority::Warning => "Warning",
            FalcoPriority::Error => "Error",
            FalcoPriority::Critical => "Critical",
            FalcoPriority::Alert => "Alert",
            FalcoPriority::Emergency => "Emergency",
        }
    }

    /// Stable integer for storage and indexed range queries (Debug = 0 .. Emergency = 7).
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn from_rank(rank: u8) -> Option<FalcoPriority> {
        use FalcoPriority::*;
        [Debug, Informational, Notice, Warning, Error, Critical, Alert, Emergency].get(usize::from(rank)).copied()
    }
}

impl FromStr for FalcoPriority {
    type Err = ParseEnumError;

    /// Any casing; `info` is accepted as rule files accept it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(FalcoPriority::Debug),
            "informational" | "info" => Ok(FalcoPriority::Informational),
            "notice" => Ok(FalcoPriority::Notice),
            "warning" | "warn" => Ok(FalcoPriority::Warning),
            "error" => Ok(FalcoPriority::Error),
            "critical" => Ok(FalcoPriority::Critical),
            "alert" => Ok(FalcoPriority::Alert),
            "emergency" => Ok(FalcoPriority::Emergency),
            _ => Err(ParseEnumError {
                what: "Falco priority",
                value: s.to_owned(),
                expected: "Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug",
            }),
        }
    }
}

impl fmt::Display for FalcoPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serde reads these enums through `FromStr` (`#[serde(try_from = "String")]`), so every spelling the
/// tools use — any casing, `info`, `False Positive` — deserialises.
macro_rules! try_from_string {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = ParseEnumError;
            fn try_from(s: String) -> Result<Self, ParseEnumError> {
                s.parse()
            }
        }
    )*};
}

try_from_string!(Severity, ZapRisk, ZapConfidence, FalcoPriority);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_from_unknown_to_critical() {
        let mut shuffled = vec![Severity::High, Severity::Unknown, Severity::Critical, Severity::Low, Severity::Medium];
        shuffled.sort();
        assert_eq!(shuffled, Severity::ALL.to_vec());
    }

    #[test]
    fn severity_parses_any_case_and_rejects_unknown_words() {
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert_eq!(" Critical ".parse::<Severity>().unwrap(), Severity::Critical);
        let err = "severe".parse::<Severity>().unwrap_err();
        assert!(err.to_string().contains("\"severe\""), "{err}");
    }

    #[test]
    fn zap_false_positives_are_not_findings_and_low_confidence_lowers_one_step() {
        assert_eq!(Severity::from_zap(ZapRisk::High, ZapConfidence::FalsePositive), None);
        assert_eq!(Severity::from_zap(ZapRisk::High, ZapConfidence::Low), Some(Severity::Medium));
        assert_eq!(Severity::from_zap(ZapRisk::High, ZapConfidence::Medium), Some(Severity::High));
        assert_eq!(Severity::from_zap(ZapRisk::Informational, ZapConfidence::High), Some(Severity::Unknown));
    }

    #[test]
    fn falco_priorities_parse_in_any_casing_and_map_to_severities() {
        assert_eq!("WARNING".parse::<FalcoPriority>().unwrap(), FalcoPriority::Warning);
        assert_eq!("info".parse::<FalcoPriority>().unwrap(), FalcoPriority::Informational);
        assert!(FalcoPriority::Critical > FalcoPriority::Warning);
        assert_eq!(Severity::from_falco(FalcoPriority::Emergency), Severity::Critical);
        assert_eq!(Severity::from_falco(FalcoPriority::Notice), Severity::Low);
        for rank in 0..8 {
            assert_eq!(FalcoPriority::from_rank(rank).unwrap().rank(), rank);
        }
        assert_eq!(FalcoPriority::from_rank(8), None);
    }
}
