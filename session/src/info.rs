//! What the store tells about a stored session outside a request: its [`SessionHandle`] and a
//! [`SessionInfo`] per session in a list.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use crate::backend::StorageKey;
use crate::clock::to_system_time;
use crate::id::SessionId;

/// Names one session without being its id: safe to show to its user (a "devices" page), to put
/// in a form or a URL, and to log. Knowing a handle does not let anyone use the session; it lets
/// whoever holds the store end it ([`SessionStore::destroy`](crate::SessionStore::destroy)).
///
/// It is the session's [`StorageKey`] (the SHA-256 of its id) and stays the same for the
/// session's life, except that renewing the id (`renew()`, `renew_on_change`) gives the session
/// a new handle.
///
/// ```
/// use typed_session::SessionHandle;
///
/// let text = "9e0f3a1b".repeat(8);
/// let handle: SessionHandle = text.parse().unwrap();
/// assert_eq!(handle.to_string(), text);
/// assert!("not a handle".parse::<SessionHandle>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle(StorageKey);

impl SessionHandle {
    pub(crate) fn for_id(id: SessionId) -> Self {
        Self(StorageKey::for_id(id))
    }

    pub(crate) fn from_key(key: StorageKey) -> Self {
        Self(key)
    }

    /// The storage key the session's record is kept under.
    #[must_use]
    pub fn storage_key(&self) -> &StorageKey {
        &self.0
    }

    /// The handle as text (64 lowercase hex digits).
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Why a text is not a [`SessionHandle`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session handle (64 lowercase hex digits)")]
pub struct ParseSessionHandleError;

impl FromStr for SessionHandle {
    type Err = ParseSessionHandleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        StorageKey::parse(text)
            .map(Self)
            .ok_or(ParseSessionHandleError)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({}…)", &self.as_str()[..12])
    }
}

/// One session of a list ([`SessionStore::sessions_of`](crate::SessionStore::sessions_of)): how
/// to name it, its times, and its data as stored.
///
/// To show which device a session is, store what you want to show in the session itself (a
/// `user_agent: Option<String>` field set at log-in, for example): it comes back in
/// [`data`](Self::data).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionInfo<T> {
    /// Names the session, for [`SessionStore::destroy`](crate::SessionStore::destroy) or to
    /// compare with the current request's
    /// [`TypedSession::handle`](crate::TypedSession::handle).
    pub handle: SessionHandle,
    /// When the session began.
    pub created_at: SystemTime,
    /// When the session was last used, to within the touch interval (the stored expiry is
    /// extended at most once per touch interval); earlier near the absolute timeout.
    pub last_active_at: SystemTime,
    /// When the stored session expires unless it is used again.
    pub expires_at: SystemTime,
    /// Whether it is a "remember me" session.
    pub long_term: bool,
    /// The session's value as stored (`memory_only` fields at their defaults).
    pub data: T,
}

impl<T> SessionInfo<T> {
    pub(crate) fn new(
        handle: SessionHandle,
        created_at: u64,
        last_active_at: u64,
        expires_at: u64,
        long_term: bool,
        data: T,
    ) -> Self {
        Self {
            handle,
            created_at: to_system_time(created_at),
            last_active_at: to_system_time(last_active_at.max(created_at)),
            expires_at: to_system_time(expires_at),
            long_term,
            data,
        }
    }
}
