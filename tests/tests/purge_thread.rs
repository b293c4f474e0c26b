//! The purge schedule's thread lives as long as its store, or until the store's runtime is
//! gone. One test alone in its own binary, so that no other store's purge thread is counted;
//! Linux-only, as it counts the process's threads by name in `/proc/self/task`.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
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

/// Threads of this process named as the store names its purge thread.
fn purge_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "session-purge")
        .count()
}

/// The purge threads once they number `expected`, or after five seconds. (A new thread names
/// itself when it starts, and an ending one is gone only when it has ended: both take a moment.)
fn purge_threads_once(expected: usize) -> usize {
    let start = Instant::now();
    while purge_threads() != expected && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    purge_threads()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn store() -> SessionStore<Visit> {
    SessionStore::builder()
        .config(SessionConfig::default().with_purge_interval(Duration::from_millis(10)))
        .build()
        .await
        .unwrap()
}

#[test]
fn the_purge_thread_ends_with_the_last_clone_of_its_store() {
    assert_eq!(purge_threads(), 0, "no store yet");

    // Stores dropped while their runtime runs.
    runtime().block_on(async {
        let (store, other) = (store().await, store().await);
        assert_eq!(purge_threads_once(2), 2, "one purge thread per store");
        let app: Router = Router::new()
            .route("/", get(count))
            .layer(SessionLayer::new(store.clone()));
        drop(store);
        // Purges run meanwhile; the router's clone keeps the store, and so its thread.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(purge_threads(), 2, "the router still holds the store");
        drop((app, other));
    });
    assert_eq!(purge_threads_once(0), 0, "ended with their stores");

    // A store that outlives its runtime: the first purge that comes due is dropped unrun, so
    // the thread ends (with a warning) and the store lives on, unpurged but usable.
    let runtime = runtime();
    let store = runtime.block_on(store());
    assert_eq!(purge_threads_once(1), 1);
    drop(runtime);
    assert_eq!(purge_threads_once(0), 0, "ended with its runtime");
    assert_eq!(store.count(), 0);
    drop(store);
}
