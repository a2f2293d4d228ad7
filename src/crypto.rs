//! The encryption two services apply to the copies of secrets they keep in the database, written
//! and read exactly as they do, so the tool can check a copy and re-encrypt it under a new key.
//!
//! - **Supavisor** stores its pooler credentials (`_supavisor.users.db_pass_encrypted`) through
//!   its Cloak vault: `Supavisor.Vault` configures `Cloak.Ciphers.AES.GCM` with the tag
//!   `"AES.GCM.V1"` and `key: System.get_env("VAULT_ENC_KEY")` (supabase/supavisor
//!   `config/runtime.exs`, commit 03e5cc5), so the key is the 32 bytes of the `.env` value as
//!   text. Cloak 1.1.4 (the version in supavisor's `mix.lock`), `lib/cloak/ciphers/aes_gcm.ex` and
//!   `lib/cloak/tags/encoder.ex` (danielberkompas/cloak tag v1.1.4): AES-256-GCM with the
//!   additional data `"AES256GCM"`, a random 16-byte IV, and the stored value
//!   `0x01 ‖ len(tag) ‖ tag ‖ IV ‖ GCM tag (16 bytes) ‖ ciphertext` — the authentication tag
//!   *before* the ciphertext.
//! - **Realtime** (`Realtime.Crypto`, supabase/realtime `lib/realtime/crypto.ex`, commit
//!   5cc8b8c and still the default branch at 833cf36) encrypts with AES-128-ECB under
//!   `DB_ENC_KEY` (the 16 bytes of `REALTIME_DB_ENC_KEY` as text; upstream's compose file falls
//!   back to `supabaserealtime`), padding PKCS#7-style, and stores standard base64. Newer
//!   Realtime can also write AES-256-GCM values prefixed `g1:` under a separate `DB_ENC_KEY_GCM`,
//!   only when `DB_ENC_WRITE_GCM` is set (upstream's compose file sets neither); [`realtime::is_gcm`]
//!   tells them apart, and they are not under any key of the `.env`.
//!
//! Nothing here prints or logs a value; errors say what failed, never with what.

use std::fmt;

use zeroize::Zeroizing;

/// Why a stored value could not be decrypted (or a key could not be used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherError {
    /// The key does not have the length the cipher needs (the service fails the same way).
    KeyLength {
        /// Bytes the cipher needs.
        expected: usize,
        /// Bytes the key has.
        actual: usize,
    },
    /// The value is not laid out as the service writes it (wrong header, too short, not base64).
    Format,
    /// The layout is right but the key is not the one it was encrypted with (GCM's
    /// authentication failed, or ECB's padding or text is not what encryption leaves).
    WrongKey,
}

impl fmt::Display for CipherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CipherError::KeyLength { expected, actual } => {
                write!(f, "the key is {actual} bytes long where the cipher needs {expected}")
            }
            CipherError::Format => f.write_str("the stored value is not in the format the service writes"),
            CipherError::WrongKey => f.write_str("the stored value does not decrypt under this key"),
        }
    }
}

impl std::error::Error for CipherError {}

/// Supavisor's Cloak vault: AES-256-GCM, key tag `AES.GCM.V1`, 16-byte IV.
pub mod supavisor {
    use aes_gcm::aead::consts::U16;
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::AesGcm;
    use rand::RngCore;
    use zeroize::Zeroizing;

    use super::CipherError;

    /// The key tag `Supavisor.Vault` configures.
    pub const KEY_TAG: &[u8] = b"AES.GCM.V1";
    /// The additional authenticated data Cloak's GCM cipher always uses.
    const AAD: &[u8] = b"AES256GCM";
    /// Cloak's default IV length (Supavisor does not set `iv_length`).
    const IV_LEN: usize = 16;
    /// GCM's authentication tag ("ciphertag" in Cloak).
    const TAG_LEN: usize = 16;
    /// AES-256.
    const KEY_LEN: usize = 32;

    type Cipher = AesGcm<aes::Aes256, U16>;

    fn cipher(key: &[u8]) -> Result<Cipher, CipherError> {
        Cipher::new_from_slice(key).map_err(|_| CipherError::KeyLength { expected: KEY_LEN, actual: key.len() })
    }

    /// The header Cloak puts first: type byte 1, the tag's length, the tag (tags under 128
    /// bytes take one length byte, and `AES.GCM.V1` is 10).
    fn header() -> Vec<u8> {
        let mut out = vec![1, KEY_TAG.len() as u8];
        out.extend_from_slice(KEY_TAG);
        out
    }

