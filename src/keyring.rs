//! The signing keys of the asymmetric set and the state of each (SPEC §7), read from and written
//! to the `.env` alone.
//!
//! `rotate-keys` changes the ring, `check` audits it, and every other writer of `JWT_SECRET` or
//! the key sets (`generate-keys`, `rotate-secrets`) goes through [`rebuilt_sets`] and
//! [`remint_refusal`], so the model and its rules live here, below all of them.
//!
//! # Where the state is recorded, and why there
//! What the services act on is encoded the way they already read it, in the key sets:
//! - **current**: the one key of `JWT_KEYS` whose `key_ops` contains `sign` (Auth signs with it;
//!   its configuration check refuses none or several: supabase/auth v2.196.0,
//!   `internal/conf/jwk.go`, `JwtKeysDecoder::Validate`);
//! - **standby**: an EC key of `JWT_KEYS` with its private part but `key_ops` `["verify"]`;
//! - **previous**: an EC key of `JWT_KEYS` that signed until the last promotion, `key_ops`
//!   `["verify"]`. It keeps its private part until `revoke`, so `rotate-keys rollback` can make
//!   it the signer again; a previous key written by older versions is reduced to its public part
//!   (Auth accepts a public JWK there: `jwk.PublicKeyOf` of a public key is itself).
//!
//! A standby and a previous key with their private parts look alike to every service (both
//! verify only; Auth keys its set by `kid`, so order means nothing to it). Their place tells
//! them apart: `stage` adds a key after the signer, `promote` makes that later key the signer
//! (so the demoted one is before it) and `rollback` the earlier one (so the demoted one is after
//! it): a verify-only key with its private part before the signer is previous, after it
//! standby. The times ("since when") go in a variable of their own, [`STATE_KEY`]
//! (`JWT_KEYS_STATE`), that no service reads: extra members inside the JWKs would also be
//! ignored by today's parsers, but Auth republishes its keys at `/.well-known/jwks.json`, and a
//! stricter JWK parser in any of four services could reject a set for a member it does not
//! know. A variable nobody reads cannot break anybody. Where the record and the key sets
//! disagree (a hand edit), the key sets win and the time is unknown.
//!
//! Every key is in `JWT_JWKS` as its public form (`["verify"]`), which is all PostgREST,
//! Realtime, Storage and Functions read; the `oct` key of `JWT_SECRET` is in both sets.
//! [`KeyRing::problems`] are the rules a usable ring obeys, one implementation for `check`
//! (which reports them) and `rotate-keys` (which refuses a ring that breaks any).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jwt::{parse_jwk_array, parse_jwk_set, Jwk};
use crate::stack;

/// The variable holding each key's state and since when: compact JSON
/// `{"<kid>":{"state":"standby","since":<unix seconds>,"from":"restart"},...}`.
pub const STATE_KEY: &str = "JWT_KEYS_STATE";

/// Auth's signing keys (private EC JWKs and the `oct` key), a JSON array.
pub const KEYS_KEY: &str = "JWT_KEYS";

/// The verification key set, `{"keys":[...]}`.
pub const JWKS_KEY: &str = "JWT_JWKS";

/// The ES256 API keys and their roles (the catalogue's `Es256Jwt` keys): signed by the current
/// key, re-minted at promotion and rollback. They are the gateway's own (it compares a client's
/// `apikey` with them byte for byte and translates the opaque keys into them); no client holds
/// them.
pub fn api_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    stack::KEYS.iter().filter_map(|spec| match spec.recipe {
        stack::Recipe::Es256Jwt(role) => Some((spec.key, role)),
        _ => None,
    })
}

/// The services that must read each key set, from the catalogue: `JWT_KEYS` by Auth (the signer),
/// `JWT_JWKS` by every verifier.
pub fn set_readers() -> [(&'static str, &'static [&'static str]); 2] {
    let readers = |key: &str| stack::key(key).map_or(&[][..], |spec| spec.read_by);
    [(KEYS_KEY, readers(KEYS_KEY)), (JWKS_KEY, readers(JWKS_KEY))]
}

/// Minimum time between `stage` and `promote`: verifiers that fetch a JWKS cache it (Auth serves
/// `/.well-known/jwks.json` with `Cache-Control: public, max-age=600`, supabase/auth v2.196.0
/// `internal/api/jwks.go`; supabase-js caches it as long), so the new key must be known
/// everywhere before it signs anything.
pub const PROMOTE_AFTER_SECS: u64 = 20 * 60;

/// Margin added to `JWT_EXPIRY` before `revoke`: clock skew and sessions refreshed at the last
/// moment.
pub const REVOKE_MARGIN_SECS: u64 = 15 * 60;

/// A standby key older than this was probably forgotten.
pub const STANDBY_STALE_SECS: u64 = 7 * 24 * 3600;

/// `JWT_EXPIRY` when the file does not set it (upstream's and PMOVES.AI's default).
pub const DEFAULT_JWT_EXPIRY_SECS: u64 = 3600;

/// The lifecycle of one signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Known to every verifier, not signing yet.
    Standby,
    /// The one key Auth signs with.
    Current,
    /// Signed until the last promotion; kept for verification until revoked.
    Previous,
}

impl KeyState {
    /// The state's name, as recorded and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Standby => "standby",
            KeyState::Current => "current",
            KeyState::Previous => "previous",
        }
    }
}

/// What a recorded time counts from: the services' restart (`--restart` recreated them, so they
/// run the set from then on) or only the file's write (they run it from whenever they are
/// recreated, which the tool did not see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// The time the file was written; the services may have started later.
    #[default]
    File,
    /// The time the services were up again after `--restart`.
    Restart,
}

