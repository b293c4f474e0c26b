//! CSRF tokens: a `#[session(csrf)]` secret checks forms on every server, refuses missing,
//! malformed and foreign tokens without changing anything, dies at renewal, and rests sealed
//! when the store has a key.

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use serde::Deserialize;
use typed_session::{
    CSRF_HEADER, CsrfError, CsrfSecret, SessionConfig, SessionData, SessionLayer, SessionStore,
    TypedSession,
};

use crate::common::{Browser, Method, StatusCode};

use super::support::*;

#[derive(SessionData)]
struct Account {
    #[session(renew_on_change)]
    user: Option<String>,
    note: Option<String>,
    #[session(csrf)]
    csrf: CsrfSecret,
}

#[derive(Deserialize)]
struct Change {
    token: Option<String>,
    value: String,
}

/// The page with a form: its token.
async fn form(session: TypedSession<Account>) -> String {
    session.csrf_token()
}

/// A protected change: refused unless the token matches.
async fn change(
    session: TypedSession<Account>,
    Query(change): Query<Change>,
) -> Result<&'static str, CsrfError> {
    session.verify_csrf(change.token.as_deref().unwrap_or(""))?;
    session.set_note(Some(change.value));
    Ok("changed")
}

/// The same change with the token in the header JavaScript sends.
async fn change_by_header(
    session: TypedSession<Account>,
    headers: axum::http::HeaderMap,
    Query(change): Query<Change>,
) -> Result<&'static str, CsrfError> {
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok());
    session.verify_csrf(token.unwrap_or(""))?;
    session.set_note(Some(change.value));
    Ok("changed")
}

async fn log_in(session: TypedSession<Account>, Query(change): Query<Change>) -> &'static str {
    session.set_user(Some(change.value));
    "signed in"
}

async fn peek(session: TypedSession<Account>) -> String {
    format!("{:?} {:?}", session.user(), session.note())
}

fn account_app(store: &SessionStore<Account>) -> Router {
    Router::new()
        .route("/form", get(form))
        .route("/change", post(change))
        .route("/change-by-header", post(change_by_header))
        .route("/login", post(log_in))
        .route("/peek", get(peek))
        .layer(SessionLayer::new(store.clone()))
}

async fn post_change(browser: &mut Browser, token: &str, value: &str) -> crate::common::Reply {
    browser
        .send(
            Method::POST,
            &format!("/change?token={token}&value={value}"),
        )
        .await
}

/// A token served by one server is accepted by another sharing the storage; a missing,
/// malformed, tampered or foreign token is refused with 403 and changes nothing.
async fn a_token_works_on_every_server_and_nothing_else_does(storage: Storage) {
    let server_a = account_app(&storage.store(signed(key_a())).await);
    let server_b = account_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&server_a);
    let token = browser.get("/form").await.body;
    assert!(
        browser.jar.contains_key("account"),
        "a token creates the session"
    );
    let other_token = browser.get("/form").await.body;
    assert_ne!(token, other_token, "each token is masked afresh");

    let mut on_b = browser.on(&server_b);
    let reply = post_change(&mut on_b, &token, "first").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "changed")
    );
    let reply = post_change(&mut on_b, &other_token, "second").await;
    assert_eq!(reply.status, StatusCode::OK, "an older token stays valid");

    let mut stranger = Browser::new(&server_a);
    let strangers_token = stranger.get("/form").await.body;
    for (bad, what) in [
        (String::new(), "a missing token"),
        ("not-a-token".to_owned(), "a malformed token"),
        (flip(&token, 50), "a tampered token"),
        (strangers_token, "another session's token"),
    ] {
        let reply = post_change(&mut on_b, &bad, "forged").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what} was accepted");
        assert_no_set_cookie(&reply);
    }
    // Read where the writes were made: server A's cached copy learns of them at its next touch.
    assert_eq!(on_b.get("/peek").await.body, "None Some(\"second\")");

    let reply = on_b
        .send(
            Method::POST,
            &format!("/change-by-header?value=x&token={token}"),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "the header route reads the header only"
    );
    let by_header = |token: &str| {
        let cookies: Vec<String> = on_b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        axum::http::Request::post("/change-by-header?value=by-header")
            .header(axum::http::header::COOKIE, cookies.join("; "))
            .header(CSRF_HEADER, token)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let reply = crate::common::send(&server_b, by_header(&flip(&token, 50))).await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "a tampered header token"
    );
    let reply = crate::common::send(&server_b, by_header(&token)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "changed"),
        "the token in {CSRF_HEADER}"
    );
    assert_eq!(on_b.get("/peek").await.body, "None Some(\"by-header\")");
}

on_storages!(a_token_works_on_every_server_and_nothing_else_does: map, sqlite, postgres);

/// A visitor without a session (or whose session has no secret yet) is refused, and the
/// refusal creates no session.
#[tokio::test]
async fn a_post_without_a_session_is_refused_and_creates_none() {
    let app = account_app(&memory_store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    let reply = post_change(&mut browser, "", "x").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_no_set_cookie(&reply);

    // Someone else's valid token does not help a visitor without a secret.
    let mut victim = Browser::new(&app);
    let token = victim.get("/form").await.body;
    let reply = post_change(&mut browser, &token, "x").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_no_set_cookie(&reply);
}

/// Log-in renews the id and the secret: tokens served before are refused, new ones work.
async fn tokens_from_before_a_renewal_are_refused(storage: Storage) {
    let app = account_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    let before = browser.get("/form").await.body;
    let cookie_before = browser.jar["account"].clone();
    let reply = browser.send(Method::POST, "/login?value=alice").await;
    assert!(reply.cookie("account").is_some(), "log-in renews the id");
    assert_ne!(id_of(&browser.jar["account"]), id_of(&cookie_before));

    let reply = post_change(&mut browser, &before, "stale").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "a pre-log-in token");
    let after = browser.get("/form").await.body;
    let reply = post_change(&mut browser, &after, "fresh").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        browser.get("/peek").await.body,
        "Some(\"alice\") Some(\"fresh\")"
    );
}

on_storages!(tokens_from_before_a_renewal_are_refused: memory, sqlite);

/// With a key the secret rests sealed under it; without one it is plain, and in both cases a
/// restarted server still accepts the tokens it served.
async fn the_secret_rests_sealed_with_a_key(storage: Storage) {
    for (config, sealed) in [
        (signed(key_a()), true),
        (SessionConfig::default().with_secure(false), false),
    ] {
        let app = account_app(&storage.store(config.clone()).await);
        let mut browser = Browser::new(&app);
        let token = browser.get("/form").await.body;
        let record = parse_record(
            &storage
                .record(id_of(&browser.jar["account"]))
                .await
                .expect("the secret was stored"),
        );
        let stored = record["fields"]["csrf"].as_str().expect("a string");
        if sealed {
            assert_eq!(sealing_key_id(stored), key_a().id().to_be_bytes());
        } else {
            assert_eq!(stored.len(), 43, "32 bytes in base64url: {stored}");
        }
        let restarted = account_app(&storage.store(config).await);
        let reply = post_change(&mut browser.on(&restarted), &token, "kept").await;
        assert_eq!(reply.status, StatusCode::OK, "sealed: {sealed}");
    }
}

on_storages!(the_secret_rests_sealed_with_a_key: sqlite, postgres);
