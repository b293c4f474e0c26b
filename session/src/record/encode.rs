//! Writing a record: the envelope, and each persisted field as one `"key":value` member. A
//! save can hand over the record it wrote last, with the fields written since: every other
//! member is copied from it instead of encoded again, so a one-field change to a session
//! holding a large value costs what the change costs, not what the session weighs.

use std::io;
use std::ops::Range;

use serde::Serialize;

use super::{FORMAT, SEALED, WHOLE_RECORD};
use crate::crypto::Sealer;

/// Writes fields into the JSON object of a record. Generated code calls [`FieldWriter::write`]
/// (or a sealed variant) once per persisted field, in declaration order.
#[doc(hidden)]
pub struct FieldWriter<'a> {
    json: String,
    empty: bool,
    sealer: Option<Sealer<'a>>,
    /// Whether `write_sealed` encrypts; off when the whole record is sealed at once.
    seal_fields: bool,
    /// The persisted fields not written yet, one bit each (`SessionData::PERSISTED`). Fields
    /// are written in declaration order, so the lowest bit is the field being written.
    unwritten: u64,
    /// The record written last, whose members may be copied.
    reuse: Option<Reuse<'a>>,
    /// Where each member written so far lies in `json`, and its field's stored name.
    spans: Vec<Range<usize>>,
    names: Vec<&'static str>,
    /// One bit per member (by position) copied from the last record.
    copied: u64,
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

/// A record as [`encode`] wrote it: the stored text, and where each field's member lies in it
/// (none when the fields are sealed as a whole), so that the next save can copy them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Encoded {
    pub(crate) data: String,
    /// Where the envelope's head ends and its fields begin.
    pub(crate) head_end: usize,
    pub(crate) spans: Vec<Range<usize>>,
    /// Each member's field name, by position.
    pub(crate) names: Vec<&'static str>,
    /// One bit per member (by position) copied unchanged from the previous record.
    pub(crate) copied: u64,
}

/// The last record written and the fields written since (their dirty bits): the members of
/// all other fields are copied from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reuse<'a> {
    pub(crate) previous: &'a Encoded,
    pub(crate) changed: u64,
}

impl<'a> Reuse<'a> {
    /// The previous member of the `position`th field, whose dirty bit is `bit`, if unchanged.
    fn unchanged(self, bit: u64, position: usize) -> Option<&'a str> {
        if self.changed & bit != 0 {
            return None;
        }
        let span = self.previous.spans.get(position)?;
        self.previous.data.get(span.clone())
    }
}

impl FieldWriter<'_> {
    /// Appends `"key":"<sealed value>"`: the value's JSON encrypted for this session and key
    /// (`#[session(encrypt)]`). Plain when the whole record is sealed anyway. Sealed afresh at
    /// every save, never copied: each save's ciphertext is under the current key.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialise, or there is no key (which `build()` rules out).
    pub fn write_sealed<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), EncodeError> {
        if !self.seal_fields {
            return self.member(key, value, true);
        }
        let error =
            |source: Box<dyn std::error::Error + Send + Sync>| EncodeError { field: key, source };
        let plaintext = serde_json::to_vec(value).map_err(|source| error(source.into()))?;
        let sealed = self
            .sealer
            .and_then(|sealer| sealer.seal(key, &plaintext))
            .ok_or_else(|| error("no encryption key".into()))?;
        self.member(key, &sealed, false)
    }

    /// Appends a `#[session(csrf)]` secret: sealed like [`write_sealed`](Self::write_sealed)
    /// when the store has a key, plain without one.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialise.
    pub fn write_secret<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), EncodeError> {
        if self.sealer.is_some() {
            self.write_sealed(key, value)
        } else {
            self.write(key, value)
        }
    }

    /// Appends `"key":value`, copied from the last record when the field is unchanged.
    ///
    /// # Errors
    ///
    /// When `value` fails to serialise.
    pub fn write<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), EncodeError> {
        self.member(key, value, true)
    }

    /// Appends the next field's member: copied when `reusable` and unchanged, else encoded.
    fn member<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
        reusable: bool,
    ) -> Result<(), EncodeError> {
        let bit = self.unwritten & self.unwritten.wrapping_neg();
        self.unwritten &= !bit;
        if !self.empty {
            self.json.push(',');
        }
        self.empty = false;
        let start = self.json.len();
        let position = self.spans.len();
        let copied = self
            .reuse
            .filter(|_| reusable)
            .and_then(|reuse| reuse.unchanged(bit, position));
        if let Some(previous) = copied {
            self.json.push_str(previous);
            // A session has at most 64 fields (one dirty bit each).
            self.copied |= 1_u64 << (position & 63);
        } else {
            let error = |source: serde_json::Error| EncodeError {
                field: key,
                source: source.into(),
            };
            let mut sink = Utf8Sink(&mut self.json);
            serde_json::to_writer(&mut sink, key).map_err(error)?;
            sink.0.push(':');
            serde_json::to_writer(&mut sink, value).map_err(error)?;
        }
        self.spans.push(start..self.json.len());
        self.names.push(key);
        Ok(())
    }
}

/// Lets serde_json write into a `String`. It writes UTF-8 only, in pieces cut at ASCII bytes,
/// so each piece is checked on its own (only what is encoded is checked, not what is copied).
struct Utf8Sink<'s>(&'s mut String);

impl io::Write for Utf8Sink<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(bytes)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        self.0.push_str(text);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encodes a session: the envelope with `write_fields` filling the `fields` object, whose
/// `persisted` fields (their dirty bits) it writes in order. With `seal_all`, the whole
/// `fields` object is encrypted into `sealed` instead. With `reuse`, unchanged plain members
/// are copied from the last record.
pub(crate) fn encode(
    meta: super::Meta,
    sealer: Option<Sealer<'_>>,
    seal_all: bool,
    persisted: u64,
    reuse: Option<Reuse<'_>>,
    write_fields: impl FnOnce(&mut FieldWriter<'_>) -> Result<(), EncodeError>,
) -> Result<Encoded, EncodeError> {
    let head = format!(
        "{{\"format\":{FORMAT},\"schema\":{},\"created\":{},\"long_term\":{},",
        meta.schema, meta.created_at, meta.long_term
    );
    let fields = |json: String, reuse| FieldWriter {
        json,
        empty: true,
        sealer,
        seal_fields: !seal_all,
        unwritten: persisted,
        reuse,
        spans: Vec::with_capacity(persisted.count_ones() as usize),
        names: Vec::with_capacity(persisted.count_ones() as usize),
        copied: 0,
    };
    if seal_all {
        let mut writer = fields(String::with_capacity(128), None);
        writer.json.push('{');
        write_fields(&mut writer)?;
        writer.json.push('}');
        let sealed = sealer
            .and_then(|sealer| sealer.seal(WHOLE_RECORD, writer.json.as_bytes()))
            .ok_or_else(|| EncodeError {
                field: "(record)",
                source: "no encryption key".into(),
            })?;
        return Ok(Encoded {
            data: format!("{head}\"{SEALED}\":\"{sealed}\"}}"),
            ..Encoded::default()
        });
    }
    let capacity = reuse.map_or(128, |reuse| reuse.previous.data.len() + 64);
    let mut json = String::with_capacity(capacity.max(head.len() + 16));
    json.push_str(&head);
    json.push_str("\"fields\":{");
    let mut writer = fields(json, reuse);
    write_fields(&mut writer)?;
    writer.json.push_str("}}");
    Ok(Encoded {
        data: writer.json,
        head_end: head.len(),
        spans: writer.spans,
        names: writer.names,
        copied: writer.copied,
    })
}
