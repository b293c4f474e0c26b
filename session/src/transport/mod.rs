//! How a session id travels between client and server: in a cookie, a header or both; signed
//! and bound to its client when the store has a key.

pub(crate) mod cookie;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::binding::{BindingPolicy, ClientBinding};
use crate::clock::now_millis;
use crate::config::{SessionConfig, SessionMode, Transport};
use crate::crypto::{KeyRing, SIGNATURE_LEN, Signer};
use crate::id::SessionId;
use cookie::CookieTransport;

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
    pub(crate) fn new(cookie_name: &str, config: &SessionConfig, keys: &KeyRing) -> Self {
        let (cookie, header) = match config.transport {
            Transport::Cookie => (true, false),
            Transport::Header => (false, true),
            Transport::CookieAndHeader => (true, true),
        };
        Self {
            cookie: cookie.then(|| CookieTransport::new(cookie_name, config)),
            header: header.then(|| config.header_name.clone()),
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

    /// Every well-formed, correctly signed id among the first [`MAX_VALUES_EXAMINED`] values
    /// the request presents: header values first (an API client means it), then cookies.
    /// `None` when it presents no value at all, so a new client's request skips the search.
    // Inlined into the open, so that what it returns is built in place and not copied there.
    #[inline(always)]
    pub(crate) fn incoming<'a>(
        &'a self,
        headers: &'a HeaderMap,
        binding: &'a ClientBinding,
    ) -> Option<Candidates<'a>> {
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
            binding,
            header,
            cookie,
            values_left: MAX_VALUES_EXAMINED,
        })
    }

    /// Parses and verifies one value: `<id>[~s][.<signature>]`.
    fn decode(&self, name: &str, value: &[u8], binding: &ClientBinding) -> Option<Incoming> {
        let id = SessionId::parse_bytes(value.get(..SessionId::TEXT_LEN)?)?;
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
        Some(Incoming { id, resign })
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

    /// Hands `id` to the client on every configured transport.
    #[inline]
    pub(crate) fn set(
        &self,
        headers: &mut HeaderMap,
        id: SessionId,
        consent: bool,
        binding: &ClientBinding,
        max_age: Option<Duration>,
    ) {
        if let Some(cookie) = &self.cookie {
            if self.signer.is_none() && !self.marks_consent(consent) && max_age.is_none() {
                cookie.set_unsigned(headers, id);
            } else {
                let write =
                    |line: &mut Vec<u8>| self.encode(line, cookie.name(), id, consent, binding);
                cookie.set(headers, self.value_len(consent), write, max_age);
            }
        }
        if let Some(name) = &self.header {
            let mut value = Vec::with_capacity(self.value_len(consent));
            self.encode(&mut value, name.as_str(), id, consent, binding);
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

/// How many presented values (header values, then cookies of our name) one request may have
/// parsed and verified. A browser sends one, or a few when cookies of other paths or domains
/// share the name; a request stuffed with thousands must not cost thousands of signature
/// checks, each over the whole User-Agent when that is bound.
const MAX_VALUES_EXAMINED: usize = 16;

/// The ids a request presents, in the order they are tried: see [`IdTransport::incoming`].
pub(crate) struct Candidates<'a> {
    transport: &'a IdTransport,
    binding: &'a ClientBinding,
    header: Option<(&'a HeaderName, HeaderValues<'a>)>,
    cookie: Option<cookie::Values<'a>>,
    /// Of [`MAX_VALUES_EXAMINED`].
    values_left: usize,
}

impl Iterator for Candidates<'_> {
    type Item = Incoming;

    fn next(&mut self) -> Option<Incoming> {
        let (transport, binding) = (self.transport, self.binding);
        if let Some((name, values)) = &mut self.header {
            let mut values = values.map(|value| value.as_bytes().trim_ascii());
            let found = first_ours(&mut self.values_left, &mut values, |value| {
                transport.decode(name.as_str(), value, binding)
            });
            if found.is_some() {
                return found;
            }
            self.header = None;
        }
        let cookie = self.cookie.as_mut()?;
        let name = transport.cookie.as_ref()?.name();
        first_ours(&mut self.values_left, cookie, |value| {
            transport.decode(name, value, binding)
        })
    }
}

/// The first of `values` that `decode` accepts, each value examined spending one of `left`.
#[inline]
fn first_ours<'v>(
    left: &mut usize,
    values: &mut impl Iterator<Item = &'v [u8]>,
    mut decode: impl FnMut(&[u8]) -> Option<Incoming>,
) -> Option<Incoming> {
    while *left > 0 {
        let value = values.next()?;
        *left -= 1;
        if let Some(incoming) = decode(value) {
            return Some(incoming);
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
