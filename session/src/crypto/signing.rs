//! HMAC-SHA256 signatures of the values that carry session ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::KeyRing;

/// Signs and verifies with a key ring.
#[derive(Clone)]
pub(crate) struct Signer {
    /// One HMAC per key, already keyed: each signature then clones a state instead of hashing
    /// the key's inner and outer pads again (two of the four SHA-256 blocks an HMAC costs).
    keyed: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keyed.len())
            .finish()
    }
}

/// A signature checked against the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    /// By the current key.
    Current,
    /// By a previous key: valid, and to be re-signed with the current one.
    Previous,
}

/// Text length of a signature: 32 bytes in unpadded base64url.
pub(crate) const SIGNATURE_LEN: usize = 43;

impl Signer {
    /// `None` when the ring is empty: nothing can be signed.
    pub(crate) fn new(ring: KeyRing) -> Option<Self> {
        ring.current()?;
        let keyed = ring
            .all()
            .iter()
            .map(|key| {
                <Hmac<Sha256> as Mac>::new_from_slice(key.signing())
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
            })
            .collect();
        Some(Self { keyed })
    }

    /// The signature of `parts` (each length-prefixed, so no two lists of parts sign alike)
    /// under the current key, as base64url.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> String {
        let Some(current) = self.keyed.first() else {
            unreachable!("a Signer always has a current key")
        };
        URL_SAFE_NO_PAD.encode(mac(current, parts).finalize().into_bytes())
    }

    /// Checks `signature` over `parts` against every key of the ring, in constant time per key.
    pub(crate) fn verify(&self, parts: &[&[u8]], signature: &[u8]) -> Option<Verified> {
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        let mut decoded = [0_u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(signature, &mut decoded) {
            Ok(32) => {}
            _ => return None,
        }
        self.keyed
            .iter()
            .position(|keyed| mac(keyed, parts).verify_slice(&decoded).is_ok())
            .map(|index| {
                if index == 0 {
                    Verified::Current
                } else {
                    Verified::Previous
                }
            })
    }
}

/// The MAC of `parts`, each prefixed with its length (4 bytes: a cookie name, an id and a short
/// binding then fit one SHA-256 block).
fn mac(keyed: &Hmac<Sha256>, parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = keyed.clone();
    for part in parts {
        mac.update(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(part);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn signer(current: &Key, previous: &[Key]) -> Signer {
        Signer::new(KeyRing::new(Some(current.clone()), previous.to_vec())).unwrap()
    }

    #[test]
    fn verifies_its_own_and_rotated_signatures_only() {
        let (old, new, stranger) = (Key::generate(), Key::generate(), Key::generate());
        let parts: &[&[u8]] = &[b"visit", b"0123"];
        let by_old = signer(&old, &[]).sign(parts);
        assert_eq!(by_old.len(), SIGNATURE_LEN);
        let by_old = by_old.as_bytes();
        let rotated = signer(&new, std::slice::from_ref(&old));
        assert_eq!(
            rotated.verify(parts, rotated.sign(parts).as_bytes()),
            Some(Verified::Current)
        );
        assert_eq!(rotated.verify(parts, by_old), Some(Verified::Previous));
        assert_eq!(signer(&stranger, &[]).verify(parts, by_old), None);
        assert_eq!(
            rotated.verify(&[b"cart", b"0123"], by_old),
            None,
            "another name"
        );
        assert_eq!(
            rotated.verify(&[b"visit0", b"123"], by_old),
            None,
            "parts are framed"
        );
        for garbage in ["", "!!!", &"A".repeat(43), &"é".repeat(22)] {
            assert_eq!(rotated.verify(parts, garbage.as_bytes()), None, "{garbage}");
        }
    }
}