/// One entry of [`STATE_KEY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The state the key had when recorded.
    pub state: KeyState,
    /// Since when, in seconds since the Unix epoch.
    pub since: u64,
    /// What `since` counts from (absent in records of older versions: the file).
    #[serde(default)]
    pub from: Clock,
}

/// One key of the ring that is not the `oct` key, as the services see it plus its recorded time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingKey {
    /// The key id (JWT header `kid`).
    pub kid: String,
    /// The state its place in the key sets (and the record) gives it.
    pub state: KeyState,
    /// Since when it has that state: `None` when not recorded, or recorded for another state.
    pub since: Option<u64>,
    /// What `since` counts from.
    pub from: Clock,
    /// Whether `JWT_JWKS` carries the same public key under the same `kid`.
    pub in_jwks: bool,
    /// Whether `JWT_KEYS` keeps its private part.
    pub private: bool,
}

/// Why the ring cannot be read: the variable involved and what is wrong (never a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingError {
    /// The `.env` key.
    pub key: &'static str,
    /// What is wrong with it.
    pub problem: String,
    /// The set is absent altogether (so the fix is to generate it, not to repair it).
    pub missing: bool,
}

/// The ways a readable ring can be broken. `check` reports each under its own finding code;
/// `rotate-keys` refuses a ring with any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// A key that is not usable as what it claims to be (wrong curve, not on the curve, a
    /// private scalar that is no P-256 key).
    InvalidKey,
    /// Two keys of one set with the same `kid`: Auth keeps only one of them (it keys its set by
    /// `kid`), and a phase that acts on one acts on both.
    DuplicateKid,
    /// Not exactly one key with `sign` in `key_ops` (Auth refuses to start).
    SignerCount,
    /// The signer is not an EC P-256 key with `alg` ES256 (the rotation is of that key; Auth
    /// signs an unknown `alg` as HS256).
    SignerNotEs256,
    /// A private part whose public point is not the one published for the key (in `JWT_KEYS`
    /// itself or in `JWT_JWKS`).
    Mismatch,
    /// A private part in `JWT_JWKS`.
    JwksPrivatePart,
    /// A key of `JWT_KEYS` that `JWT_JWKS` lacks: its tokens are rejected by every verifier but
    /// Auth.
    JwksMissingKey,
    /// A key of `JWT_JWKS` that `JWT_KEYS` lacks (a revoked key left behind): its tokens keep
    /// verifying.
    JwksUnknownKey,
}

/// One broken rule: the variable, and the problem in a sentence that names kids, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Which rule.
    pub kind: Broken,
    /// The `.env` key to repair.
    pub key: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

/// The asymmetric key sets of one `.env`, with the recorded states.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// `JWT_KEYS`, in file order (EC keys and the `oct` key).
    keys: Vec<Jwk>,
    /// The `keys` of `JWT_JWKS`, in file order.
    jwks: Vec<Jwk>,
    /// Members of `JWT_JWKS` other than `keys`, kept as they were.
    jwks_rest: Map<String, Value>,
    /// `JWT_KEYS_STATE`, by kid.
    record: BTreeMap<String, Recorded>,
    /// `JWT_KEYS_STATE` is set but not readable as a record.
    pub record_unreadable: bool,
}

/// The `oct` JWK of `jwt_secret`, as upstream writes it: the services use the secret's UTF-8
/// bytes as the HMAC key.
pub fn oct_jwk(jwt_secret: &str) -> Jwk {
    Jwk {
        kty: Some("oct".into()),
        alg: Some("HS256".into()),
        k: Some(URL_SAFE_NO_PAD.encode(jwt_secret.as_bytes())),
        ..Jwk::default()
    }
}

/// Parses `JWT_KEYS`, naming what is wrong.
fn parse_keys(text: &str) -> Result<Vec<Jwk>, RingError> {
    parse_jwk_array(text).ok_or_else(|| RingError {
        key: KEYS_KEY,
        problem: "is not a JSON key set (a JSON array of JWKs, as Auth reads it)".into(),
        missing: false,
    })
}

/// The kids in `list` that more than one key carries (a key without `kid` counts as `""`).
fn duplicate_kids(list: &[Jwk]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut twice = BTreeSet::new();
    for jwk in list {
        if !seen.insert(jwk.kid()) {
            twice.insert(jwk.kid().to_owned());
        }
    }
    twice.into_iter().collect()
}

/// A kid for messages: quoted, control characters escaped (kids come from the file).
fn shown(kid: &str) -> String {
    if kid.is_empty() {
        "(no kid)".to_owned()
    } else {
        format!("{kid:?}")
    }
}

