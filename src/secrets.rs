//! The one place secret material is made.
//!
//! Every random value comes from the operating system's CSPRNG (`OsRng`), every JWT is signed
//! here, and every value leaves this module wrapped in [`Secret`], whose `Debug` is redacted and
//! whose memory is wiped on drop. *Which* values a stack needs, and the recipe of each, is the
//! key catalogue of [`crate::stack::keys`]; this module only knows how to make them.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Five years of 365 days, the lifetime upstream gives its API keys.
pub const JWT_LIFETIME_SECS: u64 = 5 * 365 * 24 * 3600;

/// Upstream's project reference for self-hosted stacks; part of the opaque keys' checksum.
const SELF_HOSTED_PROJECT_REF: &str = "supabase-self-hosted";

/// How a value is made; the catalogue of `stack::keys` says which key gets which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// `n` random bytes as lowercase hex (`2n` characters).
    Hex(usize),
    /// `n` random bytes as standard, padded base64.
    Base64(usize),
    /// 16 random bytes as hex with at least one letter (Kong rejects digits-only passwords).
    DashboardPassword,
    /// HS256 JWT for the given role, signed with `JWT_SECRET`.
    Hs256Jwt(&'static str),
    /// ES256 JWT for the given role, signed with the EC key of `JWT_KEYS`.
    Es256Jwt(&'static str),
    /// JSON array: private EC JWK plus the `oct` JWK of `JWT_SECRET`.
    JwtKeys,
    /// `{"keys":[...]}` with the public EC JWK and the `oct` JWK.
    JwtJwks,
    /// Opaque API key with the given prefix and upstream's checksum suffix.
    Opaque(&'static str),
}

impl Recipe {
    /// The role an API key made by this recipe stands for (`anon`, `service_role`).
    pub fn api_key_role(self) -> Option<&'static str> {
        match self {
            Recipe::Hs256Jwt(role) | Recipe::Es256Jwt(role) => Some(role),
            _ => None,
        }
    }
}

/// Fills `buf` from the OS CSPRNG.
fn fill_random(buf: &mut [u8]) {
    OsRng.fill_bytes(buf);
}

/// `n` random bytes, wiped when dropped.
fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    fill_random(&mut bytes);
    bytes
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Secret {
    Secret::new(hex::encode(random_bytes(n).as_slice()))
}

/// `n` random bytes as standard, padded base64.
pub fn random_base64(n: usize) -> Secret {
    Secret::new(STANDARD.encode(random_bytes(n).as_slice()))
}

/// A dashboard password from 16 random bytes.
pub fn dashboard_password() -> Secret {
    let bytes = random_bytes(16);
    dashboard_password_from(&bytes)
}

/// How many random bytes a recipe made of random bytes alone takes (`None` for the others).
pub fn random_byte_count(recipe: Recipe) -> Option<usize> {
    match recipe {
        Recipe::Hex(n) | Recipe::Base64(n) => Some(n),
        Recipe::DashboardPassword => Some(16),
        _ => None,
    }
}

/// The value such a recipe makes of `bytes` (as many as [`random_byte_count`] says): the
/// encoding `mint` applies to the CSPRNG's bytes, for tests that need reproducible values.
pub fn encode_random_bytes(recipe: Recipe, bytes: &[u8]) -> Option<Secret> {
    match recipe {
        Recipe::Hex(_) => Some(Secret::new(hex::encode(bytes))),
        Recipe::Base64(_) => Some(Secret::new(STANDARD.encode(bytes))),
        Recipe::DashboardPassword => Some(dashboard_password_from(bytes)),
        _ => None,
    }
}

/// Hex of `bytes`, with a letter guaranteed.
///
/// A digits-only result (probability (10/16)^32, about 3e-7) gets its first character mapped
/// to a letter `a`–`f`. That costs under one bit of a 128-bit value, and unlike drawing again
/// it is deterministic, so the rule is tested with all-zero input instead of luck.
pub fn dashboard_password_from(bytes: &[u8]) -> Secret {
    let mut text = hex::encode(bytes);
    if !text.bytes().any(|b| b.is_ascii_alphabetic()) {
        let first = text.as_bytes().first().copied().unwrap_or(b'0');
        let letter = char::from(b'a' + (first - b'0') % 6);
        let mut fixed = String::with_capacity(text.len().max(1));
        fixed.push(letter);
        fixed.push_str(text.get(1..).unwrap_or(""));
        text.zeroize();
        text = fixed;
    }
    Secret::new(text)
}

/// The claims of every Supabase API key, in upstream's field order.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ApiKeyClaims {
    /// `anon` or `service_role`.
    pub role: String,
    /// Always `supabase`.
    pub iss: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, `iat` + five years.
    pub exp: u64,
}

