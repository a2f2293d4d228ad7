//! Reading a compose file as compose reads it: YAML (yaml-rust2's event parser, which gives every
//! scalar's line), each value scalar with the mapping keys leading to it, and which services hand
//! the asymmetric key sets to their process ([`key_set_wiring`]). Shared by `check --compose`
//! (which audits the files) and `rotate-keys --compose` (which refuses to rotate a set no signer
//! reads).
//!
//! Upstream's stock `docker-compose.yml` ships the lines that hand `JWT_KEYS` to Auth and
//! `JWT_JWKS` to Realtime, Storage and Functions commented out (`#GOTRUE_JWT_KEYS:
//! ${JWT_KEYS:-[]}`, …); only PostgREST (`PGRST_JWT_SECRET: ${JWT_JWKS:-${JWT_SECRET}}`) and the
//! gateway read the asymmetric keys there. Such a commented line is found in the text, so the
//! report can name the line to enable.

use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::envfile::interpolate::referenced_names;
use crate::envfile::{self, EnvFileError};
use crate::error::{Error, Result};

/// One scalar value of a compose file, with where it sits.
pub struct Scalar {
    /// The mapping keys leading to it (sequence items add nothing).
    pub path: Vec<String>,
    /// The text, as YAML decoded it (before interpolation).
    pub text: String,
    /// 1-based line.
    pub line: usize,
}

/// Collects the value scalars of a YAML stream with their key paths.
#[derive(Default)]
struct Collector {
    /// Open containers: for a mapping, the key being read (`None` while a key is expected).
    stack: Vec<Container>,
    scalars: Vec<Scalar>,
}

enum Container {
    Mapping { key: Option<String> },
    Sequence,
}

impl Collector {
    fn path(&self) -> Vec<String> {
        self.stack
            .iter()
            .filter_map(|c| match c {
                Container::Mapping { key } => key.clone(),
                Container::Sequence => None,
            })
            .collect()
    }

    /// A node (scalar or container) is complete: the enclosing mapping expects a key again.
    fn value_done(&mut self) {
        if let Some(Container::Mapping { key }) = self.stack.last_mut() {
            *key = None;
        }
    }

    /// Whether the next node is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Container::Mapping { key: None }))
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) => {
                if self.expecting_key() {
                    if let Some(Container::Mapping { key }) = self.stack.last_mut() {
                        *key = Some(text);
                    }
                } else {
                    self.scalars.push(Scalar { path: self.path(), text, line: mark.line() });
                    self.value_done();
                }
            }
            Event::MappingStart(..) => self.stack.push(Container::Mapping { key: None }),
            Event::SequenceStart(..) => self.stack.push(Container::Sequence),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            // An alias repeats an anchored node whose scalars were read where it was defined.
            Event::Alias(_) => self.value_done(),
            _ => {}
        }
    }
}

/// The value scalars of a compose file, or why it cannot be read. Only a regular file is read
/// (the `.env`'s own check, in `envfile`): a FIFO or a device is refused before it is opened for
/// reading, so it can neither block nor fill the memory.
pub fn scalars(path: &Path) -> Result<Vec<Scalar>> {
    let io = |reason: String| Error::Io { action: "read the compose file", path: path.to_path_buf(), reason };
    let text = envfile::read_regular_text(path).map_err(|error| match error {
        EnvFileError::IsDirectory { .. } | EnvFileError::NotAFile { .. } => {
            io("it is not a regular file (a directory, pipe, socket or device); pass the path of a compose file".into())
        }
        EnvFileError::NotUtf8 { line, .. } => io(format!("line {line} is not UTF-8")),
        EnvFileError::Read { error, .. } => io(error.to_string()),
        other => io(other.to_string()),
    })?;
    let mut collector = Collector::default();
    Parser::new_from_str(&text)
        .load(&mut collector, true)
        .map_err(|e| io(format!("it is not valid YAML ({e}); check it with `docker compose config`")))?;
    Ok(collector.scalars)
}

/// Where a service that must read a key set does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwired {
    /// The compose service (`auth`, `realtime`, …).
    pub service: &'static str,
    /// The `.env` key it does not get (`JWT_KEYS` or `JWT_JWKS`).
    pub key: &'static str,
    /// The compose file defining the service.
    pub file: PathBuf,
    /// 1-based line: the commented-out line that would hand it the key, or the service's own.
    pub line: usize,
    /// That commented-out line without its `#` (the line to enable), when there is one.
    pub enable: Option<String>,
}

