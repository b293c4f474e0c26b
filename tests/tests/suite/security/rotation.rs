//! Key rotation: signed ids and sealed records issued under a previous key stay valid, are
//! re-signed or re-sealed under the current one, and die with the key.

use typed_session::{Key, SessionId};

use crate::common::{Browser, get_with_cookie};

use super::support::*;

/// Cookies issued under key A stay valid once B is current and A previous, and are re-signed
/// with B on their next response; a server that no longer knows A rejects them.
async fn key_rotation_keeps_sessions_and_resigns(storage: Storage) {
    let before = visit_app(&storage.store(signed(key_a())).await);
    let mut browser = Browser::new(&before);
    browser.get("/").await;
    browser.get("/").await;
    let old_value = browser.jar["visit"].clone();

    let rotated = visit_app(
        &storage
            .store(signed(key_b()).with_previous_keys([key_a()]))
            .await,
    );
    let mut browser = browser.on(&rotated);
    // Even a request that only reads re-signs.
    let reply = browser.get("/peek").await;
    assert_eq!(reply.body, "2", "the session survived the rotation");
    let new_value = reply
        .cookie("visit")
        .expect("a value signed with a previous key is re-signed")
        .to_owned();
    assert_signed(&new_value);
    assert_eq!(
        id_of(&new_value),
        id_of(&old_value),
        "same session, new signature"
    );
    assert_ne!(new_value, old_value);
    let reply = browser.get("/").await;
    assert_eq!(reply.body, "3");
    assert_no_set_cookie(&reply);

    let only_b = visit_app(&storage.store(signed(key_b())).await);
    let reply = get_with_cookie(&only_b, "/", &format!("visit={old_value}")).await;
    assert_fresh(&reply, "visit", &old_value);
    let reply = get_with_cookie(&only_b, "/", &format!("visit={new_value}")).await;
    assert_eq!(
        reply.body, "4",
        "the re-signed value verifies under B alone"
    );
}

on_storages!(key_rotation_keeps_sessions_and_resigns: map, sqlite, postgres, mongodb, surrealdb);

/// Records sealed under key A read after rotating to B (A previous), and the next write
/// re-seals them under B, after which a server with B alone reads them.
async fn rotation_reads_old_records_and_reencrypts_on_write(storage: Storage, encrypt_all: bool) {
    let config = |key: Key, previous: Vec<Key>| {
        signed(key)
            .with_previous_keys(previous)
            .with_encrypt_all(encrypt_all)
    };
    // The key id of the sealed part of session `id`'s record.
    let sealed_under = |storage: Storage, id: SessionId| async move {
        let record = parse_record(&storage.record(id).await.unwrap());
        let sealed = if encrypt_all {
            &record["sealed"]
        } else {
            &record["fields"]["email"]
        };
        sealing_key_id(sealed.as_str().expect("a sealed value"))
    };

    let before = profile_app(&storage.store(config(key_a(), vec![])).await);
    let mut browser = Browser::new(&before);
    browser.get(&format!("/email?value={EMAIL}")).await;
    let id = id_of(&browser.jar["profile"]);
    assert_eq!(
        sealed_under(storage.clone(), id).await,
        key_a().id().to_be_bytes()
    );

    let rotated = profile_app(&storage.store(config(key_b(), vec![key_a()])).await);
    let mut browser = browser.on(&rotated);
    assert_eq!(
        browser.get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None None"),
        "the old record reads after rotation"
    );
    assert_eq!(
        sealed_under(storage.clone(), id).await,
        key_a().id().to_be_bytes(),
        "a read writes nothing"
    );
    browser.get(&format!("/nickname?value={NICKNAME}")).await;
    assert_eq!(
        sealed_under(storage.clone(), id).await,
        key_b().id().to_be_bytes(),
        "the write re-sealed the record under the new key"
    );
    assert!(!storage.dump().await.contains(EMAIL));

    let only_b = profile_app(&storage.store(config(key_b(), vec![])).await);
    assert_eq!(
        browser.on(&only_b).get("/peek").await.body,
        format!("0 Some({EMAIL:?}) None Some({NICKNAME:?})")
    );
}

async fn rotation_reencrypts_fields(storage: Storage) {
    rotation_reads_old_records_and_reencrypts_on_write(storage, false).await;
}

async fn rotation_reencrypts_whole_records(storage: Storage) {
    rotation_reads_old_records_and_reencrypts_on_write(storage, true).await;
}

on_storages!(rotation_reencrypts_fields: map, sqlite, postgres, mongodb, surrealdb);
on_storages!(rotation_reencrypts_whole_records: map, sqlite);
