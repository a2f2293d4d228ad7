//! [`Secret`], the wrapper every secret value travels in, at the bottom of the crate so that
//! every layer (the connector included) can hold a value without seeing how values are made.

use std::fmt;

use zeroize::Zeroizing;

/// A secret value: redacted in `Debug`, no `Display`, zeroed when dropped.
///
/// Reading it takes an explicit [`Secret::expose`], so every place a value leaves the program
/// (stdout, a file, a database statement) is visible in the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value that is already secret (read from a `.env`, for instance).
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The plain value. Call only where the value must leave the process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2-hunter2".into());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }
}
