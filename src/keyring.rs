//! The signing keys of the asymmetric set and the state of each (SPEC §7), read from and written
//! to the `.env` alone.
//!
//! `rotate-keys` changes the ring and `check` audits it, so the model lives here, below both.
//!
//! # Where the state is recorded, and why there
//! What the services act on is encoded the way they already read it, in the key sets:
//! - **current**: the one EC key of `JWT_KEYS` whose `key_ops` contains `sign` (Auth signs with
//!   it; its configuration check, `JwtKeysDecoder::Validate`, refuses none or several);
//! - **standby**: an EC key of `JWT_KEYS` with its private part but `key_ops` `["verify"]`;
//! - **previous**: an EC key of `JWT_KEYS` reduced to its public part, `key_ops` `["verify"]`
//!   (it will never sign again, so its private part is dropped at promotion). Auth accepts a
//!   public JWK there: it parses each entry, takes `PublicKeyOf` it (a public key is its own) and
//!   verifies by `kid`.
//!
//! Each of them is also in `JWT_JWKS` (public part, `["verify"]`), which is all PostgREST,
//! Realtime and Storage read. The times ("since when") go in a variable of their own,
//! [`STATE_KEY`] (`JWT_KEYS_STATE`), that no service reads: extra members inside the JWKs would
//! also be ignored by today's parsers, but Auth republishes its keys at
//! `/.well-known/jwks.json`, and a stricter JWK parser in any of four services could reject a
//! key set for a member it does not know. A variable nobody reads cannot break anybody. If the
//! record and the key sets ever disagree (a hand edit), the key sets win and the time is
//! treated as unknown.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::stack;

/// The variable holding each key's state and since when: compact JSON
/// `{"<kid>":{"state":"standby","since":<unix seconds>},...}`.
pub const STATE_KEY: &str = "JWT_KEYS_STATE";

/// Auth's signing keys (private EC JWKs and the `oct` key), a JSON array.
pub const KEYS_KEY: &str = "JWT_KEYS";

/// The verification key set, `{"keys":[...]}`.
pub const JWKS_KEY: &str = "JWT_JWKS";

/// The ES256 API keys and their roles (the catalogue's `Es256Jwt` keys): signed by the current
/// key, re-minted at promotion.
pub fn api_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    stack::KEYS.iter().filter_map(|spec| match spec.recipe {
        stack::Recipe::Es256Jwt(role) => Some((spec.key, role)),
        _ => None,
    })
}

/// Minimum time between `stage` and `promote`: verifiers that fetch a JWKS cache it (supabase-js
/// and most JWT middleware for about ten minutes), so the new key must be known everywhere before
/// it signs anything.
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

/// One entry of [`STATE_KEY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The state the key had when recorded.
    pub state: KeyState,
    /// Since when, in seconds since the Unix epoch.
    pub since: u64,
}

/// One EC key of the ring, as the services see it plus its recorded time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingKey {
    /// The key id (JWT header `kid`).
    pub kid: String,
    /// The state its place in the key sets gives it.
    pub state: KeyState,
    /// Since when it has that state: `None` when not recorded, or recorded for another state.
    pub since: Option<u64>,
    /// Whether `JWT_JWKS` carries the same public key under the same `kid`.
    pub in_jwks: bool,
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

/// The asymmetric key sets of one `.env`, with the recorded states.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// `JWT_KEYS`, in file order (EC keys and the `oct` key).
    keys: Vec<Value>,
    /// The `keys` of `JWT_JWKS`, in file order.
    jwks: Vec<Value>,
    /// Members of `JWT_JWKS` other than `keys`, kept as they were.
    jwks_rest: Map<String, Value>,
    /// `JWT_KEYS_STATE`, by kid.
    record: BTreeMap<String, Recorded>,
    /// `JWT_KEYS_STATE` is set but not readable as a record.
    pub record_unreadable: bool,
}

fn kty(jwk: &Value) -> Option<&str> {
    jwk.get("kty").and_then(Value::as_str)
}

fn kid_of(jwk: &Value) -> Option<&str> {
    #[cfg(test)]
    tests::KIDS_READ.with(|count| count.set(count.get() + 1));
    jwk.get("kid").and_then(Value::as_str)
}

