//! Secret environment values, sealed under the platform's keys.
//!
//! A function's secret values are encrypted by control before they are
//! stored and stay encrypted in the database, the route record and every
//! `InvocationRequest` (so in `OLIN_ROUTES`, `OLIN_INVOCATIONS` and
//! `OLIN_DEAD` on disk); the worker opens them just before the run. Each
//! value is AES-256-GCM under one key of a [`Keyring`], named by its key id
//! (`EnvVar.key_id`), with a fresh random 96-bit nonce, and bound to its
//! place (function and variable name) as associated data, so a sealed value
//! copied into another function's route does not open.
//!
//! Sealed text: `base64(nonce ‖ ciphertext ‖ tag)`, standard alphabet.
//!
//! Keys are configured as `id:base64(32 bytes)` entries, comma-separated;
//! the first one seals, all of them open (rotation: put the new key first,
//! keep the old one until every value was sealed again).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Why a value could not be sealed or opened, or a keyring not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The value names a key this keyring does not have.
    #[error("no key with id {0:?} is configured")]
    UnknownKey(String),
    /// The value is not one this keyring sealed for this place (tampered,
    /// truncated, or moved from another function or variable).
    #[error("the sealed value does not open under key {0:?}")]
    Corrupt(String),
    /// The keyring's configuration.
    #[error("{0}")]
    Config(String),
    /// The system's random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// The platform's secret keys: the first seals, every one opens.
pub struct Keyring {
    keys: Vec<(String, LessSafeKey)>,
    rng: SystemRandom,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish_non_exhaustive()
    }
}

impl FromStr for Keyring {
    type Err = SealError;

    /// `id:base64key[,id:base64key...]`, each key 32 random bytes (`openssl
    /// rand -base64 32`); ids are 1-32 of `A-Z a-z 0-9 _ -`.
    fn from_str(spec: &str) -> Result<Keyring, SealError> {
        let mut keys: Vec<(String, LessSafeKey)> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why: &str| {
                let id = entry.split(':').next().unwrap_or("");
                SealError::Config(format!("secrets key {id:?}: {why}"))
            };
            let (id, b64) = entry.split_once(':').ok_or_else(|| bad("expected `id:base64-key`"))?;
            let id_ok = !id.is_empty()
                && id.len() <= 32
                && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
            if !id_ok {
                return Err(bad("the id must be 1-32 of A-Z a-z 0-9 _ -"));
            }
            if keys.iter().any(|(have, _)| have == id) {
                return Err(bad("the id is given twice"));
            }
            let raw = STANDARD.decode(b64.trim()).map_err(|_| bad("the key is not base64"))?;
            if raw.len() != 32 {
                return Err(bad(&format!("the key has {} bytes; it needs 32", raw.len())));
            }
            let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| bad("the key was refused"))?;
            keys.push((id.to_owned(), LessSafeKey::new(key)));
        }
        if keys.is_empty() {
            return Err(SealError::Config("no secrets key is configured".to_owned()));
        }
        Ok(Keyring { keys, rng: SystemRandom::new() })
    }
}

/// The associated data binding a value to its function and variable.
fn place(function: &str, name: &str) -> Vec<u8> {
    format!("olin-secret-v1\0{function}\0{name}").into_bytes()
}

impl Keyring {
    /// The id of the key that seals.
    pub fn current(&self) -> &str {
        &self.keys[0].0
    }

    /// Whether a key with `id` is configured.
    pub fn has(&self, id: &str) -> bool {
        self.keys.iter().any(|(have, _)| have == id)
    }

    /// Seals `value` for variable `name` of `function` under the current
    /// key; returns the key id and the sealed text.
    ///
    /// # Errors
    /// [`SealError::Random`] when the system has no randomness.
    pub fn seal(&self, function: &str, name: &str, value: &str) -> Result<(String, String), SealError> {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + value.len() + AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        let mut body = value.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(place(function, name)), &mut body)
            .map_err(|_| SealError::Corrupt(id.clone()))?;
        sealed.extend_from_slice(&body);
        Ok((id.clone(), STANDARD.encode(sealed)))
    }

    /// Opens a value `seal` made for variable `name` of `function`.
    ///
    /// # Errors
    /// [`SealError::UnknownKey`] for a key this keyring lacks,
    /// [`SealError::Corrupt`] for anything that does not open.
    pub fn open(&self, function: &str, name: &str, key_id: &str, sealed: &str) -> Result<String, SealError> {
        let (_, key) =
            self.keys.iter().find(|(id, _)| id == key_id).ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let corrupt = || SealError::Corrupt(key_id.to_owned());
        let raw = STANDARD.decode(sealed).map_err(|_| corrupt())?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(corrupt());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut body = body.to_vec();
        let plain = key.open_in_place(nonce, Aad::from(place(function, name)), &mut body).map_err(|_| corrupt())?;
        String::from_utf8(plain.to_vec()).map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[test]
    fn values_seal_and_open_in_their_place_only() {
        let ring: Keyring = K1.parse().unwrap();
        let (id, sealed) = ring.seal("fn", "TOKEN", "hunter2").unwrap();
        assert_eq!(id, "k1");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(ring.open("fn", "TOKEN", "k1", &sealed).unwrap(), "hunter2");
        let (_, again) = ring.seal("fn", "TOKEN", "hunter2").unwrap();
        assert_ne!(again, sealed, "a fresh nonce each time");
        // Moved to another function or variable, tampered, truncated.
        assert_eq!(ring.open("other", "TOKEN", "k1", &sealed), Err(SealError::Corrupt("k1".into())));
        assert_eq!(ring.open("fn", "OTHER", "k1", &sealed), Err(SealError::Corrupt("k1".into())));
        let mut raw = STANDARD.decode(&sealed).unwrap();
        raw[NONCE_LEN] ^= 1;
        assert!(ring.open("fn", "TOKEN", "k1", &STANDARD.encode(&raw)).is_err());
        assert!(ring.open("fn", "TOKEN", "k1", &sealed[..8]).is_err());
        assert!(ring.open("fn", "TOKEN", "k1", "not base64!").is_err());
        assert_eq!(ring.open("fn", "TOKEN", "k9", &sealed), Err(SealError::UnknownKey("k9".into())));
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old: Keyring = K1.parse().unwrap();
        let (_, under_old) = old.seal("fn", "A", "v").unwrap();
        let both: Keyring = format!("{K2}, {K1}").parse().unwrap();
        assert_eq!(both.current(), "k2");
        assert!(both.has("k1") && both.has("k2") && !both.has("k3"));
        assert_eq!(both.open("fn", "A", "k1", &under_old).unwrap(), "v");
        let (id, under_new) = both.seal("fn", "A", "v").unwrap();
        assert_eq!(id, "k2");
        let new_only: Keyring = K2.parse().unwrap();
        assert_eq!(new_only.open("fn", "A", "k2", &under_new).unwrap(), "v");
        assert!(new_only.open("fn", "A", "k1", &under_old).is_err());
    }

    #[test]
    fn keyrings_are_checked() {
        for bad in ["", "k1", "k1:short", "k1:!!!", "bad id:AAAA", &format!("{K1},{K1}"), "k1:AAECAwQFBgcICQoLDA0ODw=="]
        {
            assert!(bad.parse::<Keyring>().is_err(), "{bad:?}");
        }
        let debug = format!("{:?}", K1.parse::<Keyring>().unwrap());
        assert!(debug.contains("k1") && !debug.contains("AAEC"), "{debug}");
    }
}
