//! Secret keys and the ring that rotates them.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A secret key for signing session ids and encrypting stored fields.
///
/// Made from a secret of at least 32 bytes ([`Key::from_secret`]) or drawn from the operating
/// system's CSPRNG ([`Key::generate`], for tests and single-process apps: a generated key dies
/// with the process, and so does every session it signed). Separate sub-keys for signing and for
/// encryption are derived from the secret, so one never weakens the other. `Debug` shows only
/// the key's id, never key material.
///
/// ```
/// use typed_session::Key;
///
/// let key = Key::from_secret(b"a secret of at least thirty-two bytes, from your vault").unwrap();
/// assert!(Key::from_secret(b"too short").is_err());
/// assert!(!format!("{key:?}").contains("secret"));
/// ```
///
#[doc = include_str!("../../docs/security.md")]
#[derive(Clone)]
pub struct Key {
    id: u32,
    signing: [u8; 32],
    encryption: [u8; 32],
}

/// Why a [`Key`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than [`Key::MIN_SECRET_LEN`].
    #[error(
        "a session key needs a secret of at least {min} bytes, got {0}: use 32+ random bytes (e.g. `openssl rand -base64 48`)",
        min = Key::MIN_SECRET_LEN
    )]
    TooShort(usize),
}

impl Key {
    /// The shortest secret accepted: 256 bits.
    pub const MIN_SECRET_LEN: usize = 32;

    /// Derives a key from `secret` (at least [`Key::MIN_SECRET_LEN`] bytes).
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] for a shorter secret.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        let id_bytes = derive(secret, b"typed-session key id v1");
        Ok(Self {
            id: u32::from_be_bytes([id_bytes[0], id_bytes[1], id_bytes[2], id_bytes[3]]),
            signing: derive(secret, b"typed-session signing v1"),
            encryption: derive(secret, b"typed-session encryption v1"),
        })
    }

    /// A random key from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        let secret: [u8; 64] = super::random_bytes();
        match Self::from_secret(&secret) {
            Ok(key) => key,
            // 64 bytes always pass the length check.
            Err(error) => unreachable!("{error}"),
        }
    }

    /// A short public identifier of the key, stored with each ciphertext so the right key of a
    /// ring decrypts it. Derived from the secret; reveals nothing about it.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn signing(&self) -> &[u8; 32] {
        &self.signing
    }

    pub(crate) fn encryption(&self) -> &[u8; 32] {
        &self.encryption
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key {{ id: {:08x}, .. }}", self.id)
    }
}

/// HMAC-SHA256(secret, label): a sub-key that is independent of the others.
fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The current key first, then the previous ones: the first signs and encrypts, every key
/// verifies and decrypts, so keys rotate without logging anyone out.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    pub(crate) fn new(current: Option<Key>, previous: Vec<Key>) -> Self {
        Self {
            keys: current.into_iter().chain(previous).collect(),
        }
    }

    pub(crate) fn current(&self) -> Option<&Key> {
        self.keys.first()
    }

    pub(crate) fn all(&self) -> &[Key] {
        &self.keys
    }

    pub(crate) fn by_id(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|key| key.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_keys_differ_and_are_stable() {
        let a = Key::from_secret(&[7; 32]).unwrap();
        let b = Key::from_secret(&[7; 32]).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.signing(), b.signing());
        assert_ne!(a.signing(), a.encryption());
        assert_ne!(Key::generate().id(), Key::generate().id());
        assert_eq!(
            Key::from_secret(&[1; 31]).unwrap_err(),
            KeyError::TooShort(31)
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = Key::from_secret(&[9; 40]).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.starts_with("Key { id: "), "{debug}");
        assert!(
            !debug.contains("signing") && !debug.contains('['),
            "{debug}"
        );
    }
}