fn is_ec(jwk: &Value) -> bool {
    kty(jwk) == Some("EC")
}

/// Whether the JWK's `key_ops` contains `sign`: the key Auth signs with.
pub fn signs(jwk: &Value) -> bool {
    jwk.get("key_ops").and_then(Value::as_array).is_some_and(|ops| ops.iter().any(|op| op == "sign"))
}

/// The state the key sets give an EC key of `JWT_KEYS`.
fn structural_state(jwk: &Value) -> KeyState {
    if signs(jwk) {
        KeyState::Current
    } else if jwk.get("d").is_some() {
        KeyState::Standby
    } else {
        KeyState::Previous
    }
}

/// The same public key (curve point) in both JWKs.
fn same_public(a: &Value, b: &Value) -> bool {
    ["crv", "x", "y"].iter().all(|m| a.get(m).is_some() && a.get(m) == b.get(m))
}

/// The public form of a JWK: `d` dropped, verify only.
fn public_form(jwk: &Value) -> Value {
    let mut public = jwk.clone();
    if let Some(map) = public.as_object_mut() {
        map.remove("d");
        map.insert("key_ops".into(), Value::from(vec!["verify"]));
    }
    public
}

impl KeyRing {
    /// Reads the ring from the values of `JWT_KEYS`, `JWT_JWKS` and `JWT_KEYS_STATE` (empty
    /// counts as absent). Fails when either set is missing or is not a JSON key set.
    pub fn parse(keys: Option<&str>, jwks: Option<&str>, state: Option<&str>) -> Result<Self, RingError> {
        let keys = keys.filter(|v| !v.trim().is_empty());
        let jwks = jwks.filter(|v| !v.trim().is_empty());
        let missing = |key: &'static str| RingError {
            key,
            problem: "is missing or empty, so the stack has no asymmetric key set".into(),
            missing: true,
        };
        let not_a_set = |key: &'static str, expected: &str| RingError {
            key,
            problem: format!("is not a JSON key set ({expected})"),
            missing: false,
        };
        let keys = keys.ok_or_else(|| missing(KEYS_KEY))?;
        let jwks = jwks.ok_or_else(|| missing(JWKS_KEY))?;
        let keys = match serde_json::from_str::<Value>(keys) {
            Ok(Value::Array(list)) if list.iter().all(Value::is_object) => list,
            _ => return Err(not_a_set(KEYS_KEY, "a JSON array of JWKs")),
        };
        let (jwks, jwks_rest) = match serde_json::from_str::<Value>(jwks) {
            Ok(Value::Object(mut map)) => match map.remove("keys") {
                Some(Value::Array(list)) if list.iter().all(Value::is_object) => (list, map),
                _ => return Err(not_a_set(JWKS_KEY, "{\"keys\": [...]}")),
            },
            _ => return Err(not_a_set(JWKS_KEY, "{\"keys\": [...]}")),
        };
        let state = state.filter(|v| !v.trim().is_empty());
        let (record, record_unreadable) = match state.map(serde_json::from_str::<BTreeMap<String, Recorded>>) {
            None => (BTreeMap::new(), false),
            Some(Ok(record)) => (record, false),
            Some(Err(_)) => (BTreeMap::new(), true),
        };
        Ok(KeyRing { keys, jwks, jwks_rest, record, record_unreadable })
    }

    /// The EC keys of `JWT_KEYS`, in file order, with their states.
    ///
    /// Linear in the size of the ring: `JWT_JWKS` is indexed by `kid` once, so each key is
    /// compared only with the public keys of its own `kid`.
    pub fn ec_keys(&self) -> Vec<RingKey> {
        let mut public_by_kid: HashMap<&str, Vec<&Value>> = HashMap::new();
        for jwk in self.jwks.iter().filter(|jwk| is_ec(jwk)) {
            if let Some(kid) = kid_of(jwk) {
                public_by_kid.entry(kid).or_default().push(jwk);
            }
        }
        self.keys
            .iter()
            .filter(|jwk| is_ec(jwk))
            .map(|jwk| {
                let kid = kid_of(jwk).unwrap_or_default().to_owned();
                let state = structural_state(jwk);
                let since = self.record.get(&kid).filter(|r| r.state == state).map(|r| r.since);
                let in_jwks = public_by_kid
                    .get(kid.as_str())
                    .is_some_and(|candidates| candidates.iter().any(|pub_jwk| same_public(jwk, pub_jwk)));
                RingKey { kid, state, since, in_jwks }
            })
            .collect()
    }

    /// The `(kid, state)` of every EC key, for the record's checks.
    fn kid_states(keys: &[RingKey]) -> HashSet<(&str, KeyState)> {
        keys.iter().map(|k| (k.kid.as_str(), k.state)).collect()
    }

    /// The keys in `state`.
    pub fn in_state(&self, state: KeyState) -> Vec<RingKey> {
        self.ec_keys().into_iter().filter(|k| k.state == state).collect()
    }

    /// How many keys of `JWT_KEYS` (of any type) Auth would sign with.
    pub fn signing_count(&self) -> usize {
        self.keys.iter().filter(|jwk| signs(jwk)).count()
    }

    /// The kids of the EC keys of `JWT_KEYS` that carry their private part.
    pub fn private_kids(&self) -> HashSet<&str> {
        self.keys.iter().filter(|jwk| is_ec(jwk) && jwk.get("d").is_some()).filter_map(kid_of).collect()
    }

    /// The private JWK of the key `kid` in `JWT_KEYS`.
    pub fn private_jwk(&self, kid: &str) -> Option<&Value> {
        self.keys.iter().find(|jwk| is_ec(jwk) && kid_of(jwk) == Some(kid) && jwk.get("d").is_some())
    }

    /// Whether both sets carry an `oct` (HS256) key, through which the legacy API keys verify.
    pub fn oct_in_both(&self) -> bool {
        let has_oct = |list: &[Value]| list.iter().any(|jwk| kty(jwk) == Some("oct"));
        has_oct(&self.keys) && has_oct(&self.jwks)
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

    /// Adds a standby key: its private JWK (`["verify"]`) joins `JWT_KEYS` after the last EC key,
    /// its public JWK joins `JWT_JWKS` likewise, and its time is recorded.
    pub fn add_standby(&mut self, private: Value, public: Value, now: u64) {
        let kid = kid_of(&private).unwrap_or_default().to_owned();
        insert_after_last_ec(&mut self.keys, private);
        insert_after_last_ec(&mut self.jwks, public);
        self.record.insert(kid, Recorded { state: KeyState::Standby, since: now });
    }

    /// Makes `kid` (a standby key) the one signing key; every key that signed becomes a previous
    /// key (verify only, private part dropped). Returns the kids that became previous.
    pub fn promote(&mut self, kid: &str, now: u64) -> Vec<String> {
        let mut demoted = Vec::new();
        for jwk in self.keys.iter_mut().filter(|jwk| is_ec(jwk)) {
            let this = kid_of(jwk).unwrap_or_default().to_owned();
            if this == kid {
                if let Some(map) = jwk.as_object_mut() {
                    map.insert("key_ops".into(), Value::from(vec!["sign", "verify"]));
                }
                self.record.insert(this, Recorded { state: KeyState::Current, since: now });
            } else if signs(jwk) {
                *jwk = public_form(jwk);
                self.record.insert(this.clone(), Recorded { state: KeyState::Previous, since: now });
                demoted.push(this);
            }
        }
        demoted
    }

    /// Removes the keys `kids` from both sets and from the record.
    pub fn revoke(&mut self, kids: &[String]) {
        // A set, so revoking every previous key of a large ring stays linear.
        let kids: HashSet<&str> = kids.iter().map(String::as_str).collect();
        let gone = |jwk: &Value| is_ec(jwk) && kid_of(jwk).is_some_and(|k| kids.contains(k));
        self.keys.retain(|jwk| !gone(jwk));
        self.jwks.retain(|jwk| !gone(jwk));
        self.record.retain(|kid, _| !kids.contains(kid.as_str()));
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
        jwks.insert("keys".into(), Value::Array(self.jwks.clone()));
        let record = serde_json::to_value(&self.record).unwrap_or_else(|_| Value::Object(Map::new()));
        [
            (KEYS_KEY, Value::Array(self.keys.clone()).to_string()),
            (JWKS_KEY, Value::Object(jwks).to_string()),
            (STATE_KEY, record.to_string()),
        ]
    }
}

