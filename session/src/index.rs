//! The value a session is found by: how an `#[session(index)]` field is written into
//! [`Record::index`](crate::backend::Record::index), and how a lookup value is written alike.

use crate::backend::MAX_INDEX_LEN;
use crate::backend::key::sha256_hex;
use serde::Serialize;
use serde_json::Value;

/// The stored form of an index value: a JSON string's text, or any other JSON value's text
/// (`42`, `true`, `{"org":1}`); `None` for `null` (a `None` field), an empty string, or a value
/// that does not serialise, which are in no index. Values longer than [`MAX_INDEX_LEN`] bytes
/// are stored as `sha256:` and their hash's hex digits.
///
/// A field and a lookup value of its type give the same text, which is all that matters: the
/// text never goes back into a value.
///
/// ```
/// use typed_session::__private::index_value;
///
/// assert_eq!(index_value(&Some(42u64)).as_deref(), Some("42"));
/// assert_eq!(index_value(&42u64).as_deref(), Some("42"));
/// assert_eq!(index_value("alice").as_deref(), Some("alice"));
/// assert_eq!(index_value(&None::<u64>), None);
/// assert!(index_value(&"x".repeat(500)).unwrap().starts_with("sha256:"));
/// ```
pub fn index_value<V: Serialize + ?Sized>(value: &V) -> Option<String> {
    let text = match serde_json::to_value(value) {
        Ok(Value::Null) | Err(_) => return None,
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
    };
    if text.is_empty() {
        return None;
    }
    if text.len() <= MAX_INDEX_LEN {
        return Some(text);
    }
    Some(format!("sha256:{}", sha256_hex(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_and_its_lookup_value_agree() {
        assert_eq!(index_value(&Some("bob")), index_value("bob"));
        assert_eq!(index_value(&Some(7_i32)), index_value(&7_i64));
        assert_eq!(index_value(""), None);
        assert_eq!(index_value(&()), None);
        let long = "é".repeat(100);
        let stored = index_value(&long).unwrap();
        assert_eq!(stored.len(), 7 + 64);
        assert_eq!(index_value(&Some(long)), Some(stored));
        let edge = "a".repeat(MAX_INDEX_LEN);
        assert_eq!(index_value(&edge), Some(edge));
    }
}
