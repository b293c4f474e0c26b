//! What can go wrong around a request, and the response it becomes.

use http::StatusCode;

use crate::backend::BackendError;
use crate::config::ClientIp;
use crate::record::EncodeError;

/// A failure of the store while opening or closing a request's session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Before the handler: the session could not be loaded or touched. Nothing changed.
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
    /// A load kept finding the session's cached copy evicted while it read the backend (see
    /// `Loaded::Stale`): memory is churning faster than the backend answers.
    #[error(
        "the session was evicted from memory {0} times while it loaded; raise SessionConfig::with_memory_capacity"
    )]
    Churning(u32),
    /// After the handler: the save failed, and this server dropped its copy of the session
    /// with the request's writes, so that they are not stored later behind the client's back.
    #[error("saving the session failed; its unsaved writes were dropped: {0}")]
    Unsaved(Box<StoreError>),
    /// The session ended while the request ran (destroyed by a parallel request or another
    /// server, or expired): the request's writes went nowhere.
    #[error(
        "the session ended while the request ran (logged out, renewed away or expired); its writes were not saved"
    )]
    Gone,
    /// IP binding is on and the request does not tell its client's address: the check cannot
    /// run, so the request is refused rather than let through unbound.
    #[error(
        "IP binding is on but the request carries no client address from {0:?}: serve the app with `into_make_service_with_connect_info::<SocketAddr>()` (ClientIp::Peer), or make the proxy set the header that `SessionConfig::with_client_ip` names"
    )]
    UnknownClientIp(ClientIp),
}

impl StoreError {
    /// The backend's trouble is the service's unavailability; a value that cannot be encoded
    /// or a binding that cannot be checked is this application's bug; a session that ended
    /// under the request is a conflict with its current state.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Backend(_) | Self::Contention(_) | Self::Churning(_) | Self::Unreadable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Unsaved(cause) => cause.status(),
            Self::Gone => StatusCode::CONFLICT,
            Self::Encode(_) | Self::UnknownClientIp(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response body: what happened to the request's changes, without internals.
    pub(crate) fn public_message(&self) -> &'static str {
        match self {
            Self::Backend(_) | Self::Churning(_) => {
                "session storage is unavailable; nothing was changed; please retry shortly\n"
            }
            Self::Contention(_) | Self::Unreadable(_) => {
                "the session could not be saved; this request's changes to it were not kept; please retry shortly\n"
            }
            Self::Unsaved(cause) if !matches!(**cause, Self::Backend(_)) => {
                // Nothing reached storage: a value that cannot be encoded, or lost races.
                cause.public_message()
            }
            Self::Unsaved(_) => {
                "session storage failed while saving; this request's changes to the session were not kept here, though storage may have applied them just before failing: check before repeating a change that must not happen twice\n"
            }
            Self::Encode(_) => {
                "the session could not be stored; this request's changes to it were not kept\n"
            }
            Self::Gone => {
                "the session ended while this request ran (logged out, renewed or expired); its changes were not saved\n"
            }
            Self::UnknownClientIp(_) => {
                "the session's client binding cannot be checked (server misconfiguration)\n"
            }
        }
    }

    /// The `kind` label of `typed_session_errors_total` and the `outcome` of a failed span: the
    /// failure named, never its details (which may hold ids or data).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Backend(_) => "backend",
            Self::Encode(_) => "encode",
            Self::Unreadable(_) => "unreadable",
            Self::Contention(_) => "contention",
            Self::Churning(_) => "churning",
            Self::Unsaved(cause) => cause.kind(),
            Self::Gone => "gone",
            Self::UnknownClientIp(_) => "client_ip",
        }
    }

    /// Whether the client should be told to forget its session id.
    pub(crate) fn ends_session(&self) -> bool {
        matches!(self, Self::Gone)
    }
}

impl From<StoreError> for crate::error::SessionError {
    fn from(error: StoreError) -> Self {
        Self::new(error.status(), error.public_message(), error.to_string())
    }
}