impl KeyRing {
    /// Reads the ring from the values of `JWT_KEYS`, `JWT_JWKS` and `JWT_KEYS_STATE` (empty
    /// counts as absent). Fails when either set is missing or is not a JSON key set.
    pub fn parse(keys: Option<&str>, jwks: Option<&str>, state: Option<&str>) -> Result<Self, RingError> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.filter(|v| !v.trim().is_empty())
        }
        let missing = |key: &'static str| RingError {
            key,
            problem: "is missing or empty, so the stack has no asymmetric key set".into(),
            missing: true,
        };
        let keys = parse_keys(present(keys).ok_or_else(|| missing(KEYS_KEY))?)?;
        let (jwks, jwks_rest) = parse_jwk_set(present(jwks).ok_or_else(|| missing(JWKS_KEY))?).ok_or(RingError {
            key: JWKS_KEY,
            problem: "is not a JSON key set ({\"keys\": [...]})".into(),
            missing: false,
        })?;
        let (record, record_unreadable) = match present(state).map(serde_json::from_str::<BTreeMap<String, Recorded>>) {
            None => (BTreeMap::new(), false),
            Some(Ok(record)) => (record, false),
            Some(Err(_)) => (BTreeMap::new(), true),
        };
        Ok(KeyRing { keys, jwks, jwks_rest, record, record_unreadable })
    }

    /// The state the key sets give the key at `index` of `JWT_KEYS`.
    fn state_of(&self, index: usize, signer: Option<usize>) -> KeyState {
        let jwk = &self.keys[index];
        if jwk.signs() {
            KeyState::Current
        } else if !jwk.has_private_part() || signer.is_some_and(|at| index < at) {
            KeyState::Previous
        } else {
            KeyState::Standby
        }
    }

    /// The keys of `JWT_KEYS` other than the `oct` key, in file order, with their states.
    pub fn ec_keys(&self) -> Vec<RingKey> {
        let published = self.jwks_by_kid();
        let signer = self.keys.iter().position(Jwk::signs);
        self.keys
            .iter()
            .enumerate()
            .filter(|(_, jwk)| !jwk.is_oct())
            .map(|(index, jwk)| {
                let kid = jwk.kid().to_owned();
                let state = self.state_of(index, signer);
                let recorded = self.record.get(&kid).filter(|r| r.state == state);
                let in_jwks = published.get(kid.as_str()).is_some_and(|list| list.iter().any(|p| same_public(jwk, p)));
                RingKey {
                    since: recorded.map(|r| r.since),
                    from: recorded.map(|r| r.from).unwrap_or_default(),
                    private: jwk.has_private_part(),
                    kid,
                    state,
                    in_jwks,
                }
            })
            .collect()
    }

    /// The keys of `JWT_JWKS` by kid, read once: every lookup by kid stays linear in the ring.
    fn jwks_by_kid(&self) -> HashMap<&str, Vec<&Jwk>> {
        let mut by_kid: HashMap<&str, Vec<&Jwk>> = HashMap::new();
        for jwk in &self.jwks {
            by_kid.entry(jwk.kid()).or_default().push(jwk);
        }
        by_kid
    }

    /// The `(kid, state)` of every key, for the record's checks.
    fn kid_states(keys: &[RingKey]) -> HashSet<(&str, KeyState)> {
        keys.iter().map(|k| (k.kid.as_str(), k.state)).collect()
    }

    /// The keys in `state`.
    pub fn in_state(&self, state: KeyState) -> Vec<RingKey> {
        self.ec_keys().into_iter().filter(|k| k.state == state).collect()
    }

    /// How many keys of `JWT_KEYS` (of any type) Auth would sign with.
    pub fn signing_count(&self) -> usize {
        self.keys.iter().filter(|jwk| jwk.signs()).count()
    }

    /// The private JWK of the EC key `kid` in `JWT_KEYS`.
    pub fn private_jwk(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|jwk| jwk.is_ec() && jwk.kid() == kid && jwk.d.is_some())
    }

    /// The keys of `JWT_JWKS`.
    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }

    /// The keys of `JWT_KEYS`.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The kids Auth publishes at `/.well-known/jwks.json`: every key of `JWT_KEYS` but the
    /// `oct` key (supabase/auth v2.196.0, `internal/api/jwks.go`).
    pub fn published_kids(&self) -> Vec<&str> {
        self.keys.iter().filter(|jwk| !jwk.is_oct()).map(Jwk::kid).collect()
    }

    /// Whether both sets carry an `oct` (HS256) key, through which the legacy API keys verify.
    pub fn oct_in_both(&self) -> bool {
        self.keys.iter().any(Jwk::is_oct) && self.jwks.iter().any(Jwk::is_oct)
    }

    /// Kids recorded in `JWT_KEYS_STATE` that are not in `JWT_KEYS`, or recorded with another
    /// state than the key sets give them.
    pub fn record_disagreements(&self) -> Vec<String> {
        let keys = self.ec_keys();
        let held = Self::kid_states(&keys);
        self.record
            .iter()
            .filter(|(kid, rec)| !held.contains(&(kid.as_str(), rec.state)))
            .map(|(kid, _)| kid.clone())
            .collect()
    }

    /// The rules a usable ring obeys, broken ones first in the order a reader would fix them.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        self.duplicate_kid_problems(&mut out);
        self.signer_problems(&mut out);
        self.ec_key_problems(&mut out);
        self.publication_problems(&mut out);
        self.jwks_only_problems(&mut out);
        out
    }

    /// A kid held twice in either set.
    fn duplicate_kid_problems(&self, out: &mut Vec<Problem>) {
        let mut push = |kind, key, message: String| out.push(Problem { kind, key, message });
        for (key, list) in [(KEYS_KEY, &self.keys), (JWKS_KEY, &self.jwks)] {
            let twice = duplicate_kids(list);
            if !twice.is_empty() {
                let kids: Vec<String> = twice.iter().map(|k| shown(k)).collect();
                push(
                    Broken::DuplicateKid,
                    key,
                    format!(
                        "holds more than one key with kid {}: Auth keeps one key per kid, and a rotation step on \
                         that kid would act on every one of them",
                        kids.join(", ")
                    ),
                );
            }
        }
    }

    /// Not exactly one signing key, or one that is not an EC P-256 key with alg ES256.
    fn signer_problems(&self, out: &mut Vec<Problem>) {
        let mut push = |kind, key, message: String| out.push(Problem { kind, key, message });
        let signers: Vec<&Jwk> = self.keys.iter().filter(|jwk| jwk.signs()).collect();
        match signers.as_slice() {
            [signer]
                if !(signer.is_ec()
                    && signer.alg.as_deref() == Some("ES256")
                    && signer.p256_public_key().is_some()) =>
            {
                push(
                    Broken::SignerNotEs256,
                    KEYS_KEY,
                    format!(
                        "signs with key {} ({} {}), but the signing key must be an EC P-256 key with alg ES256",
                        shown(signer.kid()),
                        signer.kty.as_deref().unwrap_or("no kty"),
                        signer.alg.as_deref().unwrap_or("no alg")
                    ),
                );
            }
            [_] => {}
            many => push(
                Broken::SignerCount,
                KEYS_KEY,
                format!(
                    "has {} keys with \"sign\" in key_ops, but Auth signs with exactly one (it refuses to start with \
                     none or several)",
                    many.len()
                ),
            ),
        }
    }

    /// An EC key of `JWT_KEYS` that is not a usable P-256 key.
    fn ec_key_problems(&self, out: &mut Vec<Problem>) {
        let mut push = |kind, key, message: String| out.push(Problem { kind, key, message });
        for jwk in self.keys.iter().filter(|jwk| jwk.is_ec()) {
            if let Some(problem) = ec_key_problem(jwk) {
                push(problem.0, KEYS_KEY, problem.1);
            }
        }
    }

    /// A key of `JWT_KEYS` that `JWT_JWKS` does not publish, or publishes with another public point.
    fn publication_problems(&self, out: &mut Vec<Problem>) {
        let mut push = |kind, key, message: String| out.push(Problem { kind, key, message });
        let by_kid = self.jwks_by_kid();
        for jwk in self.keys.iter().filter(|jwk| !jwk.is_oct()) {
            let published: &[&Jwk] = by_kid.get(jwk.kid()).map_or(&[], Vec::as_slice);
            if published.is_empty() && jwk.has_private_part() {
                push(
                    Broken::Mismatch,
                    JWKS_KEY,
                    format!(
                        "has no key with the kid of JWT_KEYS key {}, so the tokens Auth signs with it cannot be \
                         verified by PostgREST, Realtime, Storage or Functions",
                        shown(jwk.kid())
                    ),
                );
            } else if published.is_empty() {
                push(
                    Broken::JwksMissingKey,
                    JWKS_KEY,
                    format!(
                        "lacks key {} of JWT_KEYS, so PostgREST, Realtime, Storage and Functions reject the tokens it \
                         signs while Auth accepts them",
                        shown(jwk.kid())
                    ),
                );
            } else if jwk.is_ec() && !published.iter().any(|p| same_public(jwk, p)) {
                push(
                    Broken::Mismatch,
                    JWKS_KEY,
                    format!(
                        "holds key {} with the same kid as JWT_KEYS but another public point, so the other \
                         services reject the tokens Auth signs with it",
                        shown(jwk.kid())
                    ),
                );
            }
        }
    }

    /// What only `JWT_JWKS` holds: a key `JWT_KEYS` lacks, a private part.
    fn jwks_only_problems(&self, out: &mut Vec<Problem>) {
        let mut push = |kind, key, message: String| out.push(Problem { kind, key, message });
        let held: HashSet<&str> = self.keys.iter().map(Jwk::kid).collect();
        for jwk in self.jwks.iter().filter(|jwk| !jwk.is_oct()) {
            if !held.contains(jwk.kid()) {
                push(
                    Broken::JwksUnknownKey,
                    JWKS_KEY,
                    format!(
                        "holds key {} that JWT_KEYS does not (a revoked key left behind?), so the tokens it signed \
                         still verify everywhere but Auth",
                        shown(jwk.kid())
                    ),
                );
            }
        }
        if self.jwks.iter().any(Jwk::has_private_part) {
            push(
                Broken::JwksPrivatePart,
                JWKS_KEY,
                "carries a private key part (\"d\"); it is handed to every service and must hold only public keys \
                 (and the oct key)"
                    .into(),
            );
        }
    }

    /// Adds a standby key: its private JWK (`["verify"]`) joins `JWT_KEYS` after the last EC key,
    /// its public JWK joins `JWT_JWKS` likewise, and its time is recorded.
    pub fn add_standby(&mut self, private: Jwk, now: u64, from: Clock) {
        let kid = private.kid().to_owned();
        insert_after_last_ec(&mut self.jwks, private.public_form());
        insert_after_last_ec(&mut self.keys, private);
        self.record.insert(kid, Recorded { state: KeyState::Standby, since: now, from });
    }

    /// Makes `kid` (a standby key) the one signing key; every key that signed becomes a previous
    /// key (verify only, private part kept until `revoke`). Returns the kids that became previous.
    pub fn promote(&mut self, kid: &str, now: u64, from: Clock) -> Vec<String> {
        self.make_signer(kid, KeyState::Previous, now, from)
    }

    /// Makes `kid` (a previous key with its private part) the signing key again and returns the
    /// key that signed until now to standby. Returns the kids that went back to standby.
    pub fn rollback(&mut self, kid: &str, now: u64, from: Clock) -> Vec<String> {
        self.make_signer(kid, KeyState::Standby, now, from)
    }

    /// Makes `kid` the one signing key; every key that signed until now becomes `demoted_to`
    /// (verify only). Returns the kids that were demoted.
    fn make_signer(&mut self, kid: &str, demoted_to: KeyState, now: u64, from: Clock) -> Vec<String> {
        let mut demoted = Vec::new();
        for jwk in self.keys.iter_mut().filter(|jwk| !jwk.is_oct()) {
            let this = jwk.kid().to_owned();
            if this == kid {
                jwk.key_ops = Some(vec!["sign".into(), "verify".into()]);
                self.record.insert(this, Recorded { state: KeyState::Current, since: now, from });
            } else if jwk.signs() {
                jwk.key_ops = Some(vec!["verify".into()]);
                self.record.insert(this.clone(), Recorded { state: demoted_to, since: now, from });
                demoted.push(this);
            }
        }
        demoted
    }

    /// Removes the keys `kids` from both sets and from the record.
    pub fn revoke(&mut self, kids: &[String]) {
        let kids: HashSet<&str> = kids.iter().map(String::as_str).collect();
        let gone = |jwk: &Jwk| !jwk.is_oct() && kids.contains(jwk.kid());
        self.keys.retain(|jwk| !gone(jwk));
        self.jwks.retain(|jwk| !gone(jwk));
        self.record.retain(|kid, _| !kids.contains(kid.as_str()));
    }

    /// A new `JWT_SECRET`: the `oct` key of both sets becomes its key (added where a set has
    /// none); nothing else changes.
    pub fn set_jwt_secret(&mut self, jwt_secret: &str) {
        let fresh = oct_jwk(jwt_secret);
        for list in [&mut self.keys, &mut self.jwks] {
            let mut found = false;
            for jwk in list.iter_mut().filter(|jwk| jwk.is_oct()) {
                jwk.k.clone_from(&fresh.k);
                found = true;
            }
            if !found {
                list.push(fresh.clone());
            }
        }
    }

    /// `JWT_JWKS` rebuilt from every key of `JWT_KEYS`: the public form of each, the `oct` key
    /// as it is. Its members other than `keys` stay.
    pub fn rebuild_jwks(&mut self) {
        self.jwks = self.keys.iter().map(|jwk| if jwk.is_oct() { jwk.clone() } else { jwk.public_form() }).collect();
    }

    /// Drops record entries of keys that are no longer there or whose state was changed outside
    /// `rotate-keys` (their times no longer mean anything).
    pub fn tidy_record(&mut self) {
        let keys = self.ec_keys();
        let held = Self::kid_states(&keys);
        self.record.retain(|kid, rec| held.contains(&(kid.as_str(), rec.state)));
    }

    /// The new values of `JWT_KEYS`, `JWT_JWKS` and `JWT_KEYS_STATE`, as compact JSON.
    pub fn render(&self) -> [(&'static str, String); 3] {
        let mut jwks = self.jwks_rest.clone();
        jwks.insert("keys".into(), Value::Array(self.jwks.iter().map(Jwk::to_value).collect()));
        let record = serde_json::to_value(&self.record).unwrap_or_else(|_| Value::Object(Map::new()));
        [
            (KEYS_KEY, Value::Array(self.keys.iter().map(Jwk::to_value).collect()).to_string()),
            (JWKS_KEY, Value::Object(jwks).to_string()),
            (STATE_KEY, record.to_string()),
        ]
    }
}

