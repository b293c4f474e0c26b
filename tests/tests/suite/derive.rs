//! The derive's runtime behaviour through a real `Router`: flash fields, schema versions with a
//! migration function, and aliases.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::Browser;
use crate::common::shared_map::SharedMap;
use axum::Router;
use axum::routing::get;
use typed_session::backend::{SessionBackend, StorageKey};
use typed_session::serde_json::{Map, Value};
use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};

#[derive(SessionData)]
struct Messages {
    #[session(flash)]
    notice: Option<String>,
    #[session(flash, memory_only)]
    local_notice: Option<String>,
    views: u64,
}

async fn post_notice(session: TypedSession<Messages>) {
    session.set_notice(Some("saved".to_owned()));
    session.set_local_notice(Some("local".to_owned()));
}

async fn show(session: TypedSession<Messages>) -> String {
    format!("{:?} {:?}", session.notice(), session.local_notice())
}

async fn messages_app(backend: SharedMap) -> Router {
    let store = SessionStore::<Messages>::builder()
        .backend(backend)
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await
        .unwrap();
    Router::new()
        .route("/", get(show).post(post_notice))
        .layer(SessionLayer::new(store))
}

#[tokio::test]
async fn a_flash_value_is_read_once_then_gone_also_after_a_restart() {
    let backend = SharedMap::default();
    let app = messages_app(backend.clone()).await;
    let mut browser = Browser::new(&app);
    let first = browser.get("/").await;
    assert_eq!(first.body, "None None");
    assert!(
        first.set_cookies.is_empty(),
        "reading an empty flash creates nothing"
    );

    browser.send(axum::http::Method::POST, "/").await;
    assert_eq!(
        browser.get("/").await.body,
        "Some(\"saved\") Some(\"local\")"
    );
    assert_eq!(browser.get("/").await.body, "None None", "read once");

    browser.send(axum::http::Method::POST, "/").await;
    // Another server (or a restart) reads the stored flash once too; memory_only stays behind.
    let mut elsewhere = browser.on(&messages_app(backend.clone()).await);
    assert_eq!(elsewhere.get("/").await.body, "Some(\"saved\") None");
    let mut again = browser.on(&messages_app(backend).await);
    assert_eq!(again.get("/").await.body, "None None", "its read was saved");
}

#[derive(SessionData)]
#[session(version = 1)]
struct ProfileV1 {
    name: String,
    visits: u64,
}

/// Version 2 splits `name` into `first` and `last`.
#[derive(SessionData)]
#[session(version = 2, migrate = "split_name")]
struct ProfileV2 {
    first: String,
    last: String,
    visits: u64,
}

static MIGRATIONS: AtomicUsize = AtomicUsize::new(0);

fn split_name(fields: &mut Map<String, Value>, from: u32) -> Result<(), String> {
    MIGRATIONS.fetch_add(1, Ordering::SeqCst);
    if from != 1 {
        return Err(format!("no migration from version {from}"));
    }
    let name = fields
        .remove("name")
        .and_then(|name| name.as_str().map(str::to_owned))
        .ok_or("version 1 records have a name")?;
    let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
    fields.insert("first".to_owned(), Value::from(first));
    fields.insert("last".to_owned(), Value::from(last));
    Ok(())
}

fn profile_config() -> SessionConfig {
    SessionConfig::default()
        .with_secure(false)
        .with_cookie_name("profile")
}

async fn v1_app(backend: SharedMap) -> Router {
    async fn write(session: TypedSession<ProfileV1>) {
        session.set_name("Ada Lovelace".to_owned());
        session.update_visits(|visits| *visits += 1);
    }
    let store = SessionStore::<ProfileV1>::builder()
        .backend(backend)
        .config(profile_config())
        .build()
        .await
        .unwrap();
    Router::new()
        .route("/", get(write))
        .layer(SessionLayer::new(store))
}

async fn v2_app(backend: SharedMap) -> Router {
    async fn read(session: TypedSession<ProfileV2>) -> String {
        let visits = session.update_visits(|visits| {
            *visits += 1;
            *visits
        });
        format!("{}|{}|{visits}", session.first(), session.last())
    }
    let store = SessionStore::<ProfileV2>::builder()
        .backend(backend)
        .config(profile_config())
        .build()
        .await
        .unwrap();
    Router::new()
        .route("/", get(read))
        .layer(SessionLayer::new(store))
}

fn stored_record(backend: &SharedMap, browser: &Browser) -> Value {
    let key = StorageKey::for_id(browser.jar["profile"].parse().unwrap());
    let record = backend.map().get(&key).cloned().unwrap();
    typed_session::serde_json::from_str(&record.data).unwrap()
}

#[tokio::test]
async fn a_version_1_record_is_migrated_once_and_saved_as_version_2() {
    let backend = SharedMap::default();
    let mut browser = Browser::new(&v1_app(backend.clone()).await);
    browser.get("/").await;
    assert_eq!(stored_record(&backend, &browser)["schema"], 1);

    let before = MIGRATIONS.load(Ordering::SeqCst);
    let mut upgraded = browser.on(&v2_app(backend.clone()).await);
    assert_eq!(upgraded.get("/").await.body, "Ada|Lovelace|2");
    assert_eq!(
        upgraded.get("/").await.body,
        "Ada|Lovelace|3",
        "served from memory"
    );
    assert_eq!(
        MIGRATIONS.load(Ordering::SeqCst) - before,
        1,
        "migrated exactly once"
    );

    let record = stored_record(&backend, &browser);
    assert_eq!(record["schema"], 2, "saved in the new version: {record}");
    assert_eq!(record["fields"]["first"], "Ada");
    assert!(record["fields"].get("name").is_none(), "{record}");

    // Another server (or a restart) reads version 2 as it is.
    let mut restarted = browser.on(&v2_app(backend.clone()).await);
    assert_eq!(restarted.get("/").await.body, "Ada|Lovelace|4");
    assert_eq!(
        MIGRATIONS.load(Ordering::SeqCst) - before,
        1,
        "not migrated again"
    );
}

#[tokio::test]
async fn a_failing_migration_gives_a_fresh_session() {
    let backend = SharedMap::default();
    // A record of schema 0 (written before versions were declared): the migration refuses it.
    let id = typed_session::SessionId::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let record = typed_session::backend::Record {
        data: format!(
            r#"{{"format":1,"created":{now},"long_term":false,"fields":{{"visits":9}}}}"#
        ),
        version: 1,
        expires_at: u64::MAX / 2,
        index: None,
    };
    backend
        .save(&StorageKey::for_id(id), &record, None, 0)
        .await
        .unwrap();
    let app = v2_app(backend.clone()).await;
    let reply = crate::common::get_with_cookie(&app, "/", &format!("profile={id}")).await;
    assert_eq!(reply.body, "||1", "a fresh session");
    // Refused, not expired: the record was written just now with a week of life left.
    assert!(backend.map().get(&StorageKey::for_id(id)).is_some());
    assert_ne!(reply.cookie("profile"), Some(id.to_string().as_str()));
}
