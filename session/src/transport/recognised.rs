//! Recognising a signed value this server already knows, without recomputing its MAC.
//!
//! Each live session keeps the last value this server issued for it or verified for it in full,
//! with what its signature covered: the transport it travels on and the client binding. A
//! request that presents exactly that value, on that transport, from that client, gets the
//! answer the full check gave: the signature check of a signed store then costs a compare, not
//! an HMAC (about 8,300 instructions, most of a request's cost). Anything else (another value,
//! transport or client) goes through the full check as before, so what is refused is unchanged.
//! The key ring is fixed for the store's life, so a value once verified stays verified.

use std::sync::{Mutex, PoisonError};

use subtle::ConstantTimeEq;

use crate::binding::ClientBinding;
use crate::crypto::SIGNATURE_LEN;
use crate::id::SessionId;

use super::{CONSENT_MARKER, Incoming, Presented};

/// The longest value a signed store issues: `<id>~s.<signature>`.
const MAX_VALUE_LEN: usize = SessionId::TEXT_LEN + CONSENT_MARKER.len() + 1 + SIGNATURE_LEN;

/// A session's last known-good signed value; empty until one is issued or verified. Boxed
/// when first filled, so unsigned stores and sessions never signed pay one word.
#[derive(Default)]
pub(crate) struct KnownValue(Mutex<Option<Box<Known>>>);

/// What the full check established about one value.
struct Known {
    value: [u8; MAX_VALUE_LEN],
    len: usize,
    /// The value came in (or went out) in the id header, not the cookie: the signature covers
    /// the name it travels under.
    via_header: bool,
    /// The client it is bound to.
    binding: ClientBinding,
    /// Signed with a previous key: to be re-signed on the response.
    resign: bool,
}

impl KnownValue {
    /// What the full check said about `presented` from `binding`, if this is the value it
    /// checked.
    #[inline]
    pub(super) fn recognise(
        &self,
        presented: &Presented<'_>,
        binding: &ClientBinding,
    ) -> Option<Incoming> {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let known = guard.as_deref()?;
        let same = known.len == presented.value.len()
            && known.via_header == presented.via_header
            && known.binding.signed_parts() == binding.signed_parts()
            && same_secret_bytes(&known.value[..known.len], presented.value);
        same.then_some(Incoming {
            id: presented.id,
            resign: known.resign,
        })
    }

    /// Notes `value` as checked in full (or issued by this server) for `binding`.
    pub(super) fn remember(
        &self,
        value: &[u8],
        via_header: bool,
        binding: &ClientBinding,
        resign: bool,
    ) {
        if value.len() > MAX_VALUE_LEN {
            return;
        }
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let known = guard.get_or_insert_with(|| {
            Box::new(Known {
                value: [0; MAX_VALUE_LEN],
                len: 0,
                via_header,
                binding: ClientBinding::default(),
                resign,
            })
        });
        known.value[..value.len()].copy_from_slice(value);
        known.len = value.len();
        known.via_header = via_header;
        known.resign = resign;
        if known.binding.signed_parts() != binding.signed_parts() {
            known.binding = binding.clone();
        }
    }
}

/// Whether two values of equal length are equal, in time that depends on their length only: a
/// value's signature is the secret part, and a compare that stopped at the first difference
/// would tell a client how much of a guessed signature was right.
#[inline]
fn same_secret_bytes(known: &[u8], presented: &[u8]) -> bool {
    let difference = known
        .chunks(8)
        .zip(presented.chunks(8))
        .fold(0_u64, |difference, (a, b)| difference | (word(a) ^ word(b)));
    difference.ct_eq(&0).into()
}

/// Up to 8 bytes as one word, zero-padded.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0_u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_ne_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented<'a>(id: SessionId, value: &'a [u8], via_header: bool) -> Presented<'a> {
        Presented {
            id,
            name: "id",
            value,
            via_header,
        }
    }

    #[test]
    fn only_the_remembered_value_on_its_transport_is_recognised() {
        let id = SessionId::generate();
        let hex = String::from_utf8(id.hex().to_vec()).expect("hex is ASCII");
        let value = format!("{hex}.{}", "A".repeat(SIGNATURE_LEN));
        let known = KnownValue::default();
        let binding = ClientBinding::default();
        assert!(
            known
                .recognise(&presented(id, value.as_bytes(), false), &binding)
                .is_none()
        );
        known.remember(value.as_bytes(), false, &binding, true);
        let found = known.recognise(&presented(id, value.as_bytes(), false), &binding);
        assert!(found.is_some_and(|incoming| incoming.resign && incoming.id == id));
        // The same bytes in the header: another name, another signature.
        assert!(
            known
                .recognise(&presented(id, value.as_bytes(), true), &binding)
                .is_none()
        );
        // One character of the signature different, first or last.
        for index in [SessionId::TEXT_LEN + 1, value.len() - 1] {
            let mut forged = value.clone().into_bytes();
            forged[index] = b'B';
            assert!(
                known
                    .recognise(&presented(id, &forged, false), &binding)
                    .is_none()
            );
        }
        // Shorter, and longer than any issued value.
        assert!(
            known
                .recognise(
                    &presented(id, &value.as_bytes()[..value.len() - 1], false),
                    &binding
                )
                .is_none()
        );
        let long = [value.as_bytes(), b"AAAA"].concat();
        known.remember(&long, false, &binding, false);
        assert!(
            known
                .recognise(&presented(id, &long, false), &binding)
                .is_none()
        );
    }

    #[test]
    fn the_compare_sees_every_byte() {
        let a = [7_u8; MAX_VALUE_LEN];
        for index in 0..MAX_VALUE_LEN {
            let mut b = a;
            b[index] ^= 1;
            assert!(!same_secret_bytes(&a, &b), "byte {index}");
        }
        assert!(same_secret_bytes(&a, &a));
    }
}
