//! Properties of the record envelope, which is read back from storage that anyone with write
//! access to the database (or damage) may have changed: decoding any text is an answer (a
//! record or a [`DecodeError`]), never a panic, and what encoding writes decodes to itself.
//!
//! Case counts follow `PROPTEST_CASES` (256 unless set); see CONTRIBUTING.md, "Running the tests".

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{DecodeError, Encoded, FieldReader, Meta, Reuse, decode, encode};
use crate::crypto::{Key, KeyRing, Sealer};

/// Field names as the derive hands them to the writer: `&'static str`, since they are field
/// names or `rename` literals. A fixed pool rather than generated names, so none is leaked
/// per case; it holds what a `rename` can spell and JSON must escape, and the envelope's own
/// member names.
const NAMES: &[&str] = &[
    "count",
    "user_id",
    "",
    "format",
    "fields",
    "sealed",
    "schema",
    "created",
    "long_term",
    "*",
    "quo\"te",
    "back\\slash",
    "new\nline",
    "nul\0",
    "\u{7f}\u{1b}",
    "é",
    "日本語",
    "🦀",
    "\u{2028}",
    "</script>",
];

/// Any JSON value, a few levels deep: what a damaged or planted record can hold anywhere.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // `Value::from` of a non-finite float is `null`, which JSON can spell.
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop::sample::select(NAMES).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(name(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A member name: one of [`NAMES`] (so that it can be read back) or any string.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(NAMES).prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// A member of the envelope: usually absent or well-typed, sometimes any value.
fn member(typed: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        4 => typed.prop_map(Some),
        1 => json().prop_map(Some),
    ]
}

/// Envelope-shaped JSON: the members `decode` reads, each absent, well-typed or anything, and
/// any others; now and then not an object at all.
fn envelope() -> impl Strategy<Value = Value> {
    let fields = prop::collection::btree_map(name(), json(), 0..6)
        .prop_map(|map| Value::Object(map.into_iter().collect()));
    let object = (
        member(prop_oneof![
            Just(Value::from(1)),
            any::<u64>().prop_map(Value::from)
        ]),
        member(prop_oneof![
            any::<u32>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from)
        ]),
        member(any::<u64>().prop_map(Value::from)),
        member(any::<bool>().prop_map(Value::from)),
        member(fields),
        prop::option::weighted(0.1, json()),
        prop::collection::btree_map(any::<String>(), json(), 0..3),
    )
        .prop_map(
            |(format, schema, created, long_term, fields, sealed, others)| {
                let mut map: Map<String, Value> = others.into_iter().collect();
                for (key, value) in [
                    ("format", format),
                    ("schema", schema),
                    ("created", created),
                    ("long_term", long_term),
                    ("fields", fields),
                    ("sealed", sealed),
                ] {
                    match value {
                        Some(value) => map.insert(key.to_owned(), value),
                        None => map.remove(key),
                    };
                }
                Value::Object(map)
            },
        );
    prop_oneof![9 => object, 1 => json()]
}

/// What `decode` of `envelope` must give without a key (a plaintext store): the metadata and
/// fields, or `None` for an error. The rules of its doc comment, written out.
fn expected(envelope: &Value) -> Option<(Meta, Map<String, Value>)> {
    let envelope = envelope.as_object()?;
    if envelope.get("format")?.as_u64()? != 1 {
        return None;
    }
    let schema = match envelope.get("schema") {
        None => 0,
        Some(schema) => u32::try_from(schema.as_u64()?).ok()?,
    };
    if envelope.contains_key("sealed") {
        return None;
    }
    let fields = match envelope.get("fields") {
        None => Map::new(),
        Some(fields) => fields.as_object()?.clone(),
    };
    let meta = Meta {
        created_at: envelope.get("created").and_then(Value::as_u64).unwrap_or(0),
        long_term: envelope
            .get("long_term")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        schema,
    };
    Some((meta, fields))
}

/// Reads every name of [`NAMES`] as any JSON, as `u64` and as `String` (the last two take
/// their default when they do not fit), and as a sealed field: the reader never panics and a
/// plain read never fails.
fn read_everything(reader: &FieldReader<'_>) -> Result<(), TestCaseError> {
    for &name in NAMES {
        prop_assert!(reader.read::<Value>(name, &[], || Value::Null).is_ok());
        prop_assert!(reader.read::<u64>(name, &["count"], || 0).is_ok());
        prop_assert!(reader.read::<String>(name, &[], String::new).is_ok());
        let _ = reader.read_sealed::<Value>(name, &[], || Value::Null);
    }
    Ok(())
}

/// A record's metadata.
fn meta() -> impl Strategy<Value = Meta> {
    (any::<u64>(), any::<bool>(), any::<u32>()).prop_map(|(created_at, long_term, schema)| Meta {
        created_at,
        long_term,
        schema,
    })
}

/// How a record's fields are written: all plain, each field sealed or not, or the whole
/// record sealed.
#[derive(Debug, Clone, Copy)]
enum Sealing {
    None,
    Fields,
    Whole,
}

