//! Live progress for the CLI's long waits (`analyze --verify`, `shadow verify`, `scan image`, `scan
//! url`): one line on a terminal, redrawn in place — the verification's stage, each scanner's state
//! (ZAP's phases with their percentage) and the time spent. Silent when stderr is not a terminal or
//! the output is data (JSON, SARIF, JUnit): a CI log gets the first and last lines the commands print
//! themselves, never a stream of redraws.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aegis_model::{Side, Source};
use aegis_scanners::ScanProgress;

fn key(scanner: Source, side: Side) -> (String, &'static str) {
    (scanner.to_string(), side.as_str())
}

/// The display; a no-op when nobody watches.
pub struct Live {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    started: Instant,
    stage: Option<String>,
    /// What each scanner is doing, by scanner and side (in the order they are named).
    scanners: BTreeMap<(String, &'static str), String>,
}

impl Live {
    /// A display labelled `label`, shown only when `interactive` (table output) and stderr is a terminal.
    pub fn new(label: impl Into<String>, interactive: bool) -> Live {
        use std::io::IsTerminal;
        let bar = (interactive && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Live { bar, label: label.into(), started: Instant::now(), stage: None, scanners: BTreeMap::new() }
    }

    pub fn stage(&mut self, stage: impl std::fmt::Display) {
        self.stage = Some(stage.to_string());
        self.draw();
    }

    pub fn scan(&mut self, p: ScanProgress) {
        match p {
            ScanProgress::Started { scanner, side, target } => {
                self.scanners.insert(key(scanner, side), format!("{target}: running"));
            }
            ScanProgress::Phase { scanner, phase, percent } => {
                let state = match percent {
                    Some(p) => format!("{phase} {p}%"),
                    None => phase.to_owned(),
                };
                let name = scanner.to_string();
                for (_, s) in self.scanners.iter_mut().filter(|((sc, _), _)| *sc == name) {
                    *s = state.clone();
                }
            }
            ScanProgress::Finished { scanner, side, outcome, .. } => {
                let short: String = outcome.chars().take(40).collect();
                self.scanners.insert(key(scanner, side), short);
            }
        }
        self.draw();
    }

    /// The line as it reads now.
    pub fn line(&self) -> String {
        let mut line = format!("{}: ", self.label);
        if let Some(stage) = &self.stage {
            line.push_str(stage);
            line.push_str(" — ");
        }
        line.push_str(&format!("{}s", self.started.elapsed().as_secs()));
        for ((scanner, side), state) in &self.scanners {
            line.push_str(&format!(" · {scanner} {side}: {state}"));
        }
        line
    }

    /// Redraw (also on a timer, so the seconds move while nothing happens).
    pub fn draw(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.line());
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_stage_and_each_scanners_state_with_zaps_percentage() {
        let mut live = Live::new("Deployment/api -n shop", false);
        live.stage("shadow healthy; candidate scans and smoke checks");
        live.scan(ScanProgress::Started { scanner: Source::Trivy, side: Side::Candidate, target: "demo-api:v2".into() });
        live.scan(ScanProgress::Started { scanner: Source::Zap, side: Side::Candidate, target: "http://10.0.0.7".into() });
        live.scan(ScanProgress::Phase { scanner: Source::Zap, phase: "active scan", percent: Some(45) });
        live.scan(ScanProgress::Finished {
            scanner: Source::Trivy,
            side: Side::Candidate,
            target: "demo-api:v2".into(),
            outcome: "ok".into(),
        });
        let line = live.line();
        assert!(line.starts_with("Deployment/api -n shop: shadow healthy; candidate scans and smoke checks — 0s"), "{line}");
        assert!(line.contains("trivy candidate: ok") && line.contains("zap candidate: active scan 45%"), "{line}");
        live.finish();
    }
}
