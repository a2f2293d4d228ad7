//! The one grammar of PostgreSQL connection strings: where their password is, for reading it,
//! replacing it and redacting it alike.
//!
//! Three shapes carry a password:
//! - URLs, `postgres://` or `postgresql://`: in the userinfo (`user:password@`) and as a
//!   `password=` query parameter (which wins in libpq when both are there);
//! - JDBC URLs, `jdbc:postgresql://host/db?user=…&password=…`: as a query parameter;
//! - libpq key/value strings, `host=db user=postgres password='…'`.
//!
//! The userinfo of a URL ends at the last `@` before the query or fragment, and its password
//! is what follows the first `:`. URL passwords are percent-encoded, key/value ones quoted with
//! `'…'` and backslash escapes. A string replace of the old password would break when it also
//! appears elsewhere (as the user name, the database name), so each copy is located by this
//! grammar and only its bytes are replaced; every other byte is kept.
//!
//! Redaction uses the same grammar: [`redact`] for a string known to be a connection string,
//! [`redact_in_text`] for free text (an error message that quotes one), [`scrub`] for an
//! error about a connection string that did not parse.

use std::ops::Range;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters that must be percent-encoded inside the userinfo or a query value of a URL
/// (RFC 3986: everything but unreserved characters and sub-delimiters; `:`, `@`, `&`, `=`
/// and `+` too, since they delimit a userinfo or a query parameter).
const ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'=')
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

/// What stands in for a password in messages.
pub const REDACTED: &str = "<redacted>";

/// The shape of a connection string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `postgres://` or `postgresql://`.
    Url,
    /// `jdbc:postgresql://`.
    Jdbc,
}

/// How one copy of the password is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escaping {
    /// Percent-encoded (URL userinfo or query value).
    Percent,
    /// A key/value value, single-quoted or bare with backslash escapes.
    KeyValue { quoted: bool },
}

/// One place a connection string keeps its password: the byte range of the value as written
/// (inside the quotes, for a quoted key/value value).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    range: Range<usize>,
    escaping: Escaping,
}

/// A connection string, located.
#[derive(Debug)]
struct Located<'a> {
    text: &'a str,
    /// Every copy of the password, in order.
    slots: Vec<Slot>,
    /// For a URL whose userinfo has a user but no password: where `:password` would go.
    userinfo_user_end: Option<usize>,
    /// The user as written (range), from the userinfo, a `user` parameter or a `user=` key.
    user: Option<(Range<usize>, Escaping)>,
}

fn scheme_len(text: &str) -> Option<(Shape, usize)> {
    let lower = text.get(..18).unwrap_or(text).to_ascii_lowercase();
    for (prefix, shape) in
        [("postgresql://", Shape::Url), ("postgres://", Shape::Url), ("jdbc:postgresql://", Shape::Jdbc)]
    {
        if lower.starts_with(prefix) {
            return Some((shape, prefix.len()));
        }
    }
    None
}

/// Locates the pieces of a URL (plain or JDBC) whose authority starts at `start`.
fn locate_url(text: &str, start: usize) -> Located<'_> {
    let rest = &text[start..];
    let query_or_fragment = rest.find(['?', '#']).unwrap_or(rest.len());
    let mut located = Located { text, slots: Vec::new(), userinfo_user_end: None, user: None };
    if let Some(at) = rest[..query_or_fragment].rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.find(':') {
            Some(colon) => {
                located.user = Some((start..start + colon, Escaping::Percent));
                located.slots.push(Slot { range: start + colon + 1..start + at, escaping: Escaping::Percent });
            }
            None => {
                located.user = Some((start..start + at, Escaping::Percent));
                located.userinfo_user_end = Some(start + at);
            }
        }
    }
    if rest[query_or_fragment..].starts_with('?') {
        let query_start = start + query_or_fragment + 1;
        let query_end = text[query_start..].find('#').map_or(text.len(), |i| query_start + i);
        let mut offset = query_start;
        for param in text[query_start..query_end].split('&') {
            if let Some((key, _)) = param.split_once('=') {
                let value = offset + key.len() + 1..offset + param.len();
                match percent_decode_str(key).decode_utf8_lossy().as_ref() {
                    "password" => located.slots.push(Slot { range: value, escaping: Escaping::Percent }),
                    "user" if located.user.is_none() => located.user = Some((value, Escaping::Percent)),
                    _ => {}
                }
            }
            offset += param.len() + 1;
        }
    }
    located
}