    /// Encrypts `plaintext` as Supavisor's vault stores it, with a fresh random IV.
    pub fn encrypt(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
        let cipher = cipher(key)?;
        let mut iv = [0u8; IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        // The crate appends the tag; Cloak puts it before the ciphertext.
        let sealed =
            cipher.encrypt((&iv).into(), Payload { msg: plaintext, aad: AAD }).map_err(|_| CipherError::Format)?;
        let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let mut out = header();
        out.extend_from_slice(&iv);
        out.extend_from_slice(tag);
        out.extend_from_slice(body);
        Ok(out)
    }

    /// Decrypts a value Supavisor's vault wrote. A value under another key tag, or too short to
    /// hold an IV and a tag, is [`CipherError::Format`]; one that fails authentication is
    /// [`CipherError::WrongKey`].
    pub fn decrypt(key: &[u8], stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let cipher = cipher(key)?;
        let rest = stored.strip_prefix(header().as_slice()).ok_or(CipherError::Format)?;
        if rest.len() < IV_LEN + TAG_LEN {
            return Err(CipherError::Format);
        }
        let (iv, rest) = rest.split_at(IV_LEN);
        let (tag, body) = rest.split_at(TAG_LEN);
        let mut sealed = Vec::with_capacity(body.len() + TAG_LEN);
        sealed.extend_from_slice(body);
        sealed.extend_from_slice(tag);
        cipher
            .decrypt(iv.into(), Payload { msg: &sealed, aad: AAD })
            .map(Zeroizing::new)
            .map_err(|_| CipherError::WrongKey)
    }
}

/// Realtime's `Realtime.Crypto`: AES-128-ECB, PKCS#7 padding, standard base64.
pub mod realtime {
    use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use zeroize::Zeroizing;

    use super::CipherError;

    const BLOCK: usize = 16;
    /// The prefix of the AES-256-GCM values newer Realtime writes under `DB_ENC_KEY_GCM`.
    const GCM_PREFIX: &str = "g1:";

    fn cipher(key: &[u8]) -> Result<aes::Aes128, CipherError> {
        aes::Aes128::new_from_slice(key).map_err(|_| CipherError::KeyLength { expected: BLOCK, actual: key.len() })
    }

    /// Whether `stored` is one of newer Realtime's GCM values, which no `.env` key decrypts.
    pub fn is_gcm(stored: &str) -> bool {
        stored.starts_with(GCM_PREFIX)
    }

    /// Encrypts `plaintext` as Realtime stores it.
    pub fn encrypt(key: &[u8], plaintext: &[u8]) -> Result<String, CipherError> {
        let cipher = cipher(key)?;
        let pad = BLOCK - plaintext.len() % BLOCK;
        let mut data = Zeroizing::new(Vec::with_capacity(plaintext.len() + pad));
        data.extend_from_slice(plaintext);
        data.resize(plaintext.len() + pad, pad as u8);
        for block in data.chunks_exact_mut(BLOCK) {
            cipher.encrypt_block(block.into());
        }
        Ok(STANDARD.encode(data.as_slice()))
    }

    /// Decrypts a value Realtime wrote. Realtime itself strips the padding without checking it;
    /// here padding that encryption could not have produced, or text that is not UTF-8, means
    /// the key is not the one it was written with ([`CipherError::WrongKey`]).
    pub fn decrypt(key: &[u8], stored: &str) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let cipher = cipher(key)?;
        if is_gcm(stored) {
            return Err(CipherError::Format);
        }
        let mut data = Zeroizing::new(STANDARD.decode(stored).map_err(|_| CipherError::Format)?);
        if data.is_empty() || data.len() % BLOCK != 0 {
            return Err(CipherError::Format);
        }
        for block in data.chunks_exact_mut(BLOCK) {
            cipher.decrypt_block(block.into());
        }
        let pad = usize::from(data[data.len() - 1]);
        let padded_right =
            (1..=BLOCK).contains(&pad) && data[data.len() - pad..].iter().all(|&b| usize::from(b) == pad);
        if !padded_right {
            return Err(CipherError::WrongKey);
        }
        let len = data.len() - pad;
        data.truncate(len);
        if std::str::from_utf8(&data).is_err() {
            return Err(CipherError::WrongKey);
        }
        Ok(data)
    }
}

