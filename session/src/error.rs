//! Errors of building a store, and of what a handler asks of its store.

/// A configuration mistake, reported by
/// [`SessionStoreBuilder::build`](crate::SessionStoreBuilder::build) with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is empty or holds characters a cookie name cannot.
    #[error(
        "invalid cookie name {0:?}: use letters, digits and `-_.!#$%&'*+^`|~` only (SessionConfig::with_cookie_name)"
    )]
    CookieName(String),
    /// The cookie path does not start with `/` or holds `;` or control characters.
    #[error(
        "invalid cookie path {0:?}: it must start with `/` and hold no `;` (SessionConfig::with_cookie_path)"
    )]
    CookiePath(String),
    /// The cookie domain is not a plain host name.
    #[error(
        "invalid cookie domain {0:?}: give a host name such as `example.com` (SessionConfig::with_cookie_domain)"
    )]
    CookieDomain(String),
    /// `SameSite=None` without `Secure`, which browsers reject.
    #[error(
        "SameSite::None requires Secure: browsers drop such cookies; call .with_secure(true) or choose SameSite::Lax"
    )]
    SameSiteNoneWithoutSecure,
    /// A `__Host-` cookie name with settings the prefix forbids.
    #[error(
        "a `__Host-` cookie must be Secure, have path `/` and no domain: adjust the config or drop the prefix"
    )]
    HostPrefix,
    /// A `__Secure-` cookie name without `Secure`.
    #[error("a `__Secure-` cookie must be Secure: call .with_secure(true) or drop the prefix")]
    SecurePrefix,
    /// The header name of the header transport is not a valid header name, or is `cookie` or
    /// `set-cookie`.
    #[error(
        "invalid session header name {0:?}: use letters, digits and `-` (such as `x-session-id`), and not `cookie` or `set-cookie` (SessionConfig::with_header_name)"
    )]
    HeaderName(String),
    /// A touch interval not shorter than the timeouts it extends.
    #[error(
        "the touch interval must be shorter than the idle and long-term timeouts, or sessions would expire between touches: lower it with .with_touch_interval"
    )]
    TouchInterval,
    /// Client binding is on but there is no key to sign the binding with.
    #[error(
        "IP or User-Agent binding needs signed ids: add a key with .with_key(Key::from_secret(..)?)"
    )]
    BindingWithoutKey,
    /// Previous keys without a current key.
    #[error("previous keys need a current key: add it with .with_key(..)")]
    PreviousKeysWithoutKey,
    /// Something must be encrypted but no key is configured.
    #[error(
        "{0} must be encrypted at rest, but the store has no key: add one with SessionConfig::with_key(Key::from_secret(..)?)"
    )]
    MissingEncryptionKey(String),
    /// A key-store sized for no items or with a false-positive rate outside (0, 1).
    #[error(
        "the key-store needs expected items above 0 and a false-positive rate between 0 and 1 exclusive, e.g. KeyStoreConfig::new(100_000, 0.01)"
    )]
    KeyStore,
    /// A timeout, interval or capacity of zero.
    #[error("the {0} must be more than zero")]
    ZeroDuration(&'static str),
}

/// Why [`TypedSession::save_now`](crate::TypedSession::save_now) or
/// [`TypedSession::verify`](crate::TypedSession::verify) failed. As a response it answers
/// what the layer would have: 503 when storage failed, 409 when the session ended under the
/// request, with a short message (the full error is logged).
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct SessionError {
    status: http::StatusCode,
    public: &'static str,
    detail: String,
}

impl SessionError {
    pub(crate) fn new(status: http::StatusCode, public: &'static str, detail: String) -> Self {
        Self {
            status,
            public,
            detail,
        }
    }

    /// The status a response about it should have.
    #[must_use]
    pub fn status(&self) -> http::StatusCode {
        self.status
    }

    /// Whether the session is over (destroyed, renewed away, expired): the client should start
    /// again, where other errors may pass on a retry.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.status == http::StatusCode::CONFLICT
    }
}

impl axum_core::response::IntoResponse for SessionError {
    fn into_response(self) -> axum_core::response::Response {
        tracing::warn!(error = %self.detail, "typed-session: a handler's session request failed");
        (self.status, self.public).into_response()
    }
}