/// Distinct names of [`NAMES`], each with a value and whether it is an encrypted field.
fn fields() -> impl Strategy<Value = Vec<(&'static str, Value, bool)>> {
    prop::collection::btree_map(0..NAMES.len(), (json(), any::<bool>()), 0..8).prop_map(|map| {
        map.into_iter()
            .map(|(name, (value, sealed))| (NAMES[name], value, sealed))
            .collect()
    })
}

/// A key ring with one key, fixed so that failures reproduce.
fn ring() -> KeyRing {
    let key = Key::from_secret(b"record proptests: a fixed key of 32 bytes or more").unwrap();
    KeyRing::new(Some(key), vec![])
}

/// `fields` encoded under `meta` for session `"a"`.
fn encoded(
    ring: &KeyRing,
    meta: Meta,
    sealing: Sealing,
    fields: &[(&'static str, Value, bool)],
) -> String {
    encoded_reusing(ring, meta, sealing, fields, None).data
}

/// [`encoded`], copying unchanged members from `reuse`.
fn encoded_reusing(
    ring: &KeyRing,
    meta: Meta,
    sealing: Sealing,
    fields: &[(&'static str, Value, bool)],
    reuse: Option<Reuse>,
) -> Encoded {
    let sealer = match sealing {
        Sealing::None => None,
        Sealing::Fields | Sealing::Whole => Some(Sealer::new(ring, "a")),
    };
    let persisted = u64::MAX >> (64 - fields.len().max(1));
    let whole = matches!(sealing, Sealing::Whole);
    encode(meta, sealer, whole, persisted, reuse, |writer| {
        for (name, value, sealed) in fields {
            if *sealed && sealer.is_some() {
                writer.write_sealed(name, value)?;
            } else {
                writer.write(name, value)?;
            }
        }
        Ok(())
    })
    .expect("JSON values always encode")
}

/// An edit of a stored text, in characters (the backends hand `decode` a `String`).
#[derive(Debug, Clone)]
enum Edit {
    /// Removes the characters from one index of the text to another.
    Cut(prop::sample::Index, prop::sample::Index),
    Insert(prop::sample::Index, String),
    Replace(prop::sample::Index, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        any::<String>(),
        prop::sample::select(
            &[
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "\"",
                "\\",
                "null",
                "1",
                "-1",
                "1e999",
                "\"format\":1",
                "\"fields\":{}",
                "\"sealed\":\"\"",
            ][..]
        )
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(from, to)| Edit::Cut(from, to)),
        (any::<prop::sample::Index>(), piece).prop_map(|(at, text)| Edit::Insert(at, text)),
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
    ]
}

/// `text` with `edits` applied, each at a character boundary.
fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len();
        match edit {
            Edit::Cut(from, to) if len > 0 => {
                let (from, to) = (from.index(len), to.index(len));
                chars.drain(from.min(to)..=from.max(to));
            }
            Edit::Insert(at, text) => {
                let at = at.index(len + 1);
                chars.splice(at..at, text.chars());
            }
            Edit::Replace(at, c) if len > 0 => chars[at.index(len)] = *c,
            Edit::Cut(..) | Edit::Replace(..) => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    /// Any text at all: an answer, never a panic, under every way a store reads records.
    #[test]
    fn any_text_decodes_or_is_refused(text in any::<String>()) {
        let ring = ring();
        for (sealer, require_sealed) in [
            (None, false),
            (Some(Sealer::new(&ring, "a")), false),
            (Some(Sealer::new(&ring, "a")), true),
        ] {
            if let Ok((_, reader)) = decode(&text, sealer, require_sealed) {
                read_everything(&reader)?;
            }
        }
    }

    /// Envelope-shaped JSON decodes exactly when its members are what the format says, and
    /// then to the metadata and fields it holds.
    #[test]
    fn envelopes_decode_to_what_they_hold(envelope in envelope()) {
        let text = envelope.to_string();
        let decoded = decode(&text, None, false);
        match (expected(&envelope), decoded) {
            (None, Err(_)) => {}
            (Some((meta, fields)), Ok((read_meta, reader))) => {
                prop_assert_eq!(read_meta, meta);
                for &name in NAMES {
                    let stored = fields.get(name).cloned().unwrap_or(Value::Null);
                    let read = reader.read::<Value>(name, &[], || Value::Null).unwrap();
                    prop_assert_eq!(read, stored, "field {:?}", name);
                }
                read_everything(&reader)?;
            }
            (None, Ok((meta, _))) => {
                prop_assert!(false, "{} decoded to {:?}", text, meta);
            }
            (Some(_), Err(error)) => prop_assert!(false, "{} refused: {}", text, error),
        }
    }

    /// What `encode` writes, plain, with encrypted fields or sealed whole, decodes to the same
    /// metadata and values in its own session, and its encrypted parts in no other.
    #[test]
    fn records_round_trip_in_their_own_session_only(
        meta in meta(),
        sealing in prop_oneof![Just(Sealing::None), Just(Sealing::Fields), Just(Sealing::Whole)],
        fields in fields(),
    ) {
        let ring = ring();
        let text = encoded(&ring, meta, sealing, &fields);
        let here = Sealer::new(&ring, "a");
        let whole = matches!(sealing, Sealing::Whole);
        let (read_meta, reader) = decode(&text, Some(here), whole)
            .map_err(|error| TestCaseError::fail(format!("{text} refused: {error}")))?;
        prop_assert_eq!(read_meta, meta);
        for (name, value, sealed) in &fields {
            let read = if *sealed && !matches!(sealing, Sealing::None) {
                reader.read_sealed::<Value>(name, &[], || Value::Null)
            } else {
                reader.read::<Value>(name, &[], || Value::Null)
            };
            prop_assert_eq!(&read.unwrap(), value, "field {:?} of {}", name, text);
        }

        let elsewhere = decode(&text, Some(Sealer::new(&ring, "b")), whole);
        match sealing {
            Sealing::Whole => prop_assert!(matches!(elsewhere, Err(DecodeError::Sealed(_)))),
            Sealing::Fields => {
                let (_, reader) = elsewhere.unwrap();
                for (name, _, _) in fields.iter().filter(|(_, _, sealed)| *sealed) {
                    let read = reader.read_sealed::<Value>(name, &[], || Value::Null);
                    prop_assert!(matches!(read, Err(DecodeError::Sealed(_))), "{:?}", name);
                }
            }
            Sealing::None => prop_assert!(elsewhere.is_ok()),
        }
    }

    /// A save that copies the unchanged members of the record it wrote last writes what
    /// encoding everything afresh writes, whichever fields changed in between and however the
    /// metadata moved; encrypted members are sealed again (fresh nonces), and decode the same.
    #[test]
    fn copying_unchanged_members_writes_what_encoding_afresh_writes(
        before in meta(),
        after in meta(),
        sealing in prop_oneof![Just(Sealing::None), Just(Sealing::Fields), Just(Sealing::Whole)],
        fields in fields(),
        changes in prop::collection::vec(prop::option::of(json()), 8),
    ) {
        let ring = ring();
        let last = encoded_reusing(&ring, before, sealing, &fields, None);
        let mut changed = 0_u64;
        let mut now = fields.clone();
        for (position, (field, change)) in now.iter_mut().zip(&changes).enumerate() {
            if let Some(value) = change {
                field.1 = value.clone();
                changed |= 1 << position;
            }
        }
        let reuse = Reuse { previous: last.clone(), changed };
        let copied = encoded_reusing(&ring, after, sealing, &now, Some(reuse));
        let afresh = encoded_reusing(&ring, after, sealing, &now, None);
        if matches!(sealing, Sealing::None) {
            prop_assert_eq!(&copied.data, &afresh.data);
        }
        let here = Some(Sealer::new(&ring, "a"));
        let whole = matches!(sealing, Sealing::Whole);
        let (copied_meta, copied) = decode(&copied.data, here, whole).unwrap();
        let (afresh_meta, afresh) = decode(&afresh.data, here, whole).unwrap();
        prop_assert_eq!(copied_meta, afresh_meta);
        for (name, _, sealed) in &now {
            let read = |reader: &FieldReader<'_>| if *sealed && !matches!(sealing, Sealing::None) {
                reader.read_sealed::<Value>(name, &[], || Value::Null).unwrap()
            } else {
                reader.read::<Value>(name, &[], || Value::Null).unwrap()
            };
            prop_assert_eq!(read(&copied), read(&afresh), "field {:?}", name);
        }
    }

    /// A record damaged anywhere (characters cut, inserted or replaced): an answer and never a
    /// panic, whether it was plain or sealed.
    #[test]
    fn damaged_records_decode_or_are_refused(
        meta in meta(),
        sealing in prop_oneof![Just(Sealing::None), Just(Sealing::Fields), Just(Sealing::Whole)],
        fields in fields(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let ring = ring();
        let damaged = apply(&encoded(&ring, meta, sealing, &fields), &edits);
        for require_sealed in [false, true] {
            if let Ok((_, reader)) = decode(&damaged, Some(Sealer::new(&ring, "a")), require_sealed) {
                read_everything(&reader)?;
            }
        }
    }

    /// A string in an encrypted field that this key ring did not seal for this session and
    /// field (random bytes, even behind the ring's own key id) never opens.
    #[test]
    fn sealed_values_not_sealed_here_never_open(
        prefix_key_id in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..80),
        text in any::<String>(),
        as_base64 in any::<bool>(),
    ) {
        use base64::Engine as _;
        let ring = ring();
        let mut sealed = Vec::new();
        if prefix_key_id {
            sealed.extend_from_slice(&ring.current().unwrap().id().to_be_bytes());
        }
        sealed.extend_from_slice(&bytes);
        let value = if as_base64 {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
        } else {
            text
        };
        let record = serde_json::json!({"format": 1, "fields": {"count": value}}).to_string();
        let (_, reader) = decode(&record, Some(Sealer::new(&ring, "a")), false).unwrap();
        let read = reader.read_sealed::<Value>("count", &[], || Value::Null);
        prop_assert!(matches!(read, Err(DecodeError::Sealed(_))), "{:?}", read);
    }
}