/// Inserts `jwk` after the last EC key of `list` (before the `oct` key, as upstream lays it out),
/// or at the start when there is none.
fn insert_after_last_ec(list: &mut Vec<Value>, jwk: Value) {
    let at = list.iter().rposition(is_ec).map_or(0, |i| i + 1);
    list.insert(at, jwk);
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

/// "12 min", "3 h 5 min", "2 d 4 h": a duration for people.
pub fn human_duration(secs: u64) -> String {
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
    use std::cell::Cell;

    thread_local! {
        /// How many JWKs had their `kid` read on this thread: the work of matching keys by kid.
        pub(super) static KIDS_READ: Cell<usize> = const { Cell::new(0) };
    }

    /// A ring of `n` EC keys as `rotate-keys` leaves it after many rotations (one current, the
    /// rest previous), built from one key pair's parts under `n` kids: only the sizes matter.
    fn large_ring(n: usize) -> KeyRing {
        let ec = EcKey::generate();
        let public = ec.public_jwk().unwrap();
        let mut keys = Vec::with_capacity(n + 1);
        let mut jwks = Vec::with_capacity(n + 1);
        let mut record = serde_json::Map::new();
        for i in 0..n {
            let mut jwk = public.clone();
            jwk["kid"] = Value::from(format!("k{i}"));
            jwks.push(jwk.clone());
            if i == 0 {
                jwk = ec.private_jwk(&["sign", "verify"]).unwrap();
                jwk["kid"] = Value::from("k0");
            }
            keys.push(jwk);
            record.insert(format!("k{i}"), json!({"state": if i == 0 { "current" } else { "previous" }, "since": i}));
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
        KIDS_READ.with(|c| c.set(0));
        let keys = ring.ec_keys();
        assert_eq!(keys.len(), n);
        assert!(keys.iter().all(|k| k.in_jwks && k.since.is_some()));
        assert!(ring.record_disagreements().is_empty());
        let read = KIDS_READ.with(Cell::get);
        // Two readings (the keys, then the record's check), each reading every kid of both sets
        // once: a scan of JWT_JWKS per key would read n² kids.
        assert!(read <= 2 * 2 * n, "{read} kids read for a ring of {n} keys");
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
        assert_eq!(keys, [RingKey { kid, state: KeyState::Current, since: None, in_jwks: true }]);
        assert_eq!(ring.signing_count(), 1);
    }

    #[test]
    fn stage_promote_revoke_move_the_states_and_keep_the_oct_key() {
        let (mut ring, old) = fresh_ring();
        let new = EcKey::generate();
        ring.add_standby(new.private_jwk(&["verify"]).unwrap(), new.public_jwk().unwrap(), 100);
        assert_eq!(ring.in_state(KeyState::Standby)[0].since, Some(100));
        assert_eq!(ring.signing_count(), 1);
        assert_eq!(ring.promote(new.kid(), 200), std::slice::from_ref(&old));
        let prev = &ring.in_state(KeyState::Previous)[0];
        assert_eq!((prev.kid.as_str(), prev.since, prev.in_jwks), (old.as_str(), Some(200), true));
        assert!(ring.private_jwk(&old).is_none(), "the previous key loses its private part");
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
        assert_eq!(human_duration(60), "1 min");
        assert_eq!(human_duration(61), "2 min");
        assert_eq!(human_duration(3600 + 300), "1 h 5 min");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600), "2 d 4 h");
        assert_eq!(revocable_at(1000, 3600), 1000 + 3600 + 900);
        assert_eq!(promotable_at(1000), 1000 + 1200);
        assert_eq!(jwt_expiry_secs(Some(" 7200 ")), 7200);
        assert_eq!(jwt_expiry_secs(Some("1h")), 3600);
    }
}
