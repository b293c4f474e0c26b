//! Writing a record: the envelope, and each persisted field as one `"key":value` member. A
//! save can hand over the record it wrote last, with the fields written since: that record is
//! patched in place, every other member left where it is instead of encoded again, so a
//! one-field change to a session holding a large value costs what the change costs, not what
//! the session weighs (when the changed member keeps its length, not even a copy of the rest).

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
    /// The last record's members and the fields changed since, when `json` is that record
    /// being patched in place.
    patch: Option<Patch>,
    /// Where a changed member is encoded before it replaces the old one.
    scratch: String,
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

/// The last record written and the fields written since (their dirty bits): the record is
/// patched, the members of all other fields kept as they are.
#[derive(Debug, Clone)]
pub(crate) struct Reuse {
    pub(crate) previous: Encoded,
    pub(crate) changed: u64,
}

/// The state of a record being patched: where its members were, and how far the members still
/// to come have moved since.
struct Patch {
    spans: Vec<Range<usize>>,
    changed: u64,
    moved: isize,
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

    /// Writes the next field's member: kept in place when patching, `reusable` and unchanged;
    /// else encoded, over the old member when patching, appended otherwise.
    fn member<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
        reusable: bool,
    ) -> Result<(), EncodeError> {
        let bit = self.unwritten & self.unwritten.wrapping_neg();
        self.unwritten &= !bit;
        let position = self.spans.len();
        let span = match &mut self.patch {
            Some(patch) => {
                let old = patch
                    .spans
                    .get(position)
                    .cloned()
                    .ok_or_else(|| EncodeError {
                        field: key,
                        source: "the record being patched has fewer fields".into(),
                    })?;
                let start = old.start.saturating_add_signed(patch.moved);
                let end = old.end.saturating_add_signed(patch.moved);
                if reusable && patch.changed & bit == 0 {
                    // A session has at most 64 fields (one dirty bit each).
                    self.copied |= 1_u64 << (position & 63);
                    start..end
                } else {
                    self.scratch.clear();
                    encode_member(&mut self.scratch, key, value)?;
                    self.json.replace_range(start..end, &self.scratch);
                    patch.moved += length_change(end - start, self.scratch.len());
                    start..start + self.scratch.len()
                }
            }
            None => {
                if !self.empty {
                    self.json.push(',');
                }
                let start = self.json.len();
                encode_member(&mut self.json, key, value)?;
                start..self.json.len()
            }
        };
        self.empty = false;
        self.spans.push(span);
        self.names.push(key);
        Ok(())
    }
}

/// Appends `"key":value` to `json`.
fn encode_member<V: Serialize + ?Sized>(
    json: &mut String,
    key: &'static str,
    value: &V,
) -> Result<(), EncodeError> {
    let error = |source: serde_json::Error| EncodeError {
        field: key,
        source: source.into(),
    };
    let mut sink = Utf8Sink(json);
    serde_json::to_writer(&mut sink, key).map_err(error)?;
    sink.0.push(':');
    serde_json::to_writer(&mut sink, value).map_err(error)
}

/// How far what follows a piece moves when `old` bytes become `new`.
fn length_change(old: usize, new: usize) -> isize {
    let grown = isize::try_from(new.abs_diff(old)).unwrap_or(isize::MAX);
    if new >= old { grown } else { -grown }
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
/// `fields` object is encrypted into `sealed` instead. With `reuse` (a record of the same
/// fields), that record is patched: its head and changed members replaced, unchanged plain
/// members left in place.
pub(crate) fn encode(
    meta: super::Meta,
    sealer: Option<Sealer<'_>>,
    seal_all: bool,
    persisted: u64,
    reuse: Option<Reuse>,
    write_fields: impl FnOnce(&mut FieldWriter<'_>) -> Result<(), EncodeError>,
) -> Result<Encoded, EncodeError> {
    let head = format!(
        "{{\"format\":{FORMAT},\"schema\":{},\"created\":{},\"long_term\":{},",
        meta.schema, meta.created_at, meta.long_term
    );
    let fields = |json: String, patch: Option<Patch>| FieldWriter {
        json,
        empty: true,
        sealer,
        seal_fields: !seal_all,
        unwritten: persisted,
        patch,
        scratch: String::new(),
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
    let patchable = reuse.filter(|reuse| {
        let previous = &reuse.previous;
        previous.spans.len() == persisted.count_ones() as usize
            && previous.data.is_char_boundary(previous.head_end)
    });
    let mut writer = if let Some(Reuse { previous, changed }) = patchable {
        let mut json = previous.data;
        json.replace_range(..previous.head_end, &head);
        let moved = length_change(previous.head_end, head.len());
        let patch = Patch {
            spans: previous.spans,
            changed,
            moved,
        };
        let mut writer = fields(json, Some(patch));
        write_fields(&mut writer)?;
        writer
    } else {
        let mut json = String::with_capacity(128);
        json.push_str(&head);
        json.push_str("\"fields\":{");
        let mut writer = fields(json, None);
        write_fields(&mut writer)?;
        writer.json.push_str("}}");
        writer
    };
    if writer.spans.len() != persisted.count_ones() as usize && writer.patch.is_some() {
        return Err(EncodeError {
            field: "(record)",
            source: "the record being patched has more fields".into(),
        });
    }
    writer.patch = None;
    Ok(Encoded {
        data: writer.json,
        head_end: head.len(),
        spans: writer.spans,
        names: writer.names,
        copied: writer.copied,
    })
}
