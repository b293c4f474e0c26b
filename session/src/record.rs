//! The stored form of a session: a JSON envelope around one object keyed by field name.
//!
//! ```json
//! {"format":1,"created":1764150000000,"long_term":false,"fields":{"count":3,"uid":7}}
//! ```
//!
//! Fields are keyed by their stored name (after `rename`), so fields can be added (missing keys
//! take their default), removed (unknown keys are ignored) and renamed (`alias` reads old keys)
//! without breaking stored sessions. `created` keeps the absolute timeout across restarts.

mod encode;

use crate::crypto::Sealer;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use self::encode::{EncodeError, FieldWriter};
pub(crate) use self::encode::{Encoded, Reuse, encode};

/// The envelope format this version writes and reads.
const FORMAT: u32 = 1;

/// A session's metadata as stored beside its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) created_at: u64,
    pub(crate) long_term: bool,
    /// The schema version of the fields (`#[session(version = N)]`).
    pub(crate) schema: u32,
}

/// The member name of a whole sealed `fields` object, and its associated-data field name.
const SEALED: &str = "sealed";
const WHOLE_RECORD: &str = "*";

/// Reads the fields of a decoded record. Generated code calls [`FieldReader::read`] once per
/// persisted field.
#[doc(hidden)]
pub struct FieldReader<'a> {
    fields: Map<String, Value>,
    sealer: Option<Sealer<'a>>,
    /// The record was sealed as a whole: its fields are plain inside.
    whole_sealed: bool,
}

/// Why a stored record could not be decoded. The store logs it and starts a fresh session.
#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a record envelope at all.
    #[error("stored session is not a valid record: {0}")]
    Envelope(serde_json::Error),
    /// An encrypted value that does not decrypt: another key, another session or field, damage.
    #[error("stored session does not decrypt: {0}")]
    Sealed(String),
    /// Not an object with a numeric `format` and an object of `fields`.
    #[error("stored session is not a record envelope (an object with `format` and `fields`)")]
    NoFormat,
    /// An envelope of a format this version does not know.
    #[error("stored session has format {0}; this version reads format {FORMAT}")]
    Format(u64),
    /// A `schema` member that is not a schema version (a number up to `u32::MAX`).
    #[error("stored session's `schema` is not a schema version")]
    Schema,
    /// A record at version 0, which no save writes (the first is version 1).
    #[error("stored session has version 0; saves start at 1")]
    VersionZero,
    /// The migration function refused the record.
    #[error("migrating a stored session from schema version {from} failed: {message}")]
    Migration {
        /// The stored schema version.
        from: u32,
        /// What the migration function said.
        message: String,
    },
}

/// Runs a `#[session(migrate = "…")]` function. Taking it as a function pointer makes a wrong
/// signature an error that shows the expected one.
///
/// # Errors
///
/// What the migration function returns, as a [`DecodeError`].
pub fn run_migration<E: std::fmt::Display>(
    migrate: fn(&mut Map<String, Value>, u32) -> Result<(), E>,
    fields: &mut Map<String, Value>,
    from: u32,
) -> Result<(), DecodeError> {
    migrate(fields, from).map_err(|error| DecodeError::migration(from, error))
}

impl DecodeError {
    /// The error of a migration function, for generated code.
    pub fn migration(from: u32, error: impl std::fmt::Display) -> Self {
        Self::Migration {
            from,
            message: error.to_string(),
        }
    }
}