impl ApiKeyClaims {
    /// Claims for `role`, issued at `iat`.
    pub fn new(role: &str, iat: u64) -> Self {
        ApiKeyClaims { role: role.to_owned(), iss: "supabase".to_owned(), iat, exp: iat + JWT_LIFETIME_SECS }
    }
}

/// JOSE header with `alg` first, as upstream and jwt.io print it.
#[derive(Serialize)]
struct JoseHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// Signs `claims` into a compact JWT. The header and payload are serialised here (so their
/// bytes match upstream's tokens); the signature comes from jsonwebtoken's crypto backend.
fn sign_jwt(
    key: &'static str,
    header: &JoseHeader<'_>,
    claims: &ApiKeyClaims,
    signing_key: &EncodingKey,
    algorithm: Algorithm,
) -> Result<Secret> {
    let encode_json = |value: &dyn erased::Json| -> Result<String> {
        value
            .to_json()
            .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
            .map_err(|e| Error::Mint { key, reason: e.to_string() })
    };
    let mut token = Zeroizing::new(format!("{}.{}", encode_json(header)?, encode_json(claims)?));
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), signing_key, algorithm)
        .map_err(|e| Error::Mint { key, reason: e.to_string() })?;
    token.push('.');
    token.push_str(&signature);
    Ok(Secret::new(std::mem::take(&mut *token)))
}

/// Serialisation behind a trait object, so `sign_jwt` takes header and claims alike.
mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec(self)
        }
    }
}

/// An HS256 API key for `role`, keyed by the UTF-8 bytes of `jwt_secret` (never base64-decoded:
/// PostgREST, GoTrue and Realtime all use the string as it is).
pub fn mint_hs256(key: &'static str, jwt_secret: &Secret, role: &str, iat: u64) -> Result<Secret> {
    let header = JoseHeader { alg: "HS256", typ: "JWT", kid: None };
    let signing_key = EncodingKey::from_secret(jwt_secret.expose().as_bytes());
    sign_jwt(key, &header, &ApiKeyClaims::new(role, iat), &signing_key, Algorithm::HS256)
}

/// A P-256 signing key with its key id, the material behind the asymmetric set.
pub struct EcKey {
    secret: p256::SecretKey,
    kid: String,
}

impl fmt::Debug for EcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl EcKey {
    /// A fresh key pair with a random UUID-shaped `kid`.
    pub fn generate() -> Self {
        EcKey { secret: p256::SecretKey::random(&mut OsRng), kid: random_uuid() }
    }

    /// The key id carried in JWT headers and JWKs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Recovers the signing EC key from an existing `JWT_KEYS` value: the private EC JWK whose
    /// `key_ops` contains `sign` (the one Auth signs with), else the first private EC JWK (sets
    /// written before key states existed carry no `key_ops`).
    pub fn from_jwt_keys(jwt_keys: &str) -> Result<Self, String> {
        let keys: Value = serde_json::from_str(jwt_keys).map_err(|_| "is not valid JSON".to_owned())?;
        let list = keys
            .as_array()
            .or_else(|| keys.get("keys").and_then(Value::as_array))
            .ok_or_else(|| "is not a JSON array of JWKs".to_owned())?;
        let private_ec = |k: &&Value| k.get("kty").and_then(Value::as_str) == Some("EC") && k.get("d").is_some();
        let signs = |k: &&Value| {
            k.get("key_ops").and_then(Value::as_array).is_some_and(|ops| ops.iter().any(|op| op == "sign"))
        };
        let ec = list
            .iter()
            .filter(private_ec)
            .find(signs)
            .or_else(|| list.iter().find(private_ec))
            .ok_or_else(|| "has no private EC key (kty EC with d)".to_owned())?;
        Self::from_private_jwk(ec)
    }

