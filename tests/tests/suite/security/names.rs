//! A signed value is valid only under the name it was issued for: another cookie name, or the
//! other transport (cookie or header), rejects it.

use axum::body::Body;
use typed_session::{SessionStore, Transport};

use crate::common::shared_map::SharedMap;
use crate::common::{Browser, get_with_cookie};

use super::support::*;

#[tokio::test]
async fn a_signed_value_moved_to_another_cookie_name_is_rejected() {
    // Two apps on one backend and one key, with different cookie names (say the shop and the
    // admin area); a third server with the shop's name shows the value itself is fine.
    let storage = SharedMap::default();
    let store = |name: &'static str| {
        let storage = storage.clone();
        async move {
            SessionStore::<Visit>::builder()
                .backend(storage)
                .config(signed(key_a()).with_cookie_name(name))
                .build()
                .await
                .unwrap()
        }
    };
    let shop = visit_app(&store("shop").await);
    let admin = visit_app(&store("admin").await);
    let other_shop_server = visit_app(&store("shop").await);
    let mut browser = Browser::new(&shop);
    browser.get("/").await;
    browser.get("/").await;
    let value = browser.jar["shop"].clone();

    let reply = get_with_cookie(&admin, "/", &format!("admin={value}")).await;
    assert_fresh(&reply, "admin", &value);
    let reply = get_with_cookie(&other_shop_server, "/", &format!("shop={value}")).await;
    assert_eq!(reply.body, "3", "under its own name the value is valid");
}

#[tokio::test]
async fn a_cookie_value_is_not_accepted_as_a_header_value_and_vice_versa() {
    let config = signed(key_a()).with_transport(Transport::CookieAndHeader);
    let app = visit_app(&memory_store(config).await);
    let first = exchange(&app, request("/", None, &[]).body(Body::empty()).unwrap()).await;
    assert_eq!(first.body, "1");
    let header_value = first.header("x-session-id").unwrap().to_owned();
    let set_cookie = first.header("set-cookie").unwrap();
    let cookie_value = set_cookie["visit=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        id_of(&header_value),
        id_of(&cookie_value),
        "one session, two transports"
    );
    assert_ne!(
        header_value, cookie_value,
        "each signed for its own transport"
    );

    let cross = |cookie: Option<String>, header: Option<&str>| {
        let headers: Vec<(&str, &str)> = header.map(|v| ("x-session-id", v)).into_iter().collect();
        request("/", cookie.as_deref(), &headers)
            .body(Body::empty())
            .unwrap()
    };
    let reply = exchange(&app, cross(None, Some(&cookie_value))).await;
    assert_eq!(reply.body, "1", "a cookie value in the header was accepted");
    assert_ne!(
        id_of(reply.header("x-session-id").unwrap()),
        id_of(&cookie_value)
    );
    let reply = exchange(&app, cross(Some(format!("visit={header_value}")), None)).await;
    assert_eq!(reply.body, "1", "a header value in the cookie was accepted");

    let reply = exchange(&app, cross(None, Some(&header_value))).await;
    assert_eq!(reply.body, "2");
    let reply = exchange(&app, cross(Some(format!("visit={cookie_value}")), None)).await;
    assert_eq!(reply.body, "3");
}
