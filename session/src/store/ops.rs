//! What a handler asks of its store during a request: store the session's writes now, and
//! confirm it is still live. For handlers that outlive their response (a server-sent event
//! stream, a WebSocket), whose writes the layer's save at response time does not carry.

use http::StatusCode;

use crate::clock::now_millis;
use crate::data::SessionData;
use crate::error::SessionError;
use crate::lifetime::Lifetimes;
use crate::session::{BoxFuture, Session, StoreOps};
use crate::store::StoreInner;
use crate::store::save::ended_unsaved;

impl<T: SessionData> StoreOps<T> for StoreInner<T> {
    fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    fn save_now<'a>(&'a self, session: &'a Session<T>) -> BoxFuture<'a, Result<(), SessionError>> {
        Box::pin(async move {
            let entry = session.entry();
            if entry.is_ended() {
                return Err(ended_unsaved(entry).into());
            }
            let (id, writes) = {
                let slot = entry.lock();
                (slot.id, slot.writes)
            };
            if !self.memory.contains(id) {
                return Err(SessionError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the session could not be saved\n",
                    "save_now on a new session before its response: a new session is created \
                     (and its cookie sent) with the response, so save after the response has \
                     started, or let the layer save it"
                        .to_owned(),
                ));
            }
            self.save(entry, writes).await.map_err(Into::into)
        })
    }

    fn verify<'a>(&'a self, session: &'a Session<T>) -> BoxFuture<'a, Result<bool, SessionError>> {
        Box::pin(async move {
            let entry = session.entry();
            let now = now_millis();
            if entry.is_ended() || entry.is_over(self.lifetimes, now, true) {
                return Ok(false);
            }
            let Some(backend) = self.backend.as_deref() else {
                return Ok(true);
            };
            if !self.memory.contains(entry.lock().id) {
                // New and not yet created: nothing stored to confirm.
                return Ok(true);
            }
            self.touch(backend, entry, now).await.map_err(Into::into)
        })
    }
}