    /// The EC key of one private JWK (its `kid` and `d`).
    pub fn from_private_jwk(ec: &Value) -> Result<Self, String> {
        let kid = ec.get("kid").and_then(Value::as_str).unwrap_or_default().to_owned();
        // p256's JWK parser refuses the extra members upstream puts in the key (kid, use,
        // key_ops, alg, ext): the private scalar `d` alone is the key.
        let d =
            ec.get("d").and_then(Value::as_str).ok_or_else(|| "has an EC key whose d is not a string".to_owned())?;
        let scalar =
            Zeroizing::new(URL_SAFE_NO_PAD.decode(d).map_err(|_| "has an EC key whose d is not base64url".to_owned())?);
        let secret = p256::SecretKey::from_slice(&scalar)
            .map_err(|_| "holds an EC key that is not a valid P-256 private key".to_owned())?;
        Ok(EcKey { secret, kid })
    }

    /// The private JWK (with `d`) whose `key_ops` are `ops`: `["sign", "verify"]` for the key Auth
    /// signs with, `["verify"]` for a key on standby (SPEC §7).
    pub fn private_jwk(&self, ops: &[&str]) -> Result<Value> {
        self.jwk_with_ops(true, ops)
    }

    /// The public JWK (no `d`), verify only, as `JWT_JWKS` carries it.
    pub fn public_jwk(&self) -> Result<Value> {
        self.jwk_with_ops(false, &["verify"])
    }

    /// The JWK members shared by the private and public forms, in upstream's layout.
    fn jwk(&self, private: bool) -> Result<Value> {
        if private {
            self.jwk_with_ops(true, &["sign", "verify"])
        } else {
            self.jwk_with_ops(false, &["verify"])
        }
    }

    /// The JWK in upstream's layout with the given `key_ops`; `d` only when `private`.
    fn jwk_with_ops(&self, private: bool, ops: &[&str]) -> Result<Value> {
        let mint_err = |reason: String| Error::Mint { key: "JWT_KEYS", reason };
        let jwk_text = Zeroizing::new(self.secret.to_jwk_string().to_string());
        let base: Value = serde_json::from_str(&jwk_text).map_err(|e| mint_err(e.to_string()))?;
        let field = |name: &str| base.get(name).cloned().unwrap_or(Value::Null);
        let ops = json!(ops);
        let mut jwk = Map::new();
        jwk.insert("kty".into(), json!("EC"));
        jwk.insert("kid".into(), json!(self.kid));
        jwk.insert("use".into(), json!("sig"));
        jwk.insert("key_ops".into(), ops);
        jwk.insert("alg".into(), json!("ES256"));
        jwk.insert("ext".into(), json!(true));
        jwk.insert("crv".into(), field("crv"));
        jwk.insert("x".into(), field("x"));
        jwk.insert("y".into(), field("y"));
        if private {
            jwk.insert("d".into(), field("d"));
        }
        Ok(Value::Object(jwk))
    }

    /// An ES256 API key for `role`, with `kid` in the header.
    pub fn mint_es256(&self, key: &'static str, role: &str, iat: u64) -> Result<Secret> {
        let der = self.secret.to_pkcs8_der().map_err(|e| Error::Mint { key, reason: e.to_string() })?;
        let signing_key = EncodingKey::from_ec_der(der.as_bytes());
        let header = JoseHeader { alg: "ES256", typ: "JWT", kid: Some(&self.kid) };
        sign_jwt(key, &header, &ApiKeyClaims::new(role, iat), &signing_key, Algorithm::ES256)
    }
}

/// The `oct` JWK through which services keep verifying HS256 tokens.
fn oct_jwk(jwt_secret: &Secret) -> Value {
    json!({ "kty": "oct", "k": URL_SAFE_NO_PAD.encode(jwt_secret.expose().as_bytes()), "alg": "HS256" })
}

