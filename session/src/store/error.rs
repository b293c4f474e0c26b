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
    /// The stored copy cannot be read here (another server's key or newer format, or damage):
    /// saving over it could lose another server's writes, so the request fails instead.
    #[error("the stored copy of the session cannot be read here, so it is not overwritten: {0}")]
    Unreadable(Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the stored session was changed by other writers {0} times in a row while saving; giving up"
    )]
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
