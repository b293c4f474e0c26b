//! Announcements of committed saves to the other servers, sent in batches.

use std::sync::{Arc, OnceLock};

use sqlx::PgPool;

/// Announces committed saves in batches, from a task of its own started at the first save.
#[derive(Debug, Default)]
pub(super) struct Announcer {
    /// (channel, payload) of each save to announce.
    queue: OnceLock<tokio::sync::mpsc::Sender<(Arc<str>, String)>>,
}

/// Saves whose announcements may wait for the batch in flight; past that they are dropped
/// (with a warning), and other servers see those saves at their next touch instead.
const ANNOUNCE_BUFFER: usize = 4096;

/// The most announcements sent in one statement.
const ANNOUNCE_BATCH: usize = 512;

impl Announcer {
    pub(super) fn announce(&self, pool: &PgPool, channel: &Arc<str>, payload: String) {
        let queue = self.queue.get_or_init(|| {
            let (queue, pending) = tokio::sync::mpsc::channel(ANNOUNCE_BUFFER);
            tokio::spawn(send_announcements(pool.clone(), pending));
            queue
        });
        if queue.try_send((Arc::clone(channel), payload)).is_err() {
            tracing::warn!(
                "typed-session: a save's announcement was dropped (the queue is full or its \
                 task is gone); other servers see it at their next touch"
            );
        }
    }
}

/// Sends what is queued, up to [`ANNOUNCE_BATCH`] in one `pg_notify` statement, until every
/// clone of the backend is gone.
async fn send_announcements(
    pool: PgPool,
    mut pending: tokio::sync::mpsc::Receiver<(Arc<str>, String)>,
) {
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
