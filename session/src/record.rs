//! The stored form of a session: a JSON envelope around one object keyed by field name.
//!
//! ```json
//! {"format":1,"created":1764150000000,"long_term":false,"fields":{"count":3,"uid":7}}
//! ```
//!
//! Fields are keyed by their stored name (after `rename`), so fields can be added (missing keys
//! take their default), removed (unknown keys are ignored) and renamed (`alias` reads old keys)
//! without breaking stored sessions. `created` keeps the absolute timeout across restarts.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

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

/// Writes fields into the JSON object of a record. Generated code calls [`FieldWriter::write`]
/// once per persisted field.
#[doc(hidden)]
pub struct FieldWriter {
    json: Vec<u8>,
    empty: bool,
}

/// Why a session could not be encoded: a field's `Serialize` failed (a map with non-string keys,
/// a custom impl returning an error).
#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
#[error("cannot encode session field `{field}`: {source}")]
pub struct EncodeError {
    field: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl FieldWriter {
    /// Appends `"key":value`.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialise.
    pub fn write<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), EncodeError> {
        if !self.empty {
            self.json.push(b',');
        }
        self.empty = false;
        let error = |source: serde_json::Error| EncodeError {
            field: key,
            source: source.into(),
        };
        serde_json::to_writer(&mut self.json, key).map_err(error)?;
        self.json.push(b':');
        serde_json::to_writer(&mut self.json, value).map_err(error)
    }
}

/// Encodes a session: the envelope with `write_fields` filling the `fields` object.
pub(crate) fn encode(
    meta: Meta,
    write_fields: impl FnOnce(&mut FieldWriter) -> Result<(), EncodeError>,
) -> Result<String, EncodeError> {
    let mut writer = FieldWriter {
        json: Vec::with_capacity(128),
        empty: true,
    };
    writer.json.extend_from_slice(
        format!(
            "{{\"format\":{FORMAT},\"schema\":{},\"created\":{},\"long_term\":{},\"fields\":{{",
            meta.schema, meta.created_at, meta.long_term
        )
        .as_bytes(),
    );
    write_fields(&mut writer)?;
    writer.json.extend_from_slice(b"}}");
    // serde_json writes UTF-8 only, and so does everything above; checked all the same.
    String::from_utf8(writer.json).map_err(|source| EncodeError {
        field: "(record)",
        source: source.into(),
    })
}

/// Reads the fields of a decoded record. Generated code calls [`FieldReader::read`] once per
/// persisted field.
#[doc(hidden)]
pub struct FieldReader {
    fields: Map<String, Value>,
}

/// Why a stored record could not be decoded. The store logs it and starts a fresh session.
#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a record envelope at all.
    #[error("stored session is not a valid record: {0}")]
    Envelope(serde_json::Error),
    /// Not an object with a numeric `format` and an object of `fields`.
    #[error("stored session is not a record envelope (an object with `format` and `fields`)")]
    NoFormat,
    /// An envelope of a format this version does not know.
    #[error("stored session has format {0}; this version reads format {FORMAT}")]
    Format(u64),
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

impl FieldReader {
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

/// Splits a stored record into its metadata and a reader of its fields. The envelope must be
/// a JSON object with a known `format`; its other members default when absent.
pub(crate) fn decode(data: &str) -> Result<(Meta, FieldReader), DecodeError> {
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
        schema: number(envelope.get("schema"))
            .and_then(|schema| u32::try_from(schema).ok())
            .unwrap_or(0),
    };
    let fields = match envelope.remove("fields") {
        Some(Value::Object(fields)) => fields,
        None => Map::new(),
        Some(_) => return Err(DecodeError::NoFormat),
    };
    Ok((meta, FieldReader { fields }))
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
        let data = encode(meta, |w| {
            w.write("count", &3_u64)?;
            w.write("name \"quoted\"", "ada")
        })
        .unwrap();
        let value: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(value["fields"]["count"], 3);
        let (read_meta, reader) = decode(&data).unwrap();
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
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "null",
            "[]",
            "{",
            "{\"format\":2}",
            "{\"format\":1,\"fields\":3}",
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        let (_, reader) = decode("{\"format\":1,\"fields\":{\"count\":\"x\"}}").unwrap();
        assert_eq!(
            reader.read("count", &[], || 7_u64).unwrap(),
            7,
            "a misfit takes its default"
        );
    }
}
