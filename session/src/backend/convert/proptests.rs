//! Properties of the conversions between the backend contract's numbers and keys and what
//! databases store: stored numbers and ids come back from storage, where damage or another
//! writer may have put anything the column type allows.
//!
//! Case counts follow `PROPTEST_CASES` (256 unless set); see CONTRIBUTING.md, "Running the tests".

use proptest::prelude::*;

use super::{millis_to_db, stored_key, stored_u64, version_to_db};

/// Text near a storage key: hex of the right and wrong lengths and cases, and anything else.
fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "[0-9a-fA-F]{63,65}",
        "[0-9a-f +-]{64}",
        any::<String>(),
    ]
}

/// Any instant, often near the top of the signed range where the conversion changes.
fn instant() -> impl Strategy<Value = u64> {
    let top = i64::MAX.unsigned_abs();
    prop_oneof![any::<u64>(), top - 1000..=top + 1000]
}

proptest! {
    /// A stored number is read as itself when it is not negative, and is otherwise a
    /// malformed record, never a wrapped number.
    #[test]
    fn stored_numbers_are_themselves_or_malformed(value in any::<i64>()) {
        match stored_u64(value, "version") {
            Ok(read) => prop_assert_eq!(Some(read), u64::try_from(value).ok()),
            Err(error) => prop_assert!(value < 0 && error.is_malformed()),
        }
    }

    /// A version survives the column exactly or is refused; never two versions alike.
    #[test]
    fn versions_round_trip_or_are_refused(version in any::<u64>()) {
        match version_to_db(version) {
            Ok(stored) => prop_assert_eq!(stored_u64(stored, "version").unwrap(), version),
            Err(error) => {
                prop_assert!(i64::try_from(version).is_err());
                prop_assert!(!error.is_malformed(), "nothing stored is wrong");
            }
        }
    }

    /// Instants keep their order in the column, exact below `i64::MAX` and saturating there,
    /// so every expiry comparison the database makes is the one meant.
    #[test]
    fn instants_keep_their_order(a in instant(), b in instant()) {
        let (low, high) = (a.min(b), a.max(b));
        prop_assert!(millis_to_db(low) <= millis_to_db(high));
        match i64::try_from(a) {
            Ok(exact) => prop_assert_eq!(millis_to_db(a), exact),
            Err(_) => prop_assert_eq!(millis_to_db(a), i64::MAX),
        }
    }

    /// A stored id is a key exactly when it is 64 lowercase hex digits, and then that text.
    #[test]
    fn stored_ids_are_keys_or_malformed(text in key_text()) {
        let canonical = text.len() == 64
            && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match stored_key(&text) {
            Ok(key) => prop_assert!(canonical && key.as_str() == text),
            Err(error) => prop_assert!(!canonical && error.is_malformed()),
        }
    }
}
