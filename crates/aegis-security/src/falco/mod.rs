//! Falco alerts, as Falco writes them (`json_output`, one object a line, or one per `http_output`
//! POST) and as falcosidekick's webhook output forwards them.
//!
//! Two readers with two temperaments: [`parse_stream`] is for captured logs (journalctl output mixes
//! log lines with alerts) and skips what is not an alert, counting it; [`parse_body`] is for the HTTP
//! receiver and rejects a body with any bad alert, naming the line, so a sender learns at once and
//! nothing is half-stored.

use std::collections::BTreeMap;

use aegis_model::{FalcoPriority, Finding, FindingKind, Fingerprint, Severity, Source, Target};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One Falco alert (or internal message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FalcoAlert {
    pub time: Timestamp,
    pub rule: String,
    pub priority: FalcoPriority,
    /// `syscall`, `k8s_audit`, `internal`, ...; falcosidekick turns an empty source into `syscalls`.
    pub source: Option<String>,
    pub hostname: Option<String>,
    pub output: String,
    pub tags: Vec<String>,
    pub output_fields: BTreeMap<String, Value>,
    /// falcosidekick's per-alert UUID, when forwarded by it.
    pub uuid: Option<String>,
    /// The alert's `time` as sent, when it was not RFC 3339; `time` is then the time AEGIS received or
    /// read the alert. Such an alert is still evidence: dropping it for a bad clock would clear a
    /// namespace on less evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unparsed: Option<String>,
}

/// Why one JSON value is not a Falco alert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("missing or empty field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}`: {message}")]
    Invalid { field: &'static str, message: String },
}

/// A body the receiver refuses, with the (1-based) line it stopped at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BodyError {
    pub line: usize,
    pub message: String,
}

impl FalcoAlert {
    /// Read one alert. `received` stamps an alert whose `time` cannot be parsed.
    pub fn from_value(v: &Value, received: Timestamp) -> Result<FalcoAlert, AlertError> {
        FalcoAlert::from_json(v.clone(), received)
    }

