//! The time limits that bound waiting on a server, each a named production value.
//!
//! The test suite shortens them the way it sets crash points: `PMOVES_SECRETS_TEST_LIMITS`
//! (`name=duration,...`, durations as `250ms` or `2s`), read only in builds with debug
//! assertions (the dev and test profiles the suite runs), so no test waits on a production
//! timeout. A release build never reads the variable: an operator's environment cannot change
//! how long the released binary waits.

use std::time::Duration;

/// The variable the test suite shortens limits with.
pub const TEST_LIMITS_VAR: &str = "PMOVES_SECRETS_TEST_LIMITS";

/// A named time limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    name: &'static str,
    production: Duration,
}

impl Limit {
    /// A limit called `name` in `PMOVES_SECRETS_TEST_LIMITS`, `production` everywhere else.
    pub const fn new(name: &'static str, production: Duration) -> Self {
        Limit { name, production }
    }

    /// The limit in effect.
    pub fn get(&self) -> Duration {
        if cfg!(debug_assertions) {
            if let Some(shortened) = std::env::var(TEST_LIMITS_VAR).ok().and_then(|spec| lookup(&spec, self.name)) {
                return shortened;
            }
        }
        self.production
    }
}

/// Parses a `--lock-timeout`: `5s`, `500ms`, `1m`, or a bare number of seconds, between 1 ms
/// and 1 h; `None` otherwise.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return None,
    };
    (0.001..=3600.0).contains(&seconds).then(|| Duration::from_secs_f64(seconds))
}

/// `--lock-timeout`: `5s`, `500ms`, `1m`, or a bare number of seconds, between 1 ms and 1 h.
pub fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| "not a duration between 1ms and 1h, such as 5s or 500ms".to_owned())
}

/// `--lock-wait`: like `--lock-timeout`, or `0` (give up at once when another run holds the lock).
pub fn parse_lock_wait(text: &str) -> Result<Duration, String> {
    if matches!(text.trim(), "0" | "0s" | "0ms" | "0m") {
        return Ok(Duration::ZERO);
    }
    parse_duration(text).ok_or_else(|| "not a duration between 0 and 1h, such as 30s, 500ms or 0".to_owned())
}

/// The duration `spec` (`name=duration,...`) gives `name`.
fn lookup(spec: &str, name: &str) -> Option<Duration> {
    spec.split(',').filter_map(|item| item.trim().split_once('=')).find(|(key, _)| *key == name).and_then(
        |(_, value)| match value.strip_suffix("ms") {
            Some(millis) => millis.parse().ok().map(Duration::from_millis),
            None => value.strip_suffix('s').unwrap_or(value).parse().ok().map(Duration::from_secs),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_durations_in_seconds_or_milliseconds() {
        let spec = "server-silence=250ms, commit=2s,settle=3";
        assert_eq!(lookup(spec, "server-silence"), Some(Duration::from_millis(250)));
        assert_eq!(lookup(spec, "commit"), Some(Duration::from_secs(2)));
        assert_eq!(lookup(spec, "settle"), Some(Duration::from_secs(3)));
        assert_eq!(lookup(spec, "connect"), None);
        assert_eq!(lookup("connect=soon", "connect"), None);
    }

    #[test]
    fn without_the_variable_the_production_value_holds() {
        if std::env::var_os(TEST_LIMITS_VAR).is_none() {
            assert_eq!(Limit::new("x", Duration::from_secs(7)).get(), Duration::from_secs(7));
        }
    }
}
