//! The harness's passwords: made at random, and kept out of every message it prints.
//!
//! Failure messages quote command lines, stderr and SQL, which may hold a password in plain or
//! percent-encoded form; `redact` replaces each form with `<redacted>`.

use std::io::Read;

use super::url::{pct_encode, pct_encode_all};

/// 2*n lowercase hex chars from the OS CSPRNG.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("pg harness: cannot read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secrets to redact: each password and its percent-encoded forms.
pub(super) fn secrets_for(passwords: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for p in passwords.iter().filter(|p| !p.is_empty()) {
        v.push(p.to_string());
        v.push(pct_encode(p));
        v.push(pct_encode_all(p));
    }
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v.dedup();
    v
}

/// `text` with every secret of `secrets` (4 chars or longer) replaced by `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}