/// What is wrong with one EC key of `JWT_KEYS` on its own: its curve, its point, its private
/// scalar and whether that scalar's public point is the one the JWK states.
fn ec_key_problem(jwk: &Jwk) -> Option<(Broken, String)> {
    let kid = shown(jwk.kid());
    let Some(public) = jwk.p256_public_key() else {
        return Some((
            Broken::InvalidKey,
            format!(
                "holds EC key {kid} whose public point is not on P-256 (wrong crv, or x/y not a point of the curve)"
            ),
        ));
    };
    // A public-only key (a previous key written by an older version) has nothing more to check.
    jwk.d.as_ref()?;
    let Some(secret) = jwk.p256_secret_key() else {
        return Some((Broken::InvalidKey, format!("holds EC key {kid} whose private part is not a P-256 private key")));
    };
    (secret.public_key() != public)
        .then(|| (Broken::Mismatch, format!("holds EC key {kid} whose private part does not match its public x/y")))
}

/// The same public key (curve point) in both JWKs.
fn same_public(a: &Jwk, b: &Jwk) -> bool {
    if a.is_ec() {
        a.crv.is_some() && a.x.is_some() && a.y.is_some() && (&a.crv, &a.x, &a.y) == (&b.crv, &b.x, &b.y)
    } else {
        a.public_form().other == b.public_form().other && a.kty == b.kty
    }
}

