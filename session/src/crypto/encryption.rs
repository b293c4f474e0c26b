//! AES-256-GCM encryption of stored fields, bound to their session and field.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::KeyRing;

const NONCE_LEN: usize = 12;
const KEY_ID_LEN: usize = 4;

/// Encrypts and decrypts the values of one session.
///
/// A sealed value is `base64url(key id ‖ nonce ‖ ciphertext ‖ tag)`: a fresh random nonce each
/// time, and associated data naming the session (its storage key) and the field, so a
/// ciphertext copied into another session or another field fails to decrypt.
#[derive(Clone, Copy)]
pub(crate) struct Sealer<'a> {
    ring: &'a KeyRing,
    session: &'a str,
}

/// A value that could not be decrypted: an unknown key, a damaged or moved ciphertext.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt stored field `{field}`: {reason}")]
pub(crate) struct OpenError {
    field: String,
    reason: &'static str,
}

impl<'a> Sealer<'a> {
    pub(crate) fn new(ring: &'a KeyRing, session: &'a str) -> Self {
        Self { ring, session }
    }

    fn associated_data(&self, field: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(24 + self.session.len() + field.len());
        aad.extend_from_slice(b"typed-session/v1\0");
        aad.extend_from_slice(self.session.as_bytes());
        aad.push(0);
        aad.extend_from_slice(field.as_bytes());
        aad
    }

    /// Encrypts `plaintext` with the current key; `None` without a key.
    pub(crate) fn seal(&self, field: &str, plaintext: &[u8]) -> Option<String> {
        let key = self.ring.current()?;
        let cipher = Aes256Gcm::new(key.encryption().into());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext,
            aad: &self.associated_data(field),
        };
        // Encryption only fails for messages beyond GCM's 64 GiB limit.
        let ciphertext = cipher.encrypt(&nonce, payload).ok()?;
        let mut sealed = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&key.id().to_be_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Decrypts a value sealed for this session and `field`, with whichever key of the ring
    /// sealed it.
    pub(crate) fn open(&self, field: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let error = |reason| OpenError {
            field: field.to_owned(),
            reason,
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| error("not base64url"))?;
        if bytes.len() < KEY_ID_LEN + NONCE_LEN + 16 {
            return Err(error("too short"));
        }
        let (key_id, rest) = bytes.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key_id = u32::from_be_bytes([key_id[0], key_id[1], key_id[2], key_id[3]]);
        let key = self
            .ring
            .by_id(key_id)
            .ok_or_else(|| error("sealed with a key that is not in the key ring"))?;
        let cipher = Aes256Gcm::new(key.encryption().into());
        let payload = Payload {
            msg: ciphertext,
            aad: &self.associated_data(field),
        };
        cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                error("authentication failed (damaged, or sealed for another session or field)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    #[test]
    fn round_trips_and_binds_to_session_and_field() {
        let ring = KeyRing::new(Some(Key::generate()), vec![]);
        let sealer = Sealer::new(&ring, "session-a");
        let sealed = sealer.seal("email", b"ada@example.com").unwrap();
        assert_ne!(
            sealed,
            sealer.seal("email", b"ada@example.com").unwrap(),
            "fresh nonces"
        );
        assert_eq!(sealer.open("email", &sealed).unwrap(), b"ada@example.com");
        assert!(sealer.open("name", &sealed).is_err(), "another field");
        assert!(
            Sealer::new(&ring, "session-b")
                .open("email", &sealed)
                .is_err(),
            "another session"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open("email", std::str::from_utf8(&tampered).unwrap())
                .is_err()
        );
        for garbage in ["", "%%%", "AAAA"] {
            assert!(sealer.open("email", garbage).is_err());
        }
    }

    #[test]
    fn rotated_keys_still_open_old_values() {
        let old = Key::generate();
        let old_ring = KeyRing::new(Some(old.clone()), vec![]);
        let sealed = Sealer::new(&old_ring, "s").seal("f", b"x").unwrap();
        let new_ring = KeyRing::new(Some(Key::generate()), vec![old]);
        assert_eq!(
            Sealer::new(&new_ring, "s").open("f", &sealed).unwrap(),
            b"x"
        );
        let stranger = KeyRing::new(Some(Key::generate()), vec![]);
        assert!(Sealer::new(&stranger, "s").open("f", &sealed).is_err());
    }
}