/// `JWT_KEYS`: the private EC JWK and the `oct` key, as a JSON array.
pub fn jwt_keys(ec: &EcKey, jwt_secret: &Secret) -> Result<Secret> {
    Ok(Secret::new(Value::Array(vec![ec.jwk(true)?, oct_jwk(jwt_secret)]).to_string()))
}

/// `JWT_JWKS`: the public EC JWK and the `oct` key. Never carries `d`.
pub fn jwt_jwks(ec: &EcKey, jwt_secret: &Secret) -> Result<Secret> {
    Ok(Secret::new(json!({ "keys": [ec.jwk(false)?, oct_jwk(jwt_secret)] }).to_string()))
}

/// An opaque API key: `prefix` + 22 random base64url characters + `_` + an 8-character checksum
/// (base64url SHA-256 of `supabase-self-hosted|<prefix><random>`), the shape upstream issues.
pub fn opaque_key(prefix: &str) -> Secret {
    let random = URL_SAFE_NO_PAD.encode(random_bytes(17).as_slice());
    let mut body = Zeroizing::new(String::with_capacity(prefix.len() + 40));
    body.push_str(prefix);
    body.push_str(random.get(..22).unwrap_or(&random));
    let digest = Sha256::digest(format!("{SELF_HOSTED_PROJECT_REF}|{}", body.as_str()).as_bytes());
    let checksum = URL_SAFE_NO_PAD.encode(digest);
    body.push('_');
    body.push_str(checksum.get(..8).unwrap_or(&checksum));
    Secret::new(std::mem::take(&mut *body))
}

/// A random RFC 4122 version-4 UUID, used as a JWK `kid`.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Seconds since the Unix epoch, for `iat`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What minting may reuse from an existing `.env` when only some keys are regenerated.
#[derive(Debug, Default)]
pub struct Existing {
    /// The file's `JWT_SECRET`, used when JWTs are re-minted without a new secret.
    pub jwt_secret: Option<Secret>,
    /// The file's `JWT_KEYS`, used when ES256 tokens or `JWT_JWKS` are re-minted alone.
    pub jwt_keys: Option<Secret>,
}