    /// Read one alert, taking its fields rather than copying them (the receiver's path: a request's
    /// alerts are read once).
    pub fn from_json(v: Value, received: Timestamp) -> Result<FalcoAlert, AlertError> {
        let Value::Object(mut obj) = v else { return Err(AlertError::NotAnObject) };
        let mut text = |k: &'static str| match obj.remove(k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        let rule = text("rule").ok_or(AlertError::Missing("rule"))?;
        let priority = text("priority")
            .ok_or(AlertError::Missing("priority"))?
            .parse::<FalcoPriority>()
            .map_err(|e| AlertError::Invalid { field: "priority", message: e.to_string() })?;
        let raw_time = text("time").ok_or(AlertError::Missing("time"))?;
        let (time, time_unparsed) = match raw_time.parse::<Timestamp>() {
            Ok(t) => (t, None),
            Err(_) => (received, Some(raw_time)),
        };
        let (source, hostname, output, uuid) = (text("source"), text("hostname"), text("output").unwrap_or_default(), text("uuid"));
        let output_fields = match obj.remove("output_fields") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => m.into_iter().collect(),
            Some(_) => return Err(AlertError::Invalid { field: "output_fields", message: "not an object".into() }),
        };
        let tags = match obj.remove("tags") {
            Some(Value::Array(a)) => a
                .into_iter()
                .filter_map(|t| match t {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(FalcoAlert { time, rule, priority, source, hostname, output, tags, output_fields, uuid, time_unparsed })
    }

    fn field(&self, key: &str) -> Option<&str> {
        self.output_fields.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// Falco's own messages (metrics snapshots): proof the feed is alive, never a finding.
    pub fn is_internal(&self) -> bool {
        self.source.as_deref() == Some("internal") || self.rule.starts_with("Falco internal")
    }

    /// The namespace this alert is attributed to: `k8s.ns.name` (syscall alerts with k8s metadata) or
    /// `ka.target.namespace` (k8s audit alerts). `None` when Falco had no metadata: such an alert
    /// cannot be ruled out for any namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.field("k8s.ns.name").or_else(|| self.field("ka.target.namespace"))
    }

    pub fn pod(&self) -> Option<&str> {
        self.field("k8s.pod.name")
    }

    pub fn container(&self) -> Option<&str> {
        self.field("container.name")
    }

    /// The time [`Self::dedup_key`] stands with: a re-sent alert repeats it, so a store may order its
    /// keys by it. `None` when the alert's time could not be parsed (the key holds the text as sent).
    pub fn dedup_at(&self) -> Option<Timestamp> {
        self.time_unparsed.is_none().then_some(self.time)
    }

    /// A stable identity for deduplicating re-sent alerts: falcosidekick's UUID, else the alert's content.
    pub fn dedup_key(&self) -> String {
        match &self.uuid {
            Some(u) => format!("uuid:{u}"),
            None => {
                let fields = serde_json::to_string(&self.output_fields).unwrap_or_default();
                // The time as sent: a stamped receive time would differ on every retry.
                let time = self.time_unparsed.clone().unwrap_or_else(|| self.time.to_string());
                Fingerprint::of(&[&time, &self.rule, self.priority.as_str(), &self.output, &fields]).to_string()
            }
        }
    }

    pub fn to_finding(&self) -> Finding {
        let container = self.container().or_else(|| self.field("container.image.repository")).unwrap_or("");
        let process = self.field("proc.name").unwrap_or("");
        Finding {
            source: Source::Falco,
            kind: FindingKind::RuntimeAlert,
            id: self.rule.clone(),
            title: self.rule.clone(),
            severity: Severity::from_falco(self.priority),
            target: Target::Pod {
                namespace: self.namespace().map(str::to_owned),
                name: self.pod().map(str::to_owned),
                container: self.container().map(str::to_owned),
            },
            location: Some(self.field("proc.cmdline").map(str::to_owned).unwrap_or_else(|| self.output.clone())),
            package: None,
            references: Vec::new(),
            native_severity: Some(self.priority.as_str().to_owned()),
            aliases: Vec::new(),
            fingerprint: Fingerprint::of(&["falco", &self.rule, container, process]),
        }
    }
}

/// An alert that could not be read: evidence that cannot be judged. `namespace` is the namespace it
/// names when that much of it is readable, so that it holds up only that namespace's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableAlert {
    /// Where it was: `line N` of a capture, or the request the receiver refused.
    pub place: String,
    pub reason: String,
    pub namespace: Option<String>,
}

impl std::fmt::Display for UnreadableAlert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.reason)
    }
}

/// Result of reading a captured stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamParse {
    pub alerts: Vec<FalcoAlert>,
    /// Lines that are not alerts at all (a capture's log lines, JSON without any alert field), with
    /// why: skipped and counted.
    pub skipped: Vec<(usize, String)>,
    /// Lines that are alerts but cannot be read (truncated, a field missing or of the wrong type).
    pub unreadable: Vec<UnreadableAlert>,
}

impl StreamParse {
    /// Sort one JSON value found at `n` (`place` names it for a human): an alert, an unreadable alert,
    /// or — without any alert field — not an alert at all.
    fn take(&mut self, n: usize, place: String, v: &Value, read_at: Timestamp) {
        if !ALERT_FIELDS.iter().any(|k| v.get(k).is_some()) {
            self.skipped.push((n, "JSON without Falco alert fields".into()));
            return;
        }
        match FalcoAlert::from_value(v, read_at) {
            Ok(a) => self.alerts.push(a),
            Err(e) => self.unreadable.push(UnreadableAlert { place, reason: e.to_string(), namespace: namespace_of(v) }),
        }
    }
}

/// The fields of a Falco alert: a JSON object with any of them is an alert, readable or not.
const ALERT_FIELDS: [&str; 6] = ["rule", "priority", "output", "output_fields", "time", "source"];

