//! Conversions between the trait's types and what databases store (signed 64-bit numbers, text
//! keys), shared by the built-in backends.

use crate::backend::{BackendError, MAX_VERSION, StorageKey, readable_version};

/// An instant (unix ms) for a signed 64-bit column. Past `i64::MAX` (some 292 million years from
/// now) it saturates rather than wraps: a saturated instant still lies after every real `now`,
/// so every expiry comparison keeps its meaning.
pub(crate) fn millis_to_db(millis: u64) -> i64 {
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// A version for a signed 64-bit column. Past [`MAX_VERSION`] (`i64::MAX`) it is an error:
/// saturating would make two different versions look equal and defeat compare-and-set. (The
/// store never asks for one: every backend's load and touch report a record at `MAX_VERSION` as
/// malformed, so no save follows it.)
pub(crate) fn version_to_db(version: u64) -> Result<i64, BackendError> {
    i64::try_from(version)
        .ok()
        .filter(|_| version <= MAX_VERSION)
        .ok_or_else(|| {
            BackendError::new(
                "saving a session",
                format!("version {version} is past the highest a record can have, {MAX_VERSION}"),
            )
        })
}

/// A version stored as a signed 64-bit number: malformed if it is negative, or if no save can
/// follow it.
pub(crate) fn stored_version(value: i64) -> Result<u64, BackendError> {
    readable_version(stored_u64(value, "version")?)
}

/// A stored signed 64-bit number that must not be negative.
pub(crate) fn stored_u64(value: i64, column: &'static str) -> Result<u64, BackendError> {
    u64::try_from(value).map_err(|_| {
        BackendError::malformed(
            "reading a stored session",
            format!("column {column} holds the negative value {value}"),
        )
    })
}

/// A stored `id` that must be a storage key.
pub(crate) fn stored_key(id: &str) -> Result<StorageKey, BackendError> {
    StorageKey::parse(id).ok_or_else(|| {
        BackendError::malformed(
            "reading a stored session key",
            format!("stored id {id:?} is not 64 lowercase hexadecimal digits"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_without_wrapping() {
        assert_eq!(millis_to_db(u64::MAX), i64::MAX);
        assert_eq!(millis_to_db(5), 5);
        assert!(version_to_db(u64::MAX).is_err());
        assert!(version_to_db(MAX_VERSION + 1).is_err());
        assert_eq!(version_to_db(MAX_VERSION).unwrap(), i64::MAX);
        assert!(stored_u64(-1, "version").is_err_and(|e| e.is_malformed()));
        assert_eq!(stored_u64(7, "version").unwrap(), 7);
        assert_eq!(stored_version(i64::MAX - 1).unwrap(), MAX_VERSION - 1);
        for damaged in [-1, i64::MIN, i64::MAX] {
            assert!(stored_version(damaged).is_err_and(|e| e.is_malformed()));
        }
    }
}

#[cfg(test)]
mod proptests;
