//! Errors of a backend.

use std::error::Error as StdError;
use std::fmt;

/// A backend operation failed: the server is down, a query failed, or a stored record is
/// malformed.
///
/// On a failure the store answers the request with `503 Service Unavailable` and logs this
/// error; it never replaces a session it could not read with an empty one. A
/// [`malformed`](Self::malformed) record is different: the storage works, but that one record
/// can never be read. As with a record whose data cannot be decoded, a request that loads or
/// touches it gets a fresh session (under a new id) and the record is left to expire; a save
/// or renewal that meets it answers 503 without writing over it.
///
/// ```
/// use typed_session::backend::BackendError;
///
/// let down = BackendError::new("loading a session", "connection refused");
/// assert!(!down.is_malformed());
/// let damaged = BackendError::malformed("loading a session", "version column holds -1");
/// assert!(damaged.is_malformed());
/// ```
#[derive(Debug)]
pub struct BackendError {
    context: &'static str,
    source: Box<dyn StdError + Send + Sync>,
    malformed: bool,
}

impl BackendError {
    /// Wraps the error of a backend operation; `context` says what was attempted
    /// ("loading a session", "creating the sessions table", …).
    pub fn new(context: &'static str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            context,
            source: source.into(),
            malformed: false,
        }
    }

    /// A stored record that is there but cannot be returned as a
    /// [`Record`](crate::backend::Record): a negative or non-numeric version, a missing
    /// field, a value of the wrong type. Return it from `load` and `touch` for such a record.
    pub fn malformed(
        context: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            malformed: true,
            ..Self::new(context, source)
        }
    }

    /// Whether this is a [`malformed`](Self::malformed) record rather than a failure.
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// What was attempted.
    #[must_use]
    pub fn context(&self) -> &'static str {
        self.context
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session backend failed while {}: {}",
            self.context, self.source
        )
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
