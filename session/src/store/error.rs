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
    #[error("the session was changed by other servers {0} times in a row while saving; giving up")]
    Contention(u32),
}

impl StoreError {
    /// The backend's trouble is the service's unavailability; a value that cannot be encoded
    /// is this application's bug.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Backend(_) | Self::Contention(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response body: what happened, without internals.
    pub(crate) fn public_message(&self) -> &'static str {
        match self {
            Self::Backend(_) | Self::Contention(_) => {
                "session storage is unavailable; please retry shortly\n"
            }
            Self::Encode(_) => "the session could not be stored\n",
        }
    }
}
