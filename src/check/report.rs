//! What `check` prints on stdout: one line per finding and a summary, or the same as JSON.
//!
//! Rendering is kept apart from the rules so that the text and JSON forms count the same
//! findings, and `run` decides the exit code from the counts printed.

use std::path::Path;

use serde::Serialize;

use super::{Finding, Severity};
use crate::error::{Error, Result};
use crate::ui::ReportFormat;

/// What `check` prints on stdout.
#[derive(Serialize)]
pub(super) struct Report<'a> {
    ok: bool,
    env_file: String,
    pub(super) errors: usize,
    warnings: usize,
    findings: &'a [Finding],
    /// What `--db` verified (roles that logged in, copies compared), so a clean report says
    /// what "no problems" covers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    verified: Vec<String>,
}

impl<'a> Report<'a> {
    pub(super) fn new(path: &Path, findings: &'a [Finding], verified: Vec<String>) -> Self {
        let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
        Report {
            ok: errors == 0,
            env_file: path.display().to_string(),
            errors,
            warnings: findings.len() - errors,
            findings,
            verified,
        }
    }

    pub(super) fn render(&self, format: ReportFormat) -> Result<String> {
        match format {
            ReportFormat::Text => Ok(self.text()),
            ReportFormat::Json => serde_json::to_string_pretty(self)
                .map(|mut text| {
                    text.push('\n');
                    text
                })
                .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() }),
        }
    }

    /// The error-level lines and a verdict that counts them alone (`--quiet`).
    pub(super) fn errors_text(&self) -> String {
        let mut text = String::new();
        for f in self.findings.iter().filter(|f| f.severity == Severity::Error) {
            text.push_str(&line(f));
        }
        text.push_str(&format!("failed: {} error(s) in {}\n", self.errors, self.env_file));
        text
    }

    /// One line per finding (`severity[code] KEY: message`), then a summary.
    fn text(&self) -> String {
        let mut text = String::new();
        for f in self.findings {
            text.push_str(&line(f));
        }
        for what in &self.verified {
            text.push_str(&format!("verified: {what}\n"));
        }
        if self.findings.is_empty() {
            text.push_str(&format!("ok: no problems found in {}\n", self.env_file));
        } else {
            text.push_str(&format!(
                "{}: {} error(s), {} warning(s) in {}\n",
                if self.ok { "ok" } else { "failed" },
                self.errors,
                self.warnings,
                self.env_file
            ));
        }
        text
    }
}

/// One finding as a line of text: `severity[code] KEY (line N): message`.
fn line(f: &Finding) -> String {
    let place = match (f.file.as_deref(), f.line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (None, Some(line)) => Some(format!("line {line}")),
        _ => None,
    };
    let key = match (f.key.as_deref(), place) {
        (Some(k), Some(place)) => format!(" {k} ({place}):"),
        (Some(k), None) => format!(" {k}:"),
        (None, Some(place)) => format!(" ({place}):"),
        (None, None) => String::new(),
    };
    format!("{}[{}]{key} {}\n", f.severity.as_str(), f.code, f.message)
}
