//! What can go wrong around a request, and the response it becomes.

use http::StatusCode;

use crate::backend::BackendError;
use crate::record::EncodeError;

/// A failure of the store while opening or closing a request's session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Another server stored a version this one cannot read (another key, a newer format):
    /// saving over it would lose that server's writes.
    #[error(
        "a newer stored copy of the session cannot be read here, so it is not overwritten: {0}"
    )]
    Unreadable(Box<dyn std::error::Error + Send + Sync>),
    #[error("the session was changed by other servers {0} times in a row while saving; giving up")]
    Contention(u32),
}

impl StoreError {
    /// The backend's trouble is the service's unavailability; a value that cannot be encoded
    /// is this application's bug.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Backend(_) | Self::Contention(_) | Self::Unreadable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response body: what happened, without internals.
    pub(crate) fn public_message(&self) -> &'static str {
        match self {
            Self::Backend(_) | Self::Contention(_) | Self::Unreadable(_) => {
                "session storage is unavailable; please retry shortly\n"
            }
            Self::Encode(_) => "the session could not be stored\n",
        }
    }
}