/// Inserts `jwk` after the last non-`oct` key of `list` (before the `oct` key, as upstream lays
/// it out), or at the start when there is none.
fn insert_after_last_ec(list: &mut Vec<Jwk>, jwk: Jwk) {
    let at = list.iter().rposition(|k| !k.is_oct()).map_or(0, |i| i + 1);
    list.insert(at, jwk);
}

/// `JWT_KEYS` and `JWT_JWKS` after a writer other than `rotate-keys` changed `JWT_SECRET` to
/// `new_jwt_secret` (`Some`) or asked for a new `JWT_JWKS` (`None`): only the `oct` key changes
/// in both sets, and `JWT_JWKS` is rebuilt from every key of `JWT_KEYS`, so every EC key (current,
/// standby, previous) and its state survive (SPEC §7). `JWT_KEYS_STATE` needs no change.
///
/// `jwks` is the current `JWT_JWKS` (its members other than `keys` are kept; absent or
/// unreadable, it is simply rebuilt). Fails when `JWT_KEYS` is not a readable key set: the EC
/// keys in it cannot be kept, and re-minting them is the operator's decision.
pub fn rebuilt_sets(
    keys: &str,
    jwks: Option<&str>,
    new_jwt_secret: Option<&str>,
) -> Result<[(&'static str, String); 2], RingError> {
    let keys = parse_keys(keys)?;
    let jwks_rest = jwks.and_then(parse_jwk_set).map(|(_, rest)| rest).unwrap_or_default();
    let mut ring = KeyRing { keys, jwks: Vec::new(), jwks_rest, record: BTreeMap::new(), record_unreadable: false };
    if let Some(secret) = new_jwt_secret {
        ring.set_jwt_secret(secret);
    }
    ring.rebuild_jwks();
    let [keys, jwks, _] = ring.render();
    Ok([keys, jwks])
}

/// Why the EC keys of `keys` (a `JWT_KEYS` value) may not be replaced by a new ring, if they may
/// not: a key on standby or previous means a rotation is in progress, and replacing the ring
/// would log out every session of those keys and leave `JWT_KEYS_STATE` naming keys that no
/// longer exist. `None` when `keys` holds only a signer (or is unreadable: nothing to keep).
pub fn remint_refusal(keys: &str, state: Option<&str>) -> Option<String> {
    let keys = parse_keys(keys).ok()?;
    let ring = KeyRing::parse_parts(keys, state);
    let in_rotation: Vec<String> = ring
        .ec_keys()
        .into_iter()
        .filter(|k| k.state != KeyState::Current)
        .map(|k| format!("{} ({})", shown(&k.kid), k.state.as_str()))
        .collect();
    (!in_rotation.is_empty()).then(|| {
        format!(
            "holds keys of a rotation in progress ({}): a new ring would log out every session they signed; finish \
             the rotation with `pmoves-secrets rotate-keys` (promote, then revoke) first",
            in_rotation.join(", ")
        )
    })
}

/// The `JWT_KEYS_STATE` of a freshly minted `JWT_KEYS`: its signer is current since `now`, a
/// time of the file (the services run it from their first start). `None` when `keys` has no
/// signer.
pub fn initial_record(keys: &str, now: u64) -> Option<String> {
    let keys = parse_keys(keys).ok()?;
    let signer = keys.iter().find(|jwk| jwk.signs())?;
    let record = BTreeMap::from([(
        signer.kid().to_owned(),
        Recorded { state: KeyState::Current, since: now, from: Clock::File },
    )]);
    serde_json::to_string(&record).ok()
}

impl KeyRing {
    /// A ring of `JWT_KEYS` alone (no `JWT_JWKS`), for the rules that only need the keys.
    fn parse_parts(keys: Vec<Jwk>, state: Option<&str>) -> KeyRing {
        let record = state.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        KeyRing { keys, jwks: Vec::new(), jwks_rest: Map::new(), record, record_unreadable: false }
    }
}

/// `JWT_KEYS_STATE` after `--restart` brought the services up at `up`: every time recorded at
/// `written_at` (the phase's write) now counts from the restart. `None` when `state` is not a
/// readable record.
pub fn restarted_record(state: &str, written_at: u64, up: u64) -> Option<String> {
    let mut record: BTreeMap<String, Recorded> = serde_json::from_str(state).ok()?;
    for rec in record.values_mut().filter(|r| r.since == written_at) {
        rec.since = up;
        rec.from = Clock::Restart;
    }
    serde_json::to_string(&record).ok()
}

/// `JWT_EXPIRY` in seconds, or the default when unset or not a number.
pub fn jwt_expiry_secs(value: Option<&str>) -> u64 {
    value.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(DEFAULT_JWT_EXPIRY_SECS)
}

/// When a previous key (previous since `since`) may be revoked.
pub fn revocable_at(since: u64, jwt_expiry_secs: u64) -> u64 {
    since.saturating_add(jwt_expiry_secs).saturating_add(REVOKE_MARGIN_SECS)
}

/// When a standby key (standby since `since`) may be promoted.
pub fn promotable_at(since: u64) -> u64 {
    since.saturating_add(PROMOTE_AFTER_SECS)
}

/// "40 s", "12 min", "3 h 5 min", "2 d 4 h": a duration for people (minutes rounded up, so a
/// wait is never shown shorter than it is).
pub fn human_duration(secs: u64) -> String {
    if secs < 60 {
        return format!("{secs} s");
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, (secs % 3600).div_ceil(60));
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::EcKey;
    use serde_json::json;

    fn verify_only(ec: &EcKey) -> Jwk {
        Jwk::from_value(&ec.private_jwk(&["verify"]).unwrap()).unwrap()
    }

    fn fresh_ring() -> (KeyRing, String) {
        let ec = EcKey::generate();
        let oct = json!({"kty":"oct","k":"c2VjcmV0","alg":"HS256"});
        let keys = json!([ec.private_jwk(&["sign", "verify"]).unwrap(), oct]).to_string();
        let jwks = json!({"keys":[ec.public_jwk().unwrap(), oct]}).to_string();
        (KeyRing::parse(Some(&keys), Some(&jwks), None).unwrap(), ec.kid().to_owned())
    }

    #[test]
    fn a_fresh_set_has_one_current_key_of_unknown_age() {
        let (ring, kid) = fresh_ring();
        let keys = ring.ec_keys();
        assert_eq!(
            keys,
            [RingKey { kid, state: KeyState::Current, since: None, from: Clock::File, in_jwks: true, private: true }]
        );
        assert_eq!(ring.signing_count(), 1);
    }

    #[test]
    fn stage_promote_revoke_move_the_states_and_keep_the_oct_key() {
        let (mut ring, old) = fresh_ring();
        let new = EcKey::generate();
        ring.add_standby(verify_only(&new), 100, Clock::File);
        assert_eq!(ring.in_state(KeyState::Standby)[0].since, Some(100));
        assert_eq!(ring.signing_count(), 1);
        assert_eq!(ring.promote(new.kid(), 200, Clock::File), std::slice::from_ref(&old));
        let prev = &ring.in_state(KeyState::Previous)[0];
        assert_eq!((prev.kid.as_str(), prev.since, prev.in_jwks), (old.as_str(), Some(200), true));
        assert!(ring.private_jwk(&old).is_some(), "the previous key keeps its private part until revoke");
        assert!(ring.problems().is_empty(), "{:?}", ring.problems());
        assert_eq!(ring.in_state(KeyState::Current)[0].kid, new.kid());
        assert_eq!(ring.signing_count(), 1);
        ring.revoke(std::slice::from_ref(&old));
        assert_eq!(ring.ec_keys().len(), 1);
        let [(_, keys), (_, jwks), (_, state)] = ring.render();
        assert!(keys.contains("\"oct\"") && jwks.contains("\"oct\""));
        assert!(!jwks.contains("\"d\""));
        assert!(!state.contains(&old));
    }

    #[test]
    fn a_record_that_disagrees_with_the_sets_gives_no_time() {
        let (ring, kid) = fresh_ring();
        let [(_, keys), (_, jwks), _] = ring.render();
        let state = format!(r#"{{"{kid}":{{"state":"standby","since":5}},"gone":{{"state":"previous","since":1}}}}"#);
        let ring = KeyRing::parse(Some(&keys), Some(&jwks), Some(&state)).unwrap();
        assert_eq!(ring.ec_keys()[0].since, None);
        let mut expected = vec!["gone".to_owned(), kid];
        expected.sort();
        assert_eq!(ring.record_disagreements(), expected);
        let ring = KeyRing::parse(Some(&keys), Some(&jwks), Some("not json")).unwrap();
        assert!(ring.record_unreadable);
    }

    #[test]
    fn missing_or_malformed_sets_are_refused_naming_the_key() {
        let err = KeyRing::parse(None, Some("{}"), None).unwrap_err();
        assert!(err.missing && err.key == "JWT_KEYS");
        let err = KeyRing::parse(Some("[]"), Some(""), None).unwrap_err();
        assert!(err.missing && err.key == "JWT_JWKS");
        let err = KeyRing::parse(Some("{}"), Some(r#"{"keys":[]}"#), None).unwrap_err();
        assert!(!err.missing && err.key == "JWT_KEYS");
        let err = KeyRing::parse(Some("[]"), Some("[]"), None).unwrap_err();
        assert!(!err.missing && err.key == "JWT_JWKS");
    }

    #[test]
    fn the_api_keys_are_the_catalogues_es256_tokens() {
        let keys: Vec<_> = api_keys().collect();
        assert_eq!(keys, [("ANON_KEY_ASYMMETRIC", "anon"), ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role")]);
    }

    #[test]
    fn times_print_for_people() {
        assert_eq!(human_duration(5), "5 s");
        assert_eq!(human_duration(60), "1 min");
        assert_eq!(human_duration(61), "2 min");
        assert_eq!(human_duration(3600 + 300), "1 h 5 min");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600), "2 d 4 h");
        assert_eq!(revocable_at(1000, 3600), 1000 + 3600 + 900);
        assert_eq!(promotable_at(1000), 1000 + 1200);
        assert_eq!(jwt_expiry_secs(Some(" 7200 ")), 7200);
        assert_eq!(jwt_expiry_secs(Some("1h")), 3600);
    }

    fn kinds(ring: &KeyRing) -> Vec<Broken> {
        ring.problems().into_iter().map(|p| p.kind).collect()
    }

    #[test]
    fn a_broken_ring_names_each_rule() {
        let (ring, kid) = fresh_ring();
        assert!(ring.problems().is_empty(), "{:?}", ring.problems());
        let [(_, keys), (_, jwks), _] = ring.render();
        // The same key twice.
        let list: Vec<Value> = serde_json::from_str(&keys).unwrap();
        let doubled = Value::Array(vec![list[0].clone(), list[0].clone(), list[1].clone()]).to_string();
        let ring = KeyRing::parse(Some(&doubled), Some(&jwks), None).unwrap();
        assert!(kinds(&ring).contains(&Broken::DuplicateKid), "{:?}", kinds(&ring));
        assert!(kinds(&ring).contains(&Broken::SignerCount));
        // An RS256 signer.
        let rs = keys.replace("\"ES256\"", "\"RS256\"");
        assert_eq!(kinds(&KeyRing::parse(Some(&rs), Some(&jwks), None).unwrap()), [Broken::SignerNotEs256]);
        // A private part in JWT_JWKS.
        let leaked = json!({ "keys": list }).to_string();
        assert_eq!(kinds(&KeyRing::parse(Some(&keys), Some(&leaked), None).unwrap()), [Broken::JwksPrivatePart]);
        // A key JWT_KEYS no longer has.
        let other = EcKey::generate();
        let mut extra: Value = serde_json::from_str(&jwks).unwrap();
        extra["keys"].as_array_mut().unwrap().push(other.public_jwk().unwrap());
        let ring = KeyRing::parse(Some(&keys), Some(&extra.to_string()), None).unwrap();
        assert_eq!(kinds(&ring), [Broken::JwksUnknownKey]);
        // A private part that is another key's.
        let mut wrong = list.clone();
        wrong[0]["d"] = other.private_jwk(&["sign"]).unwrap()["d"].clone();
        let ring = KeyRing::parse(Some(&Value::Array(wrong).to_string()), Some(&jwks), None).unwrap();
        assert_eq!(kinds(&ring), [Broken::Mismatch]);
        assert!(ring.problems()[0].message.contains(&kid));
    }

    #[test]
    fn a_new_jwt_secret_changes_only_the_oct_key_and_jwks_is_rebuilt_from_every_key() {
        let (mut ring, old) = fresh_ring();
        let new = EcKey::generate();
        ring.add_standby(verify_only(&new), 1, Clock::File);
        let [(_, keys), _, (_, state)] = ring.render();
        assert!(remint_refusal(&keys, Some(&state)).is_some_and(|m| m.contains(new.kid())));
        let [(_, new_keys), (_, new_jwks)] = rebuilt_sets(&keys, None, Some("another-secret")).unwrap();
        let ring2 = KeyRing::parse(Some(&new_keys), Some(&new_jwks), Some(&state)).unwrap();
        assert_eq!(ring2.ec_keys(), ring.ec_keys(), "every EC key and its state stay");
        assert!(ring2.problems().is_empty(), "{:?}", ring2.problems());
        let oct = ring2.keys().iter().find(|k| k.is_oct()).unwrap();
        assert_eq!(oct.oct_bytes().unwrap().as_slice(), b"another-secret");
        assert!(new_jwks.contains(&old) && new_jwks.contains(new.kid()) && !new_jwks.contains("\"d\""));
        assert!(remint_refusal(&fresh_ring().0.render()[0].1, None).is_none());
        assert!(initial_record(&keys, 9).is_some_and(|r| r.contains(&old) && r.contains("current")));
    }

    #[test]
    fn rollback_returns_to_the_previous_key_and_standby_is_after_the_signer() {
        let (mut ring, old) = fresh_ring();
        let new = EcKey::generate();
        ring.add_standby(verify_only(&new), 1, Clock::File);
        ring.promote(new.kid(), 2, Clock::File);
        // Without the record the places still tell previous from standby.
        let [(_, keys), (_, jwks), _] = ring.render();
        let bare = KeyRing::parse(Some(&keys), Some(&jwks), None).unwrap();
        assert_eq!(bare.in_state(KeyState::Previous)[0].kid, old);
        assert_eq!(ring.rollback(&old, 3, Clock::Restart), [new.kid().to_owned()]);
        assert_eq!(ring.in_state(KeyState::Current)[0].kid, old);
        let standby = &ring.in_state(KeyState::Standby)[0];
        assert_eq!((standby.kid.as_str(), standby.since, standby.from), (new.kid(), Some(3), Clock::Restart));
        assert!(ring.problems().is_empty());
    }

    /// A ring of `n` keys as `rotate-keys` leaves it after many rotations (one current, the rest
    /// previous), built from one key pair's parts under `n` kids: only the sizes matter.
    fn large_ring(n: usize) -> KeyRing {
        let ec = EcKey::generate();
        let public = ec.public_jwk().unwrap();
        let (mut keys, mut jwks, mut record) = (Vec::new(), Vec::new(), serde_json::Map::new());
        for i in 0..n {
            let mut jwk = public.clone();
            jwk["kid"] = Value::from(format!("k{i}"));
            jwks.push(jwk.clone());
            if i + 1 == n {
                jwk = ec.private_jwk(&["sign", "verify"]).unwrap();
                jwk["kid"] = Value::from(format!("k{i}"));
            }
            keys.push(jwk);
            let state = if i + 1 == n { "current" } else { "previous" };
            record.insert(format!("k{i}"), json!({"state": state, "since": i}));
        }
        let oct = json!({"kty":"oct","k":"c2VjcmV0","alg":"HS256"});
        keys.push(oct.clone());
        jwks.push(oct);
        let (keys, jwks) = (Value::from(keys).to_string(), json!({ "keys": jwks }).to_string());
        KeyRing::parse(Some(&keys), Some(&jwks), Some(&Value::from(record).to_string())).unwrap()
    }

    #[test]
    fn reading_a_large_ring_reads_each_kid_a_bounded_number_of_times() {
        let n = 2_000;
        let ring = large_ring(n);
        crate::jwt::KIDS_READ.with(|c| c.set(0));
        let keys = ring.ec_keys();
        assert_eq!(keys.len(), n);
        assert!(keys.iter().all(|k| k.in_jwks && k.since.is_some()), "{:?}", &keys[..2]);
        assert!(ring.record_disagreements().is_empty());
        let read = crate::jwt::KIDS_READ.with(std::cell::Cell::get);
        // Two readings (the keys, then the record's check), each reading every kid of both sets
        // once: a scan of JWT_JWKS per key would read n² kids.
        assert!(read <= 2 * 2 * (n + 1), "{read} kids read for a ring of {n} keys (and the oct key)");
        crate::jwt::KIDS_READ.with(|c| c.set(0));
        assert_eq!(ring.problems(), []);
        let read = crate::jwt::KIDS_READ.with(std::cell::Cell::get);
        assert!(read <= 8 * n, "problems: {read} kids read for a ring of {n} keys");
    }
}
