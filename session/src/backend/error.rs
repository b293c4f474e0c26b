//! Errors of a backend.

use std::error::Error as StdError;
use std::fmt;

/// A backend operation failed: the server is down, a query failed, a stored value is
/// malformed. The store answers the request with `503 Service Unavailable` and logs this error;
/// it never replaces a session it could not read with an empty one.
#[derive(Debug)]
pub struct BackendError {
    context: &'static str,
    source: Box<dyn StdError + Send + Sync>,
}

impl BackendError {
    /// Wraps the error of a backend operation; `context` says what was attempted
    /// ("loading a session", "creating the sessions table", …).
    pub fn new(context: &'static str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            context,
            source: source.into(),
        }
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