/// Compares a decrypted copy with the `.env`'s value without early exit on the first differing
/// byte (the copy and the value are both secrets).
pub fn same_secret(decrypted: &[u8], expected: &str) -> bool {
    let expected = expected.as_bytes();
    if decrypted.len() != expected.len() {
        return false;
    }
    decrypted.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A decrypted value, kept zeroized; only for the callers that re-encrypt it.
pub type Plaintext = Zeroizing<Vec<u8>>;

#[cfg(test)]
mod tests {
    use super::*;

    const VAULT_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const REALTIME_KEY: &[u8] = b"0123456789abcdef";

    #[test]
    fn supavisor_values_round_trip_with_cloaks_header_and_fail_under_another_key() {
        let stored = supavisor::encrypt(VAULT_KEY, b"pooler-password").unwrap();
        assert_eq!(&stored[..12], b"\x01\x0aAES.GCM.V1");
        assert_eq!(stored.len(), 12 + 16 + 16 + b"pooler-password".len());
        assert_eq!(supavisor::decrypt(VAULT_KEY, &stored).unwrap().as_slice(), b"pooler-password");
        let other = b"fedcba9876543210fedcba9876543210";
        assert_eq!(supavisor::decrypt(other, &stored), Err(CipherError::WrongKey));
        assert_eq!(supavisor::decrypt(VAULT_KEY, b"\x01\x0aAES.GCM.V2rest"), Err(CipherError::Format));
        assert_eq!(supavisor::decrypt(VAULT_KEY, &stored[..40]), Err(CipherError::Format));
        assert_eq!(supavisor::decrypt(b"short", &stored), Err(CipherError::KeyLength { expected: 32, actual: 5 }));
    }

    /// Written by Python `cryptography` (AESGCM, 16-byte IV 00..0f, AAD `AES256GCM`), laid out as
    /// Cloak does: header, IV, tag, ciphertext.
    #[test]
    fn supavisor_decrypts_a_value_written_by_another_implementation() {
        let stored = hex::decode(
            "010a4145532e47434d2e5631000102030405060708090a0b0c0d0e0f2036e8ccb0f98c71dde9bbcb235d42b296a9fdccad0ff365a1fd9ffad37c74",
        )
        .unwrap();
        assert_eq!(supavisor::decrypt(VAULT_KEY, &stored).unwrap().as_slice(), b"pooler-password");
    }

    #[test]
    fn supavisor_encryption_uses_a_fresh_iv() {
        let a = supavisor::encrypt(VAULT_KEY, b"same").unwrap();
        let b = supavisor::encrypt(VAULT_KEY, b"same").unwrap();
        assert_ne!(a, b);
    }

    /// The vector comes from another implementation: `openssl enc -aes-128-ecb -K
    /// 30313233343536373839616263646566 | base64` of `super-secret-jwt-token` (PKCS#7 padding).
    #[test]
    fn realtime_values_match_openssl_and_round_trip() {
        let stored = realtime::encrypt(REALTIME_KEY, b"super-secret-jwt-token").unwrap();
        assert_eq!(stored, OPENSSL_VECTOR);
        assert_eq!(realtime::decrypt(REALTIME_KEY, &stored).unwrap().as_slice(), b"super-secret-jwt-token");
        assert_eq!(realtime::encrypt(REALTIME_KEY, b"").unwrap().len(), 24, "empty text is one padding block");
        assert_eq!(realtime::decrypt(b"fedcba9876543210", &stored), Err(CipherError::WrongKey));
        assert_eq!(realtime::decrypt(REALTIME_KEY, "g1:AAAA"), Err(CipherError::Format));
        assert_eq!(realtime::decrypt(REALTIME_KEY, "not base64!"), Err(CipherError::Format));
        assert_eq!(realtime::decrypt(REALTIME_KEY, "AAAA"), Err(CipherError::Format));
        assert!(realtime::is_gcm("g1:xyz") && !realtime::is_gcm(&stored));
    }

    const OPENSSL_VECTOR: &str = "vZJquewX07pH5dv+owzXecC2BYPeiSqDCidnFo6/2HA=";

    #[test]
    fn comparing_secrets_needs_every_byte() {
        assert!(same_secret(b"abc", "abc"));
        assert!(!same_secret(b"abd", "abc"));
        assert!(!same_secret(b"ab", "abc"));
    }
}
