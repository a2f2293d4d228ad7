//! What `check` prints on stdout: one line per finding and a summary, or the same as JSON.
//!
//! Rendering is kept apart from the rules so that the text and JSON forms count the same
//! findings, and `run` decides the exit code from the counts printed.

use std::path::Path;

use serde::Serialize;

use super::{Finding, Severity};
use crate::error::{Error, Result};
use crate::ui::{paint, ReportFormat};

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

    /// The report in `format`; the text form in severity colours when `color`.
    pub(super) fn render(&self, format: ReportFormat, color: bool) -> Result<String> {
        match format {
            ReportFormat::Text => Ok(self.text(color)),
            ReportFormat::Json => serde_json::to_string_pretty(self)
                .map(|mut text| {
                    text.push('\n');
                    text
                })
                .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() }),
        }
    }

    /// The error-level lines and a verdict that counts them alone (`--quiet`).
    pub(super) fn errors_text(&self, color: bool) -> String {
        let mut text = String::new();
        for f in self.findings.iter().filter(|f| f.severity == Severity::Error) {
            text.push_str(&line(f, color));
        }
        text.push_str(&format!("{} {} error(s) in {}\n", verdict(false, color), self.errors, self.env_file));
        text
    }

    /// One line per finding (`severity[code] KEY: message`), then a summary.
    fn text(&self, color: bool) -> String {
        let mut text = String::new();
        for f in self.findings {
            text.push_str(&line(f, color));
        }
        for what in &self.verified {
            text.push_str(&format!("verified: {what}\n"));
        }
        if self.findings.is_empty() {
            text.push_str(&format!("{} no problems found in {}\n", verdict(true, color), self.env_file));
        } else {
            text.push_str(&format!(
                "{} {} error(s), {} warning(s) in {}\n",
                verdict(self.ok, color),
                self.errors,
                self.warnings,
                self.env_file
            ));
        }
        text
    }
}

/// `ok:` in green or `failed:` in red.
fn verdict(ok: bool, color: bool) -> String {
    match ok {
        true => paint(color, "ok:", "1;32"),
        false => paint(color, "failed:", "1;31"),
    }
}

/// One finding as a line of text: `severity[code] KEY (line N): message`. When `color`,
/// `severity[code]` is in its severity's colour (bold red for errors, bold yellow for warnings)
/// and what it is about (`KEY (line N):`) in bold, so a finding stands out from the message.
fn line(f: &Finding, color: bool) -> String {
    let place = match (f.file.as_deref(), f.line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (None, Some(line)) => Some(format!("line {line}")),
        _ => None,
    };
    let subject = match (f.key.as_deref(), place) {
        (Some(k), Some(place)) => Some(format!("{k} ({place}):")),
        (Some(k), None) => Some(format!("{k}:")),
        (None, Some(place)) => Some(format!("({place}):")),
        (None, None) => None,
    };
    let subject = subject.map(|subject| format!(" {}", paint(color, &subject, "1"))).unwrap_or_default();
    let ansi = match f.severity {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
    };
    let label = paint(color, &format!("{}[{}]", f.severity.as_str(), f.code), ansi);
    format!("{label}{subject} {}\n", f.message)
}
