//! Encryption at rest: `#[session(encrypt)]` fields and `with_encrypt_all` records are never
//! stored in plaintext, and ciphertexts copied, moved or planted by someone with write access
//! to the table are never believed; settings that need a key fail the build without one.

use serde_json::Value;
use typed_session::{SessionConfig, SessionStore};

use crate::common::shared_map::SharedMap;
use crate::common::{Browser, StatusCode};

use super::support::*;

/// `#[session(encrypt)]` fields rest as ciphertext under the current key; plain fields stay
/// plain (and readable by the app after a restart).
async fn encrypted_fields_are_not_stored_in_plaintext(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/phone?value={PHONE}")).await;
    browser.get(&format!("/nickname?value={NICKNAME}")).await;

    let dump = storage.dump().await;
    assert!(!dump.contains(EMAIL), "plaintext e-mail at rest: {dump}");
    assert!(!dump.contains(PHONE), "plaintext phone at rest: {dump}");
    assert!(
        dump.contains(NICKNAME),
        "the plain field is stored as is: {dump}"
    );
    let record = parse_record(
        &storage
            .record(id_of(&browser.jar["profile"]))
            .await
            .unwrap(),
    );
    let email = record["fields"]["email"].as_str().expect("a sealed string");
    assert_eq!(sealing_key_id(email), key_a().id().to_be_bytes());
    assert_ne!(
        record["fields"]["email"], record["fields"]["phone"],
        "each value sealed on its own"
    );

    let restarted = profile_app(&storage.store(signed(key_a())).await);
    assert_eq!(
        browser.on(&restarted).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) Some({PHONE:?}) Some({NICKNAME:?})")
    );
}

on_storages!(encrypted_fields_are_not_stored_in_plaintext: map, sqlite, postgres, mongodb, surrealdb);

/// `with_encrypt_all`: no field value, and no field name, is readable at rest.
async fn encrypt_all_stores_no_field_in_plaintext(storage: Storage) {
    let config = || signed(key_a()).with_encrypt_all(true);
    let app = profile_app(&storage.store(config()).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/nickname?value={NICKNAME}")).await;

    let dump = storage.dump().await;
    for plain in [EMAIL, NICKNAME, "nickname", "email", "count"] {
        assert!(!dump.contains(plain), "{plain} readable at rest: {dump}");
    }
    let record = parse_record(
        &storage
            .record(id_of(&browser.jar["profile"]))
            .await
            .unwrap(),
    );
    assert!(record.get("fields").is_none(), "{record}");
    let sealed = record["sealed"].as_str().expect("a sealed record");
    assert_eq!(sealing_key_id(sealed), key_a().id().to_be_bytes());

    let restarted = profile_app(&storage.store(config()).await);
    assert_eq!(
        browser.on(&restarted).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None Some({NICKNAME:?})")
    );
}

on_storages!(encrypt_all_stores_no_field_in_plaintext: map, sqlite, postgres, mongodb, surrealdb);

/// Ciphertexts are bound to the session they were sealed for, so renewal must re-seal them for
/// the new id: the renewed session reads on a server that never saw it, and the old record
/// is gone.
async fn encrypted_fields_survive_renewal(storage: Storage) {
    let config = || signed(key_a());
    let app = profile_app(&storage.store(config()).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    let before = browser.jar["profile"].clone();
    assert!(browser.get("/renew").await.cookie("profile").is_some());
    let after = browser.jar["profile"].clone();
    assert_ne!(id_of(&after), id_of(&before));
    assert_eq!(
        storage.record(id_of(&before)).await,
        None,
        "old record left"
    );
    let record = storage.record(id_of(&after)).await.unwrap();
    assert!(!record.contains(EMAIL), "{record}");

    let restarted = profile_app(&storage.store(config()).await);
    let mut elsewhere = browser.on(&restarted);
    assert_eq!(
        elsewhere.get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None None")
    );
    let reply = elsewhere.get("/").await;
    assert_eq!(reply.body, "1", "the renewed session, not a fresh one");
    assert_no_set_cookie(&reply);
}

on_storages!(encrypted_fields_survive_renewal: map, sqlite, postgres, mongodb, surrealdb);

/// Someone with write access to the table copies Alice's encrypted e-mail into Bob's record.
/// The ciphertext is bound to Alice's session, so Bob's record no longer decrypts: Bob gets a
/// fresh session (new id), never Alice's e-mail, and nothing fails.
async fn a_ciphertext_copied_into_another_session_gives_a_fresh_session(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut alice = Browser::new(&app);
    alice.get(&format!("/email?value={EMAIL}")).await;
    let mut bob = Browser::new(&app);
    bob.get("/email?value=bob@example.com").await;
    bob.get("/").await;
    let (alice_id, bob_id) = (id_of(&alice.jar["profile"]), id_of(&bob.jar["profile"]));

    let alice_record = parse_record(&storage.record(alice_id).await.unwrap());
    let mut bob_record = parse_record(&storage.record(bob_id).await.unwrap());
    bob_record["fields"]["email"] = alice_record["fields"]["email"].clone();
    storage.tamper(bob_id, &bob_record.to_string()).await;

    // A server that has not cached Bob's session reads the tampered record.
    let restarted = profile_app(&storage.store(signed(key_a())).await);
    let old_bob_value = bob.jar["profile"].clone();
    let mut bob = bob.on(&restarted);
    let reply = bob.get("/peek").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body, "0 None None None",
        "Bob must not see Alice's data"
    );
    let reply = bob.get("/").await;
    assert_fresh(&reply, "profile", &old_bob_value);
    assert_eq!(
        alice.on(&restarted).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None None"),
        "Alice's own record is intact"
    );
}

on_storages!(a_ciphertext_copied_into_another_session_gives_a_fresh_session: map, sqlite, postgres, mongodb, surrealdb);

/// The same with a whole sealed record (`with_encrypt_all`).
async fn a_sealed_record_copied_into_another_session_gives_a_fresh_session(storage: Storage) {
    let config = || signed(key_a()).with_encrypt_all(true);
    let app = profile_app(&storage.store(config()).await);
    let mut alice = Browser::new(&app);
    alice.get(&format!("/email?value={EMAIL}")).await;
    let mut bob = Browser::new(&app);
    bob.get("/").await;
    let (alice_id, bob_id) = (id_of(&alice.jar["profile"]), id_of(&bob.jar["profile"]));

    // The whole record, envelope and all.
    let alice_data = storage.record(alice_id).await.unwrap();
    storage.tamper(bob_id, &alice_data).await;

    let restarted = profile_app(&storage.store(config()).await);
    let old_bob_value = bob.jar["profile"].clone();
    let mut bob = bob.on(&restarted);
    let reply = bob.get("/peek").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body, "0 None None None",
        "Bob must not see Alice's data"
    );
    assert_fresh(&bob.get("/").await, "profile", &old_bob_value);
}

