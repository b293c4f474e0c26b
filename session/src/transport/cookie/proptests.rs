//! Properties of the `Cookie` header scan, which reads whatever bytes a client sends: it finds
//! exactly the values the plain reading of RFC 6265 finds (`tests::reference_values`), in
//! order, for any headers that `http` lets through. The fixed-seed test in `tests` covers the
//! same ground deterministically; this one explores further and shrinks what it finds.
//!
//! Case counts follow `PROPTEST_CASES` (256 unless set); see CONTRIBUTING.md, "Running the tests".

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::tests::reference_values;
use super::{CookieTransport, has_semicolon};
use crate::config::SessionConfig;
use crate::id::SessionId;

/// Any byte a header value may hold: tab, visible ASCII and space, and obs-text (0x80–0xff,
/// which is not UTF-8 on its own).
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(b'\t'), 0x20_u8..=0x7e, 0x80_u8..=0xff]
}

/// Pieces that make our name, names it is a prefix of or that are its prefix, separators and
/// whitespace, values of an id's length (with `;` where the scan's shortcut looks), and any
/// bytes at all.
fn piece(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<Vec<u8>> = [
        name.as_bytes(),
        &name.as_bytes()[..name.len() / 2],
        b"=",
        b";",
        b" ",
        b"\t",
        b"\xc3",
        b"0123456789abcdef0123456789abcdef",
        b";123456789ab;def0123456789abcde;",
    ]
    .iter()
    .map(|piece| piece.to_vec())
    .chain([[name.as_bytes(), b"x"].concat()])
    .collect();
    prop_oneof![
        4 => prop::sample::select(fixed),
        1 => any::<u128>().prop_map(|id| format!("{id:032x}").into_bytes()),
        2 => prop::collection::vec(header_byte(), 1..6),
    ]
}

/// One to three `Cookie` headers of up to 24 pieces each, for a cookie name.
fn headers() -> impl Strategy<Value = (&'static str, Vec<Vec<u8>>)> {
    prop::sample::select(&["visit", "v", "session-id", "__Host-s"][..]).prop_flat_map(|name| {
        let header = prop::collection::vec(piece(name), 0..24).prop_map(|pieces| pieces.concat());
        (Just(name), prop::collection::vec(header, 1..=3))
    })
}

proptest! {
    #[test]
    fn the_scan_agrees_with_the_plain_reading((name, headers) in headers()) {
        let transport = CookieTransport::new(name, &SessionConfig::default());
        let mut map = HeaderMap::new();
        for header in &headers {
            map.append(COOKIE, HeaderValue::from_bytes(header).unwrap());
        }
        let scanned: Vec<&[u8]> = transport.values(&map).into_iter().flatten().collect();
        prop_assert_eq!(scanned, reference_values(&headers, name.as_bytes()));
    }

    /// The word-at-a-time search agrees with a plain one, at every length and alignment.
    #[test]
    fn has_semicolon_finds_exactly_the_semicolons(
        bytes in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b';'), Just(b';' | 0x80), Just(b';' - 1)],
            0..SessionId::TEXT_LEN * 2,
        ),
    ) {
        prop_assert_eq!(has_semicolon(&bytes), bytes.contains(&b';'));
    }
}
