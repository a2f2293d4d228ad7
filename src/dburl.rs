//! The password component of connection URLs, found and replaced without touching the rest.
//!
//! A string replace of the old password breaks when the password also appears elsewhere in
//! the URL (as the user name, in the database name). Instead the authority is parsed: the
//! userinfo ends at the last `@` before the query or fragment, and the password is what follows
//! the first `:` of the userinfo. The password is compared percent-decoded and written
//! percent-encoded, so every other byte of the URL (user, host, port, path, query) is kept.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters that must be percent-encoded inside the userinfo of a URL (RFC 3986: everything
/// but unreserved characters and sub-delimiters; `:` and `@` too, since they delimit it).
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The pieces of a URL around its password.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    /// Everything up to and including `user` (`postgresql://user`).
    head: &'a str,
    /// The password as written (still percent-encoded), if the userinfo has a `:`.
    password: Option<&'a str>,
    /// `@` and everything after it.
    tail: &'a str,
}

/// Whether `value` is a PostgreSQL connection URL.
pub fn is_postgres_url(value: &str) -> bool {
    let lower = value.trim_start().get(..13).unwrap_or("").to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn split(url: &str) -> Option<Parts<'_>> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let end_of_candidates = rest.find(['?', '#']).unwrap_or(rest.len());
    let at = rest[..end_of_candidates].rfind('@')?;
    let userinfo = &rest[..at];
    let (user_len, password) = match userinfo.find(':') {
        Some(colon) => (colon, Some(&userinfo[colon + 1..])),
        None => (userinfo.len(), None),
    };
    Some(Parts { head: &url[..authority_start + user_len], password, tail: &rest[at..] })
}

/// The percent-decoded password of `url`, if it has one.
pub fn password(url: &str) -> Option<String> {
    let encoded = split(url)?.password?;
    Some(percent_decode_str(encoded).decode_utf8_lossy().into_owned())
}

/// The user name of `url`, percent-decoded, if it has userinfo.
pub fn user(url: &str) -> Option<String> {
    let parts = split(url)?;
    let user = &parts.head[url.find("://")? + 3..];
    Some(percent_decode_str(user).decode_utf8_lossy().into_owned())
}

/// `url` with its password set to `new_password` (percent-encoded); every other byte kept.
///
/// A URL with a user but no password gets one; a URL without userinfo is returned as `None`,
/// because there is no user whose password it could carry.
pub fn with_password(url: &str, new_password: &str) -> Option<String> {
    let parts = split(url)?;
    let encoded = utf8_percent_encode(new_password, USERINFO).to_string();
    Some(format!("{}:{}{}", parts.head, encoded, parts.tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_password_of_common_shapes() {
        assert_eq!(password("postgresql://supabase_admin:pw@db:5432/postgres").as_deref(), Some("pw"));
        assert_eq!(password("postgres://u:p%40ss%2Fw@h/db?sslmode=disable").as_deref(), Some("p@ss/w"));
        assert_eq!(password("postgresql://u@h/db"), None);
        assert_eq!(password("postgresql://h:5432/db"), None);
        assert_eq!(password("not a url"), None);
    }

    #[test]
    fn the_last_at_before_the_query_ends_the_userinfo() {
        assert_eq!(password("postgresql://u:a@b@h/db").as_deref(), Some("a@b"));
        assert_eq!(password("postgresql://u:pw@h/db?options=x@y").as_deref(), Some("pw"));
    }

    #[test]
    fn replaces_only_the_password_even_when_it_appears_elsewhere() {
        let url = "postgresql://pw:pw@pw:5432/pw?application_name=pw";
        assert_eq!(with_password(url, "new").as_deref(), Some("postgresql://pw:new@pw:5432/pw?application_name=pw"));
    }

    #[test]
    fn percent_encodes_the_new_password() {
        let out = with_password("postgres://u:old@h/db", "a@b:c/d%").unwrap();
        assert_eq!(out, "postgres://u:a%40b%3Ac%2Fd%25@h/db");
        assert_eq!(password(&out).as_deref(), Some("a@b:c/d%"));
    }

    #[test]
    fn adds_a_password_to_a_user_without_one_but_not_to_a_bare_host() {
        assert_eq!(with_password("postgres://u@h/db", "n").as_deref(), Some("postgres://u:n@h/db"));
        assert_eq!(with_password("postgres://h/db", "n"), None);
    }

    #[test]
    fn recognises_postgres_schemes_only() {
        assert!(is_postgres_url("postgresql://a@b/c"));
        assert!(is_postgres_url("POSTGRES://a@b/c"));
        assert!(!is_postgres_url("nats://nats:pmoves@nats:4222"));
        assert!(!is_postgres_url("http://x"));
    }

    #[test]
    fn user_is_decoded() {
        assert_eq!(user("postgres://supa%2Bbase:pw@h/db").as_deref(), Some("supa+base"));
    }
}
