//! The session cookie: reading the id from `Cookie`, writing `Set-Cookie`.

use std::io::Write;
use std::time::Duration;

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::config::{SameSite, SessionConfig};
use crate::id::SessionId;

/// The cookie of one store, its attributes fixed at build time.
pub(crate) struct CookieTransport {
    name: Box<str>,
    /// `Set-Cookie` is `{name}={value}{attributes}`: the attributes are rendered once, by the
    /// cookie crate, and each response only splices in its value.
    attributes: Box<str>,
    /// Prebuilt, since it never changes: same name, path, domain and flags as the cookie it
    /// removes (browsers only replace a cookie whose name, path and domain match).
    removal: HeaderValue,
    /// The whole `Set-Cookie` line of an unsigned id without `Max-Age`, its id left as zeros:
    /// every such cookie (a new session's, most often) is this copied with its id written in.
    unsigned_line: Box<[u8]>,
}

impl CookieTransport {
    pub(crate) fn new(name: &str, config: &SessionConfig) -> Self {
        let mut attributes = Cookie::build((name.to_owned(), String::new()))
            .path(config.cookie_path.to_string())
            .secure(config.secure)
            .http_only(config.http_only)
            .same_site(match config.same_site {
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::None => cookie::SameSite::None,
            })
            .build();
        if let Some(domain) = &config.cookie_domain {
            attributes.set_domain(domain.to_string());
        }
        let mut removal = attributes.clone();
        removal.make_removal();
        // Rendered with an empty value, the cookie reads `{name}={attributes}`.
        let rendered = attributes.to_string();
        let attributes: Box<str> = rendered
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .unwrap_or_default()
            .into();
        let zeros = [b'0'; SessionId::TEXT_LEN];
        let unsigned_line = [name.as_bytes(), b"=", &zeros, attributes.as_bytes()].concat();
        Self {
            name: name.into(),
            removal: header_value(&removal),
            attributes,
            unsigned_line: unsigned_line.into(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Every value sent under this store's cookie name, in order; `None` without a `Cookie`
    /// header. More than one value is possible (a parent domain's cookie of the same name, or a
    /// shadowing path), so callers take the first that names a live session rather than
    /// trusting the first one sent.
    #[inline]
    pub(crate) fn values<'h>(&'h self, headers: &'h HeaderMap) -> Option<Values<'h>> {
        let mut values = headers.get_all(COOKIE).iter();
        let first = values.next()?;
        Some(Values {
            name: self.name.as_bytes(),
            headers: values,
            rest: first.as_bytes(),
        })
    }

    /// Adds the `Set-Cookie` that hands a value (an id, signed or not, written by `write_value`)
    /// to the client: a browser-session cookie, or with `max_age` a persistent one.
    pub(crate) fn set(
        &self,
        headers: &mut HeaderMap,
        value_len: usize,
        write_value: impl FnOnce(&mut Vec<u8>),
        max_age: Option<Duration>,
    ) {
        // One buffer for the whole line, the value written straight into it, sized exactly when
        // the lengths are right: a full buffer becomes the header's bytes without another
        // allocation.
        let max_age_len = if max_age.is_some() { 32 } else { 0 };
        let mut line = Vec::with_capacity(
            self.name.len() + 1 + value_len + self.attributes.len() + max_age_len,
        );
        line.extend_from_slice(self.name.as_bytes());
        line.push(b'=');
        write_value(&mut line);
        line.extend_from_slice(self.attributes.as_bytes());
        if let Some(max_age) = max_age {
            // Writing into a `Vec` cannot fail.
            let _ = write!(line, "; Max-Age={}", max_age.as_secs());
        }
        append(headers, line);
    }

    /// [`set`](Self::set) for a plain id: unsigned, no consent marker, no `Max-Age`.
    pub(crate) fn set_unsigned(&self, headers: &mut HeaderMap, id: SessionId) {
        let mut line = self.unsigned_line.to_vec();
        let start = self.name.len() + 1;
        if let Some(digits) = line.get_mut(start..start + SessionId::TEXT_LEN) {
            digits.copy_from_slice(&id.hex());
        }
        append(headers, line);
    }

    /// Adds the `Set-Cookie` that deletes the client's cookie.
    pub(crate) fn remove(&self, headers: &mut HeaderMap) {
        headers.append(SET_COOKIE, self.removal.clone());
    }
}

/// Adds a `Set-Cookie` line. Name and attributes were validated at build time; values are hex,
/// base64url, `~` and `.`. Checked all the same: a bad header is dropped, never a panic.
fn append(headers: &mut HeaderMap, line: Vec<u8>) {
    if let Ok(line) = HeaderValue::try_from(line) {
        headers.append(SET_COOKIE, line);
    }
}

/// The values of one cookie name in the `Cookie` headers: a header is `name=value; name=value`
/// (RFC 6265 §4.2.1), split here by hand over bytes. The cookie crate would build a full cookie
/// per pair, and a `str` check of the whole header would let one non-ASCII cookie of another
/// name hide the session. Values are checked by whoever parses them.
pub(crate) struct Values<'h> {
    name: &'h [u8],
    headers: http::header::ValueIter<'h, HeaderValue>,
    /// What is left of the current header.
    rest: &'h [u8],
}

impl<'h> Iterator for Values<'h> {
    type Item = &'h [u8];

    fn next(&mut self) -> Option<&'h [u8]> {
        loop {
            if self.rest.is_empty() {
                self.rest = self.headers.next()?.as_bytes();
                continue;
            }
            // `name=value`, with optional whitespace around both. A name holds neither `=` nor
            // `;`, so it is matched before the pair's end is known.
            let pair = self.rest.trim_ascii_start();
            let value = pair
                .strip_prefix(self.name)
                .map(<[u8]>::trim_ascii_start)
                .and_then(|after_name| after_name.strip_prefix(b"="));
            let Some(value) = value else {
                self.rest = split_at_semicolon(pair).1;
                continue;
            };
            // An unsigned id without the consent marker is exactly `TEXT_LEN` bytes: first try
            // the pair ending right after that many, which a check of those bytes confirms,
            // before searching for its end.
            if let Some((guess, after)) = value.split_at_checked(SessionId::TEXT_LEN)
                && let [] | [b';', ..] = after
                && !has_semicolon(guess)
            {
                self.rest = after.get(1..).unwrap_or_default();
                return Some(guess.trim_ascii());
            }
            let (value, rest) = split_at_semicolon(value);
            self.rest = rest;
            return Some(value.trim_ascii());
        }
    }
}

/// What comes before the first `;` and what after it (empty if there is none).
fn split_at_semicolon(bytes: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b';', bytes) {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &[]),
    }
}

