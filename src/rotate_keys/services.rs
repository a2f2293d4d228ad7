//! Which services of the stack read which variable, so that each phase names exactly the
//! services to recreate (upstream's `docker-compose.yml`; service names as compose knows them).

/// `(variable, services reading it)`. `JWT_KEYS_STATE` is read by nobody, by design.
const READERS: &[(&str, &[&str])] = &[
    // GOTRUE_JWT_KEYS
    ("JWT_KEYS", &["auth"]),
    // PGRST_JWT_SECRET, API_JWT_JWKS, JWT_JWKS, SUPABASE_JWKS
    ("JWT_JWKS", &["rest", "realtime", "storage", "functions"]),
    // the API gateway hands them to clients and checks them
    ("ANON_KEY_ASYMMETRIC", &["api-gw"]),
    ("SERVICE_ROLE_KEY_ASYMMETRIC", &["api-gw"]),
    ("SUPABASE_PUBLISHABLE_KEY", &["studio", "api-gw", "functions"]),
    ("SUPABASE_SECRET_KEY", &["studio", "api-gw", "functions"]),
];

/// The services reading any of `keys`, each once, in a stable order.
pub(super) fn readers_of(keys: &[&str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (_, services) in READERS.iter().filter(|(key, _)| keys.contains(key)) {
        for service in services.iter() {
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
            ["auth", "rest", "realtime", "storage", "functions"]
        );
        assert_eq!(readers_of(&["JWT_KEYS", "ANON_KEY_ASYMMETRIC", "SERVICE_ROLE_KEY_ASYMMETRIC"]), ["auth", "api-gw"]);
        assert_eq!(readers_of(&["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"]), ["studio", "api-gw", "functions"]);
        assert!(readers_of(&["JWT_KEYS_STATE"]).is_empty());
    }
}