/// The `key=value` pairs of a libpq key/value string: `(key, value range, quoted)`. `None`
/// when `text` is not one (a word without `=`, an unterminated quote, no pair at all). With
/// `lenient`, an unterminated quote runs to the end instead (for redacting broken input).
fn key_value_pairs(text: &str, lenient: bool) -> Option<Vec<(&str, Range<usize>, bool)>> {
    let bytes = text.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    let skip_blanks = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_blanks(i);
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let key = &text[key_start..i];
        i = skip_blanks(i);
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_blanks(i + 1);
        if bytes.get(i) == Some(&b'\'') {
            let value_start = i + 1;
            i = value_start;
            loop {
                match bytes.get(i) {
                    None if lenient => break,
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => break,
                    Some(_) => i += 1,
                }
            }
            let value_end = i.min(bytes.len());
            pairs.push((key, value_start..value_end, true));
            i = (i + 1).min(bytes.len());
        } else {
            let value_start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let value_end = i.min(bytes.len());
            pairs.push((key, value_start..value_end, false));
        }
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// Keywords that make a key/value string a connection string rather than any `a=b` text.
const CONNECTION_KEYS: [&str; 5] = ["host", "hostaddr", "port", "dbname", "user"];

fn locate_key_value(text: &str, lenient: bool) -> Option<Located<'_>> {
    let pairs = key_value_pairs(text, lenient)?;
    if !lenient && !pairs.iter().any(|(key, _, _)| CONNECTION_KEYS.contains(key)) {
        return None;
    }
    let mut located = Located { text, slots: Vec::new(), userinfo_user_end: None, user: None };
    for (key, range, quoted) in pairs {
        let escaping = Escaping::KeyValue { quoted };
        match key {
            "password" => located.slots.push(Slot { range, escaping }),
            "user" => located.user = Some((range, escaping)),
            _ => {}
        }
    }
    Some(located)
}

fn locate(text: &str) -> Option<Located<'_>> {
    match scheme_len(text) {
        Some((_, len)) => Some(locate_url(text, len)),
        None => locate_key_value(text, false),
    }
}

fn decode(written: &str, escaping: Escaping) -> String {
    match escaping {
        Escaping::Percent => percent_decode_str(written).decode_utf8_lossy().into_owned(),
        Escaping::KeyValue { .. } => {
            let mut out = String::with_capacity(written.len());
            let mut chars = written.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
    }
}

fn encode(password: &str, escaping: Escaping) -> String {
    match escaping {
        Escaping::Percent => utf8_percent_encode(password, ENCODE).to_string(),
        Escaping::KeyValue { quoted } => {
            let escaped = password.replace('\\', "\\\\").replace('\'', "\\'");
            let needs_quotes = password.is_empty() || password.contains(|c: char| c.is_ascii_whitespace());
            if quoted || !needs_quotes {
                escaped
            } else {
                // The slot holds a bare value; the quotes go around the new one.
                format!("'{escaped}'")
            }
        }
    }
}

/// Whether `value` is a PostgreSQL connection URL (`postgres://` or `postgresql://`).
pub fn is_postgres_url(value: &str) -> bool {
    matches!(scheme_len(value.trim_start()), Some((Shape::Url, _)))
}

/// The password of a connection string, decoded; the last copy wins, as in libpq (a query
/// parameter overrides the userinfo).
pub fn password(text: &str) -> Option<String> {
    let located = locate(text)?;
    let slot = located.slots.last()?;
    Some(decode(&text[slot.range.clone()], slot.escaping))
}

/// The value of query parameter `name` of a URL (`?sslmode=require`), decoded; the last one
/// wins, as in libpq. `None` for key/value strings and URLs without it.
pub fn query_param(text: &str, name: &str) -> Option<String> {
    scheme_len(text.trim_start())?;
    let query = text.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .rsplit('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy().into_owned())
}

/// The user of a connection string, decoded, if it names one.
pub fn user(text: &str) -> Option<String> {
    let located = locate(text)?;
    let (range, escaping) = located.user?;
    Some(decode(&text[range], escaping))
}

/// The servers a connection string names: `(host, port)` pairs, lower-cased hosts without
/// IPv6 brackets, `None` for a port it leaves to the default. A URL's authority may list
/// several (`h1:5432,h2:5433`), so may key/value `host` (with `hostaddr` when there is no
/// `host`) and `port`. A string naming no host names the local server (`localhost`). `None`
/// when `text` is not a connection string.
pub fn endpoints(text: &str) -> Option<Vec<(String, Option<u16>)>> {
    match scheme_len(text) {
        Some((_, start)) => Some(url_endpoints(&text[start..])),
        None => key_value_endpoints(text),
    }
}

fn url_endpoints(rest: &str) -> Vec<(String, Option<u16>)> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let hosts = authority.rfind('@').map_or(authority, |at| &authority[at + 1..]);
    let mut out: Vec<(String, Option<u16>)> = hosts
        .split(',')
        .map(|host_port| {
            let (host, port) = match host_port.strip_prefix('[') {
                Some(bracketed) => match bracketed.split_once(']') {
                    Some((host, rest)) => (host, rest.strip_prefix(':')),
                    None => (bracketed, None),
                },
                None => match host_port.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (host_port, None),
                },
            };
            let host = percent_decode_str(host).decode_utf8_lossy().to_ascii_lowercase();
            (host, port.and_then(|p| p.parse().ok()))
        })
        .collect();
    for endpoint in &mut out {
        if endpoint.0.is_empty() {
            endpoint.0 = "localhost".to_owned();
        }
    }
    out
}

