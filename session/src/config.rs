//! Run-time configuration of a [`SessionStore`](crate::SessionStore).

use std::borrow::Cow;
use std::time::Duration;

use http::HeaderName;
use http::header::{COOKIE, SET_COOKIE};

use crate::crypto::Key;
use crate::error::ConfigError;

/// The `SameSite` attribute of the session cookie.
///
/// `Lax` (the default) sends the cookie on top-level navigations from other sites but not on
/// their sub-requests or POSTs, which stops most CSRF while keeping links into your site logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent only on requests that start on this site.
    Strict,
    /// Also sent on top-level navigations from other sites (the default).
    #[default]
    Lax,
    /// Sent on every request, cross-site included; browsers require `Secure` with it.
    None,
}

/// The default of [`SessionConfig::with_memory_capacity`].
const DEFAULT_MEMORY_CAPACITY: usize = 100_000;

/// How sessions behave: cookie attributes, lifetimes, keys and how the id travels.
///
#[doc = include_str!("../docs/configuration.md")]
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub(crate) cookie_name: Option<Cow<'static, str>>,
    pub(crate) cookie_path: Cow<'static, str>,
    pub(crate) cookie_domain: Option<Cow<'static, str>>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    pub(crate) purge_interval: Duration,
    pub(crate) backend_timeout: Duration,
    pub(crate) long_term_timeout: Duration,
    pub(crate) memory_ttl: Duration,
    pub(crate) touch_interval: Duration,
    pub(crate) memory_capacity: Option<usize>,
    pub(crate) key: Option<Key>,
    pub(crate) previous_keys: Vec<Key>,
    pub(crate) encrypt_all: bool,
    pub(crate) transport: Transport,
    pub(crate) header_name: Cow<'static, str>,
    pub(crate) bind_ip: bool,
    pub(crate) bind_user_agent: bool,
    pub(crate) client_ip: ClientIp,
    pub(crate) mode: SessionMode,
    #[cfg(feature = "key-store")]
    pub(crate) key_store: Option<KeyStoreConfig>,
}

/// The size of the key-store's Bloom filter (cargo feature `key-store`): how many stored
/// sessions to expect and the accepted false-positive rate. Memory is about
/// `-expected · ln(rate) / ln(2)²` bits: 1.2 MB for a million sessions at 1 %.
#[cfg(feature = "key-store")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyStoreConfig {
    pub(crate) expected_items: usize,
    pub(crate) false_positive_rate: f64,
}

#[cfg(feature = "key-store")]
impl KeyStoreConfig {
    /// A filter for `expected_items` keys with the given false-positive rate (between 0 and 1
    /// exclusive; checked by `build()`).
    #[must_use]
    pub fn new(expected_items: usize, false_positive_rate: f64) -> Self {
        Self {
            expected_items,
            false_positive_rate,
        }
    }
}

/// How the session id travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// In a cookie (the default): for browsers.
    #[default]
    Cookie,
    /// In a request header, answered in a response header of the same name, with no cookies at
    /// all: for API clients ("REST mode"). The header name is
    /// [`with_header_name`](SessionConfig::with_header_name).
    Header,
    /// Both: a browser and an API client on one app. A request's header is tried before its
    /// cookie; responses carry both.
    CookieAndHeader,
}

/// Where the client address of IP binding comes from. Only the named source is read: a header a
/// client adds itself is never consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientIp {
    /// The socket peer from axum's `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`): for apps without a proxy.
    #[default]
    Peer,
    /// `X-Forwarded-For`, with this many trusted proxies appending to it: the `n`-th address from
    /// the right is the one the outermost proxy saw. Count exactly: one too many lets clients
    /// choose their address, one too few binds everyone to a proxy.
    XForwardedFor(usize),
    /// The `for=` nodes of `Forwarded` (RFC 7239), counted the same way.
    Forwarded(usize),
    /// `X-Real-IP`, set (not appended) by the one proxy in front; a request with two is refused.
    XRealIp,
}