/// The namespace an alert object names, read as leniently as possible (for an alert that cannot be
/// read as a whole).
fn namespace_of(v: &Value) -> Option<String> {
    let fields = v.get("output_fields")?.as_object()?;
    ["k8s.ns.name", "ka.target.namespace"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

/// Read a captured stream of alerts, one per line. A line that is not JSON (a log line) or a JSON object
/// with no alert field is skipped and counted; a line that is an alert but cannot be read — truncated
/// JSON, a field missing or of the wrong type — is kept as unreadable, never dropped. `read_at` stamps
/// alerts whose time cannot be parsed.
pub fn parse_stream(text: &str, read_at: Timestamp) -> StreamParse {
    let mut out = StreamParse::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('{') {
            out.skipped.push((n + 1, "not JSON".into()));
            continue;
        }
        let place = format!("line {}", n + 1);
        match serde_json::from_str::<Value>(line) {
            Err(e) => out.unreadable.push(UnreadableAlert { place, reason: format!("not valid JSON (truncated?): {e}"), namespace: None }),
            Ok(v) => out.take(n + 1, place, &v, read_at),
        }
    }
    out
}

/// Read a JSON array of alerts (what `aegis falco query -o json` prints): like [`parse_stream`], an
/// item that is an alert but cannot be read is kept as unreadable. Invalid JSON is an error.
pub fn parse_array(text: &str, read_at: Timestamp) -> Result<StreamParse, String> {
    let items: Vec<Value> = serde_json::from_str(text).map_err(|e| format!("not a valid JSON array of alerts: {e}"))?;
    let mut out = StreamParse::default();
    for (n, v) in items.iter().enumerate() {
        out.take(n + 1, format!("item {}", n + 1), v, read_at);
    }
    Ok(out)
}

/// The namespaces the alerts of a refused receiver body name, as far as they can be read: `None` for
/// each alert (or the rest of the body) that names none or cannot be read. Deduplicated.
pub fn body_namespaces(bytes: &[u8]) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = Vec::new();
    let mut push = |ns: Option<String>| {
        if !out.contains(&ns) {
            out.push(ns);
        }
    };
    for value in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        match value {
            Ok(Value::Array(items)) => items.iter().for_each(|i| push(namespace_of(i))),
            Ok(v) => push(namespace_of(&v)),
            Err(_) => {
                push(None);
                break;
            }
        }
    }
    if out.is_empty() {
        out.push(None);
    }
    out
}

/// Read a receiver body strictly: one JSON object (possibly pretty-printed), a JSON array of objects,
/// or JSON values separated by newlines. Any invalid value rejects the whole body. `received` stamps
/// alerts whose time cannot be parsed.
pub fn parse_body(bytes: &[u8], received: Timestamp) -> Result<Vec<FalcoAlert>, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError { line: 1, message: "empty body".into() });
    }
    let mut alerts = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    // Line numbers are counted incrementally from the last value's start: counting from the body's
    // start for every value made a body of JSON lines quadratic to read.
    let (mut counted_to, mut line_at) = (0usize, 1usize);
    loop {
        let start = stream.byte_offset();
        let Some(next) = stream.next() else { break };
        let value = next.map_err(|e| BodyError { line: e.line(), message: format!("invalid JSON: {e}") })?;
        let value_start = (start + leading_ws(&bytes[start..])).min(bytes.len());
        line_at += bytes[counted_to..value_start].iter().filter(|b| **b == b'\n').count();
        counted_to = value_start;
        let line = line_at;
        match value {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    alerts.push(
                        FalcoAlert::from_json(item, received).map_err(|e| BodyError { line, message: format!("array item {i}: {e}") })?,
                    );
                }
            }
            other => alerts.push(FalcoAlert::from_json(other, received).map_err(|e| BodyError { line, message: e.to_string() })?),
        }
    }
    Ok(alerts)
}

