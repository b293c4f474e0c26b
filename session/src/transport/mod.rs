//! How a session id travels between client and server: in a cookie, a header or both; signed
//! and bound to its client when the store has a key.

pub(crate) mod cookie;
mod limits;
mod recognised;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::binding::{BindingPolicy, ClientBinding};
use crate::clock::now_millis;
use crate::config::{SessionConfig, SessionMode, Transport};
use crate::crypto::{KeyRing, SIGNATURE_LEN, Signer};
use crate::id::SessionId;
use cookie::CookieTransport;
pub(crate) use limits::{MAX_BACKEND_LOOKUPS, MAX_SIGNATURE_CHECKS, MAX_VALUES_EXAMINED};
pub(crate) use recognised::KnownValue;

/// The consent marker after the id: `<id>~s`.
const CONSENT_MARKER: &str = "~s";

/// An id a request presented, and what its value said.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming {
    pub(crate) id: SessionId,
    /// Signed with a previous key: re-sign on this response.
    pub(crate) resign: bool,
}

/// The transports of one store, and its signer.
pub(crate) struct IdTransport {
    cookie: Option<CookieTransport>,
    header: Option<HeaderName>,
    signer: Option<Signer>,
    binding: BindingPolicy,
    opt_in: bool,
    rejections: RejectionLog,
}

impl IdTransport {
    /// `header_name`: the configured header, already checked by the builder.
    pub(crate) fn new(
        cookie_name: &str,
        header_name: HeaderName,
        config: &SessionConfig,
        keys: &KeyRing,
    ) -> Self {
        let (cookie, header) = match config.transport {
            Transport::Cookie => (true, false),
            Transport::Header => (false, true),
            Transport::CookieAndHeader => (true, true),
        };
        Self {
            cookie: cookie.then(|| CookieTransport::new(cookie_name, config)),
            header: header.then_some(header_name),
            signer: Signer::new(keys.clone()),
            binding: BindingPolicy::from_config(config),
            opt_in: config.mode == SessionMode::OptIn,
            rejections: RejectionLog::default(),
        }
    }

    /// The cookie name, or the header name in header-only mode.
    pub(crate) fn name(&self) -> &str {
        match (&self.cookie, &self.header) {
            (Some(cookie), _) => cookie.name(),
            (None, Some(header)) => header.as_str(),
            (None, None) => "",
        }
    }

    /// This request's client binding; empty unless binding is configured (and then computed once
    /// per request, for verifying and for signing).
    #[inline]
    pub(crate) fn binding(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> ClientBinding {
        if self.binding.is_enabled() {
            self.binding.of(headers, extensions)
        } else {
            ClientBinding::default()
        }
    }

    /// Every value the request presents whose id parses, among the first
    /// [`MAX_VALUES_EXAMINED`]: header values first (an API client means it), then cookies.
    /// Nothing is verified yet: the caller looks ids up in memory first, and
    /// [`verify`](Self::verify)s only those worth it. `None` when it presents no value at all,
    /// so a new client's request skips the search.
    // Inlined into the open, so that what it returns is built in place and not copied there.
    #[inline(always)]
    pub(crate) fn incoming<'a>(&'a self, headers: &'a HeaderMap) -> Option<Candidates<'a>> {
        let header = self.header.as_ref().and_then(|name| {
            let mut values = headers.get_all(name).iter();
            let first = values.next()?;
            Some((name, std::iter::once(first).chain(values)))
        });
        let cookie = self
            .cookie
            .as_ref()
            .and_then(|cookie| cookie.values(headers));
        // Not `then_some`, which would build the candidates before knowing there are any.
        if header.is_none() && cookie.is_none() {
            return None;
        }
        Some(Candidates {
            transport: self,
            header,
            cookie,
            values_left: MAX_VALUES_EXAMINED,
        })
    }

    /// [`verify`](Self::verify) for a live session's value: answered from `known` when that is
    /// the session's last value this server issued or verified, for this very client and
    /// transport (see [`KnownValue`]); a value verified in full is remembered there.
    /// `known` is asked for only when the store signs.
    #[inline]
    pub(crate) fn verify_known<'k>(
        &self,
        presented: &Presented<'_>,
        binding: &ClientBinding,
        known: impl FnOnce() -> &'k KnownValue,
    ) -> Option<Incoming> {
        if self.signer.is_none() {
            return self.verify(presented, binding);
        }
        let known = known();
        if let Some(incoming) = known.recognise(presented, binding) {
            return Some(incoming);
        }
        let incoming = self.verify(presented, binding)?;
        self.note_verified(presented, binding, incoming, || known);
        Some(incoming)
    }