/// For each `(key, services that must read it)`, the services the compose `files` define but do
/// not hand `key` in their `environment` (through any `${key…}` reference). A service the files
/// do not define is not reported (an override file outside these may define it).
pub fn key_set_wiring(files: &[PathBuf], readers: &[(&'static str, &'static [&'static str])]) -> Result<Vec<Unwired>> {
    let mut defined: Vec<(&'static str, PathBuf, usize)> = Vec::new();
    let mut wired: Vec<(&'static str, &'static str)> = Vec::new();
    let mut commented: Vec<(PathBuf, usize, String, String, Option<String>)> = Vec::new();
    for file in files {
        for scalar in scalars(file)? {
            let [top, service, section, ..] = scalar.path.as_slice() else { continue };
            if top != "services" || section != "environment" {
                continue;
            }
            for (key, services) in readers {
                let reads = referenced_names(&scalar.text).unwrap_or_default().contains(key);
                if let Some(svc) = services.iter().find(|s| **s == service.as_str()).filter(|_| reads) {
                    wired.push((svc, key));
                }
            }
        }
        let text = envfile::read_regular_text(file).map_err(|e| io_error(file, e))?;
        for (service, line) in service_lines(&text) {
            if let Some(svc) = readers.iter().flat_map(|(_, s)| s.iter()).find(|s| **s == service) {
                defined.push((svc, file.clone(), line));
            }
        }
        commented.extend(
            commented_assignments(&text)
                .into_iter()
                .map(|(line, svc, name, enable)| (file.clone(), line, svc, name, enable)),
        );
    }
    let mut out = Vec::new();
    for (key, services) in readers {
        for service in services.iter() {
            if wired.contains(&(service, key)) {
                continue;
            }
            let Some((_, file, line)) = defined.iter().find(|(s, ..)| s == service) else { continue };
            let hint = commented
                .iter()
                .filter(|(f, _, svc, name, _)| f == file && svc == service && name == key)
                .max_by_key(|(_, _, _, _, enable)| enable.as_ref().map(|e| !e.contains("For Podman")));
            out.push(Unwired {
                service,
                key,
                file: file.clone(),
                line: hint.map_or(*line, |h| h.1),
                enable: hint.and_then(|h| h.4.clone()),
            });
        }
    }
    Ok(out)
}

/// The services of a compose text with the line each is defined on: the keys of the top-level
/// `services:` mapping (a line scan, for the report's line numbers; what a service reads comes
/// from the YAML).
fn service_lines(text: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut in_services = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 {
            in_services = trimmed.starts_with("services:");
            indent = None;
            continue;
        }
        if !in_services || indent.is_some_and(|d| depth > d) {
            continue;
        }
        if let Some(name) = trimmed.strip_suffix(':').filter(|n| !n.contains(' ')) {
            indent = Some(depth);
            out.push((name, i + 1));
        }
    }
    out
}

/// The commented-out environment assignments of each service: `(line, service, key referenced,
/// the line to enable)`, for lines such as `      #GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}`.
fn commented_assignments(text: &str) -> Vec<(usize, String, String, Option<String>)> {
    let services = service_lines(text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(body) = trimmed.strip_prefix('#') else { continue };
        let body = body.trim_start();
        let Some((name, value)) = body.split_once(": ") else { continue };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            continue;
        }
        let Some(service) = services.iter().rev().find(|(_, at)| *at <= i + 1).map(|(s, _)| (*s).to_owned()) else {
            continue;
        };
        for key in referenced_names(value.trim()).unwrap_or_default() {
            out.push((i + 1, service.clone(), key.to_owned(), Some(format!("{name}: {}", value.trim()))));
        }
    }
    out
}

fn io_error(path: &Path, error: EnvFileError) -> Error {
    Error::Io { action: "read the compose file", path: path.to_path_buf(), reason: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = "\
services:
  auth:
    environment:
      GOTRUE_JWT_SECRET: ${JWT_SECRET}
      # For Podman, use: GOTRUE_JWT_KEYS: ${JWT_KEYS}
      #GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}
  rest:
    environment:
      PGRST_JWT_SECRET: ${JWT_JWKS:-${JWT_SECRET}}
";

    const READERS: &[(&str, &[&str])] = &[("JWT_KEYS", &["auth"]), ("JWT_JWKS", &["rest", "realtime"])];

    #[test]
    fn a_commented_out_line_is_named_with_the_line_to_enable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compose.yml");
        std::fs::write(&path, STOCK).unwrap();
        let found = key_set_wiring(std::slice::from_ref(&path), READERS).unwrap();
        assert_eq!(
            found,
            [Unwired {
                service: "auth",
                key: "JWT_KEYS",
                file: path.clone(),
                line: 6,
                enable: Some("GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}".into())
            }]
        );
        std::fs::write(&path, STOCK.replace("      #GOTRUE_JWT_KEYS", "      GOTRUE_JWT_KEYS")).unwrap();
        assert_eq!(key_set_wiring(&[path], READERS).unwrap(), []);
    }
}
