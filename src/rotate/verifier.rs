//! Password verifiers, made on the client and checked on the client.
//!
//! Making them here (as `psql \password` does) keeps the plaintext out of `ALTER ROLE`, where
//! statement logging, `pg_stat_statements` or an error report could record it. Checking a
//! password against a stored verifier lets crash recovery ask "which password does the database
//! hold?" without relying on a login, which `trust` lines in `pg_hba.conf` would always accept.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

/// The server's `password_encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// `scram-sha-256`, the default since PostgreSQL 14.
    ScramSha256,
    /// `md5`, still found on old clusters.
    Md5,
}

impl Encryption {
    /// Reads the value of `SHOW password_encryption`; `on` is the pre-10 spelling of md5.
    pub fn from_setting(value: &str) -> Option<Self> {
        match value {
            "scram-sha-256" => Some(Encryption::ScramSha256),
            "md5" | "on" => Some(Encryption::Md5),
            _ => None,
        }
    }

    /// The name PostgreSQL uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::ScramSha256 => "scram-sha-256",
            Encryption::Md5 => "md5",
        }
    }
}

/// The verifier PostgreSQL would store for `password` of role `user`.
pub fn make(password: &str, user: &str, encryption: Encryption) -> String {
    match encryption {
        Encryption::ScramSha256 => postgres_protocol::password::scram_sha_256(password.as_bytes()),
        Encryption::Md5 => postgres_protocol::password::md5(password.as_bytes(), user),
    }
}

/// Whether `stored` (a `pg_authid.rolpassword`) is the verifier of `password` for `user`.
///
/// SCRAM passwords are SASLprep'd first, as the server does when it stores a verifier and as
/// the client does when it logs in: an operator's old password with a character SASLprep maps
/// (U+00A0, U+FB01) must still be recognised. A password SASLprep rejects is used as is, as
/// the server does.
pub fn matches(stored: &str, password: &str, user: &str) -> bool {
    if let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") {
        let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
        return scram_matches(rest, &prepared).unwrap_or(false);
    }
    if stored.starts_with("md5") {
        return postgres_protocol::password::md5(password.as_bytes(), user) == stored;
    }
    false
}

/// `<iterations>:<salt>$<StoredKey>:<ServerKey>` against `password` (RFC 5802 §3).
fn scram_matches(rest: &str, password: &str) -> Option<bool> {
    let (params, keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored_key, _server_key) = keys.split_once(':')?;
    let iterations: u32 = iterations.parse().ok()?;
    let salt = STANDARD.decode(salt).ok()?;
    let stored_key = STANDARD.decode(stored_key).ok()?;

    let salted = pbkdf2_sha256_block(password.as_bytes(), &salt, iterations)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&salted).ok()?;
    mac.update(b"Client Key");
    let client_key = mac.finalize().into_bytes();
    Some(Sha256::digest(client_key)[..] == stored_key[..])
}

/// SCRAM's `Hi()`: the first (and only) 32-byte block of PBKDF2-HMAC-SHA-256.
fn pbkdf2_sha256_block(password: &[u8], salt: &[u8], iterations: u32) -> Option<[u8; 32]> {
    let key = Hmac::<Sha256>::new_from_slice(password).ok()?;
    let mut mac = key.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = key.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scram_verifier_matches_its_password_only() {
        let v = make("correct horse", "anon", Encryption::ScramSha256);
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(matches(&v, "correct horse", "anon"));
        assert!(!matches(&v, "correct horsf", "anon"));
    }

    #[test]
    fn an_md5_verifier_is_salted_by_the_role_name() {
        let v = make("pw", "anon", Encryption::Md5);
        // PostgreSQL's md5 verifier is md5(password || role name).
        assert_eq!(v, postgres_protocol::password::md5(b"pwanon", ""));
        assert!(matches(&v, "pw", "anon"));
        assert!(!matches(&v, "pw", "authenticator"));
    }

    #[test]
    fn scram_passwords_are_compared_after_saslprep_like_the_server() {
        // What the server stores for 'a\u{a0}b\u{fb01}c' is the verifier of 'a bfic'.
        let stored = make("a b\u{66}\u{69}c", "", Encryption::ScramSha256);
        assert!(matches(&stored, "a\u{a0}b\u{fb01}c", "anon"));
        assert!(!matches(&stored, "a b fic", "anon"));
    }

    #[test]
    fn garbage_never_matches() {
        assert!(!matches("SCRAM-SHA-256$x", "pw", "u"));
        assert!(!matches("", "", "u"));
        assert!(!matches("plaintext", "plaintext", "u"));
    }

    #[test]
    fn settings_are_read_like_postgres() {
        assert_eq!(Encryption::from_setting("on"), Some(Encryption::Md5));
        assert_eq!(Encryption::from_setting("scram-sha-256"), Some(Encryption::ScramSha256));
        assert_eq!(Encryption::from_setting("plain"), None);
    }
}
