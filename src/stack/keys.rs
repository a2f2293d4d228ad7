//! The secret keys of a stack's `.env`, as one typed catalogue (SPEC §1, §4).
//!
//! Each [`KeySpec`] says how the value is made ([`Recipe`]), the length the services insist on,
//! the other names it is copied under, the keys that must be re-minted with it, and the
//! services that read it. `generate-keys` mints from it, `--env-file` fills it and `check`
//! audits it, so the three cannot disagree about a key.

use std::collections::BTreeSet;

pub use crate::secrets::Recipe;

/// The key of the password every Supabase role shares; the one name it has in the code.
pub const POSTGRES_PASSWORD: &str = "POSTGRES_PASSWORD";

/// A length the consuming service insists on, and what happens otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthRule {
    /// Exactly this many bytes.
    Exactly(usize, &'static str),
    /// At least this many bytes.
    AtLeast(usize, &'static str),
}

/// One secret key of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// The `.env` key.
    pub key: &'static str,
    /// How its value is made.
    pub recipe: Recipe,
    /// Only with `--asymmetric` (the newer Supabase auth keys).
    pub asymmetric: bool,
    /// Why it exists, printed above it in the generated `.env`.
    pub comment: &'static str,
    /// The length rule a service enforces on it, if any.
    pub length: Option<LengthRule>,
    /// Other names under which stacks copy the same value (`SUPABASE_DB_PASSWORD`, ...). Besides
    /// these, a `SUPABASE_` prefix on a catalogue key names a copy too.
    pub aliases: &'static [&'static str],
    /// Keys whose value is derived from this one and must be re-minted with it, so no token is
    /// left signed by a key that no longer exists. Asymmetric dependents apply only when the
    /// asymmetric set is in use.
    pub dependents: &'static [&'static str],
    /// The compose services that read it: those of upstream's current `docker-compose.yml`, plus
    /// `analytics` (Logflare, in upstream's earlier releases) and `minio` (added by PMOVES.AI).
    pub read_by: &'static [&'static str],
    /// Values upstream published for it (`.env.example` across its versions, the compose file,
    /// the Supabase CLI's local stack), each with where it was published. Anyone can read them,
    /// so a stack running on one is open.
    pub demo: &'static [Demo],
    /// Placeholder values templates put in it (not secrets, never to be kept); empty when none
    /// is known.
    pub placeholders: &'static [&'static str],
    /// The strength its value needs, as log10 of the guesses an estimator says it takes
    /// (`crate::strength`); `None` for JWTs and key sets, which their own checks verify.
    pub min_guesses_log10: Option<f64>,
}

/// Strength minimum of a key minted as 32 or more random characters: a random value of its
/// recipe scores above 25.
const MACHINE_KEY: f64 = 20.0;

/// Strength minimum of a 16-character key (REALTIME_DB_ENC_KEY), whose random values score
/// above 12, and of passwords a person may type: zxcvbn's "very unguessable" band.
pub const TYPED_OR_SHORT: f64 = 10.0;

/// A published demo value of a key, and where it was published (named in messages instead of
/// the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demo {
    /// The published value.
    pub value: &'static str,
    /// Where it was published.
    pub origin: &'static str,
}

const fn demo(value: &'static str, origin: &'static str) -> Demo {
    Demo { value, origin }
}

const fn spec(key: &'static str, recipe: Recipe, comment: &'static str, read_by: &'static [&'static str]) -> KeySpec {
    KeySpec {
        key,
        recipe,
        asymmetric: false,
        comment,
        length: None,
        aliases: &[],
        dependents: &[],
        read_by,
        demo: &[],
        placeholders: &[],
        min_guesses_log10: None,
    }
}

const fn asym(key: &'static str, recipe: Recipe, comment: &'static str, read_by: &'static [&'static str]) -> KeySpec {
    KeySpec { asymmetric: true, ..spec(key, recipe, comment, read_by) }
}

impl KeySpec {
    const fn length(self, rule: LengthRule) -> Self {
        KeySpec { length: Some(rule), ..self }
    }

