//! A save that keeps losing compare-and-set races to another server: it keeps trying while the
//! other server's burst lasts (however many races that takes), and gives up with a 503 only
//! after both a minimum number of attempts and a few seconds, without writing over the
//! winner's data.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use typed_session::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

use common::shared_map::SharedMap;
use common::{Browser, StatusCode};

/// A shared map where, while `wins_left` is above zero, another server "saves first": each
/// compare-and-set save is refused after the stored record's version is raised, exactly as if
/// a rival had written just before.
#[derive(Clone, Default)]
struct RivalServer {
    map: SharedMap,
    wins_left: Arc<AtomicU64>,
    lost_saves: Arc<AtomicU64>,
}

impl RivalServer {
    fn rival_wins(&self, count: u64) {
        self.wins_left.store(count, Ordering::SeqCst);
    }

    fn lost_saves(&self) -> u64 {
        self.lost_saves.load(Ordering::SeqCst)
    }

    /// The rival's write: the stored record, one version on.
    fn rival_writes(&self, key: &StorageKey) {
        if let Some(record) = self.map.map().get_mut(key) {
            record.version += 1;
        }
    }
}

impl SessionBackend for RivalServer {
    async fn create_schema(&self) -> Result<(), BackendError> {
        self.map.create_schema().await
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        self.map.load(key, now).await
    }

    async fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let rival_won = expected_version.is_some()
            && self
                .wins_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
        if rival_won {
            self.rival_writes(key);
            self.lost_saves.fetch_add(1, Ordering::SeqCst);
        }
        self.map.save(key, record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        self.map.touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        self.map.delete(key).await
    }

    async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
        self.map.delete_expired(now).await
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        self.map.count(now).await
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        self.map.delete_all().await
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        self.map.list_keys(now).await
    }
}

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

async fn app(backend: RivalServer) -> Router {
    let store = SessionStore::<Visit>::builder()
        .backend(backend)
        .config(
            SessionConfig::default()
                .with_cookie_name("visit")
                .with_secure(false),
        )
        .build()
        .await
        .unwrap();
    Router::new()
        .route("/", get(increment))
        .layer(SessionLayer::new(store))
}

/// The stored count of the only session.
fn stored_count(backend: &RivalServer) -> u64 {
    let map = backend.map.map();
    let record = map.values().next().expect("one stored session");
    let data: serde_json::Value = serde_json::from_str(&record.data).unwrap();
    data["fields"]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("a count in {data}"))
}

#[tokio::test]
async fn a_save_outlasts_a_burst_of_the_other_servers_wins() {
    let backend = RivalServer::default();
    let mut browser = Browser::new(&app(backend.clone()).await);
    assert_eq!(browser.get("/").await.body, "1");

    // More races than the old fixed limit of 16 allowed.
    backend.rival_wins(40);
    let reply = browser.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "2");
    assert_eq!(backend.lost_saves(), 40);
    assert_eq!(
        stored_count(&backend),
        2,
        "the retry stored this request's write"
    );
}

#[tokio::test]
async fn a_save_that_never_wins_gives_up_after_its_patience_and_writes_nothing() {
    let backend = RivalServer::default();
    let mut browser = Browser::new(&app(backend.clone()).await);
    assert_eq!(browser.get("/").await.body, "1");

    backend.rival_wins(u64::MAX);
    let started = Instant::now();
    let reply = browser.get("/").await;
    let waited = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("retry"),
        "a public message: {}",
        reply.body
    );
    assert!(
        waited >= Duration::from_secs(3),
        "kept trying for its patience, gave up after {waited:?}"
    );
    assert!(backend.lost_saves() >= 16, "{}", backend.lost_saves());
    assert_eq!(stored_count(&backend), 1, "the lost request wrote nothing");

    // Once the other server stops winning, the next request saves normally, on top of the
    // value this server holds.
    backend.rival_wins(0);
    let reply = browser.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(stored_count(&backend), reply.body.parse::<u64>().unwrap());
}