/// Whether `bytes` hold a `;`, eight at a time: cheaper than a search call for the few bytes
/// of an id.
fn has_semicolon(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let (words, tail) = bytes.as_chunks::<8>();
    let zero_bytes = words.iter().fold(0, |found, word| {
        // A byte of `word` that is `;` is zero here; the expression below is nonzero exactly
        // when some byte is zero.
        let word = u64::from_ne_bytes(*word) ^ (ONES * u64::from(b';'));
        found | (word.wrapping_sub(ONES) & !word & (ONES << 7))
    });
    zero_bytes != 0 || tail.contains(&b';')
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // The name, path and domain were validated at build time and the value is hex, base64url,
    // `~` and `.`, so the rendered cookie is always a valid header value.
    HeaderValue::try_from(cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> CookieTransport {
        CookieTransport::new(
            "visit",
            &SessionConfig::default().with_cookie_domain("example.com"),
        )
    }

    #[test]
    fn reads_every_value_of_its_own_name_only() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; visit=x; visitor=y"));
        headers.append(
            COOKIE,
            HeaderValue::from_static("visit=z;;garbage; =; visit x=no; visit\t; visit"),
        );
        let transport = transport();
        let values: Vec<_> = transport.values(&headers).into_iter().flatten().collect();
        assert_eq!(values, [b"x", b"z"]);
        assert!(
            transport.values(&HeaderMap::new()).is_none(),
            "no Cookie header, nothing to search"
        );
    }

    /// The plain reading of RFC 6265's `Cookie` header, to check the scan against: pairs split
    /// at `;`, the name before the first `=`, both trimmed.
    pub(super) fn reference_values<'h>(headers: &'h [Vec<u8>], name: &[u8]) -> Vec<&'h [u8]> {
        let mut values = Vec::new();
        for header in headers {
            for pair in header.split(|&byte| byte == b';') {
                if let Some(equals) = pair.iter().position(|&byte| byte == b'=')
                    && pair[..equals].trim_ascii() == name
                {
                    values.push(pair[equals + 1..].trim_ascii());
                }
            }
        }
        values
    }

    #[test]
    fn the_scan_agrees_with_the_plain_reading_on_random_headers() {
        let transport = transport();
        // Pieces that make names (ours, a longer one, a prefix), separators, whitespace and
        // non-ASCII: every branch of the scan, and often our own cookie.
        let pieces: [&[u8]; 11] = [
            b"visit",
            b"visitx",
            b"vis",
            b"x",
            b"=",
            b";",
            b" ",
            b"\t",
            b"\xc3",
            // Values of an id's length, and one with a `;` at each end and inside.
            b"0123456789abcdef0123456789abcdef",
            b";123456789ab;def0123456789abcde;",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap()
        };
        let mut found = 0;
        for _ in 0..20_000 {
            let headers: Vec<Vec<u8>> = (0..1 + next(2))
                .map(|_| {
                    (0..next(12))
                        .flat_map(|_| pieces[next(pieces.len())])
                        .copied()
                        .collect()
                })
                .collect();
            let mut map = HeaderMap::new();
            for header in &headers {
                map.append(COOKIE, HeaderValue::from_bytes(header).unwrap());
            }
            let scanned: Vec<_> = transport.values(&map).into_iter().flatten().collect();
            found += scanned.len();
            let readable: Vec<_> = headers.iter().map(|h| String::from_utf8_lossy(h)).collect();
            assert_eq!(
                scanned,
                reference_values(&headers, b"visit"),
                "{readable:?}"
            );
        }
        // The seed is fixed: this only guards against a generator that stopped naming it.
        assert!(
            found > 500,
            "the headers name our cookie often enough: {found}"
        );
    }

    #[test]
    fn finds_a_semicolon_anywhere_and_nothing_else() {
        for len in [0, 7, 8, 31, 32, 33] {
            // Bytes next to `;` in value, `;` with its high bit set, and zero.
            let near: Vec<u8> = (0..len).map(|i| [b':', b'<', 0xbb, 0][i % 4]).collect();
            assert!(!has_semicolon(&near), "{near:?}");
            for position in 0..len {
                let mut bytes = near.clone();
                bytes[position] = b';';
                assert!(has_semicolon(&bytes), "{len} {position}");
            }
        }
    }

    #[test]
    fn non_ascii_cookies_do_not_hide_their_neighbours() {
        let mut headers = HeaderMap::new();
        let transport = transport();
        headers.append(
            COOKIE,
            HeaderValue::from_bytes(b"other=\xc3; \tvisit = y\t;visit").unwrap(),
        );
        let values: Vec<_> = transport.values(&headers).into_iter().flatten().collect();
        assert_eq!(values, [b"y"]);
    }

    #[test]
    fn the_prebuilt_line_matches_the_general_writer() {
        for config in [
            SessionConfig::default(),
            SessionConfig::default()
                .with_cookie_domain("example.com")
                .with_cookie_path("/app")
                .with_secure(false)
                .with_same_site(SameSite::Strict),
        ] {
            let transport = CookieTransport::new("visit", &config);
            for _ in 0..100 {
                let id = SessionId::generate();
                let (mut prebuilt, mut general) = (HeaderMap::new(), HeaderMap::new());
                transport.set_unsigned(&mut prebuilt, id);
                let write = |line: &mut Vec<u8>| line.extend_from_slice(id.to_string().as_bytes());
                transport.set(&mut general, SessionId::TEXT_LEN, write, None);
                let line = prebuilt.get(SET_COOKIE).expect("a Set-Cookie line");
                assert_eq!(Some(line), general.get(SET_COOKIE));
                let parsed = Cookie::parse(line.to_str().unwrap()).unwrap();
                assert_eq!(
                    (parsed.name(), parsed.value()),
                    ("visit", id.to_string().as_str())
                );
            }
        }
    }

    #[test]
    fn removal_matches_the_cookie_it_removes() {
        let transport = transport();
        let mut headers = HeaderMap::new();
        let id = SessionId::generate();
        transport.set(
            &mut headers,
            32,
            |line| line.extend_from_slice(id.to_string().as_bytes()),
            None,
        );
        transport.set(
            &mut headers,
            1,
            |line| line.push(b'x'),
            Some(Duration::from_secs(60)),
        );
        transport.remove(&mut headers);
        let set: Vec<_> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(set[0].starts_with(&format!("visit={id}")), "{}", set[0]);
        for attribute in [
            "Path=/",
            "Domain=example.com",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ] {
            assert!(set[0].contains(attribute), "{attribute} in {}", set[0]);
            assert!(set[2].contains(attribute), "{attribute} in {}", set[2]);
        }
        assert_eq!(
            set[0],
            format!("visit={id}; HttpOnly; SameSite=Lax; Secure; Path=/; Domain=example.com")
        );
        assert!(set[1].ends_with("; Max-Age=60"), "{}", set[1]);
        assert!(set[2].starts_with("visit=;"), "{}", set[2]);
        assert!(set[2].contains("Max-Age=0"), "{}", set[2]);
    }
}

#[cfg(test)]
mod proptests;