    /// Remembers in `known` a value [`verify`](Self::verify) passed, once its session is found.
    pub(crate) fn note_verified<'k>(
        &self,
        presented: &Presented<'_>,
        binding: &ClientBinding,
        incoming: Incoming,
        known: impl FnOnce() -> &'k KnownValue,
    ) {
        if self.signer.is_some() {
            known().remember(
                presented.value,
                presented.via_header,
                binding,
                incoming.resign,
            );
        }
    }

    /// Checks a presented value whole: `<id>[~s][.<signature>]`, signed for this client when
    /// the store has a key. `None` (logged, rate-limited) when it is not ours.
    pub(crate) fn verify(
        &self,
        presented: &Presented<'_>,
        binding: &ClientBinding,
    ) -> Option<Incoming> {
        let (name, value) = (presented.name, presented.value);
        // The consent marker is signed with the id, so it cannot be added by the client; the
        // store's own flag is what counts.
        let marker = if value[SessionId::TEXT_LEN..].starts_with(CONSENT_MARKER.as_bytes()) {
            CONSENT_MARKER.len()
        } else {
            0
        };
        let (payload, signature) = match value.split_at(SessionId::TEXT_LEN + marker) {
            (payload, []) => (payload, None),
            (payload, [b'.', signature @ ..]) => (payload, Some(signature)),
            _ => return None,
        };
        let resign = match (&self.signer, signature) {
            (None, None) => false,
            (Some(signer), Some(signature)) => {
                let [ip, user_agent] = binding.signed_parts();
                let parts: [&[u8]; 4] = [name.as_bytes(), payload, ip, user_agent];
                match signer.verify(&parts, signature) {
                    Some(crate::crypto::Verified::Current) => false,
                    Some(crate::crypto::Verified::Previous) => true,
                    None => {
                        self.rejections.record(name);
                        return None;
                    }
                }
            }
            // Unsigned while signing is on (or signed while it is off): not ours.
            _ => {
                self.rejections.record(name);
                return None;
            }
        };
        Some(Incoming {
            id: presented.id,
            resign,
        })
    }

    /// Whether the value carries the consent marker: a consented session of an opt-in store.
    fn marks_consent(&self, consent: bool) -> bool {
        consent && self.opt_in
    }

    /// The length of [`encode`](Self::encode)'s output.
    fn value_len(&self, consent: bool) -> usize {
        let marker = if self.marks_consent(consent) {
            CONSENT_MARKER.len()
        } else {
            0
        };
        let signature = if self.signer.is_some() {
            1 + SIGNATURE_LEN
        } else {
            0
        };
        SessionId::TEXT_LEN + marker + signature
    }

    /// Appends the value that carries `id` to `out`: signed (over the transport name, so it is
    /// valid there only) and bound when the store has a key.
    fn encode(
        &self,
        out: &mut Vec<u8>,
        name: &str,
        id: SessionId,
        consent: bool,
        binding: &ClientBinding,
    ) {
        let start = out.len();
        out.extend_from_slice(&id.hex());
        if self.marks_consent(consent) {
            out.extend_from_slice(CONSENT_MARKER.as_bytes());
        }
        if let Some(signer) = &self.signer {
            let [ip, user_agent] = binding.signed_parts();
            let payload = &out[start..];
            let signature = signer.sign(&[name.as_bytes(), payload, ip, user_agent]);
            out.push(b'.');
            out.extend_from_slice(signature.as_bytes());
        }
    }

    /// Hands `id` to the client on every configured transport. A signed value is remembered
    /// in `known()`, the session's [`KnownValue`] (the cookie's, when both transports are on),
    /// so that the client's next request is recognised without an HMAC.
    #[inline]
    pub(crate) fn set<'k>(
        &self,
        headers: &mut HeaderMap,
        id: SessionId,
        consent: bool,
        binding: &ClientBinding,
        max_age: Option<Duration>,
        known: impl Fn() -> &'k KnownValue,
    ) {
        let signed = self.signer.is_some();
        if let Some(cookie) = &self.cookie {
            if !signed && !self.marks_consent(consent) && max_age.is_none() {
                cookie.set_unsigned(headers, id);
            } else {
                let write = |line: &mut Vec<u8>| {
                    let start = line.len();
                    self.encode(line, cookie.name(), id, consent, binding);
                    if signed {
                        known().remember(&line[start..], false, binding, false);
                    }
                };
                cookie.set(headers, self.value_len(consent), write, max_age);
            }
        }
        if let Some(name) = &self.header {
            let mut value = Vec::with_capacity(self.value_len(consent));
            self.encode(&mut value, name.as_str(), id, consent, binding);
            if signed && self.cookie.is_none() {
                known().remember(&value, true, binding, false);
            }
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name.clone(), value);
            }
        }
    }

    /// Tells the client to forget its id: a removal cookie, and an empty header.
    pub(crate) fn remove(&self, headers: &mut HeaderMap) {
        if let Some(cookie) = &self.cookie {
            cookie.remove(headers);
        }
        if let Some(name) = &self.header {
            headers.insert(name.clone(), HeaderValue::from_static(""));
        }
    }
}

