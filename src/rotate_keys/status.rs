//! `rotate-keys status`: each key's state and since when, and the earliest next step, as text
//! or JSON (stdout). Reads the file without locking it and changes nothing.

use std::path::Path;

use serde::Serialize;

use super::{load, value, RotateKeysOptions};
use crate::clock;
use crate::envfile::EnvFile;
use crate::error::{Error, ExitCode, Result};
use crate::keyring::{self, KeyRing, KeyState};
use crate::secrets;
use crate::ui::{ReportFormat, Ui};

#[derive(Serialize)]
struct Status {
    env_file: String,
    now: u64,
    jwt_expiry: u64,
    keys: Vec<KeyStatus>,
    /// The `oct` key of `JWT_SECRET` is in both sets.
    legacy_hs256: bool,
    next: Vec<NextStep>,
}

#[derive(Serialize)]
struct KeyStatus {
    kid: String,
    state: KeyState,
    since: Option<u64>,
    since_utc: Option<String>,
}

#[derive(Serialize)]
struct NextStep {
    step: &'static str,
    kid: Option<String>,
    /// Unix time from which the step is allowed without `--force`; `None` when unknown.
    earliest: Option<u64>,
    earliest_utc: Option<String>,
    ready: bool,
}

pub(super) fn run(opts: &RotateKeysOptions, ui: &Ui) -> Result<ExitCode> {
    let file = EnvFile::read(&opts.env_file)?;
    let status = status_of(&file, &opts.env_file, secrets::unix_now())?;
    let text = match opts.format {
        ReportFormat::Json => serde_json::to_string_pretty(&status)
            .map(|t| t + "\n")
            .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() })?,
        ReportFormat::Text => render_text(&status),
    };
    ui.report(opts.format, &text)?;
    Ok(ExitCode::Success)
}

fn status_of(file: &EnvFile, path: &Path, now: u64) -> Result<Status> {
    let ring: KeyRing = load::ring(file, path)?;
    let expiry = keyring::jwt_expiry_secs(value(file, "JWT_EXPIRY"));
    let ec = ring.ec_keys();
    let keys = ec
        .iter()
        .map(|k| KeyStatus {
            kid: k.kid.clone(),
            state: k.state,
            since: k.since,
            since_utc: k.since.map(clock::utc_time),
        })
        .collect();
    let step = |step, kid: &str, earliest: Option<u64>| NextStep {
        step,
        kid: Some(kid.to_owned()),
        earliest,
        earliest_utc: earliest.map(clock::utc_time),
        ready: earliest.is_some_and(|at| now >= at),
    };
    let mut next = Vec::new();
    for key in &ec {
        match key.state {
            KeyState::Standby => next.push(step("promote", &key.kid, key.since.map(keyring::promotable_at))),
            KeyState::Previous => {
                next.push(step("revoke", &key.kid, key.since.map(|s| keyring::revocable_at(s, expiry))))
            }
            KeyState::Current => {}
        }
    }
    if !ec.iter().any(|k| k.state == KeyState::Standby) {
        next.push(NextStep { step: "stage", kid: None, earliest: Some(now), earliest_utc: None, ready: true });
    }
    next.sort_by_key(|s| (s.earliest.is_none(), s.earliest));
    Ok(Status {
        env_file: path.display().to_string(),
        now,
        jwt_expiry: expiry,
        keys,
        legacy_hs256: ring.oct_in_both(),
        next,
    })
}

fn render_text(status: &Status) -> String {
    let mut out = format!("signing keys in {}:\n", status.env_file);
    for key in &status.keys {
        let since = match key.since {
            Some(since) => format!(
                "since {} ({} ago)",
                clock::utc_time(since),
                keyring::human_duration(status.now.saturating_sub(since))
            ),
            None => "since an unrecorded time".to_owned(),
        };
        out.push_str(&format!("  {}  {:<8} {since}\n", crate::ui::printable(&key.kid), key.state.as_str()));
    }
    out.push_str(if status.legacy_hs256 {
        "  legacy HS256 (oct) key of JWT_SECRET: in both sets\n"
    } else {
        "  legacy HS256 (oct) key of JWT_SECRET: not in both sets (run check)\n"
    });
    for step in &status.next {
        let what = match &step.kid {
            Some(kid) => format!("{} {}", step.step, crate::ui::printable(kid)),
            None => step.step.to_owned(),
        };
        let when = match (step.ready, step.earliest) {
            (true, _) => "now".to_owned(),
            (false, Some(at)) => {
                format!("from {} (in {})", clock::utc_time(at), keyring::human_duration(at - status.now))
            }
            (false, None) => "time unknown (not recorded): only with --force".to_owned(),
        };
        out.push_str(&format!("next: {what}: {when}\n"));
    }
    out
}
