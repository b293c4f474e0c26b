//! Storage consent (`SessionMode::OptIn`): nothing is stored before consent, and the consent
//! marker cannot be forged.

use typed_session::backend::StorageKey;
use typed_session::{SessionConfig, SessionMode, SessionStore};

use crate::common::shared_map::SharedMap;
use crate::common::{Browser, get_with_cookie};

use super::support::*;

#[tokio::test]
async fn opt_in_stores_nothing_before_consent_and_the_marker_cannot_be_forged() {
    let backend = SharedMap::default();
    let config = || signed(key_a()).with_mode(SessionMode::OptIn);
    let store = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(config())
        .build()
        .await
        .unwrap();
    let app = visit_app(&store);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/").await.body, "1");
    assert_eq!(
        browser.get("/").await.body,
        "2",
        "the session works in memory"
    );
    assert_eq!(browser.get("/has-consent").await.body, "false");
    browser.get("/renew").await;
    assert_eq!(browser.get("/").await.body, "3", "renewed in memory");
    assert!(backend.map().is_empty(), "stored before consent");
    let unconsented = browser.jar["visit"].clone();
    assert_signed(&unconsented);
    assert!(!unconsented.contains('~'), "{unconsented}");

    // The client writes the consent marker itself.
    let (id, signature) = unconsented.split_once('.').unwrap();
    let forged = format!("{id}~s.{signature}");
    let reply = get_with_cookie(&app, "/", &format!("visit={forged}")).await;
    assert_fresh(&reply, "visit", &forged);
    assert!(
        backend.map().is_empty(),
        "a forged marker got a session stored"
    );

    let reply = browser.get("/consent").await;
    let consented = reply.cookie("visit").expect("consent re-issues the value");
    assert_signed(consented);
    assert_eq!(id_of(consented), id_of(&unconsented), "the same session");
    assert!(consented.contains("~s."), "{consented}");
    assert_eq!(browser.get("/").await.body, "4");
    assert_eq!(browser.get("/has-consent").await.body, "true");
    {
        let map = backend.map();
        assert_eq!(map.len(), 1);
        let record = &map[&StorageKey::for_id(id_of(id))];
        assert_eq!(parse_record(&record.data)["fields"]["count"], 4);
    }
    // Stripping the marker off a consented value breaks its signature as well.
    let consented = browser.jar["visit"].clone();
    let stripped = consented.replacen("~s", "", 1);
    let reply = get_with_cookie(&app, "/", &format!("visit={stripped}")).await;
    assert_fresh(&reply, "visit", &stripped);

    // Consent reaches other servers through the stored copy (read only here: this server's
    // cache would not see another server's write before its next touch).
    let other_server = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(config())
        .build()
        .await
        .unwrap();
    let mut elsewhere = browser.on(&visit_app(&other_server));
    assert_eq!(elsewhere.get("/peek").await.body, "4");
    assert_eq!(elsewhere.get("/has-consent").await.body, "true");

    // Withdrawn consent deletes the stored copy; the session lives on in memory.
    browser.get("/withdraw").await;
    assert!(
        backend.map().is_empty(),
        "withdrawal left the record stored"
    );
    assert!(
        !browser.jar["visit"].contains('~'),
        "{}",
        browser.jar["visit"]
    );
    assert_eq!(browser.get("/").await.body, "5");
    assert!(backend.map().is_empty());
}

/// Without a key OptIn still decides storage by the server's own flag, so a client writing
/// `~s` into its cookie stores nothing. What it gives up is the signature: the marker is plain
/// text the client can add or drop (harmless, since the server ignores it) and the id itself is
/// unsigned, protected only by being random and held by the store.
#[tokio::test]
async fn opt_in_without_a_key_ignores_a_client_written_marker() {
    let backend = SharedMap::default();
    let store = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(SessionConfig::default().with_mode(SessionMode::OptIn))
        .build()
        .await
        .unwrap();
    let app = visit_app(&store);
    let mut browser = Browser::new(&app);
    browser.get("/").await;
    let id = browser.jar["visit"].clone();
    assert_eq!(id.len(), 32, "unsigned: a bare id");
    let reply = get_with_cookie(&app, "/", &format!("visit={id}~s")).await;
    assert_eq!(reply.body, "2", "the marker names the same session");
    let reply = get_with_cookie(&app, "/has-consent", &format!("visit={id}~s")).await;
    assert_eq!(reply.body, "false", "the client cannot grant consent");
    assert!(backend.map().is_empty());
}

/// `has_store_consent()` answers whether a session may be stored, not whether it is: outside
/// opt-in it is true from the first request, though a session nobody wrote to is stored nowhere.
#[tokio::test]
async fn store_consent_is_a_permission_not_a_state() {
    let backend = SharedMap::default();
    let store = SessionStore::<Visit>::builder()
        .backend(backend.clone())
        .config(signed(key_a()))
        .build()
        .await
        .unwrap();
    let app = visit_app(&store);
    let mut browser = Browser::new(&app);
    let reply = browser.get("/has-consent").await;
    assert_eq!(reply.body, "true");
    assert!(reply.set_cookies.is_empty(), "a read creates no session");
    assert!(backend.map().is_empty(), "nothing stored, yet consent");
}