/// The values of the id header, the first already taken to see that there is one.
type HeaderValues<'a> =
    std::iter::Chain<std::iter::Once<&'a HeaderValue>, http::header::ValueIter<'a, HeaderValue>>;

/// A presented value whose first [`SessionId::TEXT_LEN`] bytes parse as an id: cheap to find,
/// not yet verified (see [`IdTransport::verify`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Presented<'a> {
    pub(crate) id: SessionId,
    /// The cookie or header name it came under, which its signature covers.
    name: &'a str,
    value: &'a [u8],
    /// It came in the id header, not the cookie.
    via_header: bool,
}

/// The ids a request presents, in the order they are tried: see [`IdTransport::incoming`].
pub(crate) struct Candidates<'a> {
    transport: &'a IdTransport,
    header: Option<(&'a HeaderName, HeaderValues<'a>)>,
    cookie: Option<cookie::Values<'a>>,
    /// Of [`MAX_VALUES_EXAMINED`].
    values_left: usize,
}

impl<'a> Iterator for Candidates<'a> {
    type Item = Presented<'a>;

    fn next(&mut self) -> Option<Presented<'a>> {
        if let Some((name, values)) = &mut self.header {
            let name = name.as_str();
            let mut values = values.map(|value| value.as_bytes().trim_ascii());
            if let Some(found) = first_parsed(&mut self.values_left, &mut values, name, true) {
                return Some(found);
            }
            self.header = None;
        }
        let cookie = self.cookie.as_mut()?;
        let name = self.transport.cookie.as_ref()?.name();
        first_parsed(&mut self.values_left, cookie, name, false)
    }
}

/// The first of `values` whose id parses, each value examined spending one of `left`.
#[inline]
fn first_parsed<'v>(
    left: &mut usize,
    values: &mut impl Iterator<Item = &'v [u8]>,
    name: &'v str,
    via_header: bool,
) -> Option<Presented<'v>> {
    while *left > 0 {
        let value = values.next()?;
        *left -= 1;
        if let Some(id) = value
            .get(..SessionId::TEXT_LEN)
            .and_then(SessionId::parse_bytes)
        {
            return Some(Presented {
                id,
                name,
                value,
                via_header,
            });
        }
    }
    None
}

/// Logs rejected values (bad signatures, wrong binding) at most once per interval, with a
/// count, so a client hammering forged cookies cannot flood the logs.
#[derive(Default)]
struct RejectionLog {
    count: AtomicU64,
    last_logged: AtomicU64,
}

const REJECTION_LOG_INTERVAL_MS: u64 = 10_000;

impl RejectionLog {
    fn record(&self, name: &str) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_millis();
        let last = self.last_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= REJECTION_LOG_INTERVAL_MS
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
            tracing::warn!(
                transport = name,
                rejected = count,
                "typed-session: rejected session ids that failed verification (forged, tampered, another key or another client)"
            );
        }
    }
}
