//! CSRF tokens tied to the session: a secret stored with the session (so every server behind a
//! load balancer knows it), handed out masked, checked in constant time, rotated on renewal.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::crypto::random_bytes;
use crate::data::SessionData;
use crate::extract::TypedSession;

/// Bytes of the secret, and of the mask of each token.
const SECRET_LEN: usize = 32;

/// Text length of a token: base64url of the mask followed by the masked secret.
const TOKEN_LEN: usize = (2 * SECRET_LEN * 4).div_ceil(3);

/// The conventional request header for a token sent by JavaScript (`fetch`, htmx), for handlers
/// that read it there rather than from a form field.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session's CSRF secret: the type of a `#[session(csrf)]` field.
///
/// It is stored with the session like any field, so every server that loads the session can
/// check a token, and it is encrypted at rest whenever the store has a key. It is created on the
/// first [`TypedSession::csrf_token`] and replaced whenever the session id is renewed (log-in,
/// [`TypedSession::renew`], a `renew_on_change` field), so a token seen before log-in is
/// worthless after it. Its bytes never leave the server: forms get masked tokens.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CsrfSecret(Option<[u8; SECRET_LEN]>);

impl CsrfSecret {
    /// Whether a secret was created for this session yet.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The secret, created now if there is none yet.
    fn get_or_create(&mut self) -> [u8; SECRET_LEN] {
        *self.0.get_or_insert_with(random_bytes)
    }

    /// Replaces an existing secret; `false` (and nothing changed) when there was none.
    fn rotate(&mut self) -> bool {
        match &mut self.0 {
            Some(secret) => {
                *secret = random_bytes();
                true
            }
            None => false,
        }
    }
}

impl fmt::Debug for CsrfSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: a debug log of the session must not hand out the secret.
        f.write_str(if self.is_set() {
            "CsrfSecret(set)"
        } else {
            "CsrfSecret(unset)"
        })
    }
}

impl Serialize for CsrfSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(secret) => serializer.serialize_str(&URL_SAFE_NO_PAD.encode(secret)),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for CsrfSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(Self(None));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        let secret = <[u8; SECRET_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            serde::de::Error::custom(format!("a CSRF secret is {SECRET_LEN} bytes"))
        })?;
        Ok(Self(Some(secret)))
    }
}

/// A session type with a `#[session(csrf)]` field, whose sessions hand out and check CSRF
/// tokens ([`TypedSession::csrf_token`], [`TypedSession::verify_csrf`]).
/// `#[derive(SessionData)]` implements it.
pub trait CsrfProtected: SessionData {
    /// The `#[session(csrf)]` field.
    #[doc(hidden)]
    fn csrf_secret(&self) -> &CsrfSecret;

    /// The `#[session(csrf)]` field, to create its secret.
    #[doc(hidden)]
    fn csrf_secret_mut(&mut self) -> &mut CsrfSecret;
}

/// Replaces the secret of a `#[session(csrf)]` field at renewal, for generated code:
/// `SessionData::rotate_csrf`.
#[doc(hidden)]
pub fn rotate(secret: &mut CsrfSecret) -> bool {
    secret.rotate()
}

/// Why a CSRF token was refused. Answers `403 Forbidden` as a response, so a handler can
/// return it with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfError {
    /// The request carried no token (an empty field or header).
    #[error(
        "the request has no CSRF token: send `csrf_token()` back in a form field or the x-csrf-token header"
    )]
    Missing,
    /// The token is not one this library hands out (wrong length or alphabet).
    #[error("the CSRF token is malformed: send back the whole text `csrf_token()` gave, unchanged")]
    Malformed,
    /// The session has no CSRF secret: no token was ever handed out for it (a new visitor, an
    /// expired or destroyed session).
    #[error(
        "the session has no CSRF secret: serve the form (with `csrf_token()`) to this session before accepting its POST"
    )]
    NoSecret,
    /// The token belongs to another session, or to this one before its id was renewed.
    #[error(
        "the CSRF token does not match the session: it was served to another session, or before the id was renewed; serve the page again"
    )]
    Mismatch,
}

