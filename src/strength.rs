//! How strong a secret's value is: upstream's placeholders, and a strength estimate held against
//! the minimum each key needs.
//!
//! Shared by `check` (which reports weak and placeholder values) and `generate-keys --env-file`
//! (which replaces them), so the two can never disagree about what is weak. The rule per key (its
//! placeholders and minimum) is in the stack catalogue: `stack::keys` for the keys we mint,
//! `stack::settings::THIRD_PARTY_SECRETS` for those the operator brings.
//!
//! The estimate is zxcvbn's (dictionary words, keyboard walks, repeats, sequences, dates,
//! l33t-speak), not a list of bad values. zxcvbn's cost grows faster than linearly with the length
//! and its guess count saturates near 10^19, so a value is estimated in 16-character windows whose
//! log10 guesses add up; a window identical to an earlier one adds nothing, so a strong 16
//! characters repeated four times counts once. A random value from any recipe scores far above
//! every minimum (a test mints thousands to prove it).

use crate::stack::{self, settings::THIRD_PARTY_SECRETS};

/// Width of the windows a value is estimated in.
const WINDOW: usize = 16;

/// Why a value is not fit to be a secret.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weakness {
    /// One of upstream's published placeholders; the key it stands in upstream's template.
    Placeholder(&'static str),
    /// Estimated to fall to fewer guesses than the key needs (log10 of the estimate and of the
    /// minimum).
    Weak { guesses_log10: f64, minimum: f64 },
}

/// The minimum strength `key` needs, when its value is a free string: the stack catalogue's rule
/// for the key, or that of a third-party secret.
pub fn minimum_for(key: &str) -> Option<f64> {
    match stack::key(key) {
        Some(spec) => spec.min_guesses_log10,
        None => THIRD_PARTY_SECRETS.iter().find(|s| s.key == key).and_then(|s| s.min_guesses_log10),
    }
}

/// Whether `value` is one of upstream's placeholders for a secret, and for which key.
pub fn placeholder(value: &str) -> Option<&'static str> {
    let catalogue = stack::KEYS.iter().map(|s| (s.key, s.placeholders));
    let third_party = THIRD_PARTY_SECRETS.iter().map(|s| (s.key, s.placeholders));
    catalogue.chain(third_party).find(|(_, placeholders)| placeholders.contains(&value)).map(|(key, _)| key)
}

/// What is wrong with `value` as the value of `key`, if anything. Empty values are someone
/// else's finding (missing).
pub fn judge(key: &str, value: &str) -> Option<Weakness> {
    if value.is_empty() {
        return None;
    }
    if let Some(stands_for) = placeholder(value) {
        return Some(Weakness::Placeholder(stands_for));
    }
    let minimum = minimum_for(key)?;
    let guesses_log10 = estimate_log10(value);
    (guesses_log10 < minimum).then_some(Weakness::Weak { guesses_log10, minimum })
}

/// log10 of the guesses an informed attacker needs, summed over 16-character windows (an
/// identical window counted once). Windows are cut on character boundaries.
pub fn estimate_log10(value: &str) -> f64 {
    let mut seen: Vec<&str> = Vec::new();
    let mut total = 0.0;
    for window in windows(value) {
        if seen.contains(&window) {
            continue;
        }
        seen.push(window);
        total += zxcvbn::zxcvbn(window, &[]).guesses_log10();
    }
    total
}

/// `value` cut into pieces of [`WINDOW`] characters (the last may be shorter).
fn windows(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = rest.char_indices().nth(WINDOW).map_or(rest.len(), |(i, _)| i);
        let (window, tail) = rest.split_at(cut);
        rest = tail;
        Some(window)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_of_upstreams_template_are_named() {
        assert_eq!(
            judge("REALTIME_DB_ENC_KEY", "your16charkey123"),
            Some(Weakness::Placeholder("REALTIME_DB_ENC_KEY"))
        );
        assert_eq!(judge("SMTP_PASS", "fake_mail_password"), Some(Weakness::Placeholder("SMTP_PASS")));
        // In any key: a placeholder copied elsewhere is still public.
        assert!(matches!(judge("MY_KEY", "sk-proj-xxxxxxxx"), Some(Weakness::Placeholder(_))));
        assert_eq!(judge("SMTP_PASS", ""), None);
    }

    #[test]
    fn weak_values_are_weak_for_every_key_with_a_minimum() {
        let weak = [
            "changeme",
            "changemechangemechangemechangeme",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "0123456789abcdef0123456789abcdef",
            "passwordxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "abcdefghijklmnopqrstuvwxyz012345",
            "1234567890123456",
            "qwertyuiopasdfgh",
            "deadbeefdeadbeefdeadbeefdeadbeef",
            "hunter2",
            "secret",
        ];
        let keys = stack::KEYS.iter().map(|s| s.key).chain(THIRD_PARTY_SECRETS.iter().map(|s| s.key));
        for key in keys.filter(|key| minimum_for(key).is_some()) {
            for value in weak {
                assert!(matches!(judge(key, value), Some(Weakness::Weak { .. })), "{key}={value} should be weak");
            }
        }
    }

    #[test]
    fn strong_human_passwords_pass_where_people_type_them() {
        assert_eq!(judge("DASHBOARD_PASSWORD", "plaid-Otter-quietly-47-lantern"), None);
        assert_eq!(judge("SMTP_PASS", "Xk9#mQ2$vL7pR4wZ"), None);
        // Keys without a minimum (JWTs, settings) are not estimated.
        assert_eq!(judge("ANON_KEY", "short"), None);
    }

    /// Zero false positives: every recipe's minted values clear their key's minimum, with room
    /// to spare (the lowest estimate per key is printed for the record). The values are made by
    /// the recipes' own encodings from a seeded generator, so a failure names its seed and value
    /// and reruns the same (`PMOVES_STRENGTH_SEED=<n>` tries another seed).
    #[test]
    fn no_minted_value_is_ever_weak() {
        use rand::{RngCore as _, SeedableRng as _};

        let seed = std::env::var("PMOVES_STRENGTH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(16_u64);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut lowest: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
        for _ in 0..1000 {
            for spec in stack::keys::catalogue(false) {
                let (Some(minimum), Some(count)) =
                    (minimum_for(spec.key), crate::secrets::random_byte_count(spec.recipe))
                else {
                    continue;
                };
                let mut bytes = vec![0_u8; count];
                rng.fill_bytes(&mut bytes);
                let value = crate::secrets::encode_random_bytes(spec.recipe, &bytes).unwrap();
                let estimate = estimate_log10(value.expose());
                assert!(
                    estimate >= minimum,
                    "seed {seed}: the minted {}={} was judged weak ({estimate:.1} < {minimum})",
                    spec.key,
                    value.expose()
                );
                let low = lowest.entry(spec.key).or_insert(f64::MAX);
                *low = low.min(estimate);
            }
        }
        let with_minimum = stack::KEYS.iter().filter(|s| !s.asymmetric && s.min_guesses_log10.is_some()).count();
        assert_eq!(lowest.len(), with_minimum, "every catalogue key with a minimum was minted");
        println!("lowest estimate (log10 guesses) over 1000 sets of seed {seed}: {lowest:?}");
    }

    #[test]
    fn windows_cut_on_character_boundaries_and_repeats_count_once() {
        let pieces: Vec<&str> = windows("ééééééééééééééééé-").collect();
        assert_eq!(pieces, ["éééééééééééééééé", "é-"]);
        let strong = "k3J9q_Lm2xP7vR4z";
        assert!(estimate_log10(&strong.repeat(4)) <= estimate_log10(strong) + 1e-9);
    }
}