on_storages!(a_sealed_record_copied_into_another_session_gives_a_fresh_session: map, sqlite);

/// A ciphertext is bound to its field too: the e-mail moved into the phone field of the same
/// record does not decrypt there.
async fn a_ciphertext_moved_to_another_field_gives_a_fresh_session(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/phone?value={PHONE}")).await;
    let id = id_of(&browser.jar["profile"]);
    let mut record = parse_record(&storage.record(id).await.unwrap());
    record["fields"]["phone"] = record["fields"]["email"].clone();
    storage.tamper(id, &record.to_string()).await;

    let restarted = profile_app(&storage.store(signed(key_a())).await);
    let old_value = browser.jar["profile"].clone();
    let mut browser = browser.on(&restarted);
    assert_eq!(browser.get("/peek").await.body, "0 None None None");
    assert_fresh(&browser.get("/").await, "profile", &old_value);
}

on_storages!(a_ciphertext_moved_to_another_field_gives_a_fresh_session: map, sqlite);

/// Someone with write access plants a plaintext value where a ciphertext belongs: it is never
/// read as the field's value.
async fn a_plaintext_planted_in_an_encrypted_field_is_not_believed(storage: Storage) {
    let app = profile_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&app);
    browser.get(&format!("/email?value={EMAIL}")).await;
    browser.get(&format!("/nickname?value={NICKNAME}")).await;
    let id = id_of(&browser.jar["profile"]);
    let mut record = parse_record(&storage.record(id).await.unwrap());
    record["fields"]["email"] = Value::from("mallory@evil.example");
    storage.tamper(id, &record.to_string()).await;

    let restarted = profile_app(&storage.store(signed(key_a())).await);
    let reply = browser.on(&restarted).get("/peek").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains("mallory"), "{}", reply.body);
}

on_storages!(a_plaintext_planted_in_an_encrypted_field_is_not_believed: map, sqlite);

#[tokio::test]
async fn an_encrypted_field_without_a_key_fails_the_build_naming_the_field() {
    let error = SessionStore::<Profile>::builder()
        .build()
        .await
        .expect_err("a store that would have to store `email` in plaintext");
    let message = error.to_string();
    assert!(message.contains("email"), "{message}");
    assert!(message.contains("phone"), "{message}");
    assert!(message.contains("Profile"), "{message}");
    // The same with a backend: nothing is ever written in plaintext.
    let error = SessionStore::<Profile>::builder()
        .backend(SharedMap::default())
        .build()
        .await
        .expect_err("no key, with a backend");
    assert!(error.to_string().contains("email"), "{error}");
}

#[tokio::test]
async fn settings_that_need_a_key_fail_the_build_without_one() {
    for (setting, config) in [
        (
            "encrypt_all",
            SessionConfig::default().with_encrypt_all(true),
        ),
        ("ip binding", SessionConfig::default().with_ip_binding(true)),
        (
            "user-agent binding",
            SessionConfig::default().with_user_agent_binding(true),
        ),
        (
            "previous keys",
            SessionConfig::default().with_previous_keys([key_a()]),
        ),
    ] {
        let result = SessionStore::<Visit>::builder()
            .config(config)
            .build()
            .await;
        assert!(result.is_err(), "{setting} without a key was accepted");
    }
}
