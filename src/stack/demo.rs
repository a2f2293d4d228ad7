//! The values upstream published as demos: anyone can read them, so no real stack may run on
//! one. `check` flags them anywhere in a file and `generate-keys --env-file` replaces them.

use serde_json::Value;

use crate::jwt::Jwt;

/// Values published in upstream `supabase/docker/.env.example` (across its versions), in the
/// compose file it ships, and in the Supabase CLI's local stack. Anyone can read them, so a
/// stack running on one is open. Each is paired with where it was published (named in the
/// message instead of the value).
const DEMO_VALUES: &[(&str, &str)] = &[
    ("your-super-secret-and-long-postgres-password", "upstream's demo POSTGRES_PASSWORD"),
    ("your-super-secret-jwt-token-with-at-least-32-characters-long", "upstream's demo JWT_SECRET"),
    ("super-secret-jwt-token-with-at-least-32-characters-long", "the Supabase CLI's local JWT secret"),
    ("this_password_is_insecure_and_should_be_updated", "upstream's demo DASHBOARD_PASSWORD"),
    ("UpNVntn3cDxHJpq99YMc1T1AQgQpc8kfYTuRgBiYa15BLrx8etQoXz3gZv1/u2oq", "upstream's demo SECRET_KEY_BASE"),
    ("your-encryption-key-32-chars-min", "upstream's demo VAULT_ENC_KEY / PG_META_CRYPTO_KEY"),
    ("your-32-character-encryption-key", "upstream's demo VAULT_ENC_KEY"),
    ("your-super-secret-and-long-logflare-key", "upstream's demo LOGFLARE_API_KEY"),
    ("your-super-secret-and-long-logflare-key-public", "upstream's demo LOGFLARE_PUBLIC_ACCESS_TOKEN"),
    ("your-super-secret-and-long-logflare-key-private", "upstream's demo LOGFLARE_PRIVATE_ACCESS_TOKEN"),
    ("625729a08b95bf1b7ff351a663f3a23c", "upstream's demo S3_PROTOCOL_ACCESS_KEY_ID"),
    (
        "850181e4652dd023b7a98c58ae0d2d34bd487ee0cc3254aed6eda37307425907",
        "upstream's demo S3_PROTOCOL_ACCESS_KEY_SECRET",
    ),
    ("secret1234", "upstream's demo MINIO_ROOT_PASSWORD"),
    ("supabaserealtime", "the REALTIME_DB_ENC_KEY upstream's docker-compose.yml hard-codes"),
];

/// Upstream's placeholders share this prefix; none of them is a real secret.
const DEMO_PREFIX: &str = "your-super-secret";

/// The HMAC keys of the published demo tokens: any token they verify was signed by a key
/// everyone has, so anyone can mint a `service_role` token for that stack.
const DEMO_JWT_SECRETS: &[&str] = &[
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "super-secret-jwt-token-with-at-least-32-characters-long",
];

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
    if let Some((_, origin)) = DEMO_VALUES.iter().find(|(demo, _)| *demo == value) {
        return Some(origin);
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
        || DEMO_JWT_SECRETS.iter().any(|secret| jwt.verifies_hs256(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::Algorithm;

    fn hs256(secret: &str, claims: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    }

    #[test]
    fn upstream_demo_tokens_are_recognised() {
        let anon = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyAgCiAgICAicm9sZSI6ICJhbm9uIiwKICAgICJpc3MiOiAic3VwYWJhc2UtZGVtbyIsCiAgICAiaWF0IjogMTY0MTc2OTIwMCwKICAgICJleHAiOiAxNzk5NTM1NjAwCn0.dc_X5iR_VP_qT0zsiyj_I_OZ2T9FtRU2BBNWN8Bu4GE";
        assert!(is_demo_jwt(anon));
        let forged = hs256(DEMO_JWT_SECRETS[0], r#"{"role":"service_role","iss":"supabase","exp":9999999999}"#);
        assert!(is_demo_jwt(&forged));
        assert!(!is_demo_jwt(&hs256("a-real-secret-of-forty-characters-000000", r#"{"role":"anon"}"#)));
    }
}