impl FieldReader<'_> {
    /// The value of an `#[session(encrypt)]` field: decrypted, then read like
    /// [`read`](Self::read). A value that is not a sealed string (stored before the field was
    /// encrypted) takes the default, like any misfit.
    ///
    /// # Errors
    ///
    /// When a sealed value does not decrypt: the whole session is then replaced by a fresh one.
    pub fn read_sealed<V: DeserializeOwned>(
        &self,
        key: &'static str,
        aliases: &[&'static str],
        default: impl FnOnce() -> V,
    ) -> Result<V, DecodeError> {
        if self.whole_sealed {
            return self.read(key, aliases, default);
        }
        let found = std::iter::once(&key)
            .chain(aliases)
            .find_map(|name| Some((*name, self.fields.get(*name)?)));
        let Some((field, value)) = found else {
            return Ok(default());
        };
        let Some(sealed) = value.as_str() else {
            tracing::warn!(
                field,
                "typed-session: an encrypted field was stored in plain; it takes its default"
            );
            return Ok(default());
        };
        let sealer = self
            .sealer
            .ok_or_else(|| DecodeError::Sealed("no key to decrypt with".to_owned()))?;
        let plaintext = sealer
            .open(field, sealed)
            .map_err(|error| DecodeError::Sealed(error.to_string()))?;
        Ok(serde_json::from_slice(&plaintext).unwrap_or_else(|error| {
            tracing::warn!(field, %error, "typed-session: a stored field no longer fits its type; it takes its default");
            default()
        }))
    }

    /// A `#[session(csrf)]` secret, read the way [`FieldWriter::write_secret`] wrote it. A
    /// value that does not fit or does not decrypt (stored before a key was set, or under a
    /// retired one) takes the default rather than ending the session: a new secret is made
    /// when a form next needs one.
    ///
    /// # Errors
    ///
    /// None; the `Result` matches the other readers for generated code.
    pub fn read_secret<V: DeserializeOwned>(
        &self,
        key: &'static str,
        aliases: &[&'static str],
        default: impl Fn() -> V,
    ) -> Result<V, DecodeError> {
        if self.sealer.is_none() {
            return self.read(key, aliases, default);
        }
        Ok(self
            .read_sealed(key, aliases, &default)
            .unwrap_or_else(|_| default()))
    }

    /// The stored fields, for a migration to rewrite.
    pub(crate) fn fields_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.fields
    }

    /// The value stored under `key` (or else the first of `aliases` present), or `default()`
    /// when none is stored, or when the stored value no longer fits the field's type (a field
    /// whose type changed, a float that was stored as `null`): that one field is logged and
    /// starts over, the rest of the session is kept.
    ///
    /// # Errors
    ///
    /// None yet; the `Result` leaves room for fields that cannot fall back (encrypted ones).
    pub fn read<V: DeserializeOwned>(
        &self,
        key: &'static str,
        aliases: &[&'static str],
        default: impl FnOnce() -> V,
    ) -> Result<V, DecodeError> {
        let found = std::iter::once(&key)
            .chain(aliases)
            .find_map(|name| Some((*name, self.fields.get(*name)?)));
        let Some((field, value)) = found else {
            return Ok(default());
        };
        match V::deserialize(value) {
            Ok(value) => Ok(value),
            Err(error) => {
                tracing::warn!(
                    field,
                    %error,
                    "typed-session: a stored field no longer fits its type; it takes its default"
                );
                Ok(default())
            }
        }
    }
}

/// Splits a stored record into its metadata and a reader of its fields, decrypting a sealed
/// record. The envelope must be a JSON object with a known `format`; its other members default
/// when absent. With `require_sealed` (`with_encrypt_all`) a plaintext record is refused: the
/// whole-record seal then also guarantees that nobody with write access to the storage planted
/// the fields.
pub(crate) fn decode<'a>(
    data: &str,
    sealer: Option<Sealer<'a>>,
    require_sealed: bool,
) -> Result<(Meta, FieldReader<'a>), DecodeError> {
    let mut envelope: Map<String, Value> =
        serde_json::from_str(data).map_err(DecodeError::Envelope)?;
    let number = |value: Option<&Value>| value.and_then(Value::as_u64);
    let format = number(envelope.get("format")).ok_or(DecodeError::NoFormat)?;
    if format != u64::from(FORMAT) {
        return Err(DecodeError::Format(format));
    }
    let meta = Meta {
        created_at: number(envelope.get("created")).unwrap_or(0),
        long_term: envelope
            .get("long_term")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        // Absent in records from before schema versions existed: 0. Present but not a u32 is
        // damage, not an old record, and must not run the migrations again.
        schema: match envelope.get("schema") {
            None => 0,
            Some(schema) => number(Some(schema))
                .and_then(|schema| u32::try_from(schema).ok())
                .ok_or(DecodeError::Schema)?,
        },
    };
    if let Some(sealed) = envelope.get(SEALED) {
        let sealed = sealed.as_str().ok_or(DecodeError::NoFormat)?;
        let sealer =
            sealer.ok_or_else(|| DecodeError::Sealed("no key to decrypt with".to_owned()))?;
        let plaintext = sealer
            .open(WHOLE_RECORD, sealed)
            .map_err(|error| DecodeError::Sealed(error.to_string()))?;
        let fields = serde_json::from_slice(&plaintext).map_err(DecodeError::Envelope)?;
        let reader = FieldReader {
            fields,
            sealer: Some(sealer),
            whole_sealed: true,
        };
        return Ok((meta, reader));
    }
    if require_sealed {
        return Err(DecodeError::Sealed(
            "a plaintext record, but the store encrypts every record (with_encrypt_all)".to_owned(),
        ));
    }
    let fields = match envelope.remove("fields") {
        Some(Value::Object(fields)) => fields,
        None => Map::new(),
        Some(_) => return Err(DecodeError::NoFormat),
    };
    let reader = FieldReader {
        fields,
        sealer,
        whole_sealed: false,
    };
    Ok((meta, reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_fields_and_meta() {
        let meta = Meta {
            created_at: 42,
            long_term: true,
            schema: 3,
        };
        let data = encode(meta, None, false, 0b11, None, |w| {
            w.write("count", &3_u64)?;
            w.write("name \"quoted\"", "ada")
        })
        .unwrap()
        .data;
        let value: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(value["fields"]["count"], 3);
        let (read_meta, reader) = decode(&data, None, false).unwrap();
        assert_eq!(read_meta, meta);
        assert_eq!(reader.read("count", &[], || 0_u64).unwrap(), 3);
        assert_eq!(
            reader
                .read::<String>("name \"quoted\"", &[], String::new)
                .unwrap(),
            "ada"
        );
        assert_eq!(reader.read("missing", &[], || 9_u64).unwrap(), 9);
        assert_eq!(
            reader.read("new", &["count"], || 0_u64).unwrap(),
            3,
            "alias"
        );
    }

    #[test]
    fn sealed_fields_and_records_round_trip_only_in_their_session() {
        use crate::crypto::{Key, KeyRing};
        let ring = KeyRing::new(Some(Key::generate()), vec![]);
        let here = Sealer::new(&ring, "session-a");
        let there = Sealer::new(&ring, "session-b");
        let meta = Meta {
            created_at: 1,
            long_term: false,
            schema: 0,
        };
        for seal_all in [false, true] {
            let data = encode(meta, Some(here), seal_all, 0b11, None, |w| {
                w.write("plain", &1_u8)?;
                w.write_sealed("secret", "ada@example.com")
            })
            .unwrap()
            .data;
            assert!(!data.contains("ada@example.com"), "{data}");
            assert_eq!(data.contains("plain"), !seal_all, "{data}");
            let (_, reader) = decode(&data, Some(here), seal_all).unwrap();
            let secret: String = reader.read_sealed("secret", &[], String::new).unwrap();
            assert_eq!(secret, "ada@example.com");
            let elsewhere = decode(&data, Some(there), seal_all)
                .and_then(|(_, reader)| reader.read_sealed::<String>("secret", &[], String::new));
            assert!(
                matches!(elsewhere, Err(DecodeError::Sealed(_))),
                "{seal_all}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "null",
            "[]",
            "{",
            "{\"format\":2}",
            "{\"format\":1,\"fields\":3}",
            "{\"format\":1,\"schema\":-1,\"fields\":{}}",
            "{\"format\":1,\"schema\":\"3\",\"fields\":{}}",
            "{\"format\":1,\"schema\":4294967296,\"fields\":{}}",
        ] {
            assert!(decode(bad, None, false).is_err(), "{bad}");
        }
        let (_, reader) =
            decode("{\"format\":1,\"fields\":{\"count\":\"x\"}}", None, false).unwrap();
        assert_eq!(
            reader.read("count", &[], || 7_u64).unwrap(),
            7,
            "a misfit takes its default"
        );
        let (meta, _) = decode("{\"format\":1,\"fields\":{}}", None, false).unwrap();
        assert_eq!(meta.schema, 0, "a record from before schema versions");
    }
}

#[cfg(test)]
mod proptests;
