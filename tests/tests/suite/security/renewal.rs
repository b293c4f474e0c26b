//! Id renewal: `renew_on_change` fields, and ids that died by renewal or destroy.

use typed_session::backend::StorageKey;

use crate::common::{Browser, get_with_cookie};

use super::support::*;

/// A change of a `renew_on_change` field renews the id (the old one dies); setting the same
/// value, or writing another field, does not.
async fn renew_on_change_renews_only_on_a_change(storage: Storage) {
    let app = login_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let before = browser.jar["login"].clone();

    let reply = browser.get("/role?value=admin").await;
    let after = reply.cookie("login").expect("a change renews").to_owned();
    assert_ne!(id_of(&after), id_of(&before));
    let reply = get_with_cookie(&app, "/", &format!("login={before}")).await;
    assert_fresh(&reply, "login", &before);
    assert_eq!(browser.get("/peek").await.body, "1 Some(\"admin\")");

    assert_no_set_cookie(&browser.get("/role?value=admin").await);
    let reply = browser.get("/").await;
    assert_eq!(reply.body, "2");
    assert_no_set_cookie(&reply);
    assert_eq!(
        browser.jar["login"], after,
        "same value, other field: same id"
    );

    let reply = browser.get("/role?value=user").await;
    assert!(
        reply.cookie("login").is_some(),
        "another change renews again"
    );
    assert_eq!(browser.get("/peek").await.body, "2 Some(\"user\")");
    let reply = get_with_cookie(&app, "/", &format!("login={after}")).await;
    assert_fresh(&reply, "login", &after);
}

on_storages!(renew_on_change_renews_only_on_a_change: memory, sqlite);

/// A validly signed value of a renewed or destroyed session is dead: on this server and, with
/// a backend, on a server that never saw it.
async fn old_ids_after_renewal_and_destroy_give_a_fresh_session(storage: Storage) {
    let app = visit_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    browser.get("/").await;
    let before_renewal = browser.jar["visit"].clone();
    let reply = browser.get("/renew").await;
    assert!(reply.cookie("visit").is_some());
    let renewed = browser.jar["visit"].clone();
    assert_ne!(id_of(&renewed), id_of(&before_renewal));

    let reply = get_with_cookie(&app, "/", &format!("visit={before_renewal}")).await;
    assert_fresh(&reply, "visit", &before_renewal);
    assert_eq!(browser.get("/").await.body, "3");

    let reply = browser.get("/destroy").await;
    let removal = reply.cookie_line("visit").unwrap();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let reply = get_with_cookie(&app, "/", &format!("visit={renewed}")).await;
    assert_fresh(&reply, "visit", &renewed);

    if !matches!(storage, Storage::Memory) {
        let other_server = visit_app(&storage.store(signed(key_a())).await);
        for dead in [&before_renewal, &renewed] {
            let reply = get_with_cookie(&other_server, "/", &format!("visit={dead}")).await;
            assert_fresh(&reply, "visit", dead);
        }
        let stored = storage.dump().await;
        for dead in [&before_renewal, &renewed] {
            let key = StorageKey::for_id(id_of(dead));
            assert!(
                !stored.contains(key.as_str()),
                "a dead record is still stored"
            );
        }
    }
}

on_storages!(old_ids_after_renewal_and_destroy_give_a_fresh_session: memory, sqlite, postgres, mongodb, surrealdb);
