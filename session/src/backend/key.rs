//! The key a session is stored under: a hash of its id, never the id itself.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::id::SessionId;

/// The storage key of a session: the SHA-256 of its id, as 64 lowercase hex digits.
///
/// Backends index records by this key, so a leaked table or key dump yields no id a client
/// could present: turning a key back into an id would take inverting SHA-256.
///
/// ```
/// use typed_session::SessionId;
/// use typed_session::backend::StorageKey;
///
/// let id = SessionId::generate();
/// let key = StorageKey::for_id(id);
/// assert_eq!(key.as_str().len(), 64);
/// assert!(!key.as_str().contains(&id.to_string()));
/// assert_eq!(StorageKey::parse(key.as_str()), Some(key));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(Box<str>);

impl StorageKey {
    /// The key of session `id`.
    #[must_use]
    pub fn for_id(id: SessionId) -> Self {
        Self(sha256_hex(&id.to_bytes()).into_boxed_str())
    }

    /// A key read back from storage: 64 lowercase hex digits, else `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| Self(text.into()))
    }

    /// The key as text, for a query parameter or a key name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The SHA-256 of `bytes` as 64 lowercase hex digits.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageKey({})", &self.0[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_stable_hash_of_the_id() {
        let id: SessionId = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
        // sha256 of the bytes 00..0f
        assert_eq!(
            StorageKey::for_id(id).as_str(),
            "be45cb2605bf36bebde684841a28f0fd43c69850a3dce5fedba69928ee3a8991"
        );
        assert_eq!(StorageKey::parse("ab"), None);
        assert_eq!(StorageKey::parse(&"A".repeat(64)), None);
    }
}