fn key_value_endpoints(text: &str) -> Option<Vec<(String, Option<u16>)>> {
    let located = locate_key_value(text, false)?;
    let pairs = key_value_pairs(located.text, false)?;
    let value_of = |wanted: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _, _)| *key == wanted)
            .map(|(_, range, quoted)| decode(&text[range.clone()], Escaping::KeyValue { quoted: *quoted }))
    };
    let hosts = value_of("host").or_else(|| value_of("hostaddr")).unwrap_or_default();
    let ports = value_of("port").unwrap_or_default();
    let ports: Vec<Option<u16>> = ports.split(',').map(|p| p.trim().parse().ok()).collect();
    Some(
        hosts
            .split(',')
            .enumerate()
            .map(|(i, host)| {
                let host = host.trim().to_ascii_lowercase();
                let host = if host.is_empty() { "localhost".to_owned() } else { host };
                // libpq: one port for every host, or one per host.
                let port = if ports.len() == 1 { ports[0] } else { ports.get(i).copied().flatten() };
                (host, port)
            })
            .collect(),
    )
}

/// `text` with every copy of its password set to `new_password` (encoded as each copy is);
/// every other byte kept.
///
/// A URL with a user but no password gets one in its userinfo; a string with neither a
/// password nor a user to give one is `None`: there is nobody whose password it could carry.
pub fn with_password(text: &str, new_password: &str) -> Option<String> {
    let located = locate(text)?;
    if located.slots.is_empty() {
        let at = located.userinfo_user_end?;
        return Some(format!("{}:{}{}", &text[..at], encode(new_password, Escaping::Percent), &text[at..]));
    }
    Some(replace_slots(&located, |slot| encode(new_password, slot.escaping)))
}

fn replace_slots(located: &Located<'_>, mut replacement: impl FnMut(&Slot) -> String) -> String {
    let mut out = String::with_capacity(located.text.len());
    let mut copied = 0;
    for slot in &located.slots {
        out.push_str(&located.text[copied..slot.range.start]);
        out.push_str(&replacement(slot));
        copied = slot.range.end;
    }
    out.push_str(&located.text[copied..]);
    out
}

/// A connection string for messages: every copy of its password replaced by `<redacted>`.
/// A string that is not a connection string is redacted as free text.
pub fn redact(text: &str) -> String {
    let located = match scheme_len(text) {
        Some((_, len)) => Some(locate_url(text, len)),
        None => locate_key_value(text, true),
    };
    match located {
        Some(located) if !located.slots.is_empty() => replace_slots(&located, |_| REDACTED.to_owned()),
        _ => redact_in_text(text),
    }
}

