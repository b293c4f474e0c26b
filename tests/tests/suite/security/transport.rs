//! Header transport (`x-session-id`): sessions without any cookie, and cookies and headers
//! side by side on one app.

use axum::body::Body;
use typed_session::{SessionStore, Transport};

use crate::common::{Browser, StatusCode};

use super::support::*;

#[tokio::test]
async fn header_transport_round_trips_without_any_cookie() {
    let config = signed(key_a()).with_transport(Transport::Header);
    let store = memory_store::<Visit>(config).await;
    assert_eq!(store.cookie_name(), "x-session-id");
    let app = visit_app(&store);
    let call = |path: &str, value: Option<&str>| {
        let headers: Vec<(&str, &str)> = value.map(|v| ("x-session-id", v)).into_iter().collect();
        let request = request(path, None, &headers).body(Body::empty()).unwrap();
        let app = app.clone();
        async move {
            let answer = exchange(&app, request).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert!(
                !answer.has_set_cookie(),
                "a cookie in header mode: {:?}",
                answer.headers
            );
            answer
        }
    };

    let first = call("/", None).await;
    assert_eq!(first.body, "1");
    let value = first.header("x-session-id").unwrap().to_owned();
    assert_signed(&value);
    let second = call("/", Some(&value)).await;
    assert_eq!(second.body, "2");
    assert_eq!(
        second.header("x-session-id"),
        None,
        "unchanged id, nothing to send"
    );

    // Tampered and cookie-borne values mean nothing here.
    let tampered = flip(&value, 40);
    assert_eq!(call("/", Some(&tampered)).await.body, "1");
    let as_cookie = request("/", Some(&format!("visit={value}")), &[])
        .body(Body::empty())
        .unwrap();
    assert_eq!(exchange(&app, as_cookie).await.body, "1");

    let renewed = call("/renew", Some(&value)).await;
    let new_value = renewed.header("x-session-id").unwrap().to_owned();
    assert_signed(&new_value);
    assert_ne!(id_of(&new_value), id_of(&value));
    let stale = call("/", Some(&value)).await;
    assert_eq!(stale.body, "1", "the id before renewal is dead");
    assert_ne!(id_of(stale.header("x-session-id").unwrap()), id_of(&value));
    assert_eq!(call("/", Some(&new_value)).await.body, "3");

    let destroyed = call("/destroy", Some(&new_value)).await;
    assert_eq!(
        destroyed.header("x-session-id"),
        Some(""),
        "destroy answers an empty header"
    );
    assert_eq!(call("/", Some(&new_value)).await.body, "1");
}

#[tokio::test]
async fn cookie_and_header_serve_a_browser_and_an_api_client_on_one_app() {
    let config = signed(key_a()).with_transport(Transport::CookieAndHeader);
    let app = visit_app(&memory_store(config).await);
    let mut browser = Browser::new(&app);
    let api = |value: Option<&str>| {
        let headers: Vec<(&str, &str)> = value.map(|v| ("x-session-id", v)).into_iter().collect();
        let request = request("/", None, &headers).body(Body::empty()).unwrap();
        let app = app.clone();
        async move { exchange(&app, request).await }
    };

    assert_eq!(browser.get("/").await.body, "1");
    let first = api(None).await;
    assert_eq!(first.body, "1");
    let token = first.header("x-session-id").unwrap().to_owned();
    assert_signed(&token);
    assert_eq!(browser.get("/").await.body, "2");
    assert_eq!(api(Some(&token)).await.body, "2");
    assert_eq!(api(Some(&token)).await.body, "3");
    assert_eq!(browser.get("/").await.body, "3", "two separate sessions");
    assert_ne!(id_of(&token), id_of(&browser.jar["visit"]));

    // Destroy tells both kinds of client to forget the id.
    let headers = [("x-session-id", token.as_str())];
    let destroyed = exchange(
        &app,
        request("/destroy", None, &headers)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(destroyed.header("x-session-id"), Some(""));
    let removal = destroyed.header("set-cookie").unwrap();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(api(Some(&token)).await.body, "1");
    assert_eq!(
        browser.get("/").await.body,
        "4",
        "the browser's session is another"
    );
}

#[tokio::test]
async fn a_header_name_given_as_a_string_carries_the_id_in_lower_case() {
    // Any case is accepted; HTTP header names are case-insensitive and go out in lower case.
    let config = signed(key_a())
        .with_transport(Transport::Header)
        .with_header_name("X-Api-Session");
    let store = memory_store::<Visit>(config).await;
    assert_eq!(store.cookie_name(), "x-api-session");
    let app = visit_app(&store);
    let call = |path: &str, value: Option<&str>| {
        let headers: Vec<(&str, &str)> = value.map(|v| ("X-API-SESSION", v)).into_iter().collect();
        let request = request(path, None, &headers).body(Body::empty()).unwrap();
        let app = app.clone();
        async move { exchange(&app, request).await }
    };

    let first = call("/", None).await;
    assert_eq!(first.body, "1");
    assert_eq!(
        first.header("x-session-id"),
        None,
        "the default header is unused"
    );
    let value = first.header("x-api-session").unwrap().to_owned();
    assert_signed(&value);
    assert_eq!(call("/", Some(&value)).await.body, "2");
    let destroyed = call("/destroy", Some(&value)).await;
    assert_eq!(destroyed.header("x-api-session"), Some(""));
    assert_eq!(call("/", Some(&value)).await.body, "1");
}

#[tokio::test]
async fn build_names_an_invalid_header_name() {
    let error = SessionStore::<Visit>::builder()
        .config(signed(key_a()).with_header_name("x session"))
        .build()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("\"x session\"") && message.contains("with_header_name"),
        "{message}"
    );
}