/// When sessions may be written to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    /// Every session that is written to is stored (the default).
    #[default]
    Persistent,
    /// Consent first: a session lives in memory only until the handler calls
    /// [`TypedSession::set_store(true)`](crate::TypedSession::set_store) (the visitor agreed to
    /// be remembered). The flag travels with the id, signed when signing is on, so a client
    /// cannot grant it by itself.
    OptIn,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: None,
            cookie_path: Cow::Borrowed("/"),
            cookie_domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            idle_timeout: Duration::from_secs(24 * 60 * 60),
            absolute_timeout: Duration::from_secs(7 * 24 * 60 * 60),
            purge_interval: Duration::from_secs(60),
            backend_timeout: Duration::from_secs(5),
            long_term_timeout: Duration::from_secs(30 * 24 * 60 * 60),
            memory_ttl: Duration::from_secs(10 * 60),
            touch_interval: Duration::from_secs(60),
            memory_capacity: Some(DEFAULT_MEMORY_CAPACITY),
            key: None,
            previous_keys: Vec::new(),
            encrypt_all: false,
            transport: Transport::Cookie,
            header_name: Cow::Borrowed("x-session-id"),
            bind_ip: false,
            bind_user_agent: false,
            client_ip: ClientIp::Peer,
            mode: SessionMode::Persistent,
            #[cfg(feature = "key-store")]
            key_store: None,
        }
    }
}

