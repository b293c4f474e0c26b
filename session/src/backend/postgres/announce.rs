//! Announcements of committed saves to the other servers, sent in batches.

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgPool;
use tokio::sync::mpsc::{self, error::TrySendError};

/// A save waiting in the announcer's queue: the channel and the payload.
type Queued = (Arc<str>, String);

/// What a save announces once it committed: sent by the lane that committed it, so that an
/// announcement never depends on its caller still waiting (a request cancelled after the
/// commit).
pub(super) struct Announcement {
    pub(super) announcer: Arc<Announcer>,
    pub(super) channel: Arc<str>,
    pub(super) payload: String,
}

impl Announcement {
    /// Queues it for the next `pg_notify` statement.
    pub(super) fn send(self, pool: &PgPool) {
        self.announcer.announce(pool, &self.channel, self.payload);
    }
}

/// Announces committed saves in batches, from a task of its own started at the first save (and
/// again if it is gone, as when the runtime that ran it shut down).
#[derive(Debug, Default)]
pub(super) struct Announcer {
    queue: Mutex<Option<mpsc::Sender<Queued>>>,
}

/// Saves whose announcements may wait for the batch in flight; past that they are dropped
/// (with a warning), and other servers see those saves at their next touch instead.
const ANNOUNCE_BUFFER: usize = 4096;

/// The most announcements sent in one statement.
const ANNOUNCE_BATCH: usize = 512;

impl Announcer {
    fn announce(&self, pool: &PgPool, channel: &Arc<str>, payload: String) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut announcement = (Arc::clone(channel), payload);
        // At most twice: a task found gone is started again once.
        for _ in 0..2 {
            let sender = queue.get_or_insert_with(|| {
                let (sender, pending) = mpsc::channel(ANNOUNCE_BUFFER);
                tokio::spawn(send_announcements(pool.clone(), pending));
                sender
            });
            match sender.try_send(announcement) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => break,
                Err(TrySendError::Closed(back)) => {
                    *queue = None;
                    announcement = back;
                }
            }
        }
        tracing::warn!(
            "typed-session: a save's announcement was dropped (its queue is full, or its task cannot \
             start); other servers see the save at their next touch"
        );
    }
}

/// Sends what is queued, up to [`ANNOUNCE_BATCH`] in one `pg_notify` statement, until every
/// clone of the backend is gone.
async fn send_announcements(pool: PgPool, mut pending: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(ANNOUNCE_BATCH);
    while pending.recv_many(&mut batch, ANNOUNCE_BATCH).await > 0 {
        let (channels, payloads): (Vec<Arc<str>>, Vec<String>) = batch.drain(..).unzip();
        let channels: Vec<&str> = channels.iter().map(|channel| &**channel).collect();
        let sent =
            sqlx::query("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)")
                .bind(channels)
                .bind(payloads)
                .execute(&pool)
                .await;
        if let Err(error) = sent {
            tracing::warn!(
                %error,
                "typed-session: announcing saves failed; other servers see them at their next touch"
            );
        }
    }
}
