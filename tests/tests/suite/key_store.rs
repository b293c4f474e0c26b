//! The key-store (cargo feature `key-store`): unknown ids are answered without a backend round
//! trip, and a valid session is never turned away.

use crate::common::shared_map::SharedMap;
use crate::common::{Browser, get_with_cookie};
use crate::e2e::wrapper::Instrumented;
use axum::Router;
use axum::routing::get;
use typed_session::{
    KeyStoreConfig, SessionConfig, SessionData, SessionId, SessionLayer, SessionStore, TypedSession,
};

#[derive(SessionData)]
struct Visit {
    count: u64,
}

async fn increment(session: TypedSession<Visit>) -> String {
    session
        .update_count(|count| {
            *count += 1;
            *count
        })
        .to_string()
}

async fn app(backend: Instrumented<SharedMap>, key_store: bool) -> (Router, SessionStore<Visit>) {
    let mut config = SessionConfig::default().with_secure(false);
    if key_store {
        config = config.with_key_store(KeyStoreConfig::new(10_000, 0.001));
    }
    let store = SessionStore::<Visit>::builder()
        .backend(backend)
        .config(config)
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route("/", get(increment))
        .layer(SessionLayer::new(store.clone()));
    (app, store)
}

/// Unknown ids cost one load each without the key-store and none with it.
#[tokio::test]
async fn unknown_ids_cost_no_backend_round_trip() {
    for (key_store, expected_loads) in [(false, 50), (true, 0)] {
        let backend = Instrumented::new(SharedMap::default());
        let calls = backend.calls();
        let (app, _store) = app(backend, key_store).await;
        let before = calls.get();
        for _ in 0..50 {
            let forged = format!("visit={}", SessionId::generate());
            // Each forged id: a fresh session whose write is one save.
            assert_eq!(get_with_cookie(&app, "/", &forged).await.body, "1");
        }
        let loads = calls.get() - before - 50;
        assert_eq!(loads, expected_loads, "key-store {key_store}");
    }
}

/// Sessions stored before a restart are in the filter seeded by `build()`; sessions created
/// since are inserted; a purge rebuild keeps both.
#[tokio::test]
async fn valid_sessions_are_never_turned_away() {
    let shared = SharedMap::default();
    let (before_restart, _) = app(Instrumented::new(shared.clone()), true).await;
    let mut old_visitors: Vec<Browser> = Vec::new();
    for _ in 0..20 {
        let mut browser = Browser::new(&before_restart);
        browser.get("/").await;
        old_visitors.push(browser);
    }
    let (restarted, store) = app(Instrumented::new(shared.clone()), true).await;
    let mut new_visitor = Browser::new(&restarted);
    new_visitor.get("/").await;
    store.purge_expired().await.unwrap();
    // A third server instance, so every request must pass the filter (nothing is cached).
    let (cold, _) = app(Instrumented::new(shared), true).await;
    for browser in &mut old_visitors {
        assert_eq!(browser.on(&cold).get("/").await.body, "2");
    }
    assert_eq!(new_visitor.on(&cold).get("/").await.body, "2");
}
