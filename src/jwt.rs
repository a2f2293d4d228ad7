//! Reading JSON Web Tokens and keys: a compact JWT parser and the JWK helpers that verify them.
//!
//! Shared by `check` (which audits the API keys), `stack::demo` (which recognises published
//! demo tokens), `keyring` (the signing keys) and `secrets`: every JWK member is read through
//! one typed [`Jwk`]. Tokens are verified with the same key bytes and algorithm the services
//! use. Minting lives in `secrets`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

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

/// One JSON Web Key, read through its typed members. Members this tool does not interpret
/// (`use`, `ext`, an RSA key's `n`/`e`, anything a future service adds) are kept in `other`, so
/// a key written back is the key that was read. `Debug` shows no secret member.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `oct`, `RSA`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kty: Option<String>,
    /// Key id, matched against a token header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm the key is used with (`ES256`, `HS256`, `RS256`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Operations (`sign`, `verify`); Auth signs with the one key whose list has `sign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// Curve of an EC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC public point, x coordinate (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC public point, y coordinate (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Private part (EC scalar, RSA private exponent): secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// Symmetric key bytes of an `oct` key (base64url): secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// Every other member, kept as it was.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key_ops", &self.key_ops)
            .field("crv", &self.crv)
            .field("private", &self.has_private_part())
            .finish_non_exhaustive()
    }
}

/// The members of an RSA private key besides `d` (RFC 7518 §6.3.2).
const RSA_PRIVATE_MEMBERS: [&str; 6] = ["p", "q", "dp", "dq", "qi", "oth"];

impl Jwk {
    /// Reads one JWK; `None` when `value` is not an object or a typed member has the wrong type.
    pub fn from_value(value: &Value) -> Option<Jwk> {
        value.is_object().then(|| serde_json::from_value(value.clone()).ok()).flatten()
    }

    /// The JWK as a JSON object (members in sorted order, as `serde_json` keeps them).
    pub fn to_value(&self) -> Value {
        // Serialising strings, lists and a map of JSON values cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether this is an EC key.
    pub fn is_ec(&self) -> bool {
        self.kty.as_deref() == Some("EC")
    }

    /// Whether this is a symmetric (`oct`) key.
    pub fn is_oct(&self) -> bool {
        self.kty.as_deref() == Some("oct")
    }

    /// The key id, or `""` when the key has none.
    pub fn kid(&self) -> &str {
        #[cfg(test)]
        KIDS_READ.with(|count| count.set(count.get() + 1));
        self.kid.as_deref().unwrap_or_default()
    }

    /// Whether `key_ops` contains `sign`: the key Auth signs with.
    pub fn signs(&self) -> bool {
        self.key_ops.as_ref().is_some_and(|ops| ops.iter().any(|op| op == "sign"))
    }

    /// Whether the key carries a private part of an asymmetric key (`d`, or RSA's other private
    /// members).
    pub fn has_private_part(&self) -> bool {
        self.d.is_some() || RSA_PRIVATE_MEMBERS.iter().any(|m| self.other.contains_key(*m))
    }

    /// The public form: every private member dropped, `key_ops` verify only (as Auth publishes
    /// it and `JWT_JWKS` carries it).
    pub fn public_form(&self) -> Jwk {
        let mut public = self.clone();
        public.d = None;
        for member in RSA_PRIVATE_MEMBERS {
            public.other.remove(member);
        }
        public.key_ops = Some(vec!["verify".to_owned()]);
        public
    }

    /// A base64url member's bytes (padding tolerated).
    fn bytes(text: Option<&String>) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(text?.trim_end_matches('=')).ok()
    }

    /// The bytes of an `oct` key's `k`.
    pub fn oct_bytes(&self) -> Option<Zeroizing<Vec<u8>>> {
        Self::bytes(self.k.as_ref()).map(Zeroizing::new)
    }

    /// The P-256 public key of an EC JWK: `crv` is `P-256` and `x`/`y` are a point on it.
    pub fn p256_public_key(&self) -> Option<p256::PublicKey> {
        if self.crv.as_deref() != Some("P-256") {
            return None;
        }
        let mut sec1 = vec![0x04];
        sec1.extend(Self::bytes(self.x.as_ref())?);
        sec1.extend(Self::bytes(self.y.as_ref())?);
        p256::PublicKey::from_sec1_bytes(&sec1).ok()
    }

    /// The P-256 private key of an EC JWK's `d` (whatever its other members say).
    pub fn p256_secret_key(&self) -> Option<p256::SecretKey> {
        let d = Zeroizing::new(Self::bytes(self.d.as_ref())?);
        p256::SecretKey::from_slice(&d).ok()
    }

    /// The verification key of a P-256 EC JWK.
    pub fn decoding_key(&self) -> Option<DecodingKey> {
        self.p256_public_key()?;
        let (x, y) = (self.x.as_deref()?, self.y.as_deref()?);
        DecodingKey::from_ec_components(x.trim_end_matches('='), y.trim_end_matches('=')).ok()
    }
}

#[cfg(test)]
thread_local! {
    /// How many JWKs had their `kid` read on this thread: the work of matching keys by kid, which
    /// the key ring's tests bound (linear, never a scan per key).
    pub(crate) static KIDS_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The EC keys of `jwks` that a token with `kid` may be verified with.
pub fn ec_keys_for<'v>(jwks: &'v [Jwk], kid: Option<&'v str>) -> impl Iterator<Item = &'v Jwk> {
    jwks.iter().filter(|jwk| jwk.is_ec()).filter(move |jwk| kid.is_none() || jwk.kid.as_deref() == kid)
}

/// `JWT_KEYS`: a JSON array of JWKs, as Auth reads it; `None` when it is not one.
pub fn parse_jwk_array(text: &str) -> Option<Vec<Jwk>> {
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Array(list) => list.iter().map(Jwk::from_value).collect(),
        _ => None,
    }
}

/// `JWT_JWKS`: `{"keys": [...]}` with its other members; `None` when it is not one.
pub fn parse_jwk_set(text: &str) -> Option<(Vec<Jwk>, Map<String, Value>)> {
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(mut map) => match map.remove("keys")? {
            Value::Array(list) => Some((list.iter().map(Jwk::from_value).collect::<Option<Vec<_>>>()?, map)),
            _ => None,
        },
        _ => None,
    }
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
