//! The `testing` kit as a user's handler tests use it: seeded sessions reach the handlers, read
//! back what the handlers saved, and outcomes name what each response did, on the memory store
//! and on SQLite with a key (signed values, stored records).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use tower::ServiceExt;
use typed_session::testing::{SessionOutcome, SessionTester};
use typed_session::{Key, SessionConfig, SessionData, SessionLayer, SessionStore, Transport};

use crate::common::storage::{Fixture, Sqlite};

#[derive(SessionData)]
struct Account {
    #[session(renew_on_change)]
    user: Option<String>,
    visits: u64,
}

async fn home(session: typed_session::TypedSession<Account>) -> String {
    let visits = session.update_visits(|visits| {
        *visits += 1;
        *visits
    });
    format!("{} {visits}", session.user().unwrap_or_default())
}

async fn peek(session: typed_session::TypedSession<Account>) -> String {
    session.user().unwrap_or_default()
}

async fn switch(session: typed_session::TypedSession<Account>) {
    session.set_user(Some("bob".into()));
}

async fn logout(session: typed_session::TypedSession<Account>) {
    session.destroy();
}

fn app(store: &SessionStore<Account>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/peek", get(peek))
        .route("/switch", get(switch))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(store.clone()))
}

async fn call(
    app: &Router,
    path: &str,
    cookie: Option<&typed_session::testing::SessionCookie>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        let (name, value) = cookie.request_header();
        request = request.header(name, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// One walk through every outcome: seeded, unchanged, renewed, destroyed, created.
async fn every_outcome(store: SessionStore<Account>) {
    let app = app(&store);
    let tester = SessionTester::new(&store);
    let alice = tester
        .seed(Account {
            user: Some("alice".into()),
            visits: 10,
        })
        .await
        .unwrap();

    let (status, headers, body) = call(&app, "/", Some(&alice)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice 11"));
    assert_eq!(
        tester.outcome(Some(&alice), &headers),
        SessionOutcome::Unchanged
    );
    assert_eq!(tester.read(&alice, |a| a.visits).await.unwrap(), Some(11));

    let (_, headers, _) = call(&app, "/switch", Some(&alice)).await;
    let outcome = tester.outcome(Some(&alice), &headers);
    let SessionOutcome::Renewed(bob) = outcome else {
        panic!("a renew_on_change field renews: {outcome:?}");
    };
    assert_eq!(tester.read(&alice, |a| a.visits).await.unwrap(), None);
    assert_eq!(
        tester.read(&bob, |a| a.user.clone()).await.unwrap(),
        Some(Some("bob".into()))
    );

    let (_, headers, _) = call(&app, "/logout", Some(&bob)).await;
    assert_eq!(
        tester.outcome(Some(&bob), &headers),
        SessionOutcome::Destroyed
    );
    assert_eq!(tester.read(&bob, |a| a.visits).await.unwrap(), None);

    let (_, headers, body) = call(&app, "/", None).await;
    assert_eq!(body, " 1");
    let outcome = tester.outcome(None, &headers);
    let created = outcome.cookie().expect("a first write creates a session");
    assert!(matches!(outcome, SessionOutcome::Created(_)));
    assert_eq!(tester.read(created, |a| a.visits).await.unwrap(), Some(1));
}

#[tokio::test]
async fn outcomes_on_the_memory_store() {
    let store = SessionStore::<Account>::builder()
        .config(SessionConfig::default().with_secure(false))
        .build()
        .await
        .unwrap();
    every_outcome(store).await;
}

#[tokio::test]
async fn outcomes_on_sqlite_with_a_key() {
    let sqlite = Sqlite::new().await.unwrap();
    let key =
        Key::from_secret(b"a test-only key of thirty-two bytes or more, for the kit").unwrap();
    let store = SessionStore::<Account>::builder()
        .backend(sqlite.backend())
        .config(SessionConfig::default().with_key(key))
        .build()
        .await
        .unwrap();
    let seeded = SessionTester::new(&store)
        .seed_with(|session| session.set_user(Some("carol".into())))
        .await
        .unwrap();
    assert!(
        seeded.value().contains('.'),
        "signed like the layer's: {seeded:?}"
    );
    // A server that never cached it finds the stored record by the seeded cookie.
    let other = SessionStore::<Account>::builder()
        .backend(sqlite.backend())
        .config(SessionConfig::default().with_key(
            Key::from_secret(b"a test-only key of thirty-two bytes or more, for the kit").unwrap(),
        ))
        .build()
        .await
        .unwrap();
    let (_, _, body) = call(&app(&other), "/peek", Some(&seeded)).await;
    assert_eq!(body, "carol");
    every_outcome(store).await;
    sqlite.cleanup().await;
}

#[tokio::test]
async fn the_header_transport_is_seeded_and_read_the_same_way() {
    let store = SessionStore::<Account>::builder()
        .config(SessionConfig::default().with_transport(Transport::Header))
        .build()
        .await
        .unwrap();
    let tester = SessionTester::new(&store);
    let seeded = tester
        .seed_with(|session| session.set_user(Some("dave".into())))
        .await
        .unwrap();
    assert_eq!(seeded.request_header().0.as_str(), "x-session-id");
    let app = app(&store);
    assert_eq!(call(&app, "/peek", Some(&seeded)).await.2, "dave");
    let (_, headers, _) = call(&app, "/logout", Some(&seeded)).await;
    assert_eq!(
        tester.outcome(Some(&seeded), &headers),
        SessionOutcome::Destroyed
    );
}

#[tokio::test]
async fn seeding_nothing_is_an_error_not_a_session() {
    let store = SessionStore::<Account>::builder().build().await.unwrap();
    let error = SessionTester::new(&store)
        .seed_with(|_| {})
        .await
        .expect_err("nothing was written");
    assert!(error.to_string().contains("wrote nothing"), "{error}");
    assert_eq!(store.count_stored().await.unwrap(), 0);
}