impl SessionConfig {
    /// Sets the cookie name. Two layers on one router need two names; the default (the data
    /// type's snake_case name) already gives them that.
    #[must_use]
    pub fn with_cookie_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.cookie_name = Some(name.into());
        self
    }

    /// Sets the cookie `Path`; it must start with `/`.
    #[must_use]
    pub fn with_cookie_path(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.cookie_path = path.into();
        self
    }

    /// Sets the cookie `Domain`, which also sends the cookie to that domain's subdomains.
    #[must_use]
    pub fn with_cookie_domain(mut self, domain: impl Into<Cow<'static, str>>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// Sets `Secure`. Turn it off only for plain-HTTP development.
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `HttpOnly`.
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets `SameSite`.
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Sets how long a session may go without a request before it ends. Requests spaced less
    /// than this apart keep a session alive on every server; with a backend an unused session
    /// is gone everywhere at most one [touch interval](Self::with_touch_interval) later (its
    /// stored expiry is extended once per touch interval, and keeps that much slack). A request
    /// still running counts as a use.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets how long after its creation a session ends, however active it is.
    #[must_use]
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = timeout;
        self
    }

    /// Sets how often the store purges expired sessions. Expired sessions are
    /// never served in between; purging only frees their memory.
    ///
    /// The interval runs on the wall clock, kept by a small sleeping thread per store rather
    /// than a Tokio timer (one fewer timer for the runtime to look at on every park). So a test
    /// on Tokio's paused clock does not drive it: call
    /// [`SessionStore::purge_expired`](crate::SessionStore::purge_expired) there instead.
    #[must_use]
    pub fn with_purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = interval;
        self
    }

    /// Sets how long after its last request a "remember me" session
    /// ([`TypedSession::set_long_term`](crate::TypedSession::set_long_term)) ends. Such a session
    /// has no absolute timeout, and its cookie carries a matching `Max-Age`.
    #[must_use]
    pub fn with_long_term_timeout(mut self, timeout: Duration) -> Self {
        self.long_term_timeout = timeout;
        self
    }

    /// Sets how long a session may go unused before it leaves the memory cache of a store with
    /// a backend (its next request loads it again). Without a backend memory is the only copy,
    /// so only the session timeouts apply.
    #[must_use]
    pub fn with_memory_ttl(mut self, ttl: Duration) -> Self {
        self.memory_ttl = ttl;
        self
    }

    /// Bounds how many sessions memory holds (default 100,000, about 25 MB plus the values;
    /// [`with_unbounded_memory`](Self::with_unbounded_memory) lifts the bound, and zero is
    /// refused by `build()`). Past it the store's purge thread evicts the least recently used
    /// down to nine tenths of the bound, off the request path. A session a request is using is
    /// never evicted. With a backend that only costs a reload on their next request; without
    /// one, evicted sessions are gone (their users start over, and the store logs a warning at
    /// most once a minute), which is the price of not letting a client that creates sessions
    /// in a loop exhaust memory.
    ///
    /// ```
    /// use typed_session::SessionConfig;
    ///
    /// let small = SessionConfig::default().with_memory_capacity(10_000);
    /// # let _ = small;
    /// ```
    #[must_use]
    pub fn with_memory_capacity(mut self, capacity: usize) -> Self {
        self.memory_capacity = Some(capacity);
        self
    }

    /// Lifts the bound of [`with_memory_capacity`](Self::with_memory_capacity): memory holds
    /// every live session until it expires (or, with a backend, leaves the cache after the
    /// [memory ttl](Self::with_memory_ttl)). Without a backend a client that creates sessions
    /// in a loop can then exhaust memory; choose it only where something else bounds that.
    ///
    /// ```
    /// use typed_session::SessionConfig;
    ///
    /// let unbounded = SessionConfig::default().with_unbounded_memory();
    /// # let _ = unbounded;
    /// ```
    #[must_use]
    pub fn with_unbounded_memory(mut self) -> Self {
        self.memory_capacity = None;
        self
    }

    /// Sets how often, at most, a request that changed nothing extends the session's expiry in
    /// the backend. The same round trip confirms the session still exists there, so where the
    /// backend announces no changes (all but Redis and PostgreSQL, or while their subscription
    /// is down) this is also how soon a server notices a session destroyed or changed by
    /// another server; with announcements that takes milliseconds. Must be
    /// shorter than the idle and long-term timeouts. A stored record is kept this much longer
    /// than the idle timeout, so that sessions used less than the idle timeout apart never
    /// expire between touches. Without a backend it paces the re-sent "remember me" cookie
    /// (must be shorter than the long-term timeout).
    #[must_use]
    pub fn with_touch_interval(mut self, interval: Duration) -> Self {
        self.touch_interval = interval;
        self
    }

    /// Sets how long one backend call on a request's path (a load, a save, an expiry touch, a
    /// delete) may take before it counts as failed (default 5 seconds). A backend that is down
    /// or frozen then costs a request a bounded wait and a `503`, never a hang: a request makes
    /// at most two calls before its handler and, when storage fails, one after it, so it is
    /// answered within about three times this (plus the handler's own time). A call that timed
    /// out may still have been applied; the store treats it like any failed call. The purge's
    /// calls are not limited. A store with a backend needs the Tokio time driver for this
    /// (`#[tokio::main]` has it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use typed_session::SessionConfig;
    ///
    /// let config = SessionConfig::default().with_backend_timeout(Duration::from_secs(2));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn with_backend_timeout(mut self, timeout: Duration) -> Self {
        self.backend_timeout = timeout;
        self
    }

    /// Sets the key that signs session ids and encrypts `#[session(encrypt)]` fields. With a key,
    /// every id is signed (HMAC-SHA256 over the cookie or header name, the id, the consent flag
    /// and the client binding), and a value whose signature does not verify is treated as absent.
    #[must_use]
    pub fn with_key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Keys that still verify and decrypt but no longer sign or encrypt: rotate by making the
    /// new key current and the old one previous. Values signed with a previous key are re-signed
    /// with the current one on their next response; records are re-encrypted on their next write.
    #[must_use]
    pub fn with_previous_keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.previous_keys = keys.into_iter().collect();
        self
    }

    /// Encrypts every stored field of the record, not only `#[session(encrypt)]` ones (needs a
    /// key).
    #[must_use]
    pub fn with_encrypt_all(mut self, encrypt_all: bool) -> Self {
        self.encrypt_all = encrypt_all;
        self
    }

    /// Sets how the id travels: cookie (default), header, or both.
    #[must_use]
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the header of [`Transport::Header`] and [`Transport::CookieAndHeader`] (default
    /// `x-session-id`). Header names are case-insensitive and sent in lower case. `build()`
    /// refuses a name that is not a valid header name, and `cookie` or `set-cookie`, whose
    /// values the session cookie needs.
    ///
    /// ```
    /// use typed_session::{SessionConfig, Transport};
    ///
    /// let config = SessionConfig::default()
    ///     .with_transport(Transport::Header)
    ///     .with_header_name("x-api-session");
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn with_header_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.header_name = name.into();
        self
    }

    /// Binds each session to the client's IP address: a value presented from another address is
    /// rejected (needs a key). The address comes from [`with_client_ip`](Self::with_client_ip).
    /// Mobile clients change addresses often; bind only where that is acceptable.
    ///
    /// A request whose address cannot be read (served without `ConnectInfo`, or the configured
    /// proxy header missing or listing fewer addresses than the proxies counted) cannot be
    /// checked, so it is refused with `500 Internal Server Error` when it presents an id or is
    /// to be given one; the log line names the fix. Serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()` for [`ClientIp::Peer`].
    #[must_use]
    pub fn with_ip_binding(mut self, bind: bool) -> Self {
        self.bind_ip = bind;
        self
    }

    /// Binds each session to the client's `User-Agent` (needs a key): a stolen cookie replayed
    /// from another browser is rejected. A browser update also ends the session.
    #[must_use]
    pub fn with_user_agent_binding(mut self, bind: bool) -> Self {
        self.bind_user_agent = bind;
        self
    }

    /// Where IP binding reads the client address (default [`ClientIp::Peer`]). Behind reverse
    /// proxies name the one header they write and how many of them append to it.
    #[must_use]
    pub fn with_client_ip(mut self, source: ClientIp) -> Self {
        self.client_ip = source;
        self
    }

    /// Sets when sessions may be stored: [`SessionMode::Persistent`] (default) or
    /// [`SessionMode::OptIn`].
    #[must_use]
    pub fn with_mode(mut self, mode: SessionMode) -> Self {
        self.mode = mode;
        self
    }

    /// Turns the key-store on (cargo feature `key-store`): a Bloom filter of the stored session
    /// keys, seeded from the backend by `build()` and rebuilt at each purge, answers "unknown id"
    /// for ids that were never stored without a backend round trip (forged ids, stale cookies,
    /// scanners). **One server only**: a session stored by another server is not in this
    /// server's filter and would be turned away. Without a backend it does nothing. Off unless
    /// this is called.
    ///
    /// ```
    /// use typed_session::{KeyStoreConfig, SessionConfig};
    ///
    /// let config = SessionConfig::default().with_key_store(KeyStoreConfig::new(1_000_000, 0.01));
    /// # let _ = config;
    /// ```
    #[cfg(feature = "key-store")]
    #[must_use]
    pub fn with_key_store(mut self, key_store: KeyStoreConfig) -> Self {
        self.key_store = Some(key_store);
        self
    }

    /// The cookie name, if one was set (otherwise the store derives it from the data type).
    #[must_use]
    pub fn cookie_name(&self) -> Option<&str> {
        self.cookie_name.as_deref()
    }

    /// The idle timeout.
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The absolute timeout.
    #[must_use]
    pub fn absolute_timeout(&self) -> Duration {
        self.absolute_timeout
    }

    /// The header of the header transport, checked: see
    /// [`with_header_name`](Self::with_header_name).
    pub(crate) fn header_name(&self) -> Result<HeaderName, ConfigError> {
        HeaderName::from_bytes(self.header_name.as_bytes())
            .ok()
            .filter(|name| *name != COOKIE && *name != SET_COOKIE)
            .ok_or_else(|| ConfigError::HeaderName(self.header_name.to_string()))
    }

    /// Checks the settings that a browser or this crate would otherwise trip on later.
    /// `with_backend`: the touch interval only matters when there is a backend to touch.
    pub(crate) fn validate(
        &self,
        cookie_name: &str,
        with_backend: bool,
    ) -> Result<(), ConfigError> {
        if cookie_name.is_empty() || !cookie_name.bytes().all(is_cookie_name_byte) {
            return Err(ConfigError::CookieName(cookie_name.to_owned()));
        }
        if !self.cookie_path.starts_with('/')
            || self
                .cookie_path
                .bytes()
                .any(|b| b == b';' || b.is_ascii_control())
        {
            return Err(ConfigError::CookiePath(self.cookie_path.to_string()));
        }
        if let Some(domain) = &self.cookie_domain {
            let valid = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(ConfigError::CookieDomain(domain.to_string()));
            }
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(ConfigError::SameSiteNoneWithoutSecure);
        }
        if cookie_name.starts_with("__Host-")
            && (!self.secure || self.cookie_domain.is_some() || self.cookie_path != "/")
        {
            return Err(ConfigError::HostPrefix);
        }
        if cookie_name.starts_with("__Secure-") && !self.secure {
            return Err(ConfigError::SecurePrefix);
        }
        // Checked whatever the transport, so switching it on later cannot fail on this.
        self.header_name()?;
        for (setting, value) in [
            ("idle timeout", self.idle_timeout),
            ("absolute timeout", self.absolute_timeout),
            ("long-term timeout", self.long_term_timeout),
            ("purge interval", self.purge_interval),
            ("memory ttl", self.memory_ttl),
            ("touch interval", self.touch_interval),
            ("backend timeout", self.backend_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration(setting));
            }
        }
        if self.key.is_none() {
            if self.bind_ip || self.bind_user_agent {
                return Err(ConfigError::BindingWithoutKey);
            }
            if self.encrypt_all {
                return Err(ConfigError::MissingEncryptionKey(
                    "every field (with_encrypt_all)".to_owned(),
                ));
            }
            if !self.previous_keys.is_empty() {
                return Err(ConfigError::PreviousKeysWithoutKey);
            }
        }
        #[cfg(feature = "key-store")]
        if let Some(key_store) = self.key_store {
            let rate = key_store.false_positive_rate;
            if key_store.expected_items == 0 || !(rate > 0.0 && rate < 1.0) {
                return Err(ConfigError::KeyStore);
            }
        }
        if self.memory_capacity == Some(0) {
            return Err(ConfigError::ZeroDuration("memory capacity"));
        }
        if with_backend && self.touch_interval >= self.idle_timeout.min(self.long_term_timeout) {
            return Err(ConfigError::TouchInterval);
        }
        // Without a backend the touch interval paces the re-sent "remember me" cookie.
        if !with_backend && self.touch_interval >= self.long_term_timeout {
            return Err(ConfigError::TouchInterval);
        }
        Ok(())
    }
}

