//! The memory capacity is enforced by the store's purge thread, never by the request that
//! crossed it (a sweep is O(sessions held): at 200,000 sessions it stalled a request for
//! 83-196 ms). Alone in its binary, since it installs the process's log subscriber to see which
//! thread evicted.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::Browser;
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

async fn count(session: TypedSession<Visit>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

/// Log lines, shared with the subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_only_store_past_its_capacity_is_swept_by_its_purge_thread_with_a_warning() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_thread_names(true)
        .with_ansi(false)
        .with_env_filter("typed_session=warn")
        .init();

    let store = SessionStore::<Visit>::builder()
        .config(
            SessionConfig::default()
                .with_secure(false)
                .with_memory_capacity(10),
        )
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route("/", get(count))
        .layer(SessionLayer::new(store.clone()));
    for _ in 0..30 {
        assert_eq!(Browser::new(&app).get("/").await.body, "1");
    }
    let mut warned = String::new();
    for _ in 0..300 {
        warned = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        if store.count() <= 10 && warned.contains("capacity") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.count() <= 10, "{} sessions held", store.count());
    let line = warned
        .lines()
        .find(|line| line.contains("capacity"))
        .unwrap_or_else(|| panic!("a warning that sessions were evicted: {warned:?}"));
    assert!(
        line.contains("session-purge"),
        "evicted on the purge thread: {line}"
    );
    assert!(line.contains("WARN"), "{line}");
}