    const fn aliases(self, aliases: &'static [&'static str]) -> Self {
        KeySpec { aliases, ..self }
    }

    const fn dependents(self, dependents: &'static [&'static str]) -> Self {
        KeySpec { dependents, ..self }
    }

    const fn demo(self, demo: &'static [Demo]) -> Self {
        KeySpec { demo, ..self }
    }

    const fn placeholders(self, placeholders: &'static [&'static str]) -> Self {
        KeySpec { placeholders, ..self }
    }

    const fn strength(self, min_guesses_log10: f64) -> Self {
        KeySpec { min_guesses_log10: Some(min_guesses_log10), ..self }
    }

    /// The role this key is an API key for, when it is one (`ANON_KEY` → `anon`).
    pub fn api_key_role(&self) -> Option<&'static str> {
        self.recipe.api_key_role()
    }
}

/// Every secret the stack needs (SPEC §1), in the order they are printed.
///
/// Order matters for minting: a value is listed after everything it is derived from.
pub const KEYS: &[KeySpec] = &[
    spec(
        "JWT_SECRET",
        Recipe::Base64(30),
        "HS256 signing key; services use this string's UTF-8 bytes as the HMAC key",
        &["auth", "functions", "realtime", "rest", "storage", "studio", "supavisor"],
    )
    .length(LengthRule::AtLeast(32, "shorter HS256 secrets are rejected by the auth services"))
    .dependents(&["ANON_KEY", "SERVICE_ROLE_KEY", "JWT_KEYS"])
    .demo(&[
        demo("your-super-secret-jwt-token-with-at-least-32-characters-long", "upstream's demo JWT_SECRET"),
        demo("super-secret-jwt-token-with-at-least-32-characters-long", "the Supabase CLI's local JWT secret"),
    ])
    .strength(MACHINE_KEY),
    spec(
        "ANON_KEY",
        Recipe::Hs256Jwt("anon"),
        "public API key (role anon), valid 5 years",
        &["api-gw", "functions", "realtime", "storage", "studio"],
    ),
    spec(
        "SERVICE_ROLE_KEY",
        Recipe::Hs256Jwt("service_role"),
        "server-side API key (role service_role, bypasses RLS), valid 5 years",
        &["api-gw", "functions", "storage", "studio"],
    )
    .aliases(&["SUPABASE_SERVICE_KEY"]),
    spec(
        "SECRET_KEY_BASE",
        Recipe::Base64(48),
        "Phoenix/Rails secret (Realtime, Supavisor)",
        &["realtime", "supavisor"],
    )
    .length(LengthRule::AtLeast(64, "Phoenix (Realtime, Supavisor) refuses shorter ones"))
    .demo(&[demo(
        "UpNVntn3cDxHJpq99YMc1T1AQgQpc8kfYTuRgBiYa15BLrx8etQoXz3gZv1/u2oq",
        "upstream's demo SECRET_KEY_BASE",
    )])
    .strength(MACHINE_KEY),
    spec("VAULT_ENC_KEY", Recipe::Hex(16), "Supavisor encryption key: exactly 32 characters", &["supavisor"])
        .length(LengthRule::Exactly(32, "Supavisor crash-loops on any other length"))
        .demo(&[
            demo("your-encryption-key-32-chars-min", "upstream's demo VAULT_ENC_KEY / PG_META_CRYPTO_KEY"),
            demo("your-32-character-encryption-key", "upstream's demo VAULT_ENC_KEY"),
        ])
        .strength(MACHINE_KEY),
    spec("PG_META_CRYPTO_KEY", Recipe::Base64(24), "postgres-meta encryption key", &["meta", "studio"])
        .length(LengthRule::AtLeast(32, "postgres-meta refuses shorter ones"))
        .demo(&[demo("your-encryption-key-32-chars-min", "upstream's demo VAULT_ENC_KEY / PG_META_CRYPTO_KEY")])
        .strength(MACHINE_KEY),
    spec(
        "REALTIME_DB_ENC_KEY",
        Recipe::Hex(8),
        "Realtime AES-128 key used as text: exactly 16 characters",
        &["realtime"],
    )
    .length(LengthRule::Exactly(16, "Realtime uses it as an AES-128 key"))
    .demo(&[demo("supabaserealtime", "the REALTIME_DB_ENC_KEY upstream's docker-compose.yml hard-codes")])
    .placeholders(&["your16charkey123"])
    .strength(TYPED_OR_SHORT),
    spec(
        "LOGFLARE_PUBLIC_ACCESS_TOKEN",
        Recipe::Base64(24),
        "Logflare (analytics) public token",
        &["analytics", "studio", "vector"],
    )
    .demo(&[demo("your-super-secret-and-long-logflare-key-public", "upstream's demo LOGFLARE_PUBLIC_ACCESS_TOKEN")])
    .strength(MACHINE_KEY),
    spec(
        "LOGFLARE_PRIVATE_ACCESS_TOKEN",
        Recipe::Base64(24),
        "Logflare (analytics) private token",
        &["analytics", "studio"],
    )
    .demo(&[demo("your-super-secret-and-long-logflare-key-private", "upstream's demo LOGFLARE_PRIVATE_ACCESS_TOKEN")])
    .strength(MACHINE_KEY),
    spec("S3_PROTOCOL_ACCESS_KEY_ID", Recipe::Hex(16), "Storage S3 protocol access key id", &["storage"])
        .demo(&[demo("625729a08b95bf1b7ff351a663f3a23c", "upstream's demo S3_PROTOCOL_ACCESS_KEY_ID")])
        .strength(MACHINE_KEY),
    spec("S3_PROTOCOL_ACCESS_KEY_SECRET", Recipe::Hex(32), "Storage S3 protocol access key secret", &["storage"])
        .demo(&[demo(
            "850181e4652dd023b7a98c58ae0d2d34bd487ee0cc3254aed6eda37307425907",
            "upstream's demo S3_PROTOCOL_ACCESS_KEY_SECRET",
        )])
        .strength(MACHINE_KEY),
    spec("MINIO_ROOT_PASSWORD", Recipe::Hex(16), "MinIO root password", &["minio"])
        .demo(&[demo("secret1234", "upstream's demo MINIO_ROOT_PASSWORD")])
        .strength(MACHINE_KEY),
    spec(
        POSTGRES_PASSWORD,
        Recipe::Hex(16),
        "password of every Supabase database role; hex only, so it is safe inside URLs",
        &["auth", "db", "functions", "meta", "realtime", "rest", "storage", "studio", "supavisor", "analytics"],
    )
    .aliases(&["SUPABASE_DB_PASSWORD"])
    .demo(&[demo("your-super-secret-and-long-postgres-password", "upstream's demo POSTGRES_PASSWORD")])
    .strength(MACHINE_KEY),
    spec(
        "DASHBOARD_PASSWORD",
        Recipe::DashboardPassword,
        "Studio basic-auth password; always contains a letter",
        &["api-gw"],
    )
    .demo(&[demo("this_password_is_insecure_and_should_be_updated", "upstream's demo DASHBOARD_PASSWORD")])
    .strength(TYPED_OR_SHORT),
    asym("JWT_KEYS", Recipe::JwtKeys, "Auth signing keys: private ES256 JWK and the HS256 oct key", &["auth"])
        .dependents(&["JWT_JWKS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"]),
    asym(
        "JWT_JWKS",
        Recipe::JwtJwks,
        "verification key set: public ES256 JWK and the HS256 oct key (still a secret)",
        &["functions", "realtime", "rest", "storage"],
    ),
    asym("ANON_KEY_ASYMMETRIC", Recipe::Es256Jwt("anon"), "ES256 anon key", &["api-gw"]),
    asym("SERVICE_ROLE_KEY_ASYMMETRIC", Recipe::Es256Jwt("service_role"), "ES256 service_role key", &["api-gw"]),
    asym(
        "SUPABASE_PUBLISHABLE_KEY",
        Recipe::Opaque("sb_publishable_"),
        "opaque publishable API key",
        &["api-gw", "functions", "studio"],
    ),
    asym(
        "SUPABASE_SECRET_KEY",
        Recipe::Opaque("sb_secret_"),
        "opaque secret API key",
        &["api-gw", "functions", "studio"],
    ),
];

