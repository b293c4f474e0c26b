//! Keys, signatures and encryption.

mod encryption;
mod keys;
mod signing;

pub(crate) use encryption::Sealer;
pub(crate) use keys::KeyRing;
pub use keys::{Key, KeyError};
pub(crate) use signing::{SIGNATURE_LEN, Signer, Verified};

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;

/// `N` bytes from the operating system's CSPRNG: key material, CSRF secrets and masks.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0_u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}