fn leading_ws(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    const ALERT: &str = r#"{"output":"x","priority":"Critical","rule":"Terminal shell in container","time":"2024-01-01T00:00:00.123456789Z","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"api-1","container.name":"api","proc.name":"bash","user.name":null}}"#;

    #[test]
    fn an_alert_with_null_fields_parses_and_is_attributed_to_its_namespace() {
        let a = &parse_body(ALERT.as_bytes(), now()).unwrap()[0];
        assert_eq!(a.priority, FalcoPriority::Critical);
        assert_eq!(a.namespace(), Some("shop"));
        assert_eq!(a.time.subsec_nanosecond(), 123_456_789);
        let f = a.to_finding();
        assert_eq!(f.severity, Severity::Critical);
        assert!(matches!(f.target, Target::Pod { namespace: Some(ref n), .. } if n == "shop"));
    }

    #[test]
    fn a_body_with_one_bad_line_is_refused_naming_the_line() {
        let body = format!("{ALERT}\n{{\"rule\":\"r\",\"time\":\"2024-01-01T00:00:00Z\"}}\n");
        let err = parse_body(body.as_bytes(), now()).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("priority"), "{err}");
        let err = parse_body(format!("{ALERT}\nnot json").as_bytes(), now()).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn json_lines_pretty_objects_and_arrays_are_all_accepted_bodies() {
        assert_eq!(parse_body(format!("{ALERT}\n{ALERT}\n").as_bytes(), now()).unwrap().len(), 2);
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(ALERT).unwrap()).unwrap();
        assert_eq!(parse_body(pretty.as_bytes(), now()).unwrap().len(), 1);
        assert_eq!(parse_body(format!("[{ALERT},{ALERT}]").as_bytes(), now()).unwrap().len(), 2);
    }

    #[test]
    fn a_stream_skips_log_lines_and_counts_them_but_keeps_unreadable_alerts() {
        let s = parse_stream(&format!("Starting Falco\n{ALERT}\n\n{{\"rule\":1}}\n{{\"level\":\"info\"}}\n"), now());
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(s.skipped.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(s.unreadable.len(), 1);
        assert_eq!(s.unreadable[0].place, "line 4");
    }

    #[test]
    fn an_unreadable_alert_keeps_the_namespace_it_names() {
        let s = parse_stream(r#"{"rule":"r","priority":"Bogus","time":"t","output_fields":{"k8s.ns.name":"shop"}}"#, now());
        assert_eq!(s.unreadable[0].namespace.as_deref(), Some("shop"));
        assert!(s.unreadable[0].reason.contains("priority"), "{:?}", s.unreadable);
    }

    #[test]
    fn a_refused_body_names_the_namespaces_it_could_be_about() {
        let body = format!("{ALERT}\n{{\"rule\":\"r\",\"output_fields\":{{\"k8s.ns.name\":\"billing\"}}}}\n{{trunc");
        assert_eq!(body_namespaces(body.as_bytes()), vec![Some("shop".to_owned()), Some("billing".to_owned()), None]);
        assert_eq!(body_namespaces(b"garbage"), vec![None]);
    }

    #[test]
    fn line_numbers_of_a_long_body_are_exact() {
        let mut body = String::new();
        for _ in 0..2000 {
            body.push_str(ALERT);
            body.push('\n');
        }
        body.push_str("{\"rule\":\"r\"}\n");
        let err = parse_body(body.as_bytes(), now()).unwrap_err();
        assert_eq!(err.line, 2001, "{err}");
    }

    #[test]
    fn an_alert_with_an_unreadable_time_is_kept_and_stamped_when_received() {
        let body = ALERT.replace("2024-01-01T00:00:00.123456789Z", "2021-04-13T20:58:00Z+2");
        let a = parse_body(body.as_bytes(), now()).unwrap().remove(0);
        assert_eq!(a.time, now());
        assert_eq!(a.time_unparsed.as_deref(), Some("2021-04-13T20:58:00Z+2"));
    }

    #[test]
    fn resent_alerts_share_a_dedup_key_even_when_their_time_was_unreadable() {
        let a = parse_body(ALERT.as_bytes(), now()).unwrap().remove(0);
        let b = parse_body(ALERT.as_bytes(), now()).unwrap().remove(0);
        assert_eq!(a.dedup_key(), b.dedup_key());
        let odd = ALERT.replace("2024-01-01T00:00:00.123456789Z", "yesterday");
        let later: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let c = parse_body(odd.as_bytes(), now()).unwrap().remove(0);
        let d = parse_body(odd.as_bytes(), later).unwrap().remove(0);
        assert_eq!(c.dedup_key(), d.dedup_key());
    }
}
