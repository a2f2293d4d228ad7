//! Reading JSON Web Tokens and keys: a compact JWT parser and the JWK helpers that verify them.
//!
//! Shared by `check` (which audits the API keys) and `stack::demo` (which recognises published
//! demo tokens). Tokens are verified with the same key bytes and algorithm the services use.
//! Minting lives in `secrets`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// A compact JWT split into its parts; `header` and `claims` are JSON objects.
pub struct Jwt<'a> {
    /// The decoded header.
    pub header: Value,
    /// The decoded payload.
    pub claims: Value,
    /// `base64(header).base64(claims)`, the bytes the signature covers.
    signing_input: &'a str,
    /// The signature, base64url as in the token.
    pub signature: &'a str,
}

impl<'a> Jwt<'a> {
    /// `None` unless the text is three base64url parts whose first two are JSON objects.
    pub fn parse(token: &'a str) -> Option<Self> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header_b64, claims_b64) = signing_input.split_once('.')?;
        let json = |part: &str| -> Option<Value> {
            let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
            serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
        };
        Some(Jwt { header: json(header_b64)?, claims: json(claims_b64)?, signing_input, signature })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// Whether an HS256 signature by the UTF-8 bytes of `secret` (as the services use it, never
    /// base64-decoded) matches.
    pub fn verifies_hs256(&self, secret: &str) -> bool {
        self.verifies(&DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256)
    }

    /// Whether the signature verifies with `key` under `algorithm`.
    pub fn verifies(&self, key: &DecodingKey, algorithm: Algorithm) -> bool {
        jsonwebtoken::crypto::verify(self.signature, self.signing_input.as_bytes(), key, algorithm).unwrap_or(false)
    }
}

/// A JWK's `kty`.
pub fn kty(jwk: &Value) -> Option<&str> {
    jwk.get("kty").and_then(Value::as_str)
}

/// The EC public keys of `jwks` that a token with `kid` may be verified with.
pub fn ec_public_jwks<'v>(jwks: &'v [Value], kid: Option<&'v str>) -> impl Iterator<Item = &'v Value> {
    jwks.iter()
        .filter(|jwk| kty(jwk) == Some("EC"))
        .filter(move |jwk| kid.is_none() || jwk.get("kid").and_then(Value::as_str) == kid)
}

/// A JWK member that is base64url (padding tolerated).
pub fn b64url_member(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    let text = jwk.get(name)?.as_str()?;
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// The P-256 public key of an EC JWK (its `x` and `y`).
pub fn ec_public_key(jwk: &Value) -> Option<p256::PublicKey> {
    let mut sec1 = vec![0x04];
    sec1.extend(b64url_member(jwk, "x")?);
    sec1.extend(b64url_member(jwk, "y")?);
    p256::PublicKey::from_sec1_bytes(&sec1).ok()
}

/// The verification key of an EC JWK.
pub fn decoding_key_of(jwk: &Value) -> Option<DecodingKey> {
    let x = jwk.get("x")?.as_str()?;
    let y = jwk.get("y")?.as_str()?;
    DecodingKey::from_ec_components(x.trim_end_matches('='), y.trim_end_matches('=')).ok()
}

/// Token helpers for the unit tests of the modules that read tokens.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A compact HS256 JWT of `claims` (JSON text) signed with the UTF-8 bytes of `secret`.
    pub(crate) fn hs256(secret: &str, claims: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).expect("HS256 signs any key");
        format!("{input}.{sig}")
    }

    #[test]
    fn a_signed_token_verifies_with_its_secret_only() {
        let token = hs256("one-secret", r#"{"role":"anon"}"#);
        let jwt = Jwt::parse(&token).expect("parses");
        assert_eq!(jwt.alg(), Some("HS256"));
        assert!(jwt.verifies_hs256("one-secret"));
        assert!(!jwt.verifies_hs256("another-secret"));
        assert!(Jwt::parse("not.a-token").is_none());
    }
}
