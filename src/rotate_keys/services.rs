//! Which services to recreate after a phase: the readers of each changed variable, from the
//! stack catalogue ([`crate::stack::KeySpec::read_by`]). `JWT_KEYS_STATE` is read by nobody, by
//! design.

use crate::stack;

/// The services reading any of `keys`, each once, in the order the keys are given.
pub(super) fn readers_of(keys: &[&str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for spec in keys.iter().filter_map(|key| stack::key(key)) {
        for service in spec.read_by {
            if !out.contains(service) {
                out.push(service);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_names_its_readers_once() {
        assert_eq!(
            readers_of(&["JWT_KEYS", "JWT_JWKS", "JWT_KEYS_STATE"]),
            ["auth", "functions", "realtime", "rest", "storage"]
        );
        assert_eq!(readers_of(&["JWT_KEYS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"]), ["auth", "api-gw"]);
        assert_eq!(readers_of(&["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"]), ["api-gw", "functions", "studio"]);
        assert!(readers_of(&["JWT_KEYS_STATE"]).is_empty());
    }
}
