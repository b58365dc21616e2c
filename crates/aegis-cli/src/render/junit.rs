//! JUnit XML: one test case per scanner run and one per gate rule, so CI systems show the verdict in
//! their native test views. A failed or skipped scanner is a failing case (missing evidence blocks);
//! a rule that blocked is a failing case whose message lists the findings.

use std::collections::BTreeSet;

use aegis_model::{RunStatus, SecurityReport};
use anyhow::Result;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// The rules a policy can block on; each becomes a test case, passing when it did not block.
const RULES: [&str; 10] = [
    "trivy.evidence",
    "trivy.fail_on",
    "zap.evidence",
    "zap.fail_risk",
    "zap.rules_file",
    "falco.evidence",
    "falco.min_priority",
    "falco.attribution",
    "manifest.evidence",
    "manifest.fail_severity",
];

struct Case {
    class: String,
    name: String,
    seconds: f64,
    failure: Option<(String, String)>,
    /// Not run, and said so (a scanner off in the policy): JUnit's `<skipped>`. A required scanner that
    /// did not run fails its `*.evidence` rule case besides.
    skipped: Option<String>,
}

pub fn render(r: &SecurityReport) -> Result<String> {
    let mut cases: Vec<Case> = Vec::new();
    for run in &r.scanners {
        let (failure, skipped) = match &run.status {
            RunStatus::Ok => (None, None),
            RunStatus::Incomplete { reason } => (Some(("incomplete".to_owned(), reason.clone())), None),
            RunStatus::Skipped { reason } => (None, Some(reason.clone())),
            RunStatus::Failed { reason } => (Some(("failed".to_owned(), reason.clone())), None),
        };
        cases.push(Case {
            class: format!("aegis.scanner.{}", run.scanner),
            name: format!("{} {} {}", run.side.as_str(), run.scanner, run.target),
            seconds: run.duration_ms as f64 / 1000.0,
            failure,
            skipped,
        });
    }
    let mut rules: BTreeSet<String> = RULES.iter().map(|s| s.to_string()).collect();
    rules.extend(r.reasons.iter().map(|x| x.rule.clone()));
    for rule in rules {
        let hits: Vec<_> = r.reasons.iter().filter(|x| x.rule == rule).collect();
        let failure = (!hits.is_empty()).then(|| {
            let text = hits.iter().map(|h| h.message.clone()).collect::<Vec<_>>().join("\n");
            (hits[0].message.clone(), text)
        });
        cases.push(Case { class: "aegis.gate".to_owned(), name: rule, seconds: 0.0, failure, skipped: None });
    }

    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.failure.is_none() && c.skipped.is_some()).count();
    let total: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut suites = BytesStart::new("testsuites");
    suites.push_attribute(("name", "aegis security gate"));
    suites.push_attribute(("tests", cases.len().to_string().as_str()));
    suites.push_attribute(("failures", failures.to_string().as_str()));
    suites.push_attribute(("time", format!("{total:.3}").as_str()));
    w.write_event(Event::Start(suites))?;
    let mut suite = BytesStart::new("testsuite");
    suite.push_attribute(("name", format!("security gate: {}", r.verdict).as_str()));
    suite.push_attribute(("tests", cases.len().to_string().as_str()));
    suite.push_attribute(("failures", failures.to_string().as_str()));
    suite.push_attribute(("errors", "0"));
    suite.push_attribute(("skipped", skipped.to_string().as_str()));
    suite.push_attribute(("time", format!("{total:.3}").as_str()));
    suite.push_attribute(("timestamp", r.generated_at.to_string().as_str()));
    w.write_event(Event::Start(suite))?;
    for c in &cases {
        let mut tc = BytesStart::new("testcase");
        tc.push_attribute(("classname", c.class.as_str()));
        tc.push_attribute(("name", c.name.as_str()));
        tc.push_attribute(("time", format!("{:.3}", c.seconds).as_str()));
        match (&c.failure, &c.skipped) {
            (None, None) => w.write_event(Event::Empty(tc))?,
            (None, Some(why)) => {
                w.write_event(Event::Start(tc))?;
                let mut sk = BytesStart::new("skipped");
                sk.push_attribute(("message", why.as_str()));
                w.write_event(Event::Empty(sk))?;
                w.write_event(Event::End(BytesEnd::new("testcase")))?;
            }
            (Some((message, text)), _) => {
                w.write_event(Event::Start(tc))?;
                let mut f = BytesStart::new("failure");
                f.push_attribute(("message", message.as_str()));
                f.push_attribute(("type", "aegis.gate"));
                w.write_event(Event::Start(f))?;
                w.write_event(Event::Text(BytesText::new(text)))?;
                w.write_event(Event::End(BytesEnd::new("failure")))?;
                w.write_event(Event::End(BytesEnd::new("testcase")))?;
            }
        }
    }
    let mut props = BytesStart::new("system-out");
    props.clear_attributes();
    w.write_event(Event::Start(props))?;
    w.write_event(Event::Text(BytesText::new(&format!(
        "verdict={} policy={} evidence={}",
        r.verdict, r.policy_digest, r.evidence_digest
    ))))?;
    w.write_event(Event::End(BytesEnd::new("system-out")))?;
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    let mut out = String::from_utf8(w.into_inner())?;
    out.push('\n');
    Ok(out)
}