/// RFC 6265 `token` characters: visible ASCII except separators.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: &SessionConfig) -> Result<(), ConfigError> {
        config.validate(config.cookie_name().unwrap_or("visit"), true)
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check(&SessionConfig::default()).is_ok());
    }

    #[test]
    fn rejects_each_mistake() {
        let base = SessionConfig::default;
        assert!(matches!(
            check(&base().with_cookie_name("a b")),
            Err(ConfigError::CookieName(_))
        ));
        assert!(matches!(
            check(&base().with_cookie_name("")),
            Err(ConfigError::CookieName(_))
        ));
        assert!(matches!(
            check(&base().with_cookie_path("app")),
            Err(ConfigError::CookiePath(_))
        ));
        assert!(matches!(
            check(&base().with_cookie_domain("a;b")),
            Err(ConfigError::CookieDomain(_))
        ));
        assert!(matches!(
            check(&base().with_same_site(SameSite::None).with_secure(false)),
            Err(ConfigError::SameSiteNoneWithoutSecure)
        ));
        assert!(matches!(
            check(
                &base()
                    .with_cookie_name("__Host-sid")
                    .with_cookie_path("/app")
            ),
            Err(ConfigError::HostPrefix)
        ));
        assert!(matches!(
            check(&base().with_cookie_name("__Secure-sid").with_secure(false)),
            Err(ConfigError::SecurePrefix)
        ));
        for bad in ["", "x session", "x-session\n", "set-cookie", "Cookie"] {
            assert!(
                matches!(
                    check(&base().with_header_name(bad)),
                    Err(ConfigError::HeaderName(name)) if name == bad
                ),
                "{bad:?} accepted as a header name"
            );
        }
        assert!(matches!(
            check(&base().with_idle_timeout(Duration::ZERO)),
            Err(ConfigError::ZeroDuration("idle timeout"))
        ));
        assert!(matches!(
            check(&base().with_idle_timeout(Duration::from_secs(30))),
            Err(ConfigError::TouchInterval)
        ));
    }

    #[test]
    fn header_names_are_taken_as_strings_and_sent_in_lower_case() {
        let config = SessionConfig::default().with_header_name(String::from("X-Api-Session"));
        assert!(check(&config).is_ok());
        assert_eq!(config.header_name().unwrap().as_str(), "x-api-session");
        assert_eq!(
            SessionConfig::default().header_name().unwrap().as_str(),
            "x-session-id"
        );
    }

    #[test]
    fn touch_interval_must_be_below_the_long_term_timeout_too() {
        // Below the idle timeout, but not below the long-term one.
        let config = SessionConfig::default()
            .with_touch_interval(Duration::from_secs(60))
            .with_long_term_timeout(Duration::from_secs(60));
        assert!(config.touch_interval < config.idle_timeout);
        assert!(matches!(
            config.validate("visit", true),
            Err(ConfigError::TouchInterval)
        ));
        // Without a backend it paces the "remember me" cookie, so the bound holds there too.
        assert!(matches!(
            config.validate("visit", false),
            Err(ConfigError::TouchInterval)
        ));
        let below = config.with_long_term_timeout(Duration::from_secs(61));
        assert!(below.validate("visit", true).is_ok());
        assert!(below.validate("visit", false).is_ok());
    }

    #[test]
    fn memory_is_bounded_by_default() {
        assert_eq!(SessionConfig::default().memory_capacity, Some(100_000));
    }

    #[cfg(feature = "key-store")]
    #[test]
    fn key_store_is_checked_once_turned_on() {
        assert_eq!(SessionConfig::default().key_store, None);
        let on = SessionConfig::default().with_key_store(KeyStoreConfig::new(1_000, 0.01));
        assert!(check(&on).is_ok());
        let bad = SessionConfig::default().with_key_store(KeyStoreConfig::new(1_000, 1.0));
        assert!(matches!(check(&bad), Err(ConfigError::KeyStore)));
    }

    #[test]
    fn memory_capacity_takes_a_number_and_can_be_lifted() {
        let small = SessionConfig::default().with_memory_capacity(10);
        assert_eq!(small.memory_capacity, Some(10));
        assert_eq!(small.with_unbounded_memory().memory_capacity, None);
        assert!(matches!(
            check(&SessionConfig::default().with_memory_capacity(0)),
            Err(ConfigError::ZeroDuration("memory capacity"))
        ));
    }
}
