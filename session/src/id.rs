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
// Two halves rather than one `u128`: 8-byte alignment keeps the entries, request state and
// futures that hold an id free of padding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionId {
    high: u64,
    low: u64,
}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.high);
        state.write_u64(self.low);
    }
}

/// Hashes a [`SessionId`] to the XOR of its halves: 122 of its bits come from a CSPRNG, so that
/// is as uniform as any hash; and since only ids the store generated are ever inserted, a client cannot pick
/// colliding keys. This spares each lookup a SipHash of 16 bytes.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, half: u64) {
        self.0 ^= half;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `SessionId` (it hashes two u64s); mix anything else all the same.
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
        Self::from_u128(uuid::Uuid::new_v4().as_u128())
    }

    fn from_u128(value: u128) -> Self {
        Self {
            high: (value >> 64) as u64,
            low: value as u64,
        }
    }

    #[cfg(test)]
    fn as_u128(self) -> u128 {
        u128::from(self.high) << 64 | u128::from(self.low)
    }

    /// The id's 16 bytes, big-endian.
    #[must_use]
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.high.to_be_bytes());
        bytes[8..].copy_from_slice(&self.low.to_be_bytes());
        bytes
    }

    /// Parses the canonical text form; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_bytes(text.as_bytes())
    }

    /// [`parse`](Self::parse) on bytes: lowercase hex digits only (`from_str_radix` would also
    /// take `+` and uppercase). Eight digits at a time and one check at the end: this runs on
    /// every request.
    pub(crate) fn parse_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::TEXT_LEN] = bytes.try_into().ok()?;
        let ([a, b, c, d], []) = bytes.as_chunks::<8>() else {
            return None;
        };
        // Four calls, not an array `map`: that one stays an out-of-line call.
        let (a, b) = (
            parse_eight(u64::from_be_bytes(*a)),
            parse_eight(u64::from_be_bytes(*b)),
        );
        let (c, d) = (
            parse_eight(u64::from_be_bytes(*c)),
            parse_eight(u64::from_be_bytes(*d)),
        );
        let high = a.value << 32 | b.value;
        let low = c.value << 32 | d.value;
        let invalid = a.invalid | b.invalid | c.invalid | d.invalid;
        (invalid == 0).then_some(Self { high, low })
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Eight hex digits read at once: their value, and nonzero `invalid` if any byte is not one.
struct EightDigits {
    value: u64,
    invalid: u64,
}

/// Eight lowercase hex digits (one per byte, the first in the highest) as a number, all bytes
/// at once. For bytes below 0x80 no sum carries from one byte into the next; a byte at or above
/// 0x80 makes the chunk invalid whatever the sums give.
fn parse_eight(chunk: u64) -> EightDigits {
    // A byte's high bit is set when the byte is at least `low` (or above `high`).
    let at_least = |low: u8| chunk.wrapping_add(ONES * u64::from(0x80 - low));
    let above = |high: u8| chunk.wrapping_add(ONES * u64::from(0x7f - high));
    let digits = at_least(b'0') & !above(b'9');
    let letters = at_least(b'a') & !above(b'f');
    let invalid = (chunk | !(digits | letters)) & HIGH_BITS;
    // '0'..='9' is 0x30..=0x39 and 'a'..='f' is 0x61..=0x66: the low nibble, plus 9 for letters
    // (bit 6).
    let nibbles = (chunk & (ONES * 0x0f)) + 9 * ((chunk >> 6) & ONES);
    // Pack the eight nibbles, pairwise, into 32 bits.
    let packed = (nibbles | nibbles >> 4) & 0x00ff_00ff_00ff_00ff;
    let packed = (packed | packed >> 8) & 0x0000_ffff_0000_ffff;
    let value = (packed | packed >> 16) & 0xffff_ffff;
    EightDigits { value, invalid }
}

impl SessionId {
    /// The 32 hex digits, without the formatting machinery (every new session's cookie does
    /// this).
    pub(crate) fn hex(self) -> [u8; Self::TEXT_LEN] {
        let mut digits = [0_u8; Self::TEXT_LEN];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(self.to_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        digits
    }
}

/// The two hex digits of every byte: one lookup per byte.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 15]];
        byte += 1;
    }
    pairs
};

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex digits are ASCII, so this never fails.
        f.write_str(std::str::from_utf8(&self.hex()).unwrap_or_default())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:08x}…)", self.high >> 32)
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
    fn every_byte_in_every_position_parses_as_the_plain_definition_says() {
        let valid = "0123456789abcdef0123456789abcdef".as_bytes();
        for position in 0..SessionId::TEXT_LEN {
            for byte in 0..=255_u8 {
                let mut text = valid.to_vec();
                text[position] = byte;
                let expected = (byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
                    .then(|| std::str::from_utf8(&text).ok())
                    .flatten()
                    .and_then(|text| u128::from_str_radix(text, 16).ok())
                    .map(SessionId::from_u128);
                assert_eq!(SessionId::parse_bytes(&text), expected, "{position} {byte}");
            }
        }
        let id = SessionId::generate();
        assert_eq!(SessionId::parse_bytes(&id.hex()), Some(id));
        for value in (0..1000).map(|_| SessionId::generate().as_u128()).chain([
            0,
            u128::MAX,
            0xff,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ]) {
            assert_eq!(
                SessionId::from_u128(value).to_string(),
                format!("{value:032x}")
            );
            assert_eq!(SessionId::from_u128(value).as_u128(), value);
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