/// Free text (an error message, say) with the password of every connection string in it
/// redacted: the userinfo password of each URL (the URL runs to the next blank or quote) and
/// every `password=` value, quoted or not.
pub fn redact_in_text(text: &str) -> String {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let end =
            text[start..].find(|c: char| c.is_whitespace() || "\"'<>`".contains(c)).map_or(text.len(), |i| start + i);
        let located = locate_url(&text[..end], start);
        ranges.extend(located.slots.into_iter().map(|s| s.range));
        search = end;
    }
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut search = 0;
    while let Some(found) = lower[search..].find("password") {
        let mut i = search + found + "password".len();
        search = i;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let (value_start, quoted) = if bytes.get(i) == Some(&b'\'') { (i + 1, true) } else { (i, false) };
        let mut j = value_start;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 1,
                b'\'' if quoted => break,
                b if !quoted && (b.is_ascii_whitespace() || b"&#\"'".contains(&b)) => break,
                _ => {}
            }
            j += 1;
        }
        ranges.push(value_start..j.min(bytes.len()));
    }
    redact_ranges(text, ranges)
}

fn redact_ranges(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for range in ranges {
        if range.end <= copied {
            continue;
        }
        let start = range.start.max(copied);
        // Ranges come from ASCII delimiters, so they are char boundaries.
        out.push_str(text.get(copied..start).unwrap_or(""));
        out.push_str(REDACTED);
        copied = range.end;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

/// A parser's message about `connection_string` (which did not parse), without its password:
/// the connection strings quoted in it are redacted, and so is every copy of the password as
/// this grammar finds it (decoded and as written), wherever the parser quoted it.
pub fn scrub(message: &str, connection_string: &str) -> String {
    let mut out = redact_in_text(message);
    let located = match scheme_len(connection_string) {
        Some((_, len)) => Some(locate_url(connection_string, len)),
        None => locate_key_value(connection_string, true),
    };
    for slot in located.map(|l| l.slots).unwrap_or_default() {
        let written = &connection_string[slot.range.clone()];
        for copy in [written.to_owned(), decode(written, slot.escaping)] {
            // Very short passwords are left to the structural redaction above: replacing every
            // "a" of a message would make it unreadable without protecting anything.
            if copy.chars().count() >= 4 {
                out = out.replace(&copy, REDACTED);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_password_of_common_shapes() {
        assert_eq!(password("postgresql://supabase_admin:pw@db:5432/postgres").as_deref(), Some("pw"));
        assert_eq!(password("postgres://u:p%40ss%2Fw@h/db?sslmode=disable").as_deref(), Some("p@ss/w"));
        assert_eq!(
            query_param("postgres://u@h/db?a=1&sslmode=verify%2Dfull", "sslmode").as_deref(),
            Some("verify-full")
        );
        assert_eq!(query_param("host=h sslmode=require", "sslmode"), None);
        assert_eq!(password("postgresql://u@h/db"), None);
        assert_eq!(password("postgresql://h:5432/db"), None);
        assert_eq!(password("not a url"), None);
    }

    #[test]
    fn finds_query_jdbc_and_key_value_passwords() {
        assert_eq!(password("postgresql://h/db?user=u&password=a%26b").as_deref(), Some("a&b"));
        assert_eq!(password("postgresql://u:old@h/db?password=new").as_deref(), Some("new"), "the parameter wins");
        assert_eq!(
            password("jdbc:postgresql://db:5432/postgres?user=postgres&password=pw&ssl=false").as_deref(),
            Some("pw")
        );
        assert_eq!(password("host=db user=postgres password=pw dbname=postgres").as_deref(), Some("pw"));
        assert_eq!(password("host = db password = 'it\\'s a pw'").as_deref(), Some("it's a pw"));
        assert_eq!(password("password=pw"), None, "a lone password= is not a connection string");
        assert_eq!(password("a b c"), None);
    }

    #[test]
    fn the_last_at_before_the_query_ends_the_userinfo() {
        assert_eq!(password("postgresql://u:a@b@h/db").as_deref(), Some("a@b"));
        assert_eq!(password("postgresql://u:pw@h/db?options=x@y").as_deref(), Some("pw"));
        assert_eq!(password("postgresql://u:hunter2/xyz@h:notaport/p").as_deref(), Some("hunter2/xyz"));
    }

    #[test]
    fn replaces_only_the_password_even_when_it_appears_elsewhere() {
        let url = "postgresql://pw:pw@pw:5432/pw?application_name=pw";
        assert_eq!(with_password(url, "new").as_deref(), Some("postgresql://pw:new@pw:5432/pw?application_name=pw"));
        let kv = "host=pw user=pw password=pw dbname=pw";
        assert_eq!(with_password(kv, "new").as_deref(), Some("host=pw user=pw password=new dbname=pw"));
    }

    #[test]
    fn replaces_every_copy_in_its_own_encoding() {
        assert_eq!(
            with_password("jdbc:postgresql://db/p?user=u&password=old&ssl=false", "a&b").as_deref(),
            Some("jdbc:postgresql://db/p?user=u&password=a%26b&ssl=false")
        );
        assert_eq!(
            with_password("postgresql://u:old@h/db?password=old", "n").as_deref(),
            Some("postgresql://u:n@h/db?password=n")
        );
        assert_eq!(with_password("host=h password='o ld'", "it's").as_deref(), Some("host=h password='it\\'s'"));
        assert_eq!(with_password("host=h password=old", "a b").as_deref(), Some("host=h password='a b'"));
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
        assert_eq!(password("nats://nats:pmoves@nats:4222"), None, "not a postgres connection string");
    }

    #[test]
    fn endpoints_of_every_shape() {
        let one = |h: &str, p: Option<u16>| vec![(h.to_owned(), p)];
        assert_eq!(endpoints("postgresql://u:p@DB:5433/x").unwrap(), one("db", Some(5433)));
        assert_eq!(endpoints("postgresql://u:p@db/x").unwrap(), one("db", None));
        assert_eq!(endpoints("postgresql://u:a@b@[::1]:6543/x?host=y").unwrap(), one("::1", Some(6543)));
        assert_eq!(endpoints("postgresql:///x").unwrap(), one("localhost", None));
        assert_eq!(
            endpoints("postgres://u@h1:1,h2/x").unwrap(),
            vec![("h1".to_owned(), Some(1)), ("h2".to_owned(), None)]
        );
        assert_eq!(endpoints("jdbc:postgresql://db:5432/p?user=u").unwrap(), one("db", Some(5432)));
        assert_eq!(endpoints("host=supabase-db port=5432 user=u").unwrap(), one("supabase-db", Some(5432)));
        assert_eq!(endpoints("hostaddr=10.0.0.2 user=u").unwrap(), one("10.0.0.2", None));
        assert_eq!(endpoints("user=u dbname=x").unwrap(), one("localhost", None));
        assert_eq!(endpoints("not a connection string"), None);
    }

    #[test]
    fn user_is_decoded() {
        assert_eq!(user("postgres://supa%2Bbase:pw@h/db").as_deref(), Some("supa+base"));
        assert_eq!(user("host=h user='a b'").as_deref(), Some("a b"));
        assert_eq!(user("jdbc:postgresql://h/db?user=u&password=p").as_deref(), Some("u"));
    }

    #[test]
    fn redaction_uses_the_same_grammar() {
        let leaked = |out: &str, secret: &str| assert!(!out.contains(secret), "{out}");
        leaked(&redact("postgresql://u:hunter2/xyz@h:notaport/p"), "hunter2");
        leaked(&redact("host=h port=notaport password=kvsecret99"), "kvsecret99");
        leaked(&redact("host=h password='kv secret98' port=x"), "secret98");
        leaked(&redact("host=h password='unterminated secret97"), "secret97");
        leaked(&redact("postgresql://u@h/p?password=qsecret96&port=x"), "qsecret96");
        assert_eq!(redact("postgresql://u:pw@h/db"), "postgresql://u:<redacted>@h/db");
    }

    #[test]
    fn passwords_in_free_text_are_redacted() {
        let text = "failed for postgresql://u:s3cr%40t@db:5432/x and postgres://a@b/c, \
                    also 'postgresql://u:hunter2/xyz@h:1/p' and host=h password=kvpw99 and ?user=u&password=qpw98";
        let out = redact_in_text(text);
        for secret in ["s3cr", "hunter2", "kvpw99", "qpw98"] {
            assert!(!out.contains(secret), "{secret}: {out}");
        }
        assert!(out.contains("postgresql://u:<redacted>@db:5432/x"), "{out}");
        assert!(out.contains("postgres://a@b/c"), "{out}");
        assert_eq!(redact_in_text("password authentication failed"), "password authentication failed");
    }

    #[test]
    fn scrub_removes_the_password_wherever_a_parser_quoted_it() {
        let out = scrub("invalid port near hunter2%2Fxyz and hunter2/xyz", "postgresql://u:hunter2%2Fxyz@h:x/p");
        assert!(!out.contains("hunter2"), "{out}");
        let out = scrub("unexpected 'kv secret98'", "host=h password='kv secret98' port=x");
        assert!(!out.contains("secret98"), "{out}");
    }
}
