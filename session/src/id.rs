//! Session identifiers.

use std::fmt;
use std::str::FromStr;

/// A session identifier: 128 bits, 122 of them from a CSPRNG (a UUID v4).
///
/// Its text form is exactly 32 lowercase hexadecimal digits. Parsing accepts only that canonical
/// form, so one session has one spelling (which matters once ids are signed).
///
/// `Debug` shows only a prefix, because a full id is a bearer credential and `Debug` output
/// tends to end up in logs; use `Display` when you really mean to print the whole id.
///
/// ```
/// use typed_session::SessionId;
///
/// let id = SessionId::generate();
/// let text = id.to_string();
/// assert_eq!(text.len(), 32);
/// assert_eq!(text.parse::<SessionId>().unwrap(), id);
/// assert!("not-a-session-id".parse::<SessionId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u128);

/// Hashes a [`SessionId`] to its low 64 bits. They come from a CSPRNG, so they are as uniform
/// as any hash; and since only ids the store generated are ever inserted, a client cannot pick
/// colliding keys. This spares each lookup a SipHash of 16 bytes.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, value: u128) {
        // Truncation on purpose: the low bits of a random id.
        self.0 ^= value as u64;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `SessionId` (it hashes one u128); mix anything else all the same.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// The hasher of the memory store's map.
pub(crate) type IdHashBuilder = std::hash::BuildHasherDefault<IdHasher>;

impl SessionId {
    /// Text length of an id.
    pub const TEXT_LEN: usize = 32;

    /// A fresh random id (UUID v4 from a thread-local CSPRNG seeded by the OS).
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().as_u128())
    }

    /// The id's 16 bytes, big-endian.
    #[must_use]
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Parses the canonical text form; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != Self::TEXT_LEN {
            return None;
        }
        // One pass, lowercase digits only (`from_str_radix` would also take `+` and uppercase):
        // this runs on every request.
        bytes
            .iter()
            .try_fold(0_u128, |value, &byte| {
                let digit = match byte {
                    b'0'..=b'9' => byte - b'0',
                    b'a'..=b'f' => byte - b'a' + 10,
                    _ => return None,
                };
                Some(value << 4 | u128::from(digit))
            })
            .map(Self)
    }
}

impl SessionId {
    /// Appends the 32 hex digits to `out`, without the formatting machinery (every new
    /// session's cookie does this).
    pub(crate) fn write_hex(self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0_u8; Self::TEXT_LEN];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(self.0.to_be_bytes()) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        // Hex digits are ASCII, so this never fails.
        out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = String::with_capacity(Self::TEXT_LEN);
        self.write_hex(&mut hex);
        f.write_str(&hex)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:08x}…)", self.0 >> 96)
    }
}

/// The error of parsing a [`SessionId`] from text that is not 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session id is exactly 32 lowercase hexadecimal digits")]
pub struct ParseSessionIdError;

impl FromStr for SessionId {
    type Err = ParseSessionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(ParseSessionIdError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_canonical() {
        let id = SessionId::generate();
        let text = id.to_string();
        assert_eq!(text.len(), SessionId::TEXT_LEN);
        assert_eq!(SessionId::parse(&text), Some(id));
        assert_eq!(SessionId::parse(&text.to_uppercase()), None);
    }

    #[test]
    fn rejects_non_canonical_input() {
        for bad in [
            "",
            "0",
            "+0000000000000000000000000000000",
            "-0000000000000000000000000000000",
            "0000000000000000000000000000000g",
            "00000000-0000-0000-0000-00000000",
            "000000000000000000000000000000000",
            "ééééééééééééééé0",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_differ_and_debug_hides_them() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        let debug = format!("{a:?}");
        assert!(!debug.contains(&a.to_string()), "{debug}");
    }
}
