//! The values upstream published as demos: anyone can read them, so no real stack may run on
//! one. `check` flags them anywhere in a file and `generate-keys --env-file` replaces them.

use serde_json::Value;

use super::keys::{self, Demo};
use crate::jwt::Jwt;

/// Published values that belong to no key of the catalogue (an older name of a Logflare key).
/// The catalogue's own are on each key ([`KeySpec::demo`](super::KeySpec::demo)).
const OTHER_DEMO_VALUES: &[Demo] =
    &[Demo { value: "your-super-secret-and-long-logflare-key", origin: "upstream's demo LOGFLARE_API_KEY" }];

/// Upstream's placeholders share this prefix; none of them is a real secret.
const DEMO_PREFIX: &str = "your-super-secret";

/// Every published value: the catalogue's, then the others.
fn demo_values() -> impl Iterator<Item = &'static Demo> {
    keys::KEYS.iter().flat_map(|spec| spec.demo).chain(OTHER_DEMO_VALUES)
}

/// The HMAC keys of the published demo tokens, the published `JWT_SECRET`s: any token they
/// verify was signed by a key everyone has, so anyone can mint a `service_role` token for that
/// stack.
fn demo_jwt_secrets() -> impl Iterator<Item = &'static str> {
    keys::key("JWT_SECRET").map(|spec| spec.demo).unwrap_or_default().iter().map(|demo| demo.value)
}

/// Signatures of the published demo tokens (upstream's ANON_KEY and SERVICE_ROLE_KEY, then the
/// Supabase CLI's), which identify them whatever secret the file pairs them with.
const DEMO_TOKEN_SIGNATURES: &[&str] = &[
    "dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE",
    "DaYlNEoUrrEn2Ig7tqibS-PHK5vgusbcbo7X36XVt4Q",
    "CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
    "EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
];

/// Whether `value` was published as a demo secret; `generate-keys --env-file` replaces those.
pub fn is_demo_value(value: &str) -> bool {
    demo_origin(value).is_some()
}

/// Where `value` was published, when it is a known demo value (named in messages instead of
/// the value).
pub fn demo_origin(value: &str) -> Option<&'static str> {
    if let Some(demo) = demo_values().find(|demo| demo.value == value) {
        return Some(demo.origin);
    }
    if value.starts_with(DEMO_PREFIX) {
        return Some("one of upstream's `your-super-secret-…` placeholders");
    }
    is_demo_jwt(value).then_some("a demo token signed by a published JWT secret")
}

/// Whether `value` is a JWT from a demo set: a published signature, the demo issuer, or a
/// signature that a published secret verifies.
fn is_demo_jwt(value: &str) -> bool {
    let Some(jwt) = Jwt::parse(value) else { return false };
    DEMO_TOKEN_SIGNATURES.contains(&jwt.signature)
        || jwt.claims.get("iss").and_then(Value::as_str) == Some("supabase-demo")
        || demo_jwt_secrets().any(|secret| jwt.verifies_hs256(secret))
}

/// Credentials a project publishes as the defaults of a service it ships, which the generated
/// `.env` keeps in a URL on purpose (the service is configured with them): `(scheme, user,
/// password, whose)`. PMOVES.AI's NATS server accepts `nats` / `pmoves` (SPEC §1's `NATS_URL`).
const PUBLISHED_URL_CREDENTIALS: &[(&str, &str, &str, &str)] =
    &[("nats", "nats", "pmoves", "PMOVES.AI's published default NATS credentials")];

/// Whose published default credentials the URL `value` carries (named in messages instead of
/// the URL), if it carries any: `scheme://user:password@host…`, whatever the host.
pub fn published_url_credential(value: &str) -> Option<&'static str> {
    let (scheme, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    PUBLISHED_URL_CREDENTIALS
        .iter()
        .find(|(s, u, p, _)| scheme.eq_ignore_ascii_case(s) && user == *u && password == *p)
        .map(|(_, _, _, whose)| *whose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::testing::hs256;

    #[test]
    fn upstream_demo_tokens_are_recognised() {
        let anon = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJhbm9uIiwKICAgICJpc3MiOiAic3VwYWJhc2UtZGVtbyIsCiAgICAiaWF0IjogMTY0MTc2OTIwMCwKICAgICJleHAiOiAxNzk5NTM1NjAwCn0.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE";
        assert!(is_demo_jwt(anon));
        let forged = hs256(
            "your-super-secret-jwt-token-with-at-least-32-characters-long",
            r#"{"role":"service_role","iss":"supabase","exp":9999999999}"#,
        );
        assert!(is_demo_jwt(&forged));
        assert!(!is_demo_jwt(&hs256("a-real-secret-of-forty-characters-000000", r#"{"role":"anon"}"#)));
    }

    #[test]
    fn every_published_value_is_recognised_with_its_origin() {
        assert_eq!(demo_values().count(), 15);
        for demo in demo_values() {
            assert_eq!(demo_origin(demo.value), Some(demo.origin), "{}", demo.origin);
        }
        assert_eq!(demo_jwt_secrets().count(), 2);
        assert!(is_demo_value("your-super-secret-anything"));
        assert!(!is_demo_value("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn the_default_nats_url_carries_published_credentials_and_an_own_password_does_not() {
        let nats = crate::stack::settings::defaults().find(|(k, _)| *k == "NATS_URL").map(|(_, v)| v);
        assert!(published_url_credential(nats.expect("NATS_URL is a default")).is_some());
        assert!(published_url_credential("NATS://nats:pmoves@10.0.0.5:4222/").is_some());
        for own in
            ["nats://nats:s3cr3t-minted@nats:4222", "nats://nats:4222", "nats://pmoves@nats", "http://nats:pmoves@x"]
        {
            assert_eq!(published_url_credential(own), None, "{own}");
        }
    }
}