/// Looks a key up in the catalogue.
pub fn key(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|s| s.key == name)
}

/// The catalogue entries a plain or `--asymmetric` run produces.
pub fn catalogue(asymmetric: bool) -> impl Iterator<Item = &'static KeySpec> {
    KEYS.iter().filter(move |s| asymmetric || !s.asymmetric)
}

/// The API keys (catalogue keys that are JWTs for a role), with their role, of one family:
/// HS256 (`asymmetric == false`) or ES256.
pub fn api_keys(asymmetric: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    KEYS.iter().filter(move |s| s.asymmetric == asymmetric).filter_map(|s| s.api_key_role().map(|role| (s.key, role)))
}

/// The keys of the asymmetric set that stand together: the key set, its public half and the two
/// ES256 API keys (the opaque keys stand alone).
pub fn asymmetric_core() -> impl Iterator<Item = &'static str> {
    KEYS.iter().filter(|s| s.asymmetric && !matches!(s.recipe, Recipe::Opaque(_))).map(|s| s.key)
}

/// The catalogue key a copy named `alias` repeats: a listed alias (`SUPABASE_DB_PASSWORD`), or a
/// `SUPABASE_` prefix on a catalogue key (`SUPABASE_ANON_KEY`, `SUPABASE_JWT_SECRET`, ...).
pub fn standard_for(alias: &str) -> Option<&'static str> {
    if let Some(spec) = KEYS.iter().find(|s| s.aliases.contains(&alias)) {
        return Some(spec.key);
    }
    key(alias.strip_prefix("SUPABASE_")?).map(|spec| spec.key)
}

