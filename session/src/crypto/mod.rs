//! Keys, signatures and encryption.

mod encryption;
mod keys;
mod signing;

pub(crate) use encryption::Sealer;
pub(crate) use keys::KeyRing;
pub use keys::{Key, KeyError};
pub(crate) use signing::{SIGNATURE_LEN, Signer, Verified};