impl IntoResponse for CsrfError {
    fn into_response(self) -> Response {
        tracing::debug!(reason = %self, "typed-session: refused a CSRF token");
        (
            StatusCode::FORBIDDEN,
            "403 Forbidden: this form has expired or did not come from this site; reload the page and try again\n",
        )
            .into_response()
    }
}

/// `mask ‖ (mask ⊕ secret)`, base64url: a different text for each response (BREACH cannot
/// recover the secret from compressed pages), the same secret underneath.
fn mask(secret: &[u8; SECRET_LEN]) -> String {
    let mut token = [0_u8; 2 * SECRET_LEN];
    let (mask, masked) = token.split_at_mut(SECRET_LEN);
    mask.copy_from_slice(&random_bytes::<SECRET_LEN>());
    for ((out, mask), secret) in masked.iter_mut().zip(mask.iter()).zip(secret) {
        *out = mask ^ secret;
    }
    URL_SAFE_NO_PAD.encode(token)
}

/// The secret inside a masked token.
fn unmask(token: &str) -> Result<[u8; SECRET_LEN], CsrfError> {
    if token.is_empty() {
        return Err(CsrfError::Missing);
    }
    if token.len() != TOKEN_LEN {
        return Err(CsrfError::Malformed);
    }
    let mut bytes = [0_u8; 2 * SECRET_LEN + 1];
    let written = URL_SAFE_NO_PAD
        .decode_slice(token, &mut bytes)
        .map_err(|_| CsrfError::Malformed)?;
    if written != 2 * SECRET_LEN {
        return Err(CsrfError::Malformed);
    }
    let (mask, masked) = bytes.split_at(SECRET_LEN);
    let mut secret = [0_u8; SECRET_LEN];
    for ((out, mask), masked) in secret.iter_mut().zip(mask).zip(masked) {
        *out = mask ^ masked;
    }
    Ok(secret)
}

impl<T: CsrfProtected> TypedSession<T> {
    /// A CSRF token for a form's hidden field (or a page's `<meta>` for JavaScript, which sends
    /// it back in the [`CSRF_HEADER`] header): masked afresh on each call, so it differs every
    /// time while staying valid for the session.
    ///
    /// The first call creates the session's secret, which is a write: a visitor shown a form
    /// gets a session (and cookie) then. After the session id is renewed (log-in), tokens
    /// handed out before are refused; pages rendered after get new ones.
    ///
    /// ```
    /// use axum::Form;
    /// use axum::response::{Html, IntoResponse, Redirect};
    /// use serde::Deserialize;
    /// use typed_session::{CsrfError, CsrfSecret, SessionData, TypedSession};
    ///
    /// #[derive(SessionData)]
    /// struct Account {
    ///     email: Option<String>,
    ///     #[session(csrf)]
    ///     csrf: CsrfSecret,
    /// }
    ///
    /// async fn show_form(session: TypedSession<Account>) -> Html<String> {
    ///     let token = session.csrf_token();
    ///     Html(format!(
    ///         r#"<form method="post"><input type="hidden" name="csrf_token" value="{token}">
    ///            <input name="email"><button>Save</button></form>"#
    ///     ))
    /// }
    ///
    /// #[derive(Deserialize)]
    /// struct EmailForm {
    ///     csrf_token: String,
    ///     email: String,
    /// }
    ///
    /// async fn save(
    ///     session: TypedSession<Account>,
    ///     Form(form): Form<EmailForm>,
    /// ) -> Result<Redirect, CsrfError> {
    ///     session.verify_csrf(&form.csrf_token)?; // 403, and nothing changed, when it fails
    ///     session.set_email(Some(form.email));
    ///     Ok(Redirect::to("/"))
    /// }
    /// ```
    #[must_use]
    pub fn csrf_token(&self) -> String {
        let raw = self.raw();
        let secret = match raw.read(|data| data.csrf_secret().0) {
            Some(secret) => secret,
            // Created under the lock, so parallel first requests agree on one secret.
            None => raw.write_if(T::CSRF, |data| {
                let secret = data.csrf_secret_mut();
                let created = !secret.is_set();
                (created, secret.get_or_create())
            }),
        };
        mask(&secret)
    }