/// `keys` and everything that must be re-minted with them (transitively): a new `JWT_SECRET`
/// re-mints the HS256 tokens (and, when the asymmetric set is in use, `JWT_KEYS`, whose `oct`
/// key embeds it); a new `JWT_KEYS` re-mints the key set and the ES256 tokens.
pub fn with_dependents(keys: &BTreeSet<&'static str>, asymmetric: bool) -> BTreeSet<&'static str> {
    let mut out = keys.clone();
    let mut todo: Vec<&'static str> = keys.iter().copied().collect();
    while let Some(name) = todo.pop() {
        let Some(spec) = key(name) else { continue };
        for dependent in spec.dependents {
            let in_use = asymmetric || key(dependent).is_some_and(|d| !d.asymmetric);
            if in_use && out.insert(dependent) {
                todo.push(dependent);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_lengths_match_spec() {
        // The exact length a generated value has, when the recipe fixes one.
        let exact_len = |recipe: Recipe| match recipe {
            Recipe::Hex(n) => Some(2 * n),
            Recipe::Base64(n) => Some(n.div_ceil(3) * 4),
            Recipe::DashboardPassword => Some(32),
            _ => None,
        };
        let len = |k: &str| key(k).and_then(|s| exact_len(s.recipe));
        assert_eq!(len("JWT_SECRET"), Some(40));
        assert_eq!(len("SECRET_KEY_BASE"), Some(64));
        assert_eq!(len("VAULT_ENC_KEY"), Some(32));
        assert_eq!(len("PG_META_CRYPTO_KEY"), Some(32));
        assert_eq!(len("REALTIME_DB_ENC_KEY"), Some(16));
        assert_eq!(len("S3_PROTOCOL_ACCESS_KEY_SECRET"), Some(64));
        assert_eq!(len("POSTGRES_PASSWORD"), Some(32));
    }

    #[test]
    fn keys_are_unique_and_listed_after_what_they_derive_from() {
        for (i, spec) in KEYS.iter().enumerate() {
            assert!(KEYS[..i].iter().all(|earlier| earlier.key != spec.key), "{} twice", spec.key);
            for dependent in spec.dependents {
                let at = KEYS.iter().position(|s| s.key == *dependent).expect("a dependent is a catalogue key");
                assert!(at > i, "{dependent} is minted from {} so comes after it", spec.key);
            }
        }
    }

    #[test]
    fn jwt_secret_implies_its_tokens_and_asymmetric_set() {
        let keys = BTreeSet::from(["JWT_SECRET"]);
        let plain = with_dependents(&keys, false);
        assert_eq!(plain, BTreeSet::from(["JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY"]));
        let asym = with_dependents(&keys, true);
        for k in ["JWT_KEYS", "JWT_JWKS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"] {
            assert!(asym.contains(k), "{k}");
        }
        assert!(!asym.contains("SUPABASE_SECRET_KEY"));
    }

    #[test]
    fn aliases_name_their_standard_key() {
        assert_eq!(standard_for("SUPABASE_DB_PASSWORD"), Some(POSTGRES_PASSWORD));
        assert_eq!(standard_for("SUPABASE_SERVICE_KEY"), Some("SERVICE_ROLE_KEY"));
        assert_eq!(standard_for("SUPABASE_ANON_KEY"), Some("ANON_KEY"));
        assert_eq!(standard_for("SUPABASE_URL"), None);
    }

    #[test]
    fn api_keys_pair_each_key_with_its_role() {
        assert_eq!(api_keys(false).collect::<Vec<_>>(), [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")]);
        assert_eq!(
            api_keys(true).collect::<Vec<_>>(),
            [("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")]
        );
        assert_eq!(
            asymmetric_core().collect::<Vec<_>>(),
            ["JWT_KEYS", "JWT_JWKS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"]
        );
    }
}
