//! ZAP JSON reports and API alert lists, read into one alert shape.

use aegis_model::{ZapConfidence, ZapRisk};
use serde::Deserialize;
use serde_json::Value;

use super::ZapError;

/// One ZAP rule firing on one site, with the places it fired.
#[derive(Debug, Clone, PartialEq)]
pub struct ZapAlert {
    pub plugin_id: String,
    pub alert_ref: Option<String>,
    pub name: String,
    pub risk: ZapRisk,
    pub confidence: ZapConfidence,
    pub site: String,
    pub instances: Vec<ZapInstance>,
    pub references: Vec<String>,
    pub cwe_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZapInstance {
    pub uri: String,
    pub method: Option<String>,
    pub param: Option<String>,
    pub evidence: Option<String>,
}

/// A parsed report: program version and alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedZapReport {
    pub version: Option<String>,
    pub sites: Vec<String>,
    pub alerts: Vec<ZapAlert>,
}

#[derive(Deserialize)]
struct ReportFile {
    #[serde(rename = "@version")]
    version: Option<String>,
    site: Option<OneOrMany<Site>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

#[derive(Deserialize)]
struct Site {
    #[serde(rename = "@name")]
    name: Option<String>,
    #[serde(default)]
    alerts: Vec<ReportAlert>,
}

#[derive(Deserialize)]
struct ReportAlert {
    pluginid: Value,
    #[serde(rename = "alertRef")]
    alert_ref: Option<Value>,
    name: Option<String>,
    alert: Option<String>,
    riskcode: Value,
    confidence: Value,
    #[serde(default)]
    instances: Vec<ReportInstance>,
    reference: Option<String>,
    cweid: Option<Value>,
}

#[derive(Deserialize)]
struct ReportInstance {
    uri: Option<String>,
    method: Option<String>,
    param: Option<String>,
    evidence: Option<String>,
}

/// ZAP writes numbers as strings in reports and the API; be exact about both.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty() && s != "-1")
}

/// References in reports are HTML paragraphs (`<p>url</p><p>url</p>`).
fn split_references(html: Option<&str>) -> Vec<String> {
    html.map(|h| h.split("<p>").flat_map(|p| p.split("</p>")).map(str::trim).filter(|s| s.starts_with("http")).map(str::to_owned).collect())
        .unwrap_or_default()
}

pub fn parse_report(bytes: &[u8]) -> Result<ParsedZapReport, ZapError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ZapError::Empty);
    }
    let file: ReportFile = serde_json::from_slice(bytes).map_err(|e| ZapError::InvalidJson(e.to_string()))?;
    let Some(sites) = file.site else {
        return Err(ZapError::NotAZapReport("no `site` list".into()));
    };
    let mut alerts = Vec::new();
    let mut site_names = Vec::new();
    for site in sites.into_vec() {
        let site_name = site.name.unwrap_or_default();
        site_names.push(site_name.clone());
        for a in site.alerts {
            let plugin_id = scalar(&a.pluginid).ok_or_else(|| ZapError::InvalidField("pluginid is not a string".into()))?;
            let risk_code = scalar(&a.riskcode).unwrap_or_default();
            let risk = ZapRisk::from_code(&risk_code).map_err(|e| ZapError::InvalidField(format!("plugin {plugin_id}: {e}")))?;
            let conf_code = scalar(&a.confidence).unwrap_or_default();
            let confidence =
                ZapConfidence::from_code(&conf_code).map_err(|e| ZapError::InvalidField(format!("plugin {plugin_id}: {e}")))?;
            alerts.push(ZapAlert {
                alert_ref: non_empty(a.alert_ref.as_ref().and_then(scalar)),
                name: a.name.or(a.alert).unwrap_or_else(|| format!("ZAP rule {plugin_id}")),
                plugin_id,
                risk,
                confidence,
                site: site_name.clone(),
                instances: a
                    .instances
                    .into_iter()
                    .map(|i| ZapInstance {
                        uri: i.uri.unwrap_or_else(|| site_name.clone()),
                        method: non_empty(i.method),
                        param: non_empty(i.param),
                        evidence: non_empty(i.evidence),
                    })
                    .collect(),
                references: split_references(a.reference.as_deref()),
                cwe_id: non_empty(a.cweid.as_ref().and_then(scalar)),
            });
        }
    }
    Ok(ParsedZapReport { version: file.version, sites: site_names, alerts })
}

/// One alert object from `alert/view/alerts` (every value a string).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAlert {
    pub plugin_id: String,
    pub alert_ref: Option<String>,
    pub name: Option<String>,
    pub alert: Option<String>,
    pub risk: String,
    pub confidence: String,
    pub url: String,
    pub method: Option<String>,
    pub param: Option<String>,
    pub evidence: Option<String>,
    pub reference: Option<String>,
    pub cweid: Option<String>,
}

/// Parse an `{"alerts": [...]}` body from the API.
pub fn parse_api_alerts(bytes: &[u8]) -> Result<Vec<ApiAlert>, ZapError> {
    #[derive(Deserialize)]
    struct Body {
        alerts: Vec<ApiAlert>,
    }
    let body: Body = serde_json::from_slice(bytes).map_err(|e| ZapError::InvalidJson(e.to_string()))?;
    Ok(body.alerts)
}

/// Group API alerts (one object per instance) into rule-level alerts, in first-seen order.
pub fn alerts_from_api(api: &[ApiAlert], site: &str) -> Result<Vec<ZapAlert>, ZapError> {
    let mut out: Vec<ZapAlert> = Vec::new();
    for a in api {
        let risk: ZapRisk = a.risk.parse().map_err(|e| ZapError::InvalidField(format!("plugin {}: {e}", a.plugin_id)))?;
        let confidence: ZapConfidence = a.confidence.parse().map_err(|e| ZapError::InvalidField(format!("plugin {}: {e}", a.plugin_id)))?;
        let alert_ref = non_empty(a.alert_ref.clone());
        let instance = ZapInstance {
            uri: a.url.clone(),
            method: non_empty(a.method.clone()),
            param: non_empty(a.param.clone()),
            evidence: non_empty(a.evidence.clone()),
        };
        let key = alert_ref.as_deref().unwrap_or(&a.plugin_id);
        if let Some(existing) = out.iter_mut().find(|x| x.alert_ref.as_deref().unwrap_or(&x.plugin_id) == key) {
            existing.instances.push(instance);
            // A rule's alerts can differ in confidence per instance; keep the most confident.
            existing.confidence = existing.confidence.max(confidence);
            existing.risk = existing.risk.max(risk);
            continue;
        }
        out.push(ZapAlert {
            plugin_id: a.plugin_id.clone(),
            alert_ref,
            name: a.name.clone().or_else(|| a.alert.clone()).unwrap_or_else(|| format!("ZAP rule {}", a.plugin_id)),
            risk,
            confidence,
            site: site.to_owned(),
            instances: vec![instance],
            references: a
                .reference
                .as_deref()
                .map(|r| r.lines().map(str::trim).filter(|l| l.starts_with("http")).map(str::to_owned).collect())
                .unwrap_or_default(),
            cwe_id: non_empty(a.cweid.clone()),
        });
    }
    Ok(out)
}