/// Mints the catalogue keys named in `wanted` (in catalogue order), reusing `existing`
/// material for what is derived from keys not being regenerated.
///
/// Returns `(key, value)` pairs in catalogue order. Fails with the key and the reason when a
/// derived value needs material that neither `wanted` nor `existing` provides.
pub fn mint(
    wanted: impl IntoIterator<Item = (&'static str, Recipe)>,
    existing: &Existing,
    iat: u64,
) -> Result<Vec<(&'static str, Secret)>> {
    let mut jwt_secret = existing.jwt_secret.clone();
    let mut ec_key: Option<EcKey> = None;
    let mut out = Vec::new();
    for (key, recipe) in wanted {
        let need_jwt_secret = || {
            jwt_secret.clone().ok_or(Error::Mint {
                key,
                reason: "JWT_SECRET is missing or empty; generate it too (--only JWT_SECRET)".into(),
            })
        };
        let value = match recipe {
            Recipe::Hex(_) | Recipe::Base64(_) | Recipe::DashboardPassword => {
                let bytes = random_bytes(random_byte_count(recipe).unwrap_or(0));
                // Both functions cover exactly these three recipes.
                encode_random_bytes(recipe, &bytes).ok_or(Error::Mint { key, reason: "no encoding".into() })?
            }
            Recipe::Hs256Jwt(role) => mint_hs256(key, &need_jwt_secret()?, role, iat)?,
            Recipe::JwtKeys => {
                let ec = EcKey::generate();
                let value = jwt_keys(&ec, &need_jwt_secret()?)?;
                ec_key = Some(ec);
                value
            }
            Recipe::JwtJwks => {
                let secret = need_jwt_secret()?;
                jwt_jwks(ensure_ec(&mut ec_key, existing, key)?, &secret)?
            }
            Recipe::Es256Jwt(role) => ensure_ec(&mut ec_key, existing, key)?.mint_es256(key, role, iat)?,
            Recipe::Opaque(prefix) => opaque_key(prefix),
        };
        if key == "JWT_SECRET" {
            jwt_secret = Some(value.clone());
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The EC key minted in this run, or the one recovered from the existing `JWT_KEYS`.
fn ensure_ec<'a>(slot: &'a mut Option<EcKey>, existing: &Existing, key: &'static str) -> Result<&'a EcKey> {
    if slot.is_none() {
        let text = existing.jwt_keys.as_ref().ok_or(Error::Mint {
            key,
            reason: "JWT_KEYS is missing; generate the asymmetric set (--only JWT_KEYS)".into(),
        })?;
        let ec = EcKey::from_jwt_keys(text.expose())
            .map_err(|problem| Error::Mint { key, reason: format!("the existing JWT_KEYS {problem}") })?;
        *slot = Some(ec);
    }
    slot.as_ref().ok_or(Error::Mint { key, reason: "no EC key".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_password_from_all_zero_bytes_still_has_a_letter() {
        let pw = dashboard_password_from(&[0u8; 16]);
        assert_eq!(pw.expose().len(), 32);
        assert!(pw.expose().bytes().any(|b| b.is_ascii_alphabetic()));
        assert!(pw.expose().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn dashboard_password_keeps_hex_that_already_has_a_letter() {
        let pw = dashboard_password_from(&[0xab; 16]);
        assert_eq!(pw.expose(), "ab".repeat(16));
    }

    #[test]
    fn dashboard_password_from_digit_only_bytes_changes_one_character() {
        let pw = dashboard_password_from(&[0x99; 16]);
        assert_eq!(&pw.expose()[1..], &"99".repeat(16)[1..]);
        assert!(pw.expose().as_bytes()[0].is_ascii_lowercase());
    }

    #[test]
    fn minting_a_token_without_a_secret_names_the_missing_key() {
        let err = mint([("ANON_KEY", Recipe::Hs256Jwt("anon"))], &Existing::default(), 0).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn es256_tokens_can_be_reminted_from_existing_jwt_keys() {
        let ec = EcKey::generate();
        let secret = random_base64(30);
        let existing = Existing { jwt_secret: Some(secret.clone()), jwt_keys: Some(jwt_keys(&ec, &secret).unwrap()) };
        let minted = mint([("ANON_KEY_ASYMMETRIC", Recipe::Es256Jwt("anon"))], &existing, 1).unwrap();
        let token = minted[0].1.expose();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], json!(ec.kid));
    }

    #[test]
    fn es256_tokens_are_reminted_with_the_signing_key_when_a_standby_key_comes_first() {
        let (standby, signer) = (EcKey::generate(), EcKey::generate());
        let set = json!([
            standby.private_jwk(&["verify"]).unwrap(),
            signer.private_jwk(&["sign", "verify"]).unwrap(),
            oct_jwk(&random_base64(30))
        ]);
        assert_eq!(EcKey::from_jwt_keys(&set.to_string()).unwrap().kid(), signer.kid());
        // A set written before key states existed (no key_ops): its first private EC key.
        let mut legacy = standby.private_jwk(&[]).unwrap();
        legacy.as_object_mut().unwrap().remove("key_ops");
        assert_eq!(EcKey::from_jwt_keys(&json!([legacy]).to_string()).unwrap().kid(), standby.kid());
    }

    #[test]
    fn opaque_keys_carry_upstreams_checksum() {
        let key = opaque_key("sb_secret_");
        let v = key.expose();
        // The checksum is the last 8 characters, after a `_` (both parts may contain `_` too).
        let (body, checksum) = (&v[..v.len() - 9], &v[v.len() - 8..]);
        assert_eq!(&v[v.len() - 9..v.len() - 8], "_");
        assert!(body.starts_with("sb_secret_") && body.len() == "sb_secret_".len() + 22);
        let digest = Sha256::digest(format!("supabase-self-hosted|{body}"));
        assert_eq!(checksum, &URL_SAFE_NO_PAD.encode(digest)[..8]);
    }

    #[test]
    fn kid_is_a_version_4_uuid() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }
}