    /// Checks a token from a form field or the [`CSRF_HEADER`] header against the session's
    /// secret, in constant time. Call it before the handler changes anything; see
    /// [`csrf_token`](Self::csrf_token) for a whole form.
    ///
    /// ```
    /// use axum::http::HeaderMap;
    /// use typed_session::{CSRF_HEADER, CsrfError, CsrfSecret, SessionData, TypedSession};
    ///
    /// #[derive(SessionData)]
    /// struct Cart {
    ///     items: Vec<u64>,
    ///     #[session(csrf)]
    ///     csrf: CsrfSecret,
    /// }
    ///
    /// // A JSON endpoint called by `fetch` with the token in a header.
    /// async fn clear(session: TypedSession<Cart>, headers: HeaderMap) -> Result<(), CsrfError> {
    ///     let token = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
    ///     session.verify_csrf(token.unwrap_or(""))?;
    ///     session.set_items(Vec::new());
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`CsrfError`] saying why the token was refused; as a response it is `403 Forbidden`.
    pub fn verify_csrf(&self, token: &str) -> Result<(), CsrfError> {
        let presented = unmask(token)?;
        let Some(secret) = self.raw().read(|data| data.csrf_secret().0) else {
            return Err(CsrfError::NoSecret);
        };
        if bool::from(presented.ct_eq(&secret)) {
            Ok(())
        } else {
            Err(CsrfError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_unmasks_to_its_secret_and_differs_each_time() {
        let secret = random_bytes();
        let (first, second) = (mask(&secret), mask(&secret));
        assert_eq!(first.len(), TOKEN_LEN);
        assert_ne!(first, second, "each token is masked afresh");
        assert_eq!(unmask(&first), Ok(secret));
        assert_eq!(unmask(&second), Ok(secret));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let token = mask(&random_bytes());
        assert_eq!(unmask(""), Err(CsrfError::Missing));
        assert_eq!(unmask(&token[1..]), Err(CsrfError::Malformed));
        assert_eq!(unmask(&format!("{token}A")), Err(CsrfError::Malformed));
        let not_base64 = "*".repeat(TOKEN_LEN);
        assert_eq!(unmask(&not_base64), Err(CsrfError::Malformed));
        let multibyte = "é".repeat(TOKEN_LEN / 2);
        assert_eq!(unmask(&multibyte), Err(CsrfError::Malformed));
    }

    #[test]
    fn a_secret_round_trips_through_its_stored_form_and_hides_in_debug() {
        let secret = CsrfSecret(Some(random_bytes()));
        let json = serde_json::to_string(&secret).expect("serialises");
        assert_eq!(
            serde_json::from_str::<CsrfSecret>(&json).ok(),
            Some(secret.clone())
        );
        assert_eq!(
            serde_json::to_string(&CsrfSecret::default())
                .ok()
                .as_deref(),
            Some("null")
        );
        assert!(
            serde_json::from_str::<CsrfSecret>("\"c2hvcnQ\"").is_err(),
            "a short secret is refused"
        );
        assert_eq!(format!("{secret:?}"), "CsrfSecret(set)");
    }

    #[test]
    fn rotation_replaces_only_an_existing_secret() {
        let mut unset = CsrfSecret::default();
        assert!(!unset.rotate());
        assert!(!unset.is_set());
        let mut set = CsrfSecret::default();
        let before = set.get_or_create();
        assert!(set.rotate());
        assert_ne!(set.0, Some(before));
    }
}
